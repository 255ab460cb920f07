package alertbridge

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// TestLogLinesBounded: a sender's long group key, receiver, labels and
// summary (bodies may be 32 MiB) are cut in log lines, with their length
// and a hash, so one webhook cannot write a megabyte line.
func TestLogLinesBounded(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(newServer(t, ntfy)); c.Authenticated = true })
	long := func(c string) string { return strings.Repeat(c, 100_000) }
	a := mkAlert("PopDown"+long("n"), long("p"), long("s"), "firing", t0)
	a.Annotations["summary"] = long("u")
	var p Payload
	if err := json.Unmarshal(mkPayload(a), &p); err != nil {
		t.Fatal(err)
	}
	p.GroupKey, p.Receiver, p.TruncatedAlerts = strings.Repeat("k", 1<<20), long("r"), 3
	body, _ := json.Marshal(p)
	tb.mustPost(t, body)
	tb.waitDrained(t, 10*time.Second)
	logs := tb.log.String()
	if !strings.Contains(logs, "left alerts out") || !strings.Contains(logs, `"msg":"alert"`) {
		t.Fatalf("log lines missing:\n%.2000s", logs)
	}
	for _, l := range strings.Split(logs, "\n") {
		if len(l) > 8<<10 {
			t.Errorf("log line of %d bytes: %.300s", len(l), l)
		}
	}
	if !strings.Contains(logs, "[1048576 bytes, sha256:") {
		t.Errorf("the group key's length and hash are not logged")
	}
}
