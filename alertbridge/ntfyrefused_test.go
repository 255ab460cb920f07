package alertbridge

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// TestNtfyRefusedActionsStillPage: ntfy answers 400 when it cannot parse
// a page's actions (40018); the page was dropped. It goes out once more
// with its title, priority and body only.
func TestNtfyRefusedActionsStillPage(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ntfy.RefuseWhen(func(r *http.Request) (int, string, bool) {
		return http.StatusBadRequest, "", r.Header.Get("X-Actions") != ""
	})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
		c.Ntfy.DashboardURL = "https://dash.example/"
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	tb.waitDrained(t, 15*time.Second)
	msgs := ntfy.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d pages delivered, want 1 (failed %v)", len(msgs), tb.counter("clavis_alertbridge_notifications_failed_total", "target", "ntfy"))
	}
	if m := msgs[0]; m.Title != "[FIRING:1] PopDown fra1" || m.Priority != 5 || len(m.Actions) != 0 || !strings.Contains(m.Message, "PopDown") {
		t.Errorf("page %+v", m)
	}
}

// TestNtfyURLRefusedHoldsPages: a URL that names no topic is refused for
// every page alike (404 for a path that is no topic; 40017 for ntfy's
// root, e.g. behind a proxy's path prefix). Each page was dropped as
// failed; they are held, loudly, as for a refused token.
func TestNtfyURLRefusedHoldsPages(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/v1/alerts"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			ntfy := newNtfy(fakenotify.NtfyOptions{})
			ns := newServer(t, ntfy)
			tb := startBridge(t, "", func(c *Config) {
				c.Ntfy = &NtfyConfig{URL: ns.URL() + path, Token: testToken, AuthErrorBackoff: 100 * time.Millisecond}
			})
			tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
			tb.mustPost(t, mkPayload(mkAlert("PopDown", "ams1", "critical", "firing", t0)))
			waitFor(t, 15*time.Second, "retries", func() bool {
				return tb.counter("clavis_alertbridge_delivery_failures_total", "target", "ntfy", "class", "4xx") >= 4
			})
			if f := tb.counter("clavis_alertbridge_notifications_failed_total", "target", "ntfy"); f != 0 {
				t.Errorf("%v pages dropped as failed", f)
			}
			if d := tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy"); d != 2 {
				t.Errorf("ntfy spool depth %v, want both pages held", d)
			}
			if p := tb.ntfyAuthProblem(); !strings.Contains(p, "refuses the URL") {
				t.Errorf("problem for Kuma %q", p)
			}
			if !strings.Contains(tb.log.String(), "NTFY URL REFUSED") {
				t.Error("not logged loudly")
			}
		})
	}
}

// TestNtfyAuthFailureLimitIsAnAuthProblem: once ntfy counted too many
// failed credentials from the bridge's address it answers 429 code 42909
// before it looks at the token (here: left from before a restart). That
// was taken for the request rate limit: retried within seconds, and
// neither ntfy_auth_failing nor Kuma said that pages were held.
func TestNtfyAuthFailureLimitIsAnAuthProblem(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{AuthFailureBurst: 1, AuthFailureReplenish: time.Hour})
	ns := newServer(t, ntfy)
	req, _ := http.NewRequest(http.MethodPost, ns.URL()+"/alerts", strings.NewReader("x"))
	req.Header.Set("Authorization", "Bearer tk_wrong")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Fatalf("the failure before the start: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
		c.Ntfy.AuthErrorBackoff = time.Hour
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 15*time.Second, "the auth problem", func() bool {
		return tb.counter("clavis_alertbridge_ntfy_auth_failing") == 1
	})
	if p := tb.ntfyAuthProblem(); !strings.Contains(p, "token") {
		t.Errorf("problem for Kuma %q", p)
	}
	time.Sleep(300 * time.Millisecond)
	if n := ntfy.StatusCounts()[429]; n != 1 {
		t.Errorf("429 answered %d times, want 1 (then the auth error backoff)", n)
	}
}

// TestNtfyRefusedDigestKeepsItsPages: a storm digest ntfy refused (400)
// took every page it merged with it, as failed. Its pages now go out one
// by one.
func TestNtfyRefusedDigestKeepsItsPages(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ntfy.RefuseWhen(func(r *http.Request) (int, string, bool) {
		return http.StatusBadRequest, "", strings.Contains(r.Header.Get("X-Title"), "DIGEST")
	})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
		c.Ntfy.PerMinute, c.Ntfy.StormWindow = 2, 300*time.Millisecond
	})
	for i := 0; i < 6; i++ {
		tb.mustPost(t, mkPayload(mkAlert("PopDown", fmt.Sprintf("pop%02d", i), "critical", "firing", t0)))
	}
	tb.waitDrained(t, 15*time.Second)
	if f := tb.counter("clavis_alertbridge_notifications_failed_total", "target", "ntfy"); f != 0 {
		t.Errorf("%v pages failed", f)
	}
	if got := titles(ntfy.Messages()); len(got) != 6 {
		t.Errorf("delivered %v, want the 6 pages", got)
	}
	if ntfy.StatusCounts()[400] == 0 {
		t.Error("no digest was refused: the test tests nothing")
	}
}
