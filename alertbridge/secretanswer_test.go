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

// TestKumaErrorQuotingTheTokenIsScrubbed: Kuma's answer to a database
// error is knex's message, which quotes the query with its bound values:
// the push token. The log must not carry it.
func TestKumaErrorQuotingTheTokenIsScrubbed(t *testing.T) {
	t.Parallel()
	const tok = "pushtok-Secret-8f3a"
	kuma := fakenotify.NewKuma(tok)
	kuma.FailNext(1, "select * from `monitor` where push_token = '"+tok+"' AND active = 1 limit 1 - SQLITE_BUSY: database is locked")
	ks := newServer(t, kuma)
	tb := startBridge(t, "", func(c *Config) {
		c.Kuma = &KumaConfig{PushURL: ks.URL() + "/api/push/" + tok, ConfigErrorBackoff: 100 * time.Millisecond}
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 15*time.Second, "the push", func() bool { _, ok := kuma.Last(); return ok })
	l := tb.log.String()
	if !strings.Contains(l, "SQLITE_BUSY") {
		t.Fatalf("the failure is not logged:\n%s", l)
	}
	if strings.Contains(l, tok) {
		t.Errorf("the push token is in the log:\n%s", l)
	}
}

// TestNtfyErrorQuotingTheTokenIsScrubbed: an answer that quotes the
// request (a proxy's error page) must not bring the token into the log.
func TestNtfyErrorQuotingTheTokenIsScrubbed(t *testing.T) {
	t.Parallel()
	const tok = "tk_Quoted-Secret-7c1e"
	ntfy := newNtfy(fakenotify.NtfyOptions{Tokens: map[string]bool{tok: true}})
	var refused atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if refused.CompareAndSwap(false, true) {
			http.Error(w, "bad gateway; request headers: Authorization: "+r.Header.Get("Authorization"), http.StatusBadGateway)
			return
		}
		ntfy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: srv.URL + "/alerts", Token: tok}
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 15*time.Second, "the page", func() bool { return len(ntfy.Messages()) == 1 })
	l := tb.log.String()
	if !strings.Contains(l, "bad gateway") {
		t.Fatalf("the failure is not logged:\n%s", l)
	}
	if strings.Contains(l, tok) {
		t.Errorf("the ntfy token is in the log:\n%s", l)
	}
}

// TestQueryCredentialsScrubbed: ntfy takes credentials in ?auth= too;
// an answer quoting the request line must not bring them into the log.
func TestQueryCredentialsScrubbed(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "bad gateway for "+r.Method+" "+r.URL.RequestURI(), http.StatusBadGateway)
	}))
	defer srv.Close()
	const auth = "QmVhcmVyIHRrX3F1ZXJ5c2VjcmV0"
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/alerts?auth="+auth, nil)
	err := do(srv.Client(), req)
	if err == nil || !strings.Contains(err.Error(), "bad gateway") {
		t.Fatalf("error %v", err)
	}
	if strings.Contains(err.Error(), auth) {
		t.Errorf("error carries the ?auth= credentials: %v", err)
	}
}
