package e2e

import (
	"path/filepath"
	"regexp"
	"slices"
	"testing"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// regionGrouped are the per-POP alerts that a region's network or provider
// failing fires on every POP of the region at once: Alertmanager groups
// them by region, so such an outage is one page per alert name, not one
// per POP (issue 15, section 1; issue 16's alert storm). And
// RegionPopsDown, whose page then names its region.
var regionGrouped = []string{"PopDown", "PopScrapesFailing", "PopScrapeNearTimeout", "PopNoTraffic", "PopTargetMissing", "RegionPopsDown"}

// fleetGrouped are alerts about a setting rather than a fault, which a
// whole fleet may share: one group for every POP.
var fleetGrouped = []string{"PopExporterRestartsUnseen"}

type amRoute struct {
	Receiver string    `yaml:"receiver"`
	Matchers []string  `yaml:"matchers"`
	GroupBy  []string  `yaml:"group_by"`
	Continue bool      `yaml:"continue"`
	Routes   []amRoute `yaml:"routes"`
}

var amMatcher = regexp.MustCompile(`^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"(.*)"\s*$`)

// matches reports whether labels satisfy every matcher of r, with
// Alertmanager's semantics (regexes anchored, a missing label is "").
func (r amRoute) matches(t *testing.T, labels map[string]string) bool {
	t.Helper()
	for _, m := range r.Matchers {
		p := amMatcher.FindStringSubmatch(m)
		if p == nil {
			t.Fatalf("matcher %q: not name op \"value\"", m)
		}
		v := labels[p[1]]
		var ok bool
		switch p[2] {
		case "=":
			ok = v == p[3]
		case "!=":
			ok = v != p[3]
		default:
			re := regexp.MustCompile("^(?:" + p[3] + ")$")
			ok = re.MatchString(v) == (p[2] == "=~")
		}
		if !ok {
			return false
		}
	}
	return true
}

// groupBy walks the tree as Alertmanager does (first matching child, no
// continue in this config) and returns the group_by in force and the
// receiver.
func (r amRoute) groupBy(t *testing.T, labels map[string]string, inherited []string, receiver string) ([]string, string) {
	t.Helper()
	if r.GroupBy != nil {
		inherited = r.GroupBy
	}
	if r.Receiver != "" {
		receiver = r.Receiver
	}
	for _, c := range r.Routes {
		if c.Continue {
			t.Fatalf("route %v uses continue: one alert would be notified twice", c.Matchers)
		}
		if c.matches(t, labels) {
			return c.groupBy(t, labels, inherited, receiver)
		}
	}
	return inherited, receiver
}

// TestAlertGroupingPerRegion: every alerting rule of prometheus/rules, with
// its severity, is routed by alertmanager.yml (single-host and HA) to the
// bridge grouped by [alertname, region] if it is one of regionGrouped and
// by [alertname, pop] otherwise; each region-grouped alert's rule keeps the
// region label; and both amtools (Debian's 0.25, upstream 0.35) route each
// to alertbridge.
func TestAlertGroupingPerRegion(t *testing.T) {
	t.Parallel()
	root := e2eutil.RepoRoot(t)
	severity := map[string]string{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				severity[r.Alert] = r.Labels["severity"]
			}
		}
	}
	for _, a := range regionGrouped {
		if _, ok := severity[a]; !ok {
			t.Errorf("regionGrouped names %s, which no rule defines", a)
		}
	}
	for _, file := range []string{"alertmanager.yml", "ha/alertmanager.yml"} {
		var cfg struct {
			Route amRoute `yaml:"route"`
		}
		readYAML(t, filepath.Join(root, "prometheus", file), &cfg)
		for alert, sev := range severity {
			labels := map[string]string{"alertname": alert, "severity": sev, "pop": "ams001", "region": "eu-west"}
			got, receiver := cfg.Route.groupBy(t, labels, nil, "")
			want := []string{"alertname", "pop"}
			if slices.Contains(regionGrouped, alert) {
				want = []string{"alertname", "region"}
			}
			if slices.Contains(fleetGrouped, alert) {
				want = []string{"alertname"}
			}
			if alert == "Watchdog" {
				continue // its own heartbeat receiver; one alert
			}
			if !slices.Equal(got, want) || receiver != "alertbridge" {
				t.Errorf("%s: %s (severity %s) grouped by %v to %s, want %v to alertbridge", file, alert, sev, got, receiver, want)
			}
		}
	}

	// The grouping label must survive each rule's expression (a
	// region-grouped alert without region would be one fleet-wide group):
	// the promtool unit tests, which TestRulesCheckAndUnitTests runs, give
	// every firing alert's exact labels; each must carry region.
	firing := map[string]int{}
	testFiles, _ := filepath.Glob(filepath.Join(root, "prometheus", "tests", "*.yml"))
	for _, f := range testFiles {
		var tf struct {
			Tests []struct {
				AlertRuleTest []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []struct {
						ExpLabels map[string]string `yaml:"exp_labels"`
					} `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		readYAML(t, f, &tf)
		for _, tc := range tf.Tests {
			for _, at := range tc.AlertRuleTest {
				if !slices.Contains(regionGrouped, at.Alertname) {
					continue
				}
				for _, e := range at.ExpAlerts {
					firing[at.Alertname]++
					if e.ExpLabels["region"] == "" {
						t.Errorf("%s: %s fires without a region label %v: it would not be grouped per region", filepath.Base(f), at.Alertname, e.ExpLabels)
					}
				}
			}
		}
	}
	for _, a := range regionGrouped {
		if firing[a] == 0 {
			t.Errorf("no promtool unit test shows %s firing with its labels", a)
		}
	}

	for _, tools := range []struct{ name, amtool string }{
		{"debian", e2eutil.RequireBinary(t, "amtool")},
		{"upstream", e2eutil.Tool(t, "amtool")},
	} {
		for _, file := range []string{"alertmanager.yml", "ha/alertmanager.yml"} {
			for _, a := range regionGrouped {
				runTool(t, filepath.Join(root, "prometheus"), tools.amtool, "config", "routes", "test", "--config.file="+file,
					"--verify.receivers=alertbridge", "alertname="+a, "severity="+severity[a], "pop=ams001", "region=eu-west")
			}
		}
		t.Logf("%s amtool routes %v to alertbridge", tools.name, regionGrouped)
	}
}
