package alertbridge

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

func TestWebhookRejectsBadInput(t *testing.T) {
	t.Parallel()
	tb := startBridge(t, "", func(c *Config) { c.WebhookToken = "s3cret"; c.MaxBodyBytes = 2 << 20 })
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
	// 415 for anything but JSON: a browser holding basic-auth credentials
	// posts these cross-origin without a CORS preflight, and a typeless
	// blob too. Nothing of such a post is taken.
	for _, ct := range []string{"", "text/plain", "text/plain; charset=UTF-8", "application/x-www-form-urlencoded",
		"multipart/form-data; boundary=x", "application/jsonx", "json", "application/json;;"} {
		req, _ := http.NewRequest(http.MethodPost, tb.srv.URL, strings.NewReader(string(good)))
		req.Header.Set("Authorization", "Bearer s3cret")
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 415 || !strings.Contains(string(msg), "application/json") {
			t.Errorf("Content-Type %q: %d %q, want 415 naming application/json", ct, resp.StatusCode, msg)
		}
	}
	// 413 over the limit (2 MiB here), with and without Content-Length.
	big := append([]byte(`{"version":"4","alerts":[],"pad":"`), make([]byte, 2<<20)...)
	if code, _ := tb.post(t, big, auth...); code != 413 {
		t.Errorf("2 MiB body: %d", code)
	}
	req, _ = http.NewRequest(http.MethodPost, tb.srv.URL, struct{ *strings.Reader }{strings.NewReader(string(big))})
	req.Header.Set("Authorization", "Bearer s3cret")
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 413 {
		t.Errorf("chunked 2 MiB body: %v %v", resp, err)
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
	if code, _ := tb.post(t, good, append(auth, "Content-Type", "Application/JSON; charset=utf-8")...); code != 200 {
		t.Errorf("JSON with a charset, in capitals: %d", code)
	}
	for reason, want := range map[string]float64{"method": 1, "unauthorized": 3, "content_type": 8, "too_large": 2, "bad_json": 2, "bad_version": 2, "invalid": 2} {
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
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(ns) })

	a := mkAlert("PopDown", "fra1", "critical", "firing", t0)
	b := mkAlert("DiskFull", "ams1", "warning", "firing", t0)
	pa, pb := mkPayload(a), mkPayload(b)
	tb.mustPost(t, pa)
	tb.mustPost(t, pb)
	tb.mustPost(t, pa) // Alertmanager retry
	// Two Alertmanagers of an HA pair send the same groups concurrently,
	// with other external URLs.
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Go(func() {
			for _, body := range [][]byte{pb, pa} {
				var pl Payload
				json.Unmarshal(body, &pl)
				pl.ExternalURL = fmt.Sprintf("http://am%d:9093", i)
				nb, _ := json.Marshal(pl)
				tb.mustPost(t, nb)
			}
		})
	}
	wg.Wait()
	ra, rb := a, b
	ra.Status, rb.Status = "resolved", "resolved"
	tb.mustPost(t, mkPayload(ra))
	tb.mustPost(t, mkPayload(ra))
	tb.mustPost(t, mkPayload(rb))
	tb.mustPost(t, mkPayload(rb))

	tb.waitDrained(t, 10*time.Second)
	got := titles(ntfy.Messages())
	want := map[string]int{"[FIRING:1] PopDown fra1": 1, "[FIRING:1] DiskFull ams1": 1, "[RESOLVED:1] PopDown fra1": 1, "[RESOLVED:1] DiskFull ams1": 1}
	count := map[string]int{}
	for _, g := range got {
		count[g]++
	}
	if fmt.Sprint(count) != fmt.Sprint(want) {
		t.Fatalf("notifications %v, want one each of %v", got, want)
	}
	// 1 (retry) + 4 (HA pair) + 1 (ra again) + 1 (rb again)
	if d := tb.counter("clavis_alertbridge_alerts_duplicate_total"); d != 7 {
		t.Errorf("duplicates = %v, want 7", d)
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
		if strings.HasPrefix(w, "[RESOLVED:1] ") {
			f := "[FIRING:1] " + strings.TrimPrefix(w, "[RESOLVED:1] ")
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
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
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
		want = append(want, "[FIRING:1] PopDown "+a.Labels["pop"])
		if i < 50 {
			a.Status = "resolved"
			tb.mustPost(t, mkPayload(a))
			want = append(want, "[RESOLVED:1] PopDown "+a.Labels["pop"])
		}
		time.Sleep(outage / 2 / n)
	}
	if got := tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy"); got != float64(len(want)) {
		t.Errorf("spool depth during outage = %v, want %d", got, len(want))
	}
	// The bridge kept trying during the outage: retries rose, and every
	// failure was a refused connection.
	before := tb.counter("clavis_alertbridge_notifications_retried_total", "target", "ntfy")
	waitFor(t, 30*time.Second, "retries during the outage", func() bool {
		return tb.counter("clavis_alertbridge_notifications_retried_total", "target", "ntfy") >= before+3
	})
	time.Sleep(time.Until(start.Add(outage)))
	if n := tb.counter("clavis_alertbridge_delivery_failures_total", "target", "ntfy", "class", "network"); n < before+3 {
		t.Errorf("network failures = %v during the outage", n)
	}
	if err := ns.Up(); err != nil {
		t.Fatal(err)
	}
	tb.waitDrained(t, 60*time.Second)
	checkExactlyOnceInOrder(t, ntfy.Messages(), want)
	if d := tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy"); d != 0 {
		t.Errorf("spool depth after drain = %v", d)
	}
	for _, m := range ntfy.Messages() {
		if m.Token != testToken {
			t.Fatalf("message without the bearer token: %+v", m.Header)
		}
	}
}

func Test429StormLosesNothing(t *testing.T) {
	t.Parallel()
	// ntfy's own limiter (small burst, fast replenish) plus a forced storm.
	ntfy := newNtfy(fakenotify.NtfyOptions{RateBurst: 5, RateReplenish: 30 * time.Millisecond})
	ntfy.Force429(40)
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
		c.Backoff = Backoff{Min: 5 * time.Millisecond, Max: 50 * time.Millisecond, MaxRetryAfter: time.Second}
	})
	var want []string
	for i := 0; i < 100; i++ {
		a := mkAlert("HighLatency", fmt.Sprintf("pop%03d", i), "warning", "firing", t0)
		tb.mustPost(t, mkPayload(a))
		want = append(want, "[FIRING:1] HighLatency "+a.Labels["pop"])
	}
	tb.waitDrained(t, 60*time.Second)
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
	ntfy := newNtfy(fakenotify.NtfyOptions{RetryAfter: time.Second})
	ntfy.Force429(1)
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(ns) })
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	tb.waitDrained(t, 10*time.Second)
	// The fake's own record: a 429 carrying "Retry-After: 1", then the
	// page. Backoff alone would retry after <= 20 ms.
	reqs := ntfy.Requests()
	if len(reqs) != 2 || reqs[0].Status != 429 || reqs[1].Status != 200 {
		t.Fatalf("requests %+v, want a 429 then a 200", reqs)
	}
	if gap := reqs[1].Time.Sub(reqs[0].Time); gap < time.Second {
		t.Fatalf("retried %s after the 429, before its Retry-After of 1 s", gap)
	}
}

// TestNtfyAuthErrorsHoldPages: a revoked token (403) or an unknown one
// (401) keeps every page in the spool, says so loudly (log, metrics, Kuma
// down with the reason), and the pages go out once the token works again.
func TestNtfyAuthErrorsHoldPages(t *testing.T) {
	t.Parallel()
	for _, status := range []int{403, 401} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			t.Parallel()
			ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{TopicWrite: map[string][]string{"tk_other": {"other"}}})
			kuma := fakenotify.NewKuma("pushtok")
			fs := newServer(t, fakenotify.Mux(ntfy, kuma))
			token := "tk_other" // known, no write on "alerts": 403
			if status == 401 {
				token = "tk_unknown"
			}
			tb := startBridge(t, "", func(c *Config) {
				c.Ntfy = &NtfyConfig{URL: fs.URL() + "/alerts", Token: token, AuthErrorBackoff: 100 * time.Millisecond}
				c.Kuma = &KumaConfig{PushURL: fs.URL() + "/api/push/pushtok"}
			})
			for i := 0; i < 3; i++ {
				tb.mustPost(t, mkPayload(mkAlert("DiskFull", fmt.Sprintf("p%d", i), "warning", "firing", t0)))
			}
			waitFor(t, 10*time.Second, "repeated auth errors", func() bool {
				return tb.counter("clavis_alertbridge_ntfy_auth_errors_total") >= 3
			})
			if got := tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy"); got != 3 {
				t.Errorf("spool depth %v while ntfy refuses the token, want 3 (nothing dropped)", got)
			}
			if f := tb.counter("clavis_alertbridge_notifications_failed_total", "target", "ntfy"); f != 0 {
				t.Errorf("failed = %v: pages were given up", f)
			}
			if tb.counter("clavis_alertbridge_ntfy_auth_failing") != 1 || !strings.Contains(tb.log.String(), "NTFY REFUSES THE TOKEN") {
				t.Errorf("auth failure not loud: gauge %v", tb.counter("clavis_alertbridge_ntfy_auth_failing"))
			}
			waitFor(t, 10*time.Second, "Kuma down with the reason", func() bool {
				p, ok := kuma.Last()
				return ok && p.Status == "down" && strings.Contains(p.Msg, fmt.Sprintf("ntfy refuses alertbridge's token (HTTP %d)", status))
			})
			// The operator fixes the token's access.
			ntfy.Grant(token, "alerts")
			tb.waitDrained(t, 10*time.Second)
			if n := len(ntfy.Messages()); n != 3 {
				t.Errorf("%d pages delivered after the fix, want 3", n)
			}
			waitFor(t, 10*time.Second, "Kuma up again", func() bool { p, _ := kuma.Last(); return p.Status == "up" })
			if tb.counter("clavis_alertbridge_ntfy_auth_failing") != 0 {
				t.Error("auth gauge still set")
			}
			// The recovery line says what it recovered from.
			if want := fmt.Sprintf(`"was":"HTTP %d"`, status); !strings.Contains(tb.log.String(), want) {
				t.Errorf("recovery not logged with %s:\n%s", want, tb.log.String())
			}
		})
	}
}

// TestNtfyPermanentErrors: a page refused with 400 is sent once more
// plain; refused again, it is final (counted, logged with ntfy's answer,
// not retried) and holds back no other page; 413 is answered by sending
// the page once more, cut short.
func TestNtfyPermanentErrors(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(ns) })
	ntfy.ForceStatus(400, 2, "")
	tb.mustPost(t, mkPayload(mkAlert("A", "fra1", "critical", "firing", t0)))
	tb.waitDrained(t, 10*time.Second)
	if c := ntfy.StatusCounts()[400]; c != 2 {
		t.Errorf("400 answered %d times, want 2 (sent once more plain, then final)", c)
	}
	if f := tb.counter("clavis_alertbridge_notifications_failed_total", "target", "ntfy"); f != 1 {
		t.Errorf("failed = %v, want 1", f)
	}
	if !strings.Contains(tb.log.String(), "notification failed permanently") || !strings.Contains(tb.log.String(), "invalid request") {
		t.Errorf("400 not logged with ntfy's answer")
	}
	if f := tb.counter("clavis_alertbridge_delivery_failures_total", "target", "ntfy", "class", "4xx"); f != 2 {
		t.Errorf("4xx failures = %v, want 2", f)
	}
	tb.mustPost(t, mkPayload(mkAlert("B", "fra1", "critical", "firing", t0)))
	ntfy.ForceStatus(413, 1, "")
	tb.mustPost(t, mkPayload(mkAlert("C", "fra1", "critical", "firing", t0)))
	tb.waitDrained(t, 10*time.Second)
	got := titles(ntfy.Messages())
	if len(got) != 2 || !slices.Contains(got, "[FIRING:1] B fra1") || !slices.Contains(got, "[FIRING:1] C fra1") {
		t.Errorf("delivered %v, want B, and C cut after its 413", got)
	}
	if c := ntfy.StatusCounts()[413]; c != 1 {
		t.Errorf("413 answered %d times", c)
	}
}

func TestMaxAgeDrops(t *testing.T) {
	t.Parallel()
	// Max age: ntfy answers 503 until the records are too old.
	ntfy2 := newNtfy(fakenotify.NtfyOptions{})
	ntfy2.SetMode(fakenotify.Unavailable)
	ns2 := newServer(t, ntfy2)
	tb2 := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns2)
		c.MaxAge = 300 * time.Millisecond
	})
	tb2.mustPost(t, mkPayload(mkAlert("A", "fra1", "critical", "firing", t0)))
	tb2.mustPost(t, mkPayload(mkAlert("B", "fra1", "critical", "firing", t0)))
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

// TestGroupPages: one message per group, not per alert; the title names
// state, count and group labels; the body lists the alerts (bounded);
// a change is a new message saying what changed; the resolution lists
// what resolved. Severity is case-insensitive; info goes out low.
func TestGroupPages(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
		c.Ntfy.DashboardURL = "https://grafana.example/d/clavis"
	})
	region := func(pop, sev, status string) Alert {
		a := mkAlert("PopDown", pop, sev, status, t0)
		a.Labels["region"] = "eu-west"
		a.Annotations["summary"] = "POPs in eu-west do not answer"
		return a
	}
	group := func(alerts ...Alert) []byte {
		var p Payload
		json.Unmarshal(mkPayload(alerts...), &p)
		p.GroupKey = `{}:{alertname="PopDown", region="eu-west"}`
		p.GroupLabels = map[string]string{"alertname": "PopDown", "region": "eu-west"}
		b, _ := json.Marshal(p)
		return b
	}
	var firing []Alert
	for i := 0; i < 37; i++ {
		firing = append(firing, region(fmt.Sprintf("pop%02d", i), "CRITICAL", "firing"))
	}
	tb.mustPost(t, group(firing...))
	tb.waitDrained(t, 10*time.Second)
	msgs := ntfy.Messages()
	if len(msgs) != 1 {
		t.Fatalf("%d messages for one group of 37, want 1: %v", len(msgs), titles(msgs))
	}
	m := msgs[0]
	if m.Title != "[FIRING:37] PopDown eu-west" || m.Priority != 5 || m.ContentType != "text/markdown" {
		t.Errorf("title %q priority %d content type %q", m.Title, m.Priority, m.ContentType)
	}
	if !strings.HasPrefix(m.Message, "POPs in eu-west do not answer") || !strings.Contains(m.Message, "**FIRING**") ||
		!strings.Contains(m.Message, "\n- pop00\n- pop01\n") || !strings.Contains(m.Message, "- +12 more") || strings.Contains(m.Message, "pop25") {
		t.Errorf("body:\n%s", m.Message)
	}
	if len(m.Actions) != 3 || m.Actions[0].Label != "Runbook" || m.Actions[1].Label != "Dashboard" || m.Actions[2].Label != "Silence" ||
		!strings.Contains(m.Actions[2].URL, "region%3D%22eu-west%22") || strings.Contains(m.Actions[2].URL, "pop") {
		t.Errorf("actions (the silence must match the group, not one POP): %+v", m.Actions)
	}
	// Two more POPs fire and three resolve: one new message says so.
	next := append([]Alert(nil), firing[3:]...)
	next = append(next, region("pop90", "critical", "firing"), region("pop91", "critical", "firing"))
	for _, a := range firing[:3] {
		a.Status = "resolved"
		next = append(next, a)
	}
	tb.mustPost(t, group(next...))
	tb.mustPost(t, group(next...)) // the HA peer's copy: nothing new
	tb.waitDrained(t, 10*time.Second)
	msgs = ntfy.Messages()
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2: %v", len(msgs), titles(msgs))
	}
	m = msgs[1]
	if m.Title != "[FIRING:36] PopDown eu-west" || !strings.Contains(m.Message, "changed: 2 new, 3 resolved") ||
		!strings.Contains(m.Message, "**New (2):**\n- pop90\n- pop91") || !strings.Contains(m.Message, "**Resolved (3):**\n- pop00\n- pop01\n- pop02") {
		t.Errorf("change message %q:\n%s", m.Title, m.Message)
	}
	// All resolve: the resolution lists them.
	var all []Alert
	for _, a := range next {
		a.Status = "resolved"
		all = append(all, a)
	}
	tb.mustPost(t, group(all...))
	tb.waitDrained(t, 10*time.Second)
	msgs = ntfy.Messages()
	m = msgs[len(msgs)-1]
	if len(msgs) != 3 || m.Title != "[RESOLVED:36] PopDown eu-west" || !strings.Contains(m.Message, "**RESOLVED**") ||
		!strings.Contains(m.Message, "**Resolved (36):**") || m.Priority != 3 || m.Tags[0] != "white_check_mark" || len(m.Actions) != 2 {
		t.Errorf("resolution %q %+v:\n%s", m.Title, m, m.Message)
	}
	for _, m := range msgs {
		if len(m.Message) > 4096 || m.Attachment != nil {
			t.Errorf("message of %d bytes", len(m.Message))
		}
	}
}

// TestPageBounds: a 5,000-character alertname and label values are cut,
// a huge group stays within ntfy's 4,096 bytes with "+N more", alerts
// Alertmanager left out (max_alerts) are counted, and Markdown in label
// values is escaped.
func TestPageBounds(t *testing.T) {
	t.Parallel()
	cfg := &NtfyConfig{Priorities: DefaultPriorities(), DefaultPriority: 3, ResolvedPriority: 3}
	long := strings.Repeat("A", 5000)
	p := &Payload{Version: "4", TruncatedAlerts: 4000, GroupLabels: map[string]string{"alertname": long}}
	var in pageInput
	in.p = p
	for i := 0; i < 1000; i++ {
		a := mkAlert(long, fmt.Sprintf("*pop_%04d*%s", i, strings.Repeat("é", 100)), "critical", "firing", t0)
		a.Annotations["description"] = strings.Repeat("ä", 3000)
		in.alerts = append(in.alerts, a)
		in.firing = append(in.firing, i)
		in.fresh = append(in.fresh, true)
	}
	pg := renderPage(cfg, &in, t0)
	if len(pg.Title) > titleMax || !strings.HasPrefix(pg.Title, "[FIRING:5000] AAAA") {
		t.Errorf("title %d bytes: %.40q", len(pg.Title), pg.Title)
	}
	if len(pg.Body) > NtfyMaxMessageBytes || !strings.Contains(pg.Body, "more") {
		t.Errorf("body %d bytes", len(pg.Body))
	}
	if strings.Contains(pg.Body, "\n- *pop") || !strings.Contains(pg.Body, `\*pop\_0000\*`) {
		t.Errorf("markdown in label values not escaped:\n%.300s", pg.Body)
	}
	// The count of the rest includes the 4,000 alerts that were not sent.
	re := regexp.MustCompile(`\+(\d+) more`)
	mm := re.FindStringSubmatch(pg.Body)
	listed := strings.Count(pg.Body, "\n- ") - 1
	if mm == nil || mm[1] != fmt.Sprint(5000-listed) {
		t.Errorf("+N more = %v with %d listed, want %d", mm, listed, 5000-listed)
	}
}

// TestPagePunctuationSummaryKeepsTheList: a summary and a description of
// Markdown punctuation were cut to 1,024 bytes each and then escaped,
// which doubled them: 4,094 bytes with no room left for a single POP.
// Escaped, each stays within its 1,024 bytes and the page names POPs.
func TestPagePunctuationSummaryKeepsTheList(t *testing.T) {
	t.Parallel()
	cfg := &NtfyConfig{Priorities: DefaultPriorities(), DefaultPriority: 3, ResolvedPriority: 3}
	in := pageInput{p: &Payload{Version: "4", GroupLabels: map[string]string{"alertname": "PopDown", "region": "eu-west"},
		CommonAnnotations: map[string]string{"summary": strings.Repeat("<*>_", 255), "description": strings.Repeat("[_]|", 255)}}}
	for i := 0; i < 30; i++ {
		in.alerts = append(in.alerts, mkAlert("PopDown", fmt.Sprintf("ams%03d", i), "critical", "firing", t0))
		in.firing = append(in.firing, i)
		in.fresh = append(in.fresh, true)
	}
	body := renderPage(cfg, &in, t0).Body
	if len(body) > NtfyMaxMessageBytes || !strings.Contains(body, "\n- ams000") || !strings.Contains(body, "more") {
		t.Errorf("body of %d bytes without the POP list:\n%s", len(body), body)
	}
	summary, _, _ := strings.Cut(body, "\n\n")
	if len(summary) > textMax || len(summary) < textMax-8 || !strings.HasPrefix(summary, `\<\*\>\_`) || !strings.HasSuffix(summary, "…") {
		t.Errorf("summary of %d bytes (want at most %d, escaped, marked as cut): %.60q", len(summary), textMax, summary)
	}
	for _, s := range []string{"", "plain", strings.Repeat("x", 5000), strings.Repeat("*", 5000), strings.Repeat("é*", 900)} {
		got := mdEscapeMax(s, textMax)
		if len(got) > textMax || len(s) <= textMax && mdEscape(s) != got && len(mdEscape(s)) <= textMax {
			t.Errorf("mdEscapeMax(%.20q…): %d bytes", s, len(got))
		}
		// Cut to fit, not far below: the room is the summary's.
		if len(mdEscape(s)) > textMax && len(got) < textMax-8 {
			t.Errorf("mdEscapeMax(%.20q…) kept %d of %d bytes", s, len(got), textMax)
		}
	}
}

// TestPageSummaryOfDifferingAlerts: a group whose alerts have summaries of
// their own (PopDown's names its POP) is not summed up by one of them,
// which would read as one POP down when a region is; a group of one alert
// keeps its summary.
func TestPageSummaryOfDifferingAlerts(t *testing.T) {
	t.Parallel()
	cfg := &NtfyConfig{Priorities: DefaultPriorities(), DefaultPriority: 3, ResolvedPriority: 3}
	render := func(n int, drop string) string {
		in := pageInput{p: &Payload{Version: "4", GroupLabels: map[string]string{"alertname": "PopDown", "region": "eu-west"}}}
		for i := 0; i < n; i++ {
			a := mkAlert("PopDown", fmt.Sprintf("ams%03d", i), "critical", "firing", t0)
			a.Annotations["summary"] = "POP " + a.Labels["pop"] + " is down"
			delete(a.Labels, drop)
			in.alerts = append(in.alerts, a)
			in.firing = append(in.firing, i)
			in.fresh = append(in.fresh, true)
		}
		return renderPage(cfg, &in, t0).Body
	}
	if b := render(20, ""); !strings.HasPrefix(b, "PopDown is firing for 20 POPs\n") || strings.Contains(b, "is down") {
		t.Errorf("20 POPs:\n%s", b)
	}
	if b := render(3, "pop"); !strings.HasPrefix(b, "PopDown is firing for 3 alerts\n") {
		t.Errorf("3 alerts without a pop label:\n%s", b)
	}
	if b := render(1, ""); !strings.HasPrefix(b, "POP ams000 is down\n") {
		t.Errorf("one POP:\n%s", b)
	}
}

func TestSeverityPriorities(t *testing.T) {
	t.Parallel()
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("dropInfo=%v", drop), func(t *testing.T) {
			t.Parallel()
			ntfy := newNtfy(fakenotify.NtfyOptions{})
			ns := newServer(t, ntfy)
			tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(ns); c.Ntfy.DropInfo = drop })
			tb.mustPost(t, mkPayload(mkAlert("A", "fra1", "Critical", "firing", t0)))
			tb.mustPost(t, mkPayload(mkAlert("B", "fra1", "WARNING", "firing", t0)))
			tb.mustPost(t, mkPayload(mkAlert("C", "fra1", "INFO", "firing", t0)))
			tb.mustPost(t, mkPayload(mkAlert("Watchdog", "", "none", "firing", t0)))
			tb.waitDrained(t, 10*time.Second)
			prio := map[string]int{}
			for _, m := range ntfy.Messages() {
				prio[m.Title] = m.Priority
			}
			want := map[string]int{"[FIRING:1] A fra1": 5, "[FIRING:1] B fra1": 4, "[FIRING:1] C fra1": 2}
			if drop {
				delete(want, "[FIRING:1] C fra1")
			}
			if fmt.Sprint(prio) != fmt.Sprint(want) {
				t.Errorf("priorities %v, want %v (the Watchdog never pages)", prio, want)
			}
		})
	}
}

func TestTruncateUTF8(t *testing.T) {
	t.Parallel()
	for _, s := range []string{strings.Repeat("a", 5000), strings.Repeat("€", 2000), strings.Repeat("a€😀", 600), "short"} {
		got := TruncateUTF8(s, 4096)
		if len(got) > 4096 || !strings.HasPrefix(s, strings.TrimSuffix(got, "…")) {
			t.Errorf("TruncateUTF8: %d bytes, prefix ok=%v", len(got), strings.HasPrefix(s, strings.TrimSuffix(got, "…")))
		}
		// The cut uses the budget: at most the ellipsis and one rune short.
		if len(s) > 4096 && (len(got) < 4096-len("…")-utf8.UTFMax || !strings.HasSuffix(got, "…")) {
			t.Errorf("TruncateUTF8 kept %d of a 4096-byte budget", len(got))
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
	b := mkAlert("PopDown", "ams1", "CRITICAL", "firing", t0) // severity is case-insensitive
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
	// Every record was folded in and committed: no push can follow.
	waitFor(t, 5*time.Second, "kuma queue drained", func() bool {
		return tb.counter("clavis_alertbridge_spool_depth", "target", "kuma") == 0
	})
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
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	ns.Down()
	spool := t.TempDir() + "/new/dir/spool.db"
	cfg := func(c *Config) { c.Ntfy = ntfyTo(ns) }
	tb := startBridge(t, spool, cfg)
	var want []string
	for i := 0; i < 20; i++ {
		a := mkAlert("PopDown", fmt.Sprintf("p%02d", i), "critical", "firing", t0)
		tb.mustPost(t, mkPayload(a))
		want = append(want, "[FIRING:1] PopDown "+a.Labels["pop"])
	}
	tb.stop()
	ns.Up()
	tb2 := startBridge(t, spool, cfg)
	// The keys survived too: a retry after the restart is a duplicate.
	tb2.mustPost(t, mkPayload(mkAlert("PopDown", "p00", "critical", "firing", t0)))
	tb2.waitDrained(t, 10*time.Second)
	checkExactlyOnceInOrder(t, ntfy.Messages(), want)
	if d := tb2.counter("clavis_alertbridge_alerts_duplicate_total"); d != 1 {
		t.Errorf("duplicates after restart = %v, want 1", d)
	}
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
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ntfy.SetMode(fakenotify.Hang)
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
		c.Ntfy.RepeatTimeout = 200 * time.Millisecond
		c.Timeout = 100 * time.Millisecond
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 10*time.Second, "timed-out attempts", func() bool {
		return tb.counter("clavis_alertbridge_delivery_failures_total", "target", "ntfy", "class", "timeout") >= 2
	})
	ntfy.SetMode(fakenotify.Up)
	tb.waitDrained(t, 10*time.Second)
	checkExactlyOnceInOrder(t, ntfy.Messages(), []string{"[FIRING:1] PopDown fra1"})
	// The attempts that timed out may have been published: the one that
	// went through says it may be a repeat.
	if m := ntfy.Messages()[0]; !slices.Contains(m.Tags, "repeat") || !strings.HasPrefix(m.Message, "(possible repeat") {
		t.Errorf("not marked as a possible repeat: %+v", m)
	}
}

// TestCutPageIsAMessage: a page cut to the limit was 4,096 bytes, and ntfy
// takes a body of exactly its message-size-limit for an attachment (400
// with attachments off, a "You received a file" page with them on). Cut
// pages are 4,095 bytes and arrive as text; the fake ntfy refuses 4,096 as
// ntfy does.
func TestCutPageIsAMessage(t *testing.T) {
	t.Parallel()
	cfg := &NtfyConfig{Priorities: DefaultPriorities(), DefaultPriority: 3, ResolvedPriority: 3}
	payload := func(names, nameLen int) *Payload {
		var alerts []Alert
		for i := 0; i < names; i++ {
			alerts = append(alerts, mkAlert("PopDown", fmt.Sprintf("%03d%s", i, strings.Repeat("p", nameLen-3)), "critical", "firing", t0))
		}
		var p Payload
		if err := json.Unmarshal(mkPayload(alerts...), &p); err != nil {
			t.Fatal(err)
		}
		// The "+N more (max_alerts)" line comes after the budgeted list.
		p.TruncatedAlerts = 5
		p.CommonAnnotations = map[string]string{"summary": strings.Repeat("S", textMax), "description": strings.Repeat("D", textMax)}
		return &p
	}
	var cut *Payload
	for names := 3; names <= 12; names++ {
		for nameLen := 100; nameLen <= 200; nameLen++ {
			p := payload(names, nameLen)
			in := pageInput{p: p}
			for i := range p.Alerts {
				in.alerts = append(in.alerts, p.Alerts[i])
				in.firing = append(in.firing, i)
				in.fresh = append(in.fresh, true)
			}
			body := renderPage(cfg, &in, t0).Body
			if len(body) > NtfyMaxMessageBytes || NtfyMaxMessageBytes >= 4096 {
				t.Fatalf("%d names of %d bytes: body of %d bytes, ntfy's limit is 4096 (exclusive)", names, nameLen, len(body))
			}
			if len(body) == NtfyMaxMessageBytes && cut == nil {
				cut = p
			}
		}
	}
	if cut == nil {
		t.Fatal("no case reached the cut: the test exercises nothing")
	}
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(newServer(t, ntfy)) })
	body, err := json.Marshal(cut)
	if err != nil {
		t.Fatal(err)
	}
	tb.mustPost(t, body)
	tb.waitDrained(t, 10*time.Second)
	msgs := ntfy.Messages()
	if len(msgs) != 1 || len(msgs[0].Message) != NtfyMaxMessageBytes || msgs[0].Attachment != nil || !strings.HasSuffix(msgs[0].Message, "…") {
		t.Fatalf("the cut page did not arrive as a text message: %d messages, %v", len(msgs), ntfy.StatusCounts())
	}
}
