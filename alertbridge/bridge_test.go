package alertbridge

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

func TestWebhookRejectsBadInput(t *testing.T) {
	t.Parallel()
	tb := startBridge(t, "", func(c *Config) { c.WebhookToken = "s3cret" })
	auth := []string{"Authorization", "Bearer s3cret"}
	good := mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0))

	// 405 with Allow for other methods.
	req, _ := http.NewRequest(http.MethodGet, tb.srv.URL, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "POST" {
		t.Errorf("GET: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
	// 401 without or with a wrong token.
	if code, _ := tb.post(t, good); code != 401 {
		t.Errorf("no token: %d", code)
	}
	if code, _ := tb.post(t, good, "Authorization", "Bearer s3cre"); code != 401 {
		t.Errorf("wrong token: %d", code)
	}
	if code, _ := tb.post(t, good, "Authorization", "Basic czNjcmV0Og=="); code != 401 {
		t.Errorf("basic instead of bearer: %d", code)
	}
	// 413 over 1 MiB, with and without Content-Length.
	big := append([]byte(`{"version":"4","alerts":[],"pad":"`), make([]byte, MaxBodyBytes)...)
	if code, _ := tb.post(t, big, auth...); code != 413 {
		t.Errorf("1 MiB body: %d", code)
	}
	req, _ = http.NewRequest(http.MethodPost, tb.srv.URL, struct{ *strings.Reader }{strings.NewReader(string(big))})
	req.Header.Set("Authorization", "Bearer s3cret")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 413 {
		t.Errorf("chunked 1 MiB body: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	// 400 with a clear message.
	for body, want := range map[string]string{
		`{"version":"4","alerts":[`:   "invalid JSON",
		`{"version":"3","alerts":[]}`: `version "3"`,
		`{"alerts":[]}`:               `version ""`,
		`{"version":"4","alerts":[{"status":"firing","labels":{},"startsAt":"2026-01-01T00:00:00Z"}]}`:         "no labels",
		`{"version":"4","alerts":[{"status":"burning","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z"}]}`: `invalid status "burning"`,
		`{"version":"4","alerts":[]} {}`: "after the payload",
	} {
		code, msg := tb.post(t, []byte(body), auth...)
		if code != 400 || !strings.Contains(msg, want) {
			t.Errorf("%s: %d %q, want 400 containing %q", body, code, msg, want)
		}
	}
	if code, _ := tb.post(t, good, auth...); code != 200 {
		t.Errorf("good payload: %d", code)
	}
	for reason, want := range map[string]float64{"method": 1, "unauthorized": 3, "too_large": 2, "bad_json": 2, "bad_version": 2, "invalid": 2} {
		if got := tb.counter("clavis_alertbridge_webhooks_rejected_total", "reason", reason); got != want {
			t.Errorf("rejected{reason=%s} = %v, want %v", reason, got, want)
		}
	}
	if got := tb.counter("clavis_alertbridge_alerts_accepted_total"); got != 1 {
		t.Errorf("accepted = %v", got)
	}
}

// keysOf returns "title" per message, the fake's view of what was paged.
func titles(msgs []fakenotify.Message) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Title
	}
	return out
}

func TestDuplicatesNotifyOnce(t *testing.T) {
	t.Parallel()
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = &NtfyConfig{URL: ns.URL() + "/alerts"} })

	a := mkAlert("PopDown", "fra1", "critical", "firing", t0)
	b := mkAlert("DiskFull", "ams1", "warning", "firing", t0)
	p := mkPayload(a, b)
	tb.mustPost(t, p)
	tb.mustPost(t, p) // Alertmanager retry
	// Two Alertmanagers of an HA pair send the same alerts concurrently,
	// in other groupings and with other external URLs.
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Go(func() {
			var pl Payload
			json.Unmarshal(mkPayload(b, a), &pl)
			pl.ExternalURL = fmt.Sprintf("http://am%d:9093", i)
			body, _ := json.Marshal(pl)
			tb.mustPost(t, body)
		})
	}
	wg.Wait()
	ra, rb := a, b
	ra.Status, rb.Status = "resolved", "resolved"
	tb.mustPost(t, mkPayload(ra))
	tb.mustPost(t, mkPayload(ra, rb))
	tb.mustPost(t, mkPayload(rb))

	waitFor(t, 10*time.Second, "4 notifications", func() bool { return len(ntfy.Messages()) >= 4 })
	time.Sleep(200 * time.Millisecond) // would a fifth arrive?
	got := titles(ntfy.Messages())
	want := map[string]int{"[FIRING] PopDown fra1": 1, "[FIRING] DiskFull ams1": 1, "[RESOLVED] PopDown fra1": 1, "[RESOLVED] DiskFull ams1": 1}
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("notifications %v, want one each of %v", got, want)
	}
	// 2 (retry) + 4 (HA pair) + 1 (ra again) + 1 (rb again)
	if d := tb.counter("clavis_alertbridge_alerts_duplicate_total"); d != 8 {
		t.Errorf("duplicates = %v, want 8", d)
	}
	if s := tb.counter("clavis_alertbridge_notifications_sent_total", "target", "ntfy"); s != 4 {
		t.Errorf("sent = %v", s)
	}
}

// newServer serves h on a loopback listener that tests can take down.
func newServer(t *testing.T, h http.Handler) *fakenotify.Server {
	t.Helper()
	var mux http.Handler = h
	if n, ok := h.(*fakenotify.Ntfy); ok {
		mux = fakenotify.Mux(n, nil)
	} else if k, ok := h.(*fakenotify.Kuma); ok {
		mux = fakenotify.Mux(nil, k)
	}
	s, err := fakenotify.StartServer(mux, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// checkExactlyOnceInOrder asserts every expected (alert, status) arrived
// exactly once and, per alert, firing before resolved.
func checkExactlyOnceInOrder(t *testing.T, msgs []fakenotify.Message, want []string) {
	t.Helper()
	count := map[string]int{}
	pos := map[string]int{}
	for i, m := range msgs {
		count[m.Title]++
		pos[m.Title] = i
	}
	for _, w := range want {
		if count[w] != 1 {
			t.Errorf("%q delivered %d times, want exactly once", w, count[w])
		}
		if strings.HasPrefix(w, "[RESOLVED] ") {
			f := "[FIRING] " + strings.TrimPrefix(w, "[RESOLVED] ")
			if fp, ok := pos[f]; ok && fp > pos[w] {
				t.Errorf("%q delivered before %q", w, f)
			}
		}
	}
	if len(msgs) != len(want) {
		t.Errorf("%d messages delivered, want %d", len(msgs), len(want))
	}
}

func TestNtfyDownThenBack(t *testing.T) {
	t.Parallel()
	outage := 30 * time.Second
	if testing.Short() {
		outage = 3 * time.Second
	}
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{Tokens: map[string]bool{"tk_write": true}})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: ns.URL() + "/alerts", Token: "tk_write"}
		c.Backoff = Backoff{Min: 50 * time.Millisecond, Max: time.Second, MaxRetryAfter: time.Second}
	})
	ns.Down() // connection refused
	start := time.Now()
	var want []string
	// 200 alerts arrive during the outage, spread over it; the first 50
	// also resolve, so order per alert matters.
	const n = 200
	for i := 0; i < n; i++ {
		a := mkAlert("PopDown", fmt.Sprintf("pop%03d", i), "critical", "firing", t0)
		tb.mustPost(t, mkPayload(a))
		want = append(want, "[FIRING] PopDown "+a.Labels["pop"])
		if i < 50 {
			a.Status = "resolved"
			tb.mustPost(t, mkPayload(a))
			want = append(want, "[RESOLVED] PopDown "+a.Labels["pop"])
		}
		time.Sleep(outage / 2 / n)
	}
	if got := tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy"); got != float64(len(want)) {
		t.Errorf("spool depth during outage = %v, want %d", got, len(want))
	}
	time.Sleep(time.Until(start.Add(outage)))
	if len(ntfy.Messages()) != 0 {
		t.Fatal("messages arrived while ntfy was down")
	}
	if err := ns.Up(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "all notifications after the outage", func() bool { return len(ntfy.Messages()) >= len(want) })
	time.Sleep(100 * time.Millisecond)
	checkExactlyOnceInOrder(t, ntfy.Messages(), want)
	if r := tb.counter("clavis_alertbridge_notifications_retried_total", "target", "ntfy"); r < 1 {
		t.Errorf("retried = %v, want > 0", r)
	}
	if d := tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy"); d != 0 {
		t.Errorf("spool depth after drain = %v", d)
	}
	for _, m := range ntfy.Messages() {
		if m.Token != "tk_write" {
			t.Fatalf("message without the bearer token: %+v", m.Header)
		}
	}
}

func Test429StormLosesNothing(t *testing.T) {
	t.Parallel()
	// ntfy's own limiter (small burst, fast replenish) plus a forced storm.
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{RateBurst: 5, RateReplenish: 30 * time.Millisecond})
	ntfy.Force429(40)
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: ns.URL() + "/alerts"}
		c.Backoff = Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond, MaxRetryAfter: time.Second}
	})
	var want []string
	var alerts []Alert
	for i := 0; i < 100; i++ {
		a := mkAlert("HighLatency", fmt.Sprintf("pop%03d", i), "warning", "firing", t0)
		alerts = append(alerts, a)
		want = append(want, "[FIRING] HighLatency "+a.Labels["pop"])
	}
	for i := 0; i < len(alerts); i += 10 {
		tb.mustPost(t, mkPayload(alerts[i:i+10]...))
	}
	waitFor(t, 60*time.Second, "all notifications through the 429 storm", func() bool { return len(ntfy.Messages()) >= len(want) })
	time.Sleep(100 * time.Millisecond)
	checkExactlyOnceInOrder(t, ntfy.Messages(), want)
	if c := ntfy.StatusCounts()[429]; c < 40 {
		t.Errorf("fake answered 429 only %d times", c)
	}
	if r := tb.counter("clavis_alertbridge_notifications_retried_total", "target", "ntfy"); r < 40 {
		t.Errorf("retried = %v, want >= 40", r)
	}
	if f := tb.counter("clavis_alertbridge_notifications_failed_total", "target", "ntfy"); f != 0 {
		t.Errorf("failed = %v", f)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{RetryAfter: time.Second})
	ntfy.Force429(1)
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = &NtfyConfig{URL: ns.URL() + "/alerts"} })
	start := time.Now()
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 10*time.Second, "delivery after Retry-After", func() bool { return len(ntfy.Messages()) == 1 })
	// Backoff alone would retry after <= 20 ms; Retry-After: 1 says wait 1 s.
	if d := ntfy.Messages()[0].Time.Sub(start); d < 900*time.Millisecond {
		t.Fatalf("retried after %s, before the 1 s Retry-After", d)
	}
}

func TestPermanentFailureAndMaxAge(t *testing.T) {
	t.Parallel()
	// 403: the token has no write access. Permanent: counted, not retried.
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{Tokens: map[string]bool{"tk_ro": false}})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = &NtfyConfig{URL: ns.URL() + "/alerts", Token: "tk_ro"} })
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 5*time.Second, "permanent failure", func() bool {
		return tb.counter("clavis_alertbridge_notifications_failed_total", "target", "ntfy") == 1
	})
	if c := ntfy.StatusCounts()[403]; c != 1 {
		t.Errorf("403 answered %d times, want exactly 1 (no retry)", c)
	}
	if !strings.Contains(tb.log.String(), "forbidden") {
		t.Errorf("response body not logged:\n%s", tb.log.String())
	}

	// Max age: ntfy answers 503 until the records are too old.
	ntfy2 := fakenotify.NewNtfy(fakenotify.NtfyOptions{})
	ntfy2.SetMode(fakenotify.Unavailable)
	ns2 := newServer(t, ntfy2)
	tb2 := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: ns2.URL() + "/alerts"}
		c.MaxAge = 300 * time.Millisecond
	})
	tb2.mustPost(t, mkPayload(mkAlert("A", "fra1", "critical", "firing", t0), mkAlert("B", "fra1", "critical", "firing", t0)))
	waitFor(t, 10*time.Second, "max-age drops", func() bool {
		return tb2.counter("clavis_alertbridge_notifications_dropped_total", "target", "ntfy") == 2
	})
	if d := tb2.counter("clavis_alertbridge_spool_depth", "target", "ntfy"); d != 0 {
		t.Errorf("spool depth = %v after drops", d)
	}
	if len(ntfy2.Messages()) != 0 {
		t.Errorf("dropped records were sent")
	}
}

func TestNtfyMessageFields(t *testing.T) {
	t.Parallel()
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: ns.URL() + "/alerts", DashboardURL: "https://grafana.example/d/clavis"}
	})
	a := mkAlert("PopDown", "fra1", "critical", "firing", t0)
	a.Annotations["description"] = strings.Repeat("ä", 3000) // 6000 bytes: must be cut
	w := mkAlert("CertExpiry", "zürich", "warning", "firing", t0)
	i := mkAlert("Info", "ams1", "info", "firing", t0)
	r := a
	r.Status = "resolved"
	wd := mkAlert("Watchdog", "", "none", "firing", t0)
	tb.mustPost(t, mkPayload(a, w, i, wd))
	tb.mustPost(t, mkPayload(r, wd))
	waitFor(t, 10*time.Second, "4 messages", func() bool { return len(ntfy.Messages()) >= 4 })
	time.Sleep(100 * time.Millisecond)
	msgs := ntfy.Messages()
	if len(msgs) != 4 {
		t.Fatalf("got %v; the Watchdog must not reach ntfy", titles(msgs))
	}
	byTitle := map[string]fakenotify.Message{}
	for _, m := range msgs {
		byTitle[m.Title] = m
	}
	f := byTitle["[FIRING] PopDown fra1"]
	if f.Priority != 5 || strings.Join(f.Tags, ",") != "rotating_light,critical" || f.Click != "https://grafana.example/d/clavis" {
		t.Errorf("firing critical: %+v", f)
	}
	if f.Attachment != nil || len(f.Message) > 4096 || !strings.HasSuffix(f.Message, "…") {
		t.Errorf("body not truncated to 4096 bytes: %d bytes, attachment %v", len(f.Message), f.Attachment)
	}
	if len(f.Actions) != 3 || f.Actions[0].Label != "Runbook" || f.Actions[0].URL != "https://runbooks.example/PopDown" ||
		f.Actions[1].Label != "Dashboard" || f.Actions[2].Label != "Silence" ||
		!strings.HasPrefix(f.Actions[2].URL, "http://alertmanager.example:9093/#/silences/new?filter=") ||
		!strings.Contains(f.Actions[2].URL, "alertname%3D%22PopDown%22") {
		t.Errorf("actions: %+v", f.Actions)
	}
	if m := byTitle["[FIRING] CertExpiry zürich"]; m.Priority != 4 || !strings.Contains(strings.Join(m.Tags, ","), "warning") {
		t.Errorf("warning (non-ASCII pop): %+v (titles %v)", m, titles(msgs))
	}
	if m := byTitle["[FIRING] Info ams1"]; m.Priority != 3 {
		t.Errorf("info: %+v", m)
	}
	res := byTitle["[RESOLVED] PopDown fra1"]
	if res.Priority != 3 || res.Tags[0] != "white_check_mark" || len(res.Actions) != 2 {
		t.Errorf("resolved: %+v", res)
	}
}

func TestTruncateUTF8(t *testing.T) {
	t.Parallel()
	for _, s := range []string{strings.Repeat("a", 5000), strings.Repeat("€", 2000), strings.Repeat("a€😀", 600), "short"} {
		got := TruncateUTF8(s, 4096)
		if len(got) > 4096 || !strings.HasPrefix(s, strings.TrimSuffix(got, "…")) {
			t.Errorf("TruncateUTF8: %d bytes, prefix ok=%v", len(got), strings.HasPrefix(s, strings.TrimSuffix(got, "…")))
		}
		if !utf8Valid(got) {
			t.Errorf("invalid UTF-8 after truncation")
		}
		if len(s) <= 4096 && got != s {
			t.Errorf("short string changed")
		}
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "") == s }

func TestKumaState(t *testing.T) {
	t.Parallel()
	kuma := fakenotify.NewKuma("tok")
	ks := newServer(t, kuma)
	tb := startBridge(t, "", func(c *Config) { c.Kuma = &KumaConfig{PushURL: ks.URL() + "/api/push/tok?status=up&msg=OK&ping="} })
	last := func() fakenotify.Push { p, _ := kuma.Last(); return p }
	n := func() int { return len(kuma.Pushes()) }

	wd := mkAlert("Watchdog", "", "none", "firing", t0)
	tb.mustPost(t, mkPayload(wd))
	waitFor(t, 5*time.Second, "first heartbeat", func() bool { return n() == 1 })
	if p := last(); p.Status != "up" || p.Msg != "OK" {
		t.Fatalf("heartbeat push %+v", p)
	}
	tb.mustPost(t, mkPayload(wd)) // Alertmanager repeats the Watchdog: every copy pushes
	waitFor(t, 5*time.Second, "second heartbeat", func() bool { return n() == 2 })
	if tb.counter("clavis_alertbridge_watchdog_last_seen_timestamp_seconds") < float64(t0.Unix()) {
		t.Error("watchdog timestamp not set")
	}

	a := mkAlert("PopDown", "fra1", "critical", "firing", t0)
	b := mkAlert("PopDown", "ams1", "critical", "firing", t0)
	w := mkAlert("DiskFull", "fra1", "warning", "firing", t0)
	tb.mustPost(t, mkPayload(w)) // not an outage: no state change, no push
	tb.mustPost(t, mkPayload(a, b))
	waitFor(t, 5*time.Second, "down push", func() bool { return last().Status == "down" })
	if p := last(); p.Msg != "PopDown ams1, PopDown fra1" {
		t.Errorf("down msg %q", p.Msg)
	}
	ra := a
	ra.Status = "resolved"
	tb.mustPost(t, mkPayload(ra))
	waitFor(t, 5*time.Second, "one outage left", func() bool { return last().Msg == "PopDown ams1" })
	tb.mustPost(t, mkPayload(a)) // late duplicate of the resolved episode: ignored
	rb := b
	rb.Status = "resolved"
	tb.mustPost(t, mkPayload(rb))
	waitFor(t, 5*time.Second, "up push", func() bool { return last().Status == "up" })
	time.Sleep(100 * time.Millisecond)
	for _, p := range kuma.Pushes() {
		if p.Msg == "PopDown fra1" {
			t.Errorf("late firing copy re-opened the outage: %+v", kuma.Pushes())
		}
	}
	if got := n(); got != 5 {
		t.Errorf("%d pushes, want 5 (2 heartbeats, down, down with one, up): %+v", got, kuma.Pushes())
	}
}

func TestKumaUnknownTokenIsConfigError(t *testing.T) {
	t.Parallel()
	kuma := fakenotify.NewKuma()
	ks := newServer(t, kuma)
	tb := startBridge(t, "", func(c *Config) {
		c.Kuma = &KumaConfig{PushURL: ks.URL() + "/api/push/typo", ConfigErrorBackoff: 200 * time.Millisecond}
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 5*time.Second, "config errors", func() bool {
		return tb.counter("clavis_alertbridge_kuma_config_errors_total") >= 2
	})
	if !strings.Contains(tb.log.String(), "KUMA CONFIGURATION ERROR") {
		t.Error("404 not logged loudly")
	}
	kuma.AddToken("typo") // the operator creates the monitor
	waitFor(t, 5*time.Second, "push after the fix", func() bool { _, ok := kuma.Last(); return ok })
	if p, _ := kuma.Last(); p.Status != "down" || p.Msg != "PopDown fra1" {
		t.Errorf("push %+v", p)
	}
}

func TestOutageLogWithoutTargets(t *testing.T) {
	t.Parallel()
	tb := startBridge(t, "", nil)
	if len(tb.Targets()) != 0 {
		t.Fatalf("targets %v", tb.Targets())
	}
	a := mkAlert("PopDown", "fra1", "critical", "firing", t0)
	tb.mustPost(t, mkPayload(a))
	tb.mustPost(t, mkPayload(a))
	a.Status, a.EndsAt = "resolved", t0.Add(time.Minute)
	tb.mustPost(t, mkPayload(a))
	var lines []map[string]any
	for _, l := range strings.Split(tb.log.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["msg"] == "alert" {
			lines = append(lines, m)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d outage lines, want 2 (duplicate not logged):\n%s", len(lines), tb.log.String())
	}
	l := lines[1]
	for k, v := range map[string]string{"alertname": "PopDown", "status": "resolved", "severity": "critical", "pop": "fra1",
		"summary": "PopDown on fra1", "startsAt": "2026-11-29T01:00:00Z", "endsAt": "2026-11-29T01:01:00Z"} {
		if l[k] != v {
			t.Errorf("outage line %s = %v, want %q", k, l[k], v)
		}
	}
}

func TestSpoolSurvivesRestart(t *testing.T) {
	t.Parallel()
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	ns.Down()
	spool := t.TempDir() + "/new/dir/spool.db"
	cfg := func(c *Config) { c.Ntfy = &NtfyConfig{URL: ns.URL() + "/alerts"} }
	tb := startBridge(t, spool, cfg)
	var want []string
	for i := 0; i < 20; i++ {
		a := mkAlert("PopDown", fmt.Sprintf("p%02d", i), "critical", "firing", t0)
		tb.mustPost(t, mkPayload(a))
		want = append(want, "[FIRING] PopDown "+a.Labels["pop"])
	}
	tb.stop()
	ns.Up()
	tb2 := startBridge(t, spool, cfg)
	waitFor(t, 10*time.Second, "drain after restart", func() bool { return len(ntfy.Messages()) >= 20 })
	// The keys survived too: a retry after the restart is a duplicate.
	tb2.mustPost(t, mkPayload(mkAlert("PopDown", "p00", "critical", "firing", t0)))
	time.Sleep(100 * time.Millisecond)
	checkExactlyOnceInOrder(t, ntfy.Messages(), want)
}

func TestKumaSummary(t *testing.T) {
	t.Parallel()
	st := newKumaState()
	if s, m := st.summary(); s != "up" || m != "OK" {
		t.Fatalf("empty: %s %s", s, m)
	}
	for i := 0; i < 500; i++ {
		st.setFiring(fmt.Sprintf("fp%d", i), kumaAlert{Name: fmt.Sprintf("PopDown pop%03d", i%250)})
	}
	s, m := st.summary()
	if s != "down" || !strings.HasPrefix(m, "PopDown pop000, PopDown pop001, ") || !strings.Contains(m, " more)") || len(m) > kumaMsgMax {
		t.Fatalf("summary %s %q (%d bytes)", s, m, len(m))
	}
	n := strings.Count(m, ", ") + 1
	if !strings.HasSuffix(m, fmt.Sprintf("(+%d more)", 250-n)) {
		t.Errorf("count of the rest wrong: %q (%d listed)", m, n)
	}
	for i := 0; i < 500; i++ {
		st.delFiring(fmt.Sprintf("fp%d", i))
	}
	if s, _ := st.summary(); s != "up" || len(st.names) != 0 {
		t.Errorf("after clearing: %s, names %v", s, st.names)
	}
}

func TestTimeoutsAreRetried(t *testing.T) {
	t.Parallel()
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{})
	ntfy.SetMode(fakenotify.Hang)
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: ns.URL() + "/alerts"}
		c.Timeout = 100 * time.Millisecond
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 10*time.Second, "timed-out attempts", func() bool {
		return tb.counter("clavis_alertbridge_notifications_retried_total", "target", "ntfy") >= 2
	})
	ntfy.SetMode(fakenotify.Up)
	waitFor(t, 10*time.Second, "delivery after the black hole", func() bool { return len(ntfy.Messages()) == 1 })
	time.Sleep(100 * time.Millisecond)
	checkExactlyOnceInOrder(t, ntfy.Messages(), []string{"[FIRING] PopDown fra1"})
}
