package alertbridge

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// redirector answers every request with a redirect of the given status to
// the same path and query on target.
func redirector(t *testing.T, status *atomic.Int32, target string, tls bool) *httptest.Server {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target+r.URL.RequestURI(), int(status.Load()))
	})
	var s *httptest.Server
	if tls {
		s = httptest.NewTLSServer(h)
	} else {
		s = httptest.NewServer(h)
	}
	t.Cleanup(s.Close)
	return s
}

// TestNtfyRedirectIsNotDelivery: a publish answered with a redirect that
// net/http would follow as a GET (301, 302, 303: nginx's usual http ->
// https redirect) reaches ntfy's web app, which answers 200 with HTML. The
// page was counted delivered and removed from the spool, and nobody was
// paged. The redirect must not be followed: the pages stay spooled, the
// problem is loud (and pushed to Kuma), and they go out once the URL
// publishes again (here: the redirect keeps the method, 308).
func TestNtfyRedirectIsNotDelivery(t *testing.T) {
	t.Parallel()
	for _, code := range []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther} {
		t.Run(http.StatusText(code), func(t *testing.T) {
			t.Parallel()
			ntfy := newNtfy(fakenotify.NtfyOptions{})
			ns := newServer(t, ntfy)
			var status atomic.Int32
			status.Store(int32(code))
			rs := redirector(t, &status, ns.URL(), false)
			tb := startBridge(t, "", func(c *Config) {
				c.Ntfy = &NtfyConfig{URL: rs.URL + "/alerts", Token: testToken, AuthErrorBackoff: 200 * time.Millisecond}
			})
			tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
			waitFor(t, 15*time.Second, "the redirect reported", func() bool {
				return strings.Contains(tb.log.String(), "NTFY URL REDIRECTS")
			})
			if got := tb.counter("clavis_alertbridge_notifications_sent_total", "target", "ntfy"); got != 0 {
				t.Fatalf("%v pages counted sent, %d published: a redirect to a GET is not a publish", got, len(ntfy.Messages()))
			}
			if d := tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy"); d != 1 {
				t.Fatalf("ntfy spool depth %v, want the page held (1)", d)
			}
			if p := tb.ntfyAuthProblem(); !strings.Contains(p, "redirect") {
				t.Errorf("problem for Kuma %q, want the redirect", p)
			}
			status.Store(http.StatusPermanentRedirect)
			waitFor(t, 15*time.Second, "the page after the fix", func() bool { return len(ntfy.Messages()) == 1 })
			tb.waitDrained(t, 15*time.Second)
			if p := tb.ntfyAuthProblem(); p != "" {
				t.Errorf("problem %q left after delivery", p)
			}
			if m := ntfy.Messages()[0]; m.Title == "" || m.Token != testToken {
				t.Errorf("message %+v", m)
			}
		})
	}
}

// TestNtfyRedirectToPlainHTTPNotFollowed: a redirect from https to http
// would send the token and the page in clear text: it is not followed.
func TestNtfyRedirectToPlainHTTPNotFollowed(t *testing.T) {
	t.Parallel()
	var seen atomic.Int32
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		ntfy.ServeHTTP(w, r)
	}))
	t.Cleanup(plain.Close)
	var status atomic.Int32
	status.Store(http.StatusPermanentRedirect)
	rs := redirector(t, &status, plain.URL, true)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: rs.URL + "/alerts", Token: testToken, AuthErrorBackoff: time.Hour}
		c.Client = rs.Client()
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 15*time.Second, "the redirect reported", func() bool {
		return strings.Contains(tb.log.String(), "NTFY URL REDIRECTS")
	})
	if n := seen.Load(); n != 0 {
		t.Errorf("the plain-http server got %d requests (%d messages, token in clear text)", n, len(ntfy.Messages()))
	}
	if d := tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy"); d != 1 {
		t.Errorf("ntfy spool depth %v, want the page held (1)", d)
	}
}

// TestKumaRedirectToPlainHTTPNotFollowed: the Kuma push token is in the
// URL; a redirect from https to http would send it in clear text.
func TestKumaRedirectToPlainHTTPNotFollowed(t *testing.T) {
	t.Parallel()
	var seen atomic.Int32
	kuma := fakenotify.NewKuma("pushtok")
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen.Add(1)
		kuma.ServeHTTP(w, r)
	}))
	t.Cleanup(plain.Close)
	var status atomic.Int32
	status.Store(http.StatusFound)
	rs := redirector(t, &status, plain.URL, true)
	tb := startBridge(t, "", func(c *Config) {
		c.Kuma = &KumaConfig{PushURL: rs.URL + "/api/push/pushtok", ConfigErrorBackoff: time.Hour}
		c.Client = rs.Client()
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 15*time.Second, "the config error", func() bool {
		return tb.counter("clavis_alertbridge_kuma_config_errors_total") >= 1
	})
	if n := seen.Load(); n != 0 {
		t.Errorf("the plain-http server got %d requests", n)
	}
	if l := tb.log.String(); strings.Contains(l, "pushtok") {
		t.Errorf("the push token is in the log:\n%s", l)
	}
}
