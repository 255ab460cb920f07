package alertbridge

import (
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// TestKumaWebPageIsNotAPush: a push URL Kuma's push route does not match
// (a path after the token, a path prefix Kuma is not served under) gets
// Kuma's web app, 200; so does a login page in front of Kuma. That was counted as a
// push: Kuma never got one and its monitor went down on its own timeout,
// with alertbridge reporting every push sent. It is a configuration error.
func TestKumaWebPageIsNotAPush(t *testing.T) {
	t.Parallel()
	login := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		io.WriteString(w, "<html><body><form>Sign in</form></body></html>")
	})
	for name, c := range map[string]struct {
		h    http.Handler
		path string
	}{
		"kuma not under the prefix": {fakenotify.NewKuma("pushtok"), "/kuma/api/push/pushtok"},
		"a login page in front":     {login, "/api/push/pushtok"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			var answered atomic.Int32
			s, err := fakenotify.StartServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c.h.ServeHTTP(w, r)
				answered.Add(1)
			}), "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(s.Close)
			tb := startBridge(t, "", func(cfg *Config) {
				cfg.Kuma = &KumaConfig{PushURL: s.URL() + c.path, ConfigErrorBackoff: time.Hour}
			})
			tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
			waitFor(t, 15*time.Second, "the configuration error", func() bool {
				return tb.counter("clavis_alertbridge_kuma_config_errors_total") == 1
			})
			if n := tb.counter("clavis_alertbridge_notifications_sent_total", "target", "kuma"); n != 0 || answered.Load() != 1 {
				t.Errorf("%v Kuma pushes counted sent, %d answered", n, answered.Load())
			}
			if !strings.Contains(tb.log.String(), "KUMA CONFIGURATION ERROR") {
				t.Error("not logged loudly")
			}
		})
	}
}

// TestKumaErrorIsRetried: Kuma answers every error of its push handler
// 404 with {"ok":false,"msg":...}, a database error too. Only "Monitor
// not found" is a configuration error; the rest is retried with the
// ordinary backoff, not after --kuma.config-error-backoff.
func TestKumaErrorIsRetried(t *testing.T) {
	t.Parallel()
	kuma := fakenotify.NewKuma("pushtok")
	kuma.FailNext(2, "SQLITE_BUSY: database is locked")
	ks := newServer(t, kuma)
	tb := startBridge(t, "", func(c *Config) {
		c.Kuma = &KumaConfig{PushURL: ks.URL() + "/api/push/pushtok", ConfigErrorBackoff: time.Hour}
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 15*time.Second, "the down push", func() bool { _, ok := kuma.Last(); return ok })
	if p, _ := kuma.Last(); p.Status != "down" || p.Msg != "PopDown fra1" {
		t.Errorf("push %+v", p)
	}
	if n := tb.counter("clavis_alertbridge_kuma_config_errors_total"); n != 0 {
		t.Errorf("%v configuration errors counted for a database error", n)
	}
	if l := tb.log.String(); strings.Contains(l, "KUMA CONFIGURATION ERROR") || !strings.Contains(l, "SQLITE_BUSY") {
		t.Errorf("log:\n%s", l)
	}
}
