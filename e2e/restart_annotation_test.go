package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestRestartAnnotationSeesRebootedPOPs runs each dashboard's "Exporter
// restarts" annotation query through promtool 2.x and 3.x on a POP that
// restarts twice: once in place (a deploy: the next scrape already sees the
// new process) and once after a reboot whose scrapes failed for 3 minutes.
// The second is the usual restart, and a query that compares samples within
// a 2-minute window (changes(...[2m])) never sees it: the old process's
// last sample is out of the window when the new one's first arrives.
func TestRestartAnnotationSeesRebootedPOPs(t *testing.T) {
	t.Parallel()
	var exprs []string
	for _, d := range loadDashboards(t) {
		for _, a := range d.Annotations.List {
			if a.Name == "Exporter restarts" {
				exprs = append(exprs, substitute(a.Expr, "fra1", "1m"))
			}
		}
	}
	if len(exprs) < 2 {
		t.Fatalf("want an Exporter restarts annotation on the fleet and POP dashboards, found %d", len(exprs))
	}
	// 15 s scrapes. The process started at 1 s; a deploy restarts it at
	// 295 s (first seen at 300 s); the host reboots at 600 s: scrapes fail
	// from 615 s (a staleness marker), the new process starts at 790 s and is
	// scraped from 795 s on. Times are Unix seconds from promtool's zero.
	series := "1x19 295x20 stale _x11 790x40"
	var b strings.Builder
	b.WriteString("rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 15s\n    input_series:\n")
	fmt.Fprintf(&b, "      - series: 'process_start_time_seconds{job=\"clavis-pop\",instance=\"fra1:9745\",pop=\"fra1\",region=\"eu-central\"}'\n        values: '%s'\n", series)
	b.WriteString("    promql_expr_test:\n")
	for _, e := range exprs {
		for _, c := range []struct {
			at   string
			want bool
		}{
			{"4m", false},  // no restart yet
			{"6m", true},   // the deploy
			{"9m", false},  // long after it
			{"12m", false}, // down
			{"14m", true},  // back after the reboot
			{"20m", false}, // long after it
		} {
			fmt.Fprintf(&b, "      - expr: %s\n        eval_time: %s\n", strconv.Quote("count("+e+")"), c.at)
			if c.want {
				b.WriteString("        exp_samples:\n          - labels: '{}'\n            value: 1\n")
			} else {
				b.WriteString("        exp_samples: []\n")
			}
		}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "restart_annotation_test.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for major, promtool := range promtools(t) {
		out, err := exec.Command(promtool, "test", "rules", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: the restart annotation misses a restart or marks none (%v):\n%s", major, err, out)
		}
	}
}

// TestAccessLogAgeIgnoresNoLineYet: clavis_accesslog_last_line_timestamp_seconds
// is 0 until a restarted clavis-telemetry parses its first line (on a quiet
// POP, minutes). The POP dashboard's "Access log age" must not read that as
// a last line in 1970 (56 years, which also flattens the panel's scale for
// the whole range); with a real timestamp it shows the age.
func TestAccessLogAgeIgnoresNoLineYet(t *testing.T) {
	t.Parallel()
	var expr string
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			if p.Title == "Access log age" && len(p.Targets) == 1 {
				expr = substitute(p.Targets[0].Expr, "fra1", "1m")
			}
		}
	}
	if expr == "" {
		t.Fatal("no Access log age panel with one query")
	}
	// fra1's last line at 100 s; at 10m it restarts and has parsed no line.
	test := fmt.Sprintf(`rule_files: []
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'clavis_accesslog_last_line_timestamp_seconds{job="clavis-pop",instance="fra1:9745",pop="fra1",region="eu-central"}'
        values: '100x9 0x10'
    promql_expr_test:
      - expr: %s
        eval_time: 5m
        exp_samples:
          - labels: '{}'
            value: 200
      - expr: %s
        eval_time: 15m
        exp_samples: []
`, strconv.Quote(expr), strconv.Quote(expr))
	path := filepath.Join(t.TempDir(), "accesslog_age_test.yml")
	if err := os.WriteFile(path, []byte(test), 0o644); err != nil {
		t.Fatal(err)
	}
	for major, promtool := range promtools(t) {
		out, err := exec.Command(promtool, "test", "rules", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %s (%v):\n%s", major, expr, err, out)
		}
	}
}

// TestAlertingDashboardKeepsRegionlessAlerts: the alerting pipeline
// dashboard's $region narrows the POP alerts, but the pipeline's own
// alerts (AlertbridgeDown, Watchdog, FleetPopsDown) carry no region; with
// a region chosen they must still show on that dashboard, not vanish with
// the other regions' POPs. Every ALERTS query of it (panels and
// annotations) through both promtools, $region set to eu-west.
func TestAlertingDashboardKeepsRegionlessAlerts(t *testing.T) {
	t.Parallel()
	var exprs []string
	for _, d := range loadDashboards(t) {
		if d.Title != "Clavis alerting pipeline" {
			continue
		}
		for _, a := range d.Annotations.List {
			if strings.Contains(a.Expr, "ALERTS{") {
				exprs = append(exprs, a.Expr)
			}
		}
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				if strings.Contains(tg.Expr, "ALERTS{") {
					exprs = append(exprs, tg.Expr)
				}
			}
		}
	}
	if len(exprs) < 2 {
		t.Fatalf("want the alerts annotation and panel of the alerting dashboard, found %q", exprs)
	}
	r := strings.NewReplacer("${region}", "eu-west", "$region", "eu-west")
	var b strings.Builder
	b.WriteString(`rule_files: []
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'ALERTS{alertname="Watchdog",alertstate="firing",severity="none"}'
        values: '1x10'
      - series: 'ALERTS{alertname="AlertbridgeDown",alertstate="firing",severity="critical",job="alertbridge"}'
        values: '1x10'
      - series: 'ALERTS{alertname="PopDown",alertstate="firing",severity="critical",job="clavis-pop",pop="ams1",region="eu-west"}'
        values: '1x10'
      - series: 'ALERTS{alertname="PopHighCPU",alertstate="firing",severity="warning",job="clavis-pop",pop="iad1",region="us-east"}'
        values: '1x10'
    promql_expr_test:
`)
	for _, e := range exprs {
		fmt.Fprintf(&b, "      - expr: %s\n        eval_time: 5m\n        exp_samples:\n", strconv.Quote("count by (alertname) ("+r.Replace(e)+")"))
		want := []string{"AlertbridgeDown", "PopDown", "Watchdog"}
		if strings.Contains(e, `alertname!="Watchdog"`) {
			want = want[:2]
		}
		for _, n := range want {
			fmt.Fprintf(&b, "          - labels: '{alertname=%q}'\n            value: 1\n", n)
		}
	}
	path := filepath.Join(t.TempDir(), "alerting_region_test.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	for major, promtool := range promtools(t) {
		out, err := exec.Command(promtool, "test", "rules", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: with a region chosen (%v):\n%s", major, err, out)
		}
	}
}
