package alertbridge

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// regionGroup is one notification of a group_by [alertname, region] route.
func regionGroup(alerts ...Alert) []byte {
	var p Payload
	json.Unmarshal(mkPayload(alerts...), &p)
	p.GroupKey = `{}:{alertname="PopDown", region="eu-west"}`
	p.GroupLabels = map[string]string{"alertname": "PopDown", "region": "eu-west"}
	b, _ := json.Marshal(p)
	return b
}

// TestLargeGroupAccepted: a group of 5,000 alerts with 200-byte
// descriptions (about 4 MB, what Alertmanager sends with max_alerts: 0)
// is accepted from an authenticated sender and paged once.
func TestLargeGroupAccepted(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) { c.WebhookToken = "s3cret"; c.Ntfy = ntfyTo(ns) })
	var alerts []Alert
	for i := 0; i < 5000; i++ {
		a := mkAlert("PopDown", fmt.Sprintf("pop%04d", i), "critical", "firing", t0)
		a.Labels["region"] = "eu-west"
		a.Annotations["description"] = strings.Repeat("d", 200)
		alerts = append(alerts, a)
	}
	body := regionGroup(alerts...)
	if len(body) <= 1<<20 {
		t.Fatalf("payload only %d bytes", len(body))
	}
	if code, msg := tb.post(t, body, "Authorization", "Bearer s3cret"); code != 200 {
		t.Fatalf("%d-byte group: %d %s", len(body), code, msg)
	}
	tb.waitDrained(t, 30*time.Second)
	msgs := ntfy.Messages()
	if len(msgs) != 1 || msgs[0].Title != "[FIRING:5000] PopDown eu-west" || !strings.Contains(msgs[0].Message, "more") {
		t.Fatalf("pages %v", titles(msgs))
	}
	// Without authentication the old 1 MiB bound stays.
	open := startBridge(t, "", nil)
	if code, _ := open.post(t, body); code != 413 {
		t.Errorf("unauthenticated %d-byte body: %d, want 413", len(body), code)
	}
}

// TestLateFiringAfterResolved: another HA peer's older FIRING copy that
// arrives after the RESOLVED is dropped, for ntfy and Kuma.
func TestLateFiringAfterResolved(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	kuma := fakenotify.NewKuma("pushtok")
	fs := newServer(t, fakenotify.Mux(ntfy, kuma))
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(fs)
		c.Kuma = &KumaConfig{PushURL: fs.URL() + "/api/push/pushtok"}
	})
	a := mkAlert("PopDown", "fra1", "critical", "resolved", t0)
	tb.mustPost(t, mkPayload(a))
	a.Status, a.EndsAt = "firing", time.Time{}
	tb.mustPost(t, mkPayload(a)) // the peer's copy, from before the resolution
	tb.waitDrained(t, 10*time.Second)
	if got := titles(ntfy.Messages()); fmt.Sprint(got) != "[[RESOLVED:1] PopDown fra1]" {
		t.Errorf("pages %v, want only the resolution", got)
	}
	if s := tb.counter("clavis_alertbridge_alerts_stale_total"); s != 1 {
		t.Errorf("stale = %v", s)
	}
	// A new episode (later startsAt) pages again.
	a.StartsAt = t0.Add(time.Hour)
	tb.mustPost(t, mkPayload(a))
	tb.waitDrained(t, 10*time.Second)
	if n := len(ntfy.Messages()); n != 2 {
		t.Errorf("%d pages after a new episode, want 2", n)
	}
	waitFor(t, 10*time.Second, "kuma queue drained", func() bool { return tb.counter("clavis_alertbridge_spool_depth", "target", "kuma") == 0 })
	for _, p := range kuma.Pushes()[:len(kuma.Pushes())-1] {
		if p.Status == "down" {
			t.Errorf("the stale copy set Kuma down: %+v", kuma.Pushes())
		}
	}
}

// TestStormGuardDigest: with a budget of 6 a minute, 20 groups firing at
// once are 6 pages and then one digest that names the rest; nothing is
// lost.
func TestStormGuardDigest(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(ns); c.Ntfy.PerMinute = 6 })
	for i := 0; i < 17; i++ {
		tb.mustPost(t, mkPayload(mkAlert("PopDown", fmt.Sprintf("pop%02d", i), "critical", "firing", t0)))
	}
	for i := 0; i < 3; i++ {
		tb.mustPost(t, mkPayload(mkAlert("PopDiskAlmostFull", fmt.Sprintf("pop%02d", i), "warning", "firing", t0)))
	}
	tb.waitDrained(t, 60*time.Second)
	msgs := ntfy.Messages()
	if len(msgs) != 7 {
		t.Fatalf("%d messages, want 6 pages and 1 digest: %v", len(msgs), titles(msgs))
	}
	d := msgs[6]
	if d.Title != "[DIGEST] 14 more groups firing, 0 resolved" || !slices.Contains(d.Tags, "digest") ||
		!strings.Contains(d.Message, "14 more groups firing: PopDown x11, PopDiskAlmostFull x3") {
		t.Errorf("digest %q:\n%s", d.Title, d.Message)
	}
	// Every group is either paged or named in the digest.
	for i := 0; i < 17; i++ {
		title := fmt.Sprintf("[FIRING:1] PopDown pop%02d", i)
		if !slices.Contains(titles(msgs[:6]), title) && !strings.Contains(d.Message, mdEscape(title)) {
			t.Errorf("%s lost", title)
		}
	}
	if m := tb.counter("clavis_alertbridge_storm_merged_pages_total"); m != 14 {
		t.Errorf("merged = %v", m)
	}
	if m := tb.counter("clavis_alertbridge_storm_digests_total"); m != 1 {
		t.Errorf("digests = %v", m)
	}
}

// TestNoHeadOfLineBlocking: a page refused with 429 and Retry-After: 3600
// waits alone; the pages behind it go out.
func TestNoHeadOfLineBlocking(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ntfy.RefuseWhen(func(r *http.Request) (int, string, bool) {
		return 429, "3600", strings.Contains(r.Header.Get("X-Title"), "Stuck")
	})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(ns); c.Backoff.MaxRetryAfter = time.Hour })
	tb.mustPost(t, mkPayload(mkAlert("Stuck", "fra1", "critical", "firing", t0)))
	waitFor(t, 10*time.Second, "the 429", func() bool { return ntfy.StatusCounts()[429] == 1 })
	for i := 0; i < 20; i++ {
		tb.mustPost(t, mkPayload(mkAlert("PopDown", fmt.Sprintf("pop%02d", i), "critical", "firing", t0)))
	}
	waitFor(t, 30*time.Second, "the pages behind the refused one", func() bool { return len(ntfy.Messages()) == 20 })
	// Delivered pages leave the spool in batched commits; the refused
	// one stays.
	waitFor(t, 10*time.Second, "only the refused page left in the spool", func() bool {
		return tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy") == 1 &&
			tb.counter("clavis_alertbridge_notifications_sent_total", "target", "ntfy") == 20
	})
	if c := ntfy.StatusCounts()[429]; c != 1 {
		t.Errorf("refused page retried %d times before its Retry-After", c-1)
	}
}

// TestSlowNtfyOneRepeat: ntfy publishes and answers after the delivery
// timeout. Each page costs at most one repeat, marked as such, and slow
// answers do not hold the other groups back.
func TestSlowNtfyOneRepeat(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ntfy.SetAnswerDelay(time.Second)
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
		c.Ntfy.RepeatTimeout = 20 * time.Second
		c.Timeout = 200 * time.Millisecond
	})
	const groups = 8
	for i := 0; i < groups; i++ {
		tb.mustPost(t, mkPayload(mkAlert("PopDown", fmt.Sprintf("pop%02d", i), "critical", "firing", t0)))
	}
	tb.waitDrained(t, 60*time.Second)
	copies := map[string][]fakenotify.Message{}
	for _, m := range ntfy.Messages() {
		copies[m.Title] = append(copies[m.Title], m)
	}
	if len(copies) != groups {
		t.Fatalf("%d groups paged, want %d", len(copies), groups)
	}
	for title, ms := range copies {
		if len(ms) > 2 {
			t.Errorf("%s sent %d times, want at most one repeat", title, len(ms))
		}
		if len(ms) == 2 && (!slices.Contains(ms[1].Tags, "repeat") || slices.Contains(ms[0].Tags, "repeat")) {
			t.Errorf("%s: the second copy is not marked as a repeat: %v / %v", title, ms[0].Tags, ms[1].Tags)
		}
	}
	if r := tb.counter("clavis_alertbridge_ntfy_repeats_total"); r < 1 {
		t.Errorf("repeats = %v", r)
	}
}

// TestKumaOutageExpires: an outage Alertmanager does not refresh within
// the TTL stops holding Kuma down (a lost resolution).
func TestKumaOutageExpires(t *testing.T) {
	t.Parallel()
	kuma := fakenotify.NewKuma("tok")
	ks := newServer(t, kuma)
	tb := startBridge(t, "", func(c *Config) {
		c.Kuma = &KumaConfig{PushURL: ks.URL() + "/api/push/tok", FiringTTL: 500 * time.Millisecond}
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 5*time.Second, "down", func() bool { p, _ := kuma.Last(); return p.Status == "down" })
	// Nothing more is sent: the resolution was lost.
	waitFor(t, 10*time.Second, "up after the TTL", func() bool { p, _ := kuma.Last(); return p.Status == "up" })
	// A refreshed outage stays: endsAt far ahead keeps it.
	a := mkAlert("PopDown", "ams1", "critical", "firing", t0)
	a.EndsAt = time.Now().Add(time.Hour)
	tb.mustPost(t, mkPayload(a))
	waitFor(t, 5*time.Second, "down again", func() bool { p, _ := kuma.Last(); return p.Status == "down" })
	n := len(kuma.Pushes())
	tb.mustPost(t, mkPayload(mkAlert("Watchdog", "", "none", "firing", t0))) // a heartbeat after the TTL
	time.Sleep(600 * time.Millisecond)                                       // the TTL, not a wait for nothing to happen
	tb.mustPost(t, mkPayload(mkAlert("Watchdog", "", "none", "firing", t0)))
	waitFor(t, 5*time.Second, "two heartbeats", func() bool { return len(kuma.Pushes()) >= n+2 })
	if p, _ := kuma.Last(); p.Status != "down" || p.Msg != "PopDown ams1" {
		t.Errorf("outage with endsAt ahead expired: %+v", p)
	}
}

// TestWatchdogMissingStopsKuma: without a Watchdog for its interval, no
// push goes to Kuma at all (so Kuma's own timeout reports the pipeline),
// and the bridge says so; when it is back, pushes resume.
func TestWatchdogMissingStopsKuma(t *testing.T) {
	t.Parallel()
	kuma := fakenotify.NewKuma("tok")
	ks := newServer(t, kuma)
	tb := startBridge(t, "", func(c *Config) {
		c.Kuma = &KumaConfig{PushURL: ks.URL() + "/api/push/tok"}
		c.WatchdogInterval = 300 * time.Millisecond
	})
	wd := mkPayload(mkAlert("Watchdog", "", "none", "firing", t0))
	tb.mustPost(t, wd)
	waitFor(t, 5*time.Second, "heartbeat", func() bool { return len(kuma.Pushes()) == 1 })
	waitFor(t, 5*time.Second, "watchdog missing", func() bool { return tb.counter("clavis_alertbridge_watchdog_missing") == 1 })
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 5*time.Second, "the alert processed", func() bool {
		return tb.counter("clavis_alertbridge_spool_depth", "target", "kuma") == 0
	})
	if n := len(kuma.Pushes()); n != 1 {
		t.Errorf("%d pushes while the Watchdog is missing: %+v", n, kuma.Pushes())
	}
	waitFor(t, 5*time.Second, "log line", func() bool { return strings.Contains(tb.log.String(), "WATCHDOG MISSING") })
	tb.mustPost(t, wd)
	waitFor(t, 5*time.Second, "push after the Watchdog is back", func() bool { p, _ := kuma.Last(); return p.Status == "down" })
	if tb.counter("clavis_alertbridge_watchdog_missing") != 0 {
		t.Error("still missing")
	}
}

// TestSecretsNotLogged: the Kuma push token and the ntfy token never
// appear in the log, even in transport errors that quote the URL.
func TestSecretsNotLogged(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	fs := newServer(t, fakenotify.Mux(ntfy, fakenotify.NewKuma()))
	fs.Down()
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: fs.URL() + "/alerts?auth=SECRETQUERYAUTH", Token: "SECRETNTFYTOKEN"}
		c.Kuma = &KumaConfig{PushURL: "http://user:SECRETPASS@" + fs.Addr() + "/api/push/SECRETPUSHTOKEN?status=up"}
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 10*time.Second, "failed attempts on both targets", func() bool {
		return tb.counter("clavis_alertbridge_delivery_failures_total", "target", "kuma", "class", "network") >= 2 &&
			tb.counter("clavis_alertbridge_delivery_failures_total", "target", "ntfy", "class", "network") >= 2
	})
	log := tb.log.String()
	for _, secret := range []string{"SECRETPUSHTOKEN", "SECRETNTFYTOKEN", "SECRETQUERYAUTH", "SECRETPASS"} {
		if strings.Contains(log, secret) {
			t.Errorf("log carries %s", secret)
		}
	}
	if !strings.Contains(log, "/api/push/REDACTED") {
		t.Errorf("the failure is not logged with the redacted URL")
	}
}

// TestIntakeBounded: at most MaxConcurrentIntake webhooks are read at
// once; the next gets 503 with Retry-After, which Alertmanager retries.
func TestIntakeBounded(t *testing.T) {
	t.Parallel()
	tb := startBridge(t, "", func(c *Config) { c.MaxConcurrentIntake = 1; c.IntakeQueueWait = 50 * time.Millisecond })
	pr, pw := io.Pipe()
	done := make(chan int)
	go func() {
		req, _ := http.NewRequest(http.MethodPost, tb.srv.URL, pr)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- 0
			return
		}
		resp.Body.Close()
		done <- resp.StatusCode
	}()
	pw.Write([]byte(`{"version":"4",`)) // the first webhook holds the slot, half sent
	waitFor(t, 5*time.Second, "first webhook reading", func() bool { return tb.counter("clavis_alertbridge_webhooks_received_total") == 1 })
	code, _ := tb.post(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	if code != 503 {
		t.Errorf("second concurrent webhook: %d, want 503", code)
	}
	pw.Write([]byte(`"alerts":[]}`))
	pw.Close()
	if c := <-done; c != 200 {
		t.Errorf("first webhook: %d", c)
	}
	if code, _ := tb.post(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0))); code != 200 {
		t.Errorf("after the slot freed: %d", code)
	}
	if r := tb.counter("clavis_alertbridge_webhooks_rejected_total", "reason", "busy"); r != 1 {
		t.Errorf("busy rejections = %v", r)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                                0,
		"3":                               3 * time.Second,
		" 120 ":                           2 * time.Minute,
		"-1":                              0,
		"banana":                          0,
		"Tue, 01 Dec 2026 12:00:30 GMT":   30 * time.Second, // IMF-fixdate
		"Tuesday, 01-Dec-26 12:01:00 GMT": time.Minute,      // RFC 850
		"Tue Dec  1 12:00:05 2026":        5 * time.Second,  // asctime
		"Tue, 01 Dec 2026 11:00:00 GMT":   0,                // in the past
		// Seconds beyond what a Duration holds: as long as possible (the
		// caller caps it at --delivery.max-retry-after), never wrapped
		// (18446744074 s wrapped to 0.29 s, 9223372036854775807 s to -1 s).
		"18446744074":          math.MaxInt64,
		"9223372036854775807":  math.MaxInt64,
		"99999999999999999999": math.MaxInt64,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

// TestBackoffBounds: each wait is within [d/2, d] of the doubled delay,
// never above Max, and a Retry-After lifts it up to MaxRetryAfter only.
func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	b := Backoff{Min: 100 * time.Millisecond, Max: 3 * time.Second, MaxRetryAfter: 10 * time.Second}
	for attempt := 0; attempt < 40; attempt++ {
		d := min(b.Min<<min(attempt, 30), b.Max)
		for i := 0; i < 200; i++ {
			w := b.wait(attempt, 0)
			if w < d/2 || w > d {
				t.Fatalf("attempt %d: wait %s outside [%s, %s]", attempt, w, d/2, d)
			}
		}
	}
	if w := b.wait(0, 5*time.Second); w != 5*time.Second {
		t.Errorf("Retry-After 5s: %s", w)
	}
	if w := b.wait(0, time.Hour); w != b.MaxRetryAfter {
		t.Errorf("Retry-After 1h: %s, want capped at %s", w, b.MaxRetryAfter)
	}
	if w := b.wait(10, time.Millisecond); w < b.Max/2 {
		t.Errorf("a short Retry-After shortened the backoff: %s", w)
	}
}

// TestRetryWaitFollowsTheOutageNotThePage: a page's backoff grows with its
// failures only while every publish fails; once others get through (the
// streak restarts at 1) its next wait is the first step again, and a long
// streak never takes a page past its own failures.
func TestRetryWaitFollowsTheOutageNotThePage(t *testing.T) {
	t.Parallel()
	b := Backoff{Min: 250 * time.Millisecond, Max: 30 * time.Second, MaxRetryAfter: time.Minute}
	within := func(w, d time.Duration) bool { return w >= d/2 && w <= d }
	for i := 0; i < 200; i++ {
		// ntfy down: page and streak grow together, so does the wait.
		for n := 0; n < 10; n++ {
			if w, d := b.retryWait(n, n+1, 0), min(b.Min<<n, b.Max); !within(w, d) {
				t.Fatalf("outage, failure %d: wait %s outside [%s, %s]", n, w, d/2, d)
			}
		}
		// The page failed 6 times, but the last publish before this
		// failure went through: first step.
		if w := b.retryWait(6, 1, 0); !within(w, b.Min) {
			t.Fatalf("sparse failures: wait %s, want within [%s, %s]", w, b.Min/2, b.Min)
		}
		// Two failures in a row after others got through: second step.
		if w := b.retryWait(6, 2, 0); !within(w, 2*b.Min) {
			t.Fatalf("streak 2: wait %s, want within [%s, %s]", w, b.Min, 2*b.Min)
		}
		// A fresh page in a long outage starts at the first step.
		if w := b.retryWait(0, 50, 0); !within(w, b.Min) {
			t.Fatalf("new page in an outage: wait %s, want within [%s, %s]", w, b.Min/2, b.Min)
		}
	}
	// Retry-After still wins over the short step.
	if w := b.retryWait(6, 1, 20*time.Second); w != 20*time.Second {
		t.Errorf("Retry-After 20s with sparse failures: %s", w)
	}
}

// TestCorruptSpool damages a spool file the ways testing found (random
// 64-byte writes past the first 16 KB; truncation to 16 and 64 KB) and
// opens it in a child process, so a crash is a failure and not the end of
// the test binary: the bridge starts, says what it did, and works.
func TestCorruptSpool(t *testing.T) {
	if os.Getenv("ALERTBRIDGE_CORRUPT_CHILD") != "" {
		corruptChild(t)
		return
	}
	t.Parallel()
	for _, damage := range []string{"random", "trunc16", "trunc64"} {
		t.Run(damage, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "spool.db")
			s, _, err := OpenSpool(path, []string{TargetNtfy})
			if err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 2000; i++ {
				r := Record{Key: fmt.Sprintf("k%05d", i), Accepted: time.Now(), Status: "firing", Labels: map[string]string{"alertname": strings.Repeat("x", 100)}}
				if _, err := s.Add([]Entry{{Record: r, Targets: []string{TargetNtfy}}}); err != nil {
					t.Fatal(err)
				}
			}
			s.Close()
			fi, _ := os.Stat(path)
			switch damage {
			case "random":
				f, _ := os.OpenFile(path, os.O_WRONLY, 0)
				rng := rand.New(rand.NewPCG(1, 2))
				junk := make([]byte, 64)
				for i := 0; i < 200; i++ {
					for j := range junk {
						junk[j] = byte(rng.UintN(256))
					}
					f.WriteAt(junk, 16<<10+rng.Int64N(fi.Size()-16<<10-64))
				}
				f.Close()
			case "trunc16":
				os.Truncate(path, 16<<10)
			case "trunc64":
				os.Truncate(path, 64<<10)
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestCorruptSpool$", "-test.v")
			cmd.Env = append(os.Environ(), "ALERTBRIDGE_CORRUPT_CHILD="+path)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the bridge did not survive the %s spool: %v\n%s", damage, err, tail(string(out), 4000))
			}
			t.Logf("child: %s", firstLine(string(out), "recovery:"))
			if !strings.Contains(string(out), "CHILD OK") {
				t.Fatalf("child output:\n%s", tail(string(out), 4000))
			}
			if damage != "random" && !strings.Contains(string(out), "SPOOL DAMAGED") {
				t.Errorf("truncation not detected:\n%s", tail(string(out), 4000))
			}
			if strings.Contains(string(out), "SPOOL DAMAGED") {
				moved, _ := filepath.Glob(path + ".corrupt-*")
				if len(moved) != 1 {
					t.Errorf("damaged file not kept for inspection: %v", moved)
				}
			}
		})
	}
}

// corruptChild opens the damaged spool with New, as the binary does, and
// shows that intake and delivery work on the result.
func corruptChild(t *testing.T) {
	path := os.Getenv("ALERTBRIDGE_CORRUPT_CHILD")
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, path, func(c *Config) { c.Ntfy = ntfyTo(ns) })
	if tb.Recovery != nil {
		fmt.Printf("recovery: %+v\n", *tb.Recovery)
		if tb.counter("clavis_alertbridge_spool_recoveries_total") != 1 {
			t.Fatal("recovery not counted")
		}
		fmt.Println(tb.log.String())
	}
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 60*time.Second, "delivery on the recovered spool", func() bool {
		for _, m := range ntfy.Messages() {
			if m.Title == "[FIRING:1] PopDown fra1" {
				return true
			}
		}
		return false
	})
	fmt.Println("CHILD OK")
}

func firstLine(s, prefix string) string {
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return "(no " + prefix + " line)"
}
