package fakenotify

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
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
	// util.Peek sets LimitReached when it read the whole limit, and only
	// a body that did not reach it is a message: 4096 is an attachment.
	if code, body := post(t, srv.URL+"/a", "", big[:4096], nil); code != 400 || !strings.Contains(body, "40014") {
		t.Fatalf("exactly 4096 without attachments: %d %s", code, body)
	}
	if code, _ := post(t, srv.URL+"/a", "", big[:4095], nil); code != 200 {
		t.Fatalf("4095: %d", code)
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

// TestKuma checks the fake against Uptime Kuma's push route
// (server/routers/api-router.js, 1.23 to 2.x): every method, status "up"
// or down, msg defaulting to "OK", ping read as parseFloat reads it and
// validated (2.1+) before the token lookup, every error 404 with
// {"ok":false}, and the universal route's 200 index.html for any other GET.
func TestKuma(t *testing.T) {
	t.Parallel()
	k := NewKuma("good")
	srv := httptest.NewServer(k)
	defer srv.Close()
	do := func(method, path string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp.StatusCode, string(b)
	}
	for _, c := range []struct {
		method, query   string
		code            int
		status, msg     string
		ping            float64 // -1: none
		answerSubstring string
	}{
		{"GET", "?status=down&msg=PopDown%20fra1&ping=", 200, "down", "PopDown fra1", -1, `"ok":true`},
		{"GET", "", 200, "up", "OK", -1, `"ok":true`},
		{"POST", "?status=up&ping=12.5", 200, "up", "OK", 12.5, `"ok":true`},
		{"PUT", "?status=banana", 200, "down", "OK", -1, `"ok":true`},     // anything but "up" is down
		{"DELETE", "?status=UP&msg=", 200, "down", "OK", -1, `"ok":true`}, // case matters
		{"GET", "?status=up&ping=abc", 200, "up", "OK", -1, `"ok":true`},  // parseFloat: NaN, no ping
		{"GET", "?status=up&ping=0", 200, "up", "OK", -1, `"ok":true`},    // 0 || null
		{"GET", "?status=up&ping=%2012ms", 200, "up", "OK", 12, `"ok":true`},
		{"GET", "?status=up&ping=-1", 404, "", "", 0, `"ok":false,"msg":"Invalid ping value. Must be between 0 and 100000000000 ms."`},
		{"GET", "?status=up&ping=1e12", 404, "", "", 0, "Invalid ping value"},
	} {
		n := len(k.Pushes())
		code, body := do(c.method, "/api/push/good"+c.query)
		if code != c.code || !strings.Contains(body, c.answerSubstring) {
			t.Errorf("%s %s: %d %s, want %d with %q", c.method, c.query, code, body, c.code, c.answerSubstring)
			continue
		}
		if code != 200 {
			if len(k.Pushes()) != n {
				t.Errorf("%s %s: refused push was stored", c.method, c.query)
			}
			continue
		}
		p, _ := k.Last()
		if p.Status != c.status || p.Msg != c.msg || p.Method != c.method || (c.ping < 0) != (p.Ping == nil) || (p.Ping != nil && *p.Ping != c.ping) {
			t.Errorf("%s %s: stored %+v", c.method, c.query, p)
		}
	}
	if code, body := do("GET", "/api/push/good/?status=down&msg=x"); code != 200 || !strings.Contains(body, `"ok":true`) {
		t.Errorf("trailing slash (Express routes it): %d %s", code, body)
	}
	// Ping is validated before the token is looked up.
	if code, body := do("GET", "/api/push/unknown?ping=-5"); code != 404 || !strings.Contains(body, "Invalid ping value") {
		t.Errorf("bad ping, unknown token: %d %s", code, body)
	}
	if code, body := do("GET", "/api/push/unknown?status=up"); code != 404 || !strings.Contains(body, `{"ok":false,"msg":"Monitor not found or not active."}`) {
		t.Errorf("unknown token: %d %s", code, body)
	}
	// An error thrown after the lookup (a database error) is a 404 too.
	k.FailNext(1, "SQLITE_BUSY: database is locked")
	n := len(k.Pushes())
	if code, body := do("GET", "/api/push/good?status=up"); code != 404 || !strings.Contains(body, `"ok":false,"msg":"SQLITE_BUSY: database is locked"`) {
		t.Errorf("failing push: %d %s", code, body)
	}
	if code, _ := do("GET", "/api/push/good?status=up"); code != 200 || len(k.Pushes()) != n+1 {
		t.Errorf("push after the failure: %d, %d pushes", code, len(k.Pushes())-n)
	}
	// The universal route: any other GET is the web app, 200.
	for _, path := range []string{"/api/push/", "/api/push", "/push/good?status=down", "/api/push/good/extra"} {
		if code, body := do("GET", path); code != 200 || !strings.Contains(body, "<title>Uptime Kuma</title>") {
			t.Errorf("GET %s: %d %.60q, want the web app", path, code, body)
		}
	}
	if code, body := do("POST", "/push/good"); code != 404 || !strings.Contains(body, "Cannot POST /push/good") {
		t.Errorf("POST to an unrouted path: %d %.80q", code, body)
	}
}

// TestNtfyTopicGET: a GET of a topic URL is ntfy's web app (200), not a
// publish: what a publish turned into a GET by a redirect gets.
func TestNtfyTopicGET(t *testing.T) {
	t.Parallel()
	n := NewNtfy(NtfyOptions{})
	srv := httptest.NewServer(n)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/alerts")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(string(b), "ntfy web") {
		t.Errorf("GET /alerts: %d %s %.60q, want the web app", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	if len(n.Messages()) != 0 {
		t.Errorf("a GET published %d messages", len(n.Messages()))
	}
}

// TestNtfyTopicPermissions: permissions are per topic; a revoked token is
// known (403), an unknown one 401; anonymous access follows the default.
func TestNtfyTopicPermissions(t *testing.T) {
	t.Parallel()
	n := NewNtfy(NtfyOptions{TopicWrite: map[string][]string{"tk_a": {"alerts"}, "tk_p": {"pop-*"}}})
	srv := httptest.NewServer(n)
	defer srv.Close()
	for _, c := range []struct {
		topic, token string
		want         int
	}{
		{"alerts", "tk_a", 200}, {"other", "tk_a", 403}, {"pop-fra1", "tk_p", 200}, {"alerts", "tk_p", 403},
		{"alerts", "tk_x", 401}, {"alerts", "", 403},
	} {
		if code, _ := post(t, srv.URL+"/"+c.topic, c.token, "x", nil); code != c.want {
			t.Errorf("%s with %q: %d, want %d", c.topic, c.token, code, c.want)
		}
	}
	n.Revoke("tk_a")
	if code, _ := post(t, srv.URL+"/alerts", "tk_a", "x", nil); code != 403 {
		t.Errorf("revoked: %d", code)
	}
	n.Grant("tk_a", "alerts")
	if code, _ := post(t, srv.URL+"/alerts", "tk_a", "x", nil); code != 200 {
		t.Errorf("granted again: %d", code)
	}
	anon := NewNtfy(NtfyOptions{Tokens: map[string]bool{"tk": true}, AllowAnonymous: true})
	srv2 := httptest.NewServer(anon)
	defer srv2.Close()
	if code, _ := post(t, srv2.URL+"/alerts", "", "x", nil); code != 200 {
		t.Errorf("anonymous with anonymous access allowed: %d", code)
	}
	if code, _ := post(t, srv2.URL+"/alerts", "tk_bad", "x", nil); code != 401 {
		t.Errorf("bad token with anonymous access allowed: %d (ntfy still checks a credential that is sent)", code)
	}
	open := NewNtfy(NtfyOptions{})
	srv3 := httptest.NewServer(open)
	defer srv3.Close()
	if code, _ := post(t, srv3.URL+"/alerts", "", "x", nil); code != 200 {
		t.Errorf("open server: %d", code)
	}
}

// TestNtfyQueryAliases: every parameter can come as a query parameter
// under ntfy's aliases, and headers win over them.
func TestNtfyQueryAliases(t *testing.T) {
	t.Parallel()
	n := NewNtfy(NtfyOptions{})
	srv := httptest.NewServer(n)
	defer srv.Close()
	for _, q := range []string{"t=T&p=high&ta=a,b&md=1", "title=T&prio=4&tags=a,b&markdown=yes", "x-title=T&priority=4&tag=a,b&x-markdown=true"} {
		n.Reset()
		if code, body := post(t, srv.URL+"/alerts?"+q, "", "body", nil); code != 200 {
			t.Fatalf("%s: %d %s", q, code, body)
		}
		m := n.Messages()[0]
		if m.Title != "T" || m.Priority != 4 || strings.Join(m.Tags, ",") != "a,b" || m.ContentType != "text/markdown" {
			t.Errorf("%s: parsed %+v", q, m)
		}
	}
	n.Reset()
	post(t, srv.URL+"/alerts?title=query&message=from+query", "", "", map[string]string{"Title": "header"})
	if m := n.Messages()[0]; m.Title != "header" || m.Message != "from query" {
		t.Errorf("header over query, message from query: %+v", m)
	}
}

// TestNtfyBodies: non-UTF-8 bodies become attachments (or 400 without
// attachments); bodies over the attachment limit are 413.
func TestNtfyBodies(t *testing.T) {
	t.Parallel()
	n := NewNtfy(NtfyOptions{})
	srv := httptest.NewServer(n)
	defer srv.Close()
	if code, body := post(t, srv.URL+"/a", "", "\xff\xfe", nil); code != 400 || !strings.Contains(body, "40014") {
		t.Errorf("non-UTF-8 without attachments: %d %s", code, body)
	}
	a := NewNtfy(NtfyOptions{AttachmentsEnabled: true, AttachmentFileSizeLimit: 10000})
	srv2 := httptest.NewServer(a)
	defer srv2.Close()
	if code, _ := post(t, srv2.URL+"/a", "", "\xff\xfe", nil); code != 200 {
		t.Fatalf("non-UTF-8 with attachments: %d", code)
	}
	if m := a.Messages()[0]; m.Attachment == nil || m.Attachment.Size != 2 || !strings.HasPrefix(m.Message, "You received a file") {
		t.Errorf("attachment %+v", m)
	}
	if code, body := post(t, srv2.URL+"/a", "", strings.Repeat("x", 10001), nil); code != 413 || !strings.Contains(body, "41301") {
		t.Errorf("over the attachment limit: %d %s", code, body)
	}
}

// TestNtfyRateLimitRefill: the bucket refills one request per replenish
// interval, up to the burst, on the fake's clock.
func TestNtfyRateLimitRefill(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Unix(1e9, 0)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	n := NewNtfy(NtfyOptions{RateBurst: 2, RateReplenish: 5 * time.Second, RetryAfter: 5 * time.Second, Now: clock})
	srv := httptest.NewServer(n)
	defer srv.Close()
	codes := func(k int) []int {
		var out []int
		for i := 0; i < k; i++ {
			c, _ := post(t, srv.URL+"/a", "", "x", nil)
			out = append(out, c)
		}
		return out
	}
	if got := codes(3); fmt.Sprint(got) != "[200 200 429]" {
		t.Fatalf("burst: %v", got)
	}
	advance(4 * time.Second)
	if got := codes(1); fmt.Sprint(got) != "[429]" {
		t.Fatalf("after 4 s: %v", got)
	}
	advance(time.Second)
	if got := codes(2); fmt.Sprint(got) != "[200 429]" {
		t.Fatalf("after 5 s: %v, want one refilled", got)
	}
	advance(time.Hour)
	if got := codes(3); fmt.Sprint(got) != "[200 200 429]" {
		t.Fatalf("after an hour: %v, want the burst back and no more", got)
	}
	// Retry-After is sent on 429 when configured.
	req, _ := http.NewRequest(http.MethodPost, srv.URL+"/a", strings.NewReader("x"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 429 || resp.Header.Get("Retry-After") != "5" {
		t.Errorf("429 with Retry-After: %d %q", resp.StatusCode, resp.Header.Get("Retry-After"))
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

// TestNtfyRootPublish: ntfy takes only JSON messages at its root; a plain
// body posted there is answered 40017, like ntfy.
func TestNtfyRootPublish(t *testing.T) {
	t.Parallel()
	n := NewNtfy(NtfyOptions{})
	srv := httptest.NewServer(n)
	defer srv.Close()
	if code, body := post(t, srv.URL+"/", "", "PopDown fra1", nil); code != 400 || !strings.Contains(body, `"code":40017`) {
		t.Errorf("POST /: %d %s", code, body)
	}
	if code, body := post(t, srv.URL+"/v1/alerts", "", "x", nil); code != 404 || !strings.Contains(body, `"code":40401`) {
		t.Errorf("POST /v1/alerts: %d %s", code, body)
	}
	if len(n.Messages()) != 0 {
		t.Errorf("%d messages published", len(n.Messages()))
	}
}

// TestNtfyAuthFailureLimit: after AuthFailureBurst failed credentials,
// requests with credentials get 429 code 42909, a good token too, until
// the bucket refills; requests without credentials are not limited.
func TestNtfyAuthFailureLimit(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	n := NewNtfy(NtfyOptions{Tokens: map[string]bool{"good": true}, AllowAnonymous: true, AuthFailureBurst: 2,
		Now: func() time.Time { mu.Lock(); defer mu.Unlock(); return now }})
	srv := httptest.NewServer(n)
	defer srv.Close()
	for i, c := range []struct {
		token string
		code  int
		body  string
	}{{"bad", 401, "40101"}, {"bad", 401, "40101"}, {"bad", 429, "42909"}, {"good", 429, "42909"}, {"", 200, ""}} {
		if code, body := post(t, srv.URL+"/alerts", c.token, "x", nil); code != c.code || !strings.Contains(body, c.body) {
			t.Errorf("%d: %q: %d %s, want %d %s", i, c.token, code, body, c.code, c.body)
		}
	}
	mu.Lock()
	now = now.Add(time.Minute)
	mu.Unlock()
	if code, body := post(t, srv.URL+"/alerts", "good", "x", nil); code != 200 {
		t.Errorf("after a refill: %d %s", code, body)
	}
}
