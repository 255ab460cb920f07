package alertbridge

import (
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// startKuma serves kuma alone, as Uptime Kuma serves itself: the push
// route and, for every other GET, the web app.
func startKuma(t *testing.T, kuma *fakenotify.Kuma) *fakenotify.Server {
	t.Helper()
	s, err := fakenotify.StartServer(kuma, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestKumaWebPageIsNotAPush: a push URL Kuma's push route does not match
// (here without /api) gets Kuma's web app, 200. That was counted as a
// push: Kuma never got one and its monitor went down on its own timeout,
// with alertbridge reporting every push sent. It is a configuration error.
func TestKumaWebPageIsNotAPush(t *testing.T) {
	t.Parallel()
	for _, path := range []string{"/push/pushtok", "/api/push/"} {
		t.Run(path, func(t *testing.T) {
			t.Parallel()
			kuma := fakenotify.NewKuma("pushtok")
			ks := startKuma(t, kuma)
			tb := startBridge(t, "", func(c *Config) {
				c.Kuma = &KumaConfig{PushURL: ks.URL() + path, ConfigErrorBackoff: time.Hour}
			})
			tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
			waitFor(t, 15*time.Second, "an answer from Kuma", func() bool { return kuma.StatusCounts()[200] > 0 })
			waitFor(t, 15*time.Second, "the configuration error", func() bool {
				return tb.counter("clavis_alertbridge_kuma_config_errors_total") == 1
			})
			if n := tb.counter("clavis_alertbridge_notifications_sent_total", "target", "kuma"); n != 0 {
				t.Errorf("%v Kuma pushes counted sent; Kuma stored %d", n, len(kuma.Pushes()))
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
