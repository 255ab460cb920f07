package e2e

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// haPromTemplate adapts prometheus/ha/prometheus.yml: the global intervals,
// the replica name the operator would pass in CLAVIS_REPLICA, and the
// addresses. alert_relabel_configs stays as it is: it is what is tested.
func haPromTemplate(t *testing.T, s *stack, src string, i int, self string) string {
	amTargets := "'" + strings.Join(s.amAddrs, "', '") + "'"
	return templated(t, src,
		globalIntervals, shortIntervals,
		"replica: ${CLAVIS_REPLICA}", "replica: "+string(rune('a'+i)),
		"'alertmanager-a.central.example.net:9093', 'alertmanager-b.central.example.net:9093'", amTargets,
		"'alertbridge.central.example.net:9746'", "'"+s.bridgeAddr+"'",
		"'127.0.0.1:9090'", "'"+self+"'",
	)
}

// TestHAPipelineNotifiesOnce runs two Prometheus replicas (external label
// replica, dropped for alerts) and two clustered Alertmanagers on loopback
// with the repository's HA config: a POP outage reaches the fake ntfy
// exactly once, and so does a second outage while one Alertmanager is
// stopped.
func TestHAPipelineNotifiesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: real Prometheus and Alertmanager, several minutes")
	}
	t.Parallel()
	s := startStack(t, stackOptions{pops: 2, prometheuses: 2, alertmanagers: 2, firstLoopback: 10, host: "127.0.2.1",
		promConfig: "ha/prometheus.yml", promTemplate: haPromTemplate,
		promFlags: []string{"--enable-feature=expand-external-labels"}})

	for _, prom := range s.promAddrs {
		eventually(t, 60*time.Second, 500*time.Millisecond, "both POPs up on "+prom, func() (bool, string) {
			v, ok, err := s.promValue(prom, `sum(up{job="clavis-pop"})`)
			return ok && v == 2, fmt.Sprintf("sum(up)=%v ok=%v err=%v", v, ok, err)
		})
		// Both Alertmanagers are known to each replica.
		eventually(t, 30*time.Second, 500*time.Millisecond, "both Alertmanagers discovered by "+prom, func() (bool, string) {
			v, ok, err := s.promValue(prom, `prometheus_notifications_alertmanagers_discovered`)
			return ok && v == 2, fmt.Sprintf("discovered=%v ok=%v err=%v", v, ok, err)
		})
	}
	// The cluster has formed.
	for _, am := range s.amAddrs {
		eventually(t, 30*time.Second, 500*time.Millisecond, "Alertmanager cluster of two at "+am, func() (bool, string) {
			resp, err := s.client.Get("http://" + am + "/api/v2/status")
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			var st struct {
				Cluster struct {
					Status string `json:"status"`
					Peers  []any  `json:"peers"`
				} `json:"cluster"`
			}
			if err := decodeJSON(resp.Body, &st); err != nil {
				return false, err.Error()
			}
			return st.Cluster.Status == "ready" && len(st.Cluster.Peers) == 2, fmt.Sprintf("%+v", st.Cluster)
		})
	}

	// Outage 1, with the whole cluster up. Outage 2 starts a minute later;
	// once outage 1 has paged, the first Alertmanager is stopped, so
	// outage 2 is notified by the survivor alone.
	first, second := s.pops[0], s.pops[1]
	first.stop(t)
	time.Sleep(time.Minute)
	second.stop(t)

	title1 := "[FIRING:1] PopDown " + first.name
	eventually(t, 3*time.Minute, time.Second, "outage 1 paged", func() (bool, string) {
		return len(s.ntfyTitled(title1)) > 0, fmt.Sprintf("ntfy titles %v", titles(s))
	})
	_ = s.amCmds[0].Process.Signal(os.Interrupt)
	t.Logf("stopped Alertmanager %s", s.amAddrs[0])

	title2 := "[FIRING:1] PopDown " + second.name
	eventually(t, 3*time.Minute, time.Second, "outage 2 paged with one Alertmanager stopped", func() (bool, string) {
		return len(s.ntfyTitled(title2)) > 0, fmt.Sprintf("ntfy titles %v", titles(s))
	})
	// Give a duplicate every chance to arrive: the second Alertmanager of a
	// cluster waits --cluster.peer-timeout (15 s) before it sends.
	time.Sleep(20 * time.Second)
	for _, title := range []string{title1, title2} {
		if n := len(s.ntfyTitled(title)); n != 1 {
			t.Errorf("%d messages %q at ntfy, want exactly 1 (titles: %v)", n, title, titles(s))
		}
	}
	// Both replicas evaluated the alert: the single page is deduplication,
	// not one replica being silent.
	for _, prom := range s.promAddrs {
		v, ok, err := s.promValue(prom, fmt.Sprintf(`ALERTS{alertname="PopDown", alertstate="firing", pop=%q}`, second.name))
		if !ok || v != 1 {
			t.Errorf("Prometheus %s: PopDown for %s not firing (%v %v %v)", prom, second.name, v, ok, err)
		}
	}
	// The alert Alertmanager holds carries no replica label.
	alerts, err := s.amAlerts(s.amAddrs[1], `alertname="PopDown"`)
	if err != nil || len(alerts) != 2 {
		t.Fatalf("surviving Alertmanager holds %d PopDown alerts (%v), want 2", len(alerts), err)
	}
	for _, a := range alerts {
		if _, ok := a.Labels["replica"]; ok {
			t.Errorf("alert %v kept the replica label", a.Labels)
		}
	}
}
