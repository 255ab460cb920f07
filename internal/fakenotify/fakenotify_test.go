package fakenotify

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func post(t *testing.T, url, token, body string, hdr map[string]string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestNtfyPublishHeaders(t *testing.T) {
	t.Parallel()
	n := NewNtfy(NtfyOptions{})
	srv := httptest.NewServer(n)
	defer srv.Close()
	code, body := post(t, srv.URL+"/alerts", "", "disk full", map[string]string{
		"X-Title": "=?UTF-8?B?w6TDtsO8?=", "X-Priority": "urgent", "X-Tags": "rotating_light, critical",
		"X-Click": "https://grafana/", "X-Actions": `view, "Runbook, v2", https://r/1; view, Silence, https://am/#/silences/new, clear=true`,
	})
	if code != 200 || !strings.Contains(body, `"event":"message"`) {
		t.Fatalf("publish: %d %s", code, body)
	}
	m := n.Messages()
	if len(m) != 1 {
		t.Fatalf("messages = %d", len(m))
	}
	got := m[0]
	if got.Title != "äöü" || got.Priority != 5 || len(got.Tags) != 2 || got.Tags[1] != "critical" || got.Click != "https://grafana/" || got.Message != "disk full" {
		t.Fatalf("parsed %+v", got)
	}
	if len(got.Actions) != 2 || got.Actions[0].Label != "Runbook, v2" || got.Actions[0].URL != "https://r/1" || !got.Actions[1].Clear {
		t.Fatalf("actions %+v", got.Actions)
	}
	// Invalid input is rejected as ntfy rejects it.
	if code, _ := post(t, srv.URL+"/alerts", "", "x", map[string]string{"X-Priority": "7"}); code != 400 {
		t.Errorf("priority 7: %d", code)
	}
	four := "view, a, https://a; view, b, https://b; view, c, https://c; view, d, https://d"
	if code, body := post(t, srv.URL+"/alerts", "", "x", map[string]string{"X-Actions": four}); code != 400 || !strings.Contains(body, "40018") {
		t.Errorf("4 actions: %d %s", code, body)
	}
	if code, _ := post(t, srv.URL+"/bad topic!", "", "x", nil); code != 404 {
		t.Errorf("bad topic: %d", code)
	}
}

func TestNtfyMessageSizeLimit(t *testing.T) {
	t.Parallel()
	big := strings.Repeat("x", 4097)
	n := NewNtfy(NtfyOptions{})
	srv := httptest.NewServer(n)
	defer srv.Close()
	if code, body := post(t, srv.URL+"/a", "", big, nil); code != 400 || !strings.Contains(body, "40014") {
		t.Fatalf("oversized without attachments: %d %s", code, body)
	}
	if code, _ := post(t, srv.URL+"/a", "", big[:4096], nil); code != 200 {
		t.Fatalf("exactly 4096: %d", code)
	}
	n2 := NewNtfy(NtfyOptions{AttachmentsEnabled: true})
	srv2 := httptest.NewServer(n2)
	defer srv2.Close()
	if code, _ := post(t, srv2.URL+"/a", "", big, nil); code != 200 {
		t.Fatalf("oversized with attachments: %d", code)
	}
	if m := n2.Messages(); len(m) != 1 || m[0].Attachment == nil || m[0].Attachment.Size != 4097 {
		t.Fatalf("attachment: %+v", m)
	}
}

func TestNtfyAuth(t *testing.T) {
	t.Parallel()
	n := NewNtfy(NtfyOptions{Tokens: map[string]bool{"tk_rw": true, "tk_ro": false}})
	srv := httptest.NewServer(n)
	defer srv.Close()
	for _, c := range []struct {
		token string
		want  int
	}{{"", 403}, {"tk_bad", 401}, {"tk_ro", 403}, {"tk_rw", 200}} {
		if code, _ := post(t, srv.URL+"/a", c.token, "x", nil); code != c.want {
			t.Errorf("token %q: %d, want %d", c.token, code, c.want)
		}
	}
	if len(n.Messages()) != 1 || n.Messages()[0].Token != "tk_rw" {
		t.Fatalf("messages %+v", n.Messages())
	}
}

func TestNtfyRateLimitAndModes(t *testing.T) {
	t.Parallel()
	n := NewNtfy(NtfyOptions{RateBurst: 3, RateReplenish: time.Hour, RetryAfter: 2 * time.Second})
	srv := httptest.NewServer(n)
	defer srv.Close()
	codes := []int{}
	for i := 0; i < 5; i++ {
		c, _ := post(t, srv.URL+"/a", "", "x", nil)
		codes = append(codes, c)
	}
	if codes[2] != 200 || codes[3] != 429 || codes[4] != 429 {
		t.Fatalf("codes %v", codes)
	}
	n.SetMode(Unavailable)
	if c, _ := post(t, srv.URL+"/a", "", "x", nil); c != 503 {
		t.Fatalf("unavailable: %d", c)
	}
	if got := n.StatusCounts(); got[200] != 3 || got[429] != 2 || got[503] != 1 {
		t.Fatalf("status counts %v", got)
	}
}

func TestServerDownRefusesConnections(t *testing.T) {
	t.Parallel()
	n := NewNtfy(NtfyOptions{})
	s, err := StartServer(Mux(n, nil), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if c, _ := post(t, s.URL()+"/a", "", "x", nil); c != 200 {
		t.Fatalf("up: %d", c)
	}
	s.Down()
	if _, err := http.Post(s.URL()+"/a", "text/plain", strings.NewReader("x")); err == nil {
		t.Fatal("down server accepted a connection")
	}
	if err := s.Up(); err != nil {
		t.Fatal(err)
	}
	if c, _ := post(t, s.URL()+"/a", "", "x", nil); c != 200 {
		t.Fatalf("up again: %d", c)
	}
}

func TestKuma(t *testing.T) {
	t.Parallel()
	k := NewKuma("good")
	srv := httptest.NewServer(Mux(nil, k))
	defer srv.Close()
	get := func(path string) int {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := get("/api/push/good?status=down&msg=PopDown%20fra1&ping="); c != 200 {
		t.Fatalf("push: %d", c)
	}
	if c := get("/api/push/unknown?status=up"); c != 404 {
		t.Fatalf("unknown token: %d", c)
	}
	p, ok := k.Last()
	if !ok || p.Status != "down" || p.Msg != "PopDown fra1" || len(k.Pushes()) != 1 {
		t.Fatalf("pushes %+v", k.Pushes())
	}
}

func TestParseActionsErrors(t *testing.T) {
	t.Parallel()
	for _, s := range []string{`view, "unterminated`, `fly, x, https://x`, `view, , https://x`, `view, x`, `view, x, https://x, foo=bar`} {
		if _, err := ParseActions(s); err == nil {
			t.Errorf("ParseActions(%q) accepted", s)
		}
	}
	acts, err := ParseActions(`[{"action":"view","label":"L","url":"https://u"}]`)
	if err != nil || len(acts) != 1 || acts[0].URL != "https://u" {
		t.Fatalf("json actions: %v %+v", err, acts)
	}
}

func TestMuxControlEndpoints(t *testing.T) {
	t.Parallel()
	n := NewNtfy(NtfyOptions{})
	k := NewKuma("tok")
	srv := httptest.NewServer(Mux(n, k))
	defer srv.Close()
	ctl := func(path string) int {
		resp, err := http.Post(srv.URL+path, "text/plain", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := ctl("/-/fake/ntfy/mode?mode=unavailable"); c != 200 {
		t.Fatalf("mode: %d", c)
	}
	if c, _ := post(t, srv.URL+"/a", "", "x", nil); c != 503 {
		t.Errorf("unavailable ntfy answered %d", c)
	}
	ctl("/-/fake/ntfy/mode?mode=up")
	ctl("/-/fake/ntfy/force429?n=1")
	if c, _ := post(t, srv.URL+"/a", "", "x", nil); c != 429 {
		t.Errorf("forced 429: %d", c)
	}
	if c, _ := post(t, srv.URL+"/a", "", "hello", nil); c != 200 {
		t.Errorf("after storm: %d", c)
	}
	if c := ctl("/-/fake/ntfy/mode?mode=sideways"); c != 400 {
		t.Errorf("bad mode: %d", c)
	}
	resp, err := http.Get(srv.URL + "/-/fake/ntfy/messages")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `"message":"hello"`) {
		t.Errorf("messages endpoint: %s", b)
	}
	ctl("/-/fake/kuma/mode?mode=unavailable")
	r2, _ := http.Get(srv.URL + "/api/push/tok?status=up")
	r2.Body.Close()
	if r2.StatusCode != 503 {
		t.Errorf("unavailable kuma: %d", r2.StatusCode)
	}
}
