package e2e

import (
	"fmt"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// TestVaultCountMissingIsOnePage: a POP whose vault data directory is gone
// fails its vault collector, which fires three alerts for one cause:
// PopVaultCountMissing (critical, after 5 minutes),
// PopTelemetryCollectorFailing{collector="vault"} (warning, ~13 minutes)
// and PopVaultCountStale (warning, 30 minutes: the index reports not
// ready while the directory is unusable). The critical one is the page;
// the shipped alertmanager.yml holds the other two back for that POP
// only, and not another collector's failure. On Debian's Alertmanager
// 0.25 and upstream 0.35.
func TestVaultCountMissingIsOnePage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Alertmanager")
	}
	t.Parallel()
	for _, bin := range []struct {
		name string
		bin  func(t *testing.T) string
	}{
		{"debian-alertmanager-0.25", func(t *testing.T) string { return e2eutil.RequireBinary(t, "prometheus-alertmanager", "alertmanager") }},
		{"upstream-alertmanager-0.35", func(t *testing.T) string { return e2eutil.Tool(t, "alertmanager") }},
	} {
		t.Run(bin.name, func(t *testing.T) {
			t.Parallel()
			vaultMissingInhibits(t, startShippedAlertmanager(t, bin.bin(t)))
		})
	}
}

func vaultMissingInhibits(t *testing.T, am *shippedAlertmanager) {
	alert := func(name, severity, pop string, kv ...string) map[string]string {
		l := map[string]string{"alertname": name, "severity": severity, "pop": pop, "region": "eu-central",
			"job": "clavis-pop", "instance": pop + ":9745"}
		for i := 0; i+1 < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return l
	}
	am.post(alert("PopVaultCountMissing", "critical", "fra1"))
	time.Sleep(time.Second)
	am.post(
		alert("PopVaultCountStale", "warning", "fra1"),
		alert("PopTelemetryCollectorFailing", "warning", "fra1", "collector", "vault"),
		alert("PopTelemetryCollectorFailing", "warning", "fra1", "collector", "filesystem"),
		alert("PopVaultCountStale", "warning", "ams1"),
		alert("PopTelemetryCollectorFailing", "warning", "ams1", "collector", "vault"),
	)
	want := map[string]string{
		"PopVaultCountMissing/fra1/":                   "active",
		"PopVaultCountStale/fra1/":                     "suppressed",
		"PopTelemetryCollectorFailing/fra1/vault":      "suppressed",
		"PopTelemetryCollectorFailing/fra1/filesystem": "active",
		"PopVaultCountStale/ams1/":                     "active",
		"PopTelemetryCollectorFailing/ams1/vault":      "active",
	}
	s := &stack{client: am.client}
	eventually(t, 10*time.Second, 200*time.Millisecond, "fra1's vault warnings held back by PopVaultCountMissing", func() (bool, string) {
		alerts, err := s.amAlerts(am.addr, `alertname=~"PopVault.*|PopTelemetryCollectorFailing"`)
		got := map[string]string{}
		for _, a := range alerts {
			got[a.Labels["alertname"]+"/"+a.Labels["pop"]+"/"+a.Labels["collector"]] = a.Status.State
		}
		ok := len(got) == len(want)
		for k, v := range want {
			ok = ok && got[k] == v
		}
		return ok, fmt.Sprintf("got %v, want %v (err %v)", got, want, err)
	})
}

// TestUnparsableLogHoldsBackNoTraffic: when the web server's log format
// changes under --accesslog.format, every line is malformed and the
// request counters stop: AccessLogUnparsable and PopNoTraffic fire for one
// cause, 15 minutes apart. The log alert says what to fix; the shipped
// alertmanager.yml holds PopNoTraffic of that POP back. On Debian's
// Alertmanager 0.25 and upstream 0.35.
func TestUnparsableLogHoldsBackNoTraffic(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Alertmanager")
	}
	t.Parallel()
	for _, bin := range []struct {
		name string
		bin  func(t *testing.T) string
	}{
		{"debian-alertmanager-0.25", func(t *testing.T) string { return e2eutil.RequireBinary(t, "prometheus-alertmanager", "alertmanager") }},
		{"upstream-alertmanager-0.35", func(t *testing.T) string { return e2eutil.Tool(t, "alertmanager") }},
	} {
		t.Run(bin.name, func(t *testing.T) {
			t.Parallel()
			am := startShippedAlertmanager(t, bin.bin(t))
			am.post(map[string]string{"alertname": "AccessLogUnparsable", "severity": "warning", "pop": "fra1", "region": "eu-central",
				"job": "clavis-pop", "instance": "fra1:9745"})
			time.Sleep(time.Second)
			am.post(
				map[string]string{"alertname": "PopNoTraffic", "severity": "warning", "pop": "fra1", "region": "eu-central"},
				map[string]string{"alertname": "PopNoTraffic", "severity": "warning", "pop": "ams1", "region": "eu-west"},
			)
			want := map[string]string{"AccessLogUnparsable/fra1": "active", "PopNoTraffic/fra1": "suppressed", "PopNoTraffic/ams1": "active"}
			s := &stack{client: am.client}
			eventually(t, 10*time.Second, 200*time.Millisecond, "fra1's PopNoTraffic held back by AccessLogUnparsable", func() (bool, string) {
				alerts, err := s.amAlerts(am.addr, `alertname=~"AccessLogUnparsable|PopNoTraffic"`)
				got := map[string]string{}
				for _, a := range alerts {
					got[a.Labels["alertname"]+"/"+a.Labels["pop"]] = a.Status.State
				}
				ok := len(got) == len(want)
				for k, v := range want {
					ok = ok && got[k] == v
				}
				return ok, fmt.Sprintf("got %v, want %v (err %v)", got, want, err)
			})
		})
	}
}
