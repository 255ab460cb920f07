package alertbridge

import (
	"mime"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// TestEncodedWordsInAlertTextAreLiteral: RFC 2047 encoded words in labels
// and annotations reach on-call as the text sent; ntfy's decode of its
// headers must not add actions, CR/LF or tags, nor make the page invalid.
func TestEncodedWordsInAlertTextAreLiteral(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
		c.Actions = &ActionsConfig{ExternalURL: "http://ab.example", Secret: []byte("0123456789abcdef"), AlertmanagerURL: "http://127.0.0.1:1"}
	})
	forged := `https://rb.example/x?q=a=?utf-8?q?=22=3B_view=2C_=22Silence_1h=22=2C_=22https://evil.example/steal?=`
	pop := `=?utf-8?q?fra1=0D=0AAll_clear?=`
	sev := `=?utf-8?q?critical=2Cfake?=`
	a := mkAlert("PopDown", pop, sev, "firing", t0)
	a.Annotations["runbook_url"] = forged
	a.GeneratorURL = "http://prometheus.example/graph?g0.expr=" + pop
	tb.mustPost(t, mkPayload(a))
	// A second page whose runbook would add many actions once decoded.
	b := mkAlert("PopDown", "ams1", "critical", "firing", t0)
	b.Annotations["runbook_url"] = "https://rb.example/x?q==?utf-8?q?" + strings.Repeat("=22=3B_view=2C_=22x=22=2C_=22https://evil.example/", 4) + "?="
	tb.mustPost(t, mkPayload(b))
	tb.waitDrained(t, 10*time.Second)
	msgs := ntfy.Messages()
	if len(msgs) != 2 {
		t.Fatalf("want 2 pages, got %d: %v (failed %v)", len(msgs), titles(msgs), tb.counter("clavis_alertbridge_notifications_failed_total", "target", "ntfy"))
	}
	for _, m := range msgs {
		if strings.ContainsAny(m.Title, "\r\n") || strings.Contains(m.Title, "All clear") {
			t.Errorf("title decoded: %q", m.Title)
		}
		for _, act := range m.Actions {
			if strings.Contains(act.URL, "evil.example") && act.Label != "Runbook" {
				t.Errorf("forged action %+v", act)
			}
		}
	}
	// The two groups' pages go out concurrently, in either order.
	m := msgs[0]
	if strings.Contains(m.Title, "ams1") {
		m = msgs[1]
	}
	if !strings.Contains(m.Title, pop) {
		t.Errorf("title %q does not carry the pop label as sent", m.Title)
	}
	if len(m.Tags) != 2 || m.Tags[1] != strings.ToLower(sev) {
		t.Errorf("tags %q, want [rotating_light %s]", m.Tags, sev)
	}
	if m.Click != safeURL(a.GeneratorURL) {
		t.Errorf("click %q, want %q", m.Click, safeURL(a.GeneratorURL))
	}
	var runbook string
	for _, act := range m.Actions {
		if act.Label == "Runbook" {
			runbook = act.URL
		}
	}
	if runbook != safeURL(forged) || len(m.Actions) != 3 {
		t.Errorf("runbook %q, want %q; actions %+v", runbook, safeURL(forged), m.Actions)
	}
}

// TestEncodeHeaderRoundTrip: what ntfy decodes is what alertbridge meant.
func TestEncodeHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"plain", "=?utf-8?q?x?=", "a=?b", strings.Repeat("é=?", 40), "=?UTF-8?b?QUFB?= tail", "ä"} {
		// As ntfy's readParam (and the fake) decode a header.
		got, err := new(mime.WordDecoder).DecodeHeader(encodeHeader(s))
		if err != nil || got != s {
			t.Errorf("%q: ntfy reads %q", s, got)
		}
	}
}

// TestHeadersBounded: a page behind a proxy with an 8 KB header limit is
// delivered even when its labels, runbook and generator URL are huge: each
// header is bounded and actions that do not fit are dropped.
func TestHeadersBounded(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	proxy := httptest.NewUnstartedServer(fakenotify.Mux(ntfy, nil))
	proxy.Config.MaxHeaderBytes = 4 << 10 // Go adds 4 KB: an 8 KB proxy
	proxy.Start()
	defer proxy.Close()
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: proxy.URL + "/alerts", Token: testToken}
		c.Actions = &ActionsConfig{ExternalURL: "http://ab.example", Secret: []byte("0123456789abcdef"), AlertmanagerURL: "http://127.0.0.1:1"}
	})
	a := mkAlert("PopDown", "fra1-"+strings.Repeat("p", 2000), "critical"+strings.Repeat("s", 3000), "firing", t0)
	a.GeneratorURL = "http://prometheus.example/graph?g0.expr=" + strings.Repeat("u", 5000)
	tb.mustPost(t, mkPayload(a))
	tb.waitDrained(t, 10*time.Second)
	msgs := ntfy.Messages()
	if len(msgs) != 1 {
		t.Fatalf("page lost: %d messages, failed %v", len(msgs), tb.counter("clavis_alertbridge_notifications_failed_total", "target", "ntfy"))
	}
	m := msgs[0]
	size := 0
	for k, vs := range m.Header {
		for _, v := range vs {
			size += len(k) + len(v) + 4
		}
	}
	if size > 7<<10 || m.Click != "" || len(m.Title) > headerTitleMax || len(m.Actions) == 0 || !strings.Contains(m.Message, "PopDown") {
		t.Errorf("headers %d bytes, click %d, title %d, actions %d", size, len(m.Click), len(m.Title), len(m.Actions))
	}
	if !strings.Contains(tb.log.String(), "page actions dropped") {
		t.Errorf("no warning about the dropped actions")
	}
	if strings.Contains(tb.log.String(), "token=") {
		t.Errorf("log carries an action token")
	}

	// A page spooled by an older version, unbounded, is bounded on the way out.
	pg := Page{Title: strings.Repeat("t", 5000), Tags: []string{strings.Repeat("a", 3000), "b", strings.Repeat("c", 600)},
		Click: "https://x.example/" + strings.Repeat("c", 3000),
		Actions: []ntfyAction{{Action: "view", Label: "Big", URL: "https://x.example/" + strings.Repeat("d", 5000)},
			{Action: "view", Label: "Small", URL: "https://x.example/"}}}
	h := pg.Header("", true)
	if len(h.Get("X-Title")) > 2*headerTitleMax || len(h.Get("X-Tags")) > 2*tagsMax || h.Get("X-Click") != "" ||
		len(h.Get("X-Actions")) > actionsMax || !strings.Contains(h.Get("X-Actions"), "Small") || !strings.HasSuffix(decoded(h.Get("X-Tags")), ",repeat") {
		t.Errorf("headers not bounded: %v", h)
	}
}

// TestHeaders431Resent: a proxy refusing the headers with 431 gets the page
// once more without actions and click URL instead of losing it.
func TestHeaders431Resent(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	mux := fakenotify.Mux(ntfy, nil)
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Actions") != "" {
			http.Error(w, "headers too large", http.StatusRequestHeaderFieldsTooLarge)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	defer proxy.Close()
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: proxy.URL + "/alerts", Token: testToken}
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	tb.waitDrained(t, 10*time.Second)
	if msgs := ntfy.Messages(); len(msgs) != 1 || !strings.Contains(msgs[0].Message, "fra1") {
		t.Fatalf("page lost after 431: %v", titles(msgs))
	}
}

func decoded(v string) string {
	d, err := new(mime.WordDecoder).DecodeHeader(v)
	if err != nil {
		return v
	}
	return d
}
