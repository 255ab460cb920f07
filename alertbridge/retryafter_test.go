package alertbridge

import (
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// TestRetryAfterOn503: a 503 with Retry-After (a proxy in front of ntfy
// in maintenance, or ntfy's own) asks for that wait, as a 429 does
// (RFC 9110, 10.2.3). It was ignored: the page was retried after the
// first backoff step.
func TestRetryAfterOn503(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(ns) })
	ntfy.ForceStatus(503, 1, "1")
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	tb.waitDrained(t, 15*time.Second)
	reqs := ntfy.Requests()
	if len(reqs) != 2 || reqs[0].Status != 503 || reqs[1].Status != 200 {
		t.Fatalf("requests %+v", reqs)
	}
	if d := reqs[1].Time.Sub(reqs[0].Time); d < 900*time.Millisecond {
		t.Errorf("retried %s after a 503 with Retry-After: 1", d)
	}
}
