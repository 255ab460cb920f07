package alertbridge

import (
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

func TestActionTokens(t *testing.T) {
	t.Parallel()
	c := &ActionsConfig{ExternalURL: "https://ab.example", Secret: []byte("0123456789abcdef0123"), TTL: time.Hour, SilenceFor: time.Hour}
	m := map[string]string{"alertname": "PopDown", "region": "eu-west"}
	acts := c.pageActions("g1", "", "[FIRING:3] PopDown eu-west", m, t0)
	if len(acts) != 2 || acts[0].Label != "Silence 1h" || acts[1].Label != "Ack" || acts[0].Action != "http" || acts[0].Method != "POST" ||
		!strings.HasPrefix(acts[0].URL, "https://ab.example/action/silence?token=") {
		t.Fatalf("actions %+v", acts)
	}
	u, _ := url.Parse(acts[0].URL)
	tok := u.Query().Get("token")
	cl, err := c.verify(tok, t0)
	if err != nil || cl.Action != ActionSilence || cl.Group != "g1" || cl.Matchers["region"] != "eu-west" || len(cl.Matchers) != 2 {
		t.Fatalf("verify: %+v %v", cl, err)
	}
	if _, err := c.verify(tok, t0.Add(time.Hour)); err != errExpired {
		t.Errorf("after the TTL: %v", err)
	}
	// Any change to claims or MAC is a forgery; so is another key.
	body, mac, _ := strings.Cut(tok, ".")
	raw, _ := base64.RawURLEncoding.DecodeString(body)
	widened := strings.Replace(string(raw), `"region":"eu-west"`, `"region":"eu-wes"`, 1)
	for name, bad := range map[string]string{
		"widened matchers": base64.RawURLEncoding.EncodeToString([]byte(widened)) + "." + mac,
		"flipped MAC":      body + "." + flipFirst(mac),
		// The same MAC bytes, its last character spelled with other
		// unused low bits: one token has one spelling.
		"MAC respelled": body + "." + respellLast(mac),
		"no MAC":        body,
		"garbage":       "x.y",
		"empty":         "",
	} {
		if _, err := c.verify(bad, t0); err != errForged {
			t.Errorf("%s: %v", name, err)
		}
	}
	other := &ActionsConfig{Secret: []byte("another secret of 16+")}
	if _, err := other.verify(tok, t0); err != errForged {
		t.Errorf("other key: %v", err)
	}
}

// respellLast changes the last character of an unpadded base64url string
// whose length leaves unused bits in it (32 bytes: 43 characters, 2 bits
// unused) to the one that differs only in its lowest, unused bit.
func respellLast(s string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[i^1])
}

// flipFirst changes the first character of a base64url string to a
// different one of the alphabet. (Upper-casing, the old way, is a no-op
// when the token's random nonce makes the MAC start with digits.)
func flipFirst(s string) string {
	c := byte('A')
	if s[0] == 'A' {
		c = 'B'
	}
	return string(c) + s[1:]
}

// TestAckHoldsReminders: a group re-sent unchanged after the repeat
// interval is paged again as a reminder; after Ack it is not, until it
// changes. The ack is single-use and says so in a follow-up.
func TestAckHoldsReminders(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
		c.Ntfy.RepeatInterval = time.Nanosecond // every unchanged re-send is due
		c.Actions = &ActionsConfig{ExternalURL: "http://ab.example", Secret: []byte("0123456789abcdef"), AlertmanagerURL: "http://127.0.0.1:1"}
	})
	actions := httptest.NewServer(tb.ActionHandler())
	defer actions.Close()
	a := mkAlert("PopDown", "fra1", "critical", "firing", t0)
	g := mkPayload(a)
	tb.mustPost(t, g)
	tb.mustPost(t, g)
	tb.waitDrained(t, 10*time.Second)
	msgs := ntfy.Messages()
	if len(msgs) != 2 || !strings.Contains(msgs[1].Message, "(reminder)") {
		t.Fatalf("want the page and a reminder: %v", titles(msgs))
	}
	var ack string
	for _, act := range msgs[1].Actions {
		if act.Label == "Ack" {
			ack = act.URL
		}
	}
	if ack == "" || len(msgs[1].Actions) != 3 {
		t.Fatalf("actions %+v", msgs[1].Actions)
	}
	call := func(u string) int {
		pu, _ := url.Parse(u)
		resp, err := http.Post(actions.URL+pu.RequestURI(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := call(ack); c != 200 {
		t.Fatalf("ack: %d", c)
	}
	if c := call(ack); c != 409 {
		t.Errorf("replayed ack: %d, want 409", c)
	}
	tb.mustPost(t, g) // unchanged again: held
	tb.waitDrained(t, 10*time.Second)
	msgs = ntfy.Messages()
	if len(msgs) != 3 || msgs[2].Title != "[ACK] PopDown fra1" {
		t.Fatalf("after ack: %v", titles(msgs))
	}
	b := mkAlert("PopDown", "fra1", "critical", "firing", t0)
	b.Labels["instance"], b.Fingerprint = "x", "fp-b"
	tb.mustPost(t, mkPayload(a, b)) // the group changed: paged, ack ends
	tb.mustPost(t, mkPayload(a, b)) // and reminders are due again
	tb.waitDrained(t, 10*time.Second)
	msgs = ntfy.Messages()
	if len(msgs) != 5 || !strings.HasPrefix(msgs[3].Title, "[FIRING:2]") || !strings.Contains(msgs[4].Message, "(reminder)") {
		t.Errorf("after the change: %v", titles(msgs))
	}
	if tb.counter("clavis_alertbridge_actions_total", "action", "ack", "result", "ok") != 1 ||
		tb.counter("clavis_alertbridge_actions_total", "action", "ack", "result", "replayed") != 1 {
		t.Errorf("action metrics")
	}
}

// TestSilenceActionUsesAlertmanagerURLCredentials: an Alertmanager behind
// basic auth is named with the credentials in --alertmanager.url; the
// silence is posted with them as the Authorization header, and they reach
// no log line.
func TestSilenceActionUsesAlertmanagerURLCredentials(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var auths []string
	am := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/am/api/v2/silences" {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		auths = append(auths, r.Header.Get("Authorization"))
		mu.Unlock()
		if u, p, ok := r.BasicAuth(); !ok || u != "bridge" || p != "S3cretPW" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"silenceID":"5f0c1e9a"}`)
	}))
	defer am.Close()
	amURL, _ := url.Parse(am.URL + "/am")
	amURL.User = url.UserPassword("bridge", "S3cretPW")

	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
		c.Actions = &ActionsConfig{ExternalURL: "http://ab.example", Secret: []byte("0123456789abcdef"), AlertmanagerURL: amURL.String()}
	})
	actions := httptest.NewServer(tb.ActionHandler())
	defer actions.Close()
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	tb.waitDrained(t, 10*time.Second)
	msgs := ntfy.Messages()
	if len(msgs) != 1 {
		t.Fatalf("pages %v", titles(msgs))
	}
	var silence string
	for _, act := range msgs[0].Actions {
		if strings.HasPrefix(act.Label, "Silence") {
			silence = act.URL
		}
	}
	if silence == "" {
		t.Fatalf("no Silence action in %+v", msgs[0].Actions)
	}
	pu, _ := url.Parse(silence)
	resp, err := http.Post(actions.URL+pu.RequestURI(), "", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("silence: %d %s", resp.StatusCode, body)
	}
	mu.Lock()
	got := slices.Clone(auths)
	mu.Unlock()
	want := "Basic " + base64.StdEncoding.EncodeToString([]byte("bridge:S3cretPW"))
	if len(got) != 1 || got[0] != want {
		t.Errorf("Authorization headers at Alertmanager %q, want one %q", got, want)
	}
	if logs := tb.log.String(); strings.Contains(logs, "S3cretPW") {
		t.Errorf("the Alertmanager password reached the log:\n%s", logs)
	}
}
