package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestCentralPipelineEndToEnd runs three POPs, alertbridge with the fake
// ntfy and Kuma, Prometheus and Alertmanager with the repository's config,
// and proves the whole path: every POP scraped over TLS with basic auth,
// every dashboard query answered with data, and a POP outage paged through
// Alertmanager and alertbridge to ntfy and Kuma, then resolved, while the
// Watchdog heartbeat keeps reaching Kuma. It runs twice, in parallel: on
// Debian's Prometheus 2.42 and Alertmanager 0.25, and on the current
// upstream Prometheus 3.16 and Alertmanager 0.35 (tools/).
//
// The rules run untouched, so PopDown waits its full `for: 2m`; the test
// takes about five minutes.
func TestCentralPipelineEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: real Prometheus and Alertmanager, several minutes")
	}
	t.Parallel()
	forEachPeers(t, func(t *testing.T, peers centralPeers, i int) {
		s := startStack(t, stackOptions{peers: peers, pops: 3, prometheuses: 1, alertmanagers: 1,
			firstLoopback: 2 + 3*i, host: fmt.Sprintf("127.0.1.%d", 1+i)})
		centralPipeline(t, s)
	})
}

func centralPipeline(t *testing.T, s *stack) {
	prom, am := s.promAddrs[0], s.amAddrs[0]

	// 1. All three POPs are scraped (TLS, basic auth, file_sd labels).
	eventually(t, 60*time.Second, 500*time.Millisecond, "three clavis-pop targets up", func() (bool, string) {
		v, ok, err := s.promValue(prom, `sum(up{job="clavis-pop"})`)
		return ok && v == 3, fmt.Sprintf("sum(up)=%v ok=%v err=%v", v, ok, err)
	})
	for _, p := range s.pops {
		v, ok, err := s.promValue(prom, fmt.Sprintf(`up{job="clavis-pop", pop=%q, region=%q}`, p.name, p.region))
		if err != nil || !ok || v != 1 {
			t.Fatalf("POP %s: up=%v ok=%v err=%v", p.name, v, ok, err)
		}
	}

	// 2. Every query of every dashboard panel returns data.
	s.trapScanner()
	queries := dashboardQueries(t, s.pops[0].name, "1m")
	// A query counts once it has returned data: on a loaded machine one
	// scrape may time out and mark a POP's series stale for a moment.
	answered := make([]bool, len(queries))
	eventually(t, 2*time.Minute, 2*time.Second, "every dashboard query returns data", func() (bool, string) {
		var empty []string
		for i, q := range queries {
			if answered[i] {
				continue
			}
			n, _, err := s.promQuery(prom, q.expr)
			if err != nil {
				t.Fatalf("%s / %s / %s: %v", q.dashboard, q.panel, q.refID, err)
			}
			if answered[i] = n > 0; !answered[i] {
				empty = append(empty, fmt.Sprintf("%s / %s / %s: %s", q.dashboard, q.panel, q.refID, q.expr))
			}
		}
		if len(empty) > 0 {
			s.trapScanner()
		}
		return len(empty) == 0, fmt.Sprintf("%d of %d queries without data:\n  %s", len(empty), len(queries), strings.Join(empty, "\n  "))
	})
	t.Logf("%d dashboard queries returned data", len(queries))

	// The Watchdog heartbeat reaches Kuma before anything is wrong.
	eventually(t, 60*time.Second, 500*time.Millisecond, "first Watchdog push to Kuma", func() (bool, string) {
		ps := s.kumaPushes()
		return len(ps) > 0 && ps[len(ps)-1].Status == "up", fmt.Sprintf("pushes: %+v", ps)
	})

	// 3. One POP goes down.
	victim := s.pops[1]
	stoppedAt := time.Now()
	victim.stop(t)
	t.Logf("stopped POP %s at %s", victim.name, stoppedAt.Format(time.TimeOnly))

	eventually(t, 3*time.Minute+30*time.Second, time.Second, "PopDown firing in Prometheus", func() (bool, string) {
		alerts, err := s.promAlerts(prom)
		for _, a := range alerts {
			if a.Labels["alertname"] == "PopDown" && a.State == "firing" {
				if a.Labels["pop"] != victim.name {
					t.Fatalf("PopDown fired for %s, which is up", a.Labels["pop"])
				}
				return true, ""
			}
		}
		return false, fmt.Sprintf("alerts %+v err %v", alerts, err)
	})
	// The rule's `for: 2m`, from Prometheus's own records rather than this
	// test's clock: the alert went pending no earlier than the first failed
	// scrape, and its first firing sample is at least 2 minutes after that.
	victimSel := fmt.Sprintf(`pop=%q`, victim.name)
	firstDown := s.promFirstSample(t, prom, `up{job="clavis-pop", `+victimSel+`}`, func(v float64) bool { return v == 0 })
	activeAt := s.promActiveAt(t, prom, "PopDown", victim.name)
	firstFiring := s.promFirstSample(t, prom, `ALERTS{alertname="PopDown", alertstate="firing", `+victimSel+`}`, nil)
	if activeAt.Before(firstDown) {
		t.Errorf("PopDown pending since %s, before the first failed scrape at %s", activeAt, firstDown)
	}
	// Sample timestamps are milliseconds, activeAt nanoseconds.
	if held := firstFiring.Sub(activeAt); held < 2*time.Minute-time.Millisecond {
		t.Errorf("PopDown fired %s after it went pending (first failed scrape %s, pending %s, firing %s); the rule says for: 2m",
			held, firstDown.Format(time.TimeOnly), activeAt.Format(time.TimeOnly), firstFiring.Format(time.TimeOnly))
	}
	eventually(t, 30*time.Second, 500*time.Millisecond, "PopDown active in Alertmanager", func() (bool, string) {
		alerts, err := s.amAlerts(am, `alertname="PopDown"`)
		for _, a := range alerts {
			if a.Labels["pop"] == victim.name && a.Status.State == "active" && a.Labels["severity"] == "critical" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("alerts %+v err %v", alerts, err)
	})
	eventually(t, 60*time.Second, 500*time.Millisecond, "PopDown page at ntfy", func() (bool, string) {
		return len(s.ntfyFor("FIRING", "PopDown", victim.name)) > 0, fmt.Sprintf("ntfy messages: %+v", s.ntfy.Messages())
	})
	page := s.ntfyFor("FIRING", "PopDown", victim.name)[0]
	if page.Priority != 5 || page.Topic != ntfyTopic {
		t.Errorf("page %+v: want priority 5 (critical) on topic %s", page, ntfyTopic)
	}
	if !strings.Contains(page.Message, "POP "+victim.name+" is down") {
		t.Errorf("page body %q lacks the alert's summary", page.Message)
	}
	// alertbridge counts a notification once ntfy has answered, which can
	// be a moment after the fake has shown the message to this test.
	eventually(t, 10*time.Second, 200*time.Millisecond, "alertbridge counting the ntfy page", func() (bool, string) {
		v, ok := s.bridgeMetric(`clavis_alertbridge_notifications_sent_total{target="ntfy"}`)
		return ok && v >= 1, fmt.Sprintf("alertbridge reports %v ntfy notifications sent (ok=%v)", v, ok)
	})
	eventually(t, 30*time.Second, 500*time.Millisecond, "Kuma down", func() (bool, string) {
		ps := s.kumaPushes()
		last := ps[len(ps)-1]
		return last.Status == "down" && strings.Contains(last.Msg, "PopDown"), fmt.Sprintf("last push %+v", last)
	})
	// The heartbeat goes on during the outage: Alertmanager repeats the
	// Watchdog every minute, and each copy is a push of the current (down)
	// state. The bridge pushes only on a change or a heartbeat, so a second
	// down push with the same message is a heartbeat.
	eventually(t, 3*time.Minute, time.Second, "a Watchdog heartbeat push to Kuma during the outage", func() (bool, string) {
		n := 0
		for _, p := range s.kumaPushes() {
			if p.Status == "down" && strings.Contains(p.Msg, "PopDown") {
				n++
			}
		}
		return n >= 2, fmt.Sprintf("%d down pushes so far: %+v", n, s.kumaPushes())
	})

	// The POP comes back: the resolution reaches ntfy and Kuma goes up.
	victim.start(t)
	s.waitPOP(t, victim)
	eventually(t, 2*time.Minute, time.Second, "PopDown resolution at ntfy", func() (bool, string) {
		return len(s.ntfyFor("RESOLVED", "PopDown", victim.name)) > 0, fmt.Sprintf("ntfy titles: %v", titles(s))
	})
	eventually(t, 30*time.Second, 500*time.Millisecond, "Kuma up again", func() (bool, string) {
		ps := s.kumaPushes()
		return ps[len(ps)-1].Status == "up", fmt.Sprintf("last push %+v", ps[len(ps)-1])
	})

	// One page and one resolution: no duplicates, no Watchdog at ntfy.
	for _, status := range []string{"FIRING", "RESOLVED"} {
		if n := len(s.ntfyFor(status, "PopDown", victim.name)); n != 1 {
			t.Errorf("%d %s PopDown %s messages, want exactly 1 (titles %v)", n, status, victim.name, titles(s))
		}
	}
	for _, m := range s.ntfy.Messages() {
		if strings.Contains(m.Title, "Watchdog") {
			t.Errorf("Watchdog reached ntfy: %+v", m)
		}
	}

	// Kuma saw the whole story, in order: up (heartbeats before the
	// outage), down (the page, then heartbeats), up again (the resolution);
	// and every push the bridge counts as sent is one the fake recorded.
	ps := s.kumaPushes()
	var story []string
	for _, p := range ps {
		if len(story) == 0 || story[len(story)-1] != p.Status {
			story = append(story, p.Status)
		}
	}
	if got := strings.Join(story, " "); got != "up down up" {
		t.Errorf("Kuma states in order: %q, want \"up down up\" (pushes %+v)", got, ps)
	}
	eventually(t, 10*time.Second, 200*time.Millisecond, "alertbridge's Kuma count matching the fake's", func() (bool, string) {
		v, ok := s.bridgeMetric(`clavis_alertbridge_notifications_sent_total{target="kuma"}`)
		n := len(s.kumaPushes())
		return ok && int(v) == n, fmt.Sprintf("alertbridge counts %v Kuma pushes sent (ok=%v), the fake recorded %d", v, ok, n)
	})
	t.Logf("pipeline proven in %s; %d Kuma pushes, %d ntfy messages", time.Since(stoppedAt).Round(time.Second), len(ps), len(s.ntfy.Messages()))
}

func titles(s *stack) []string {
	var out []string
	for _, m := range s.ntfy.Messages() {
		out = append(out, m.Title)
	}
	return out
}
