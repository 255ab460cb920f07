package e2e

import (
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// The central configuration in prometheus/ is checked by the real tools that
// will load it: promtool (config, rules, rule unit tests) and amtool.

func runTool(t *testing.T, dir, bin string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(bin), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// copyDir copies the regular files of src (recursively) into dst.
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPrometheusConfigValid(t *testing.T) {
	t.Parallel()
	promtool := e2eutil.RequireBinary(t, "promtool")
	// promtool check config also checks that the secret files exist; give it
	// placeholders in a copy, as an operator would have the real ones.
	dir := t.TempDir()
	copyDir(t, filepath.Join(e2eutil.RepoRoot(t), "prometheus"), dir)
	if err := os.MkdirAll(filepath.Join(dir, "secrets"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"pop-ca.crt", "pop-scrape-password"} {
		if err := os.WriteFile(filepath.Join(dir, "secrets", f), []byte("x\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	out := runTool(t, dir, promtool, "check", "config", "prometheus.yml")
	if !strings.Contains(out, "SUCCESS: prometheus.yml is valid") {
		t.Fatalf("unexpected promtool output:\n%s", out)
	}
	// The HA replicas' config too (the e2e HA test runs it).
	out = runTool(t, dir, promtool, "check", "config", filepath.Join("ha", "prometheus.yml"))
	ruleFiles, _ := filepath.Glob(filepath.Join(dir, "rules", "*.yml"))
	if !strings.Contains(out, "SUCCESS: ha/prometheus.yml is valid") || !strings.Contains(out, fmt.Sprintf("SUCCESS: %d rule files found", len(ruleFiles))) {
		t.Fatalf("unexpected promtool output:\n%s", out)
	}

	// The documented shape: the POP job scrapes over https with basic auth
	// from a file, targets from file_sd, 15 s interval.
	var cfg struct {
		Global struct {
			ScrapeInterval string `yaml:"scrape_interval"`
			ScrapeTimeout  string `yaml:"scrape_timeout"`
		} `yaml:"global"`
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName        string `yaml:"job_name"`
			Scheme         string `yaml:"scheme"`
			ScrapeInterval string `yaml:"scrape_interval"`
			ScrapeTimeout  string `yaml:"scrape_timeout"`
			BasicAuth      *struct {
				PasswordFile string `yaml:"password_file"`
				Password     string `yaml:"password"`
			} `yaml:"basic_auth"`
			TLSConfig *struct {
				CAFile string `yaml:"ca_file"`
			} `yaml:"tls_config"`
			FileSD []struct {
				Files []string `yaml:"files"`
			} `yaml:"file_sd_configs"`
		} `yaml:"scrape_configs"`
	}
	readYAML(t, filepath.Join(dir, "prometheus.yml"), &cfg)
	var found bool
	for _, sc := range cfg.ScrapeConfigs {
		if sc.JobName != "clavis-pop" {
			continue
		}
		found = true
		// The interval and timeout come from the global section, the one
		// place the end-to-end test shortens them.
		if sc.Scheme != "https" || sc.ScrapeInterval != "" || sc.ScrapeTimeout != "" ||
			cfg.Global.ScrapeInterval != "15s" || cfg.Global.ScrapeTimeout != "10s" {
			t.Errorf("clavis-pop: scheme %q, job interval %q timeout %q, global interval %q timeout %q; want https, 15s and 10s from global",
				sc.Scheme, sc.ScrapeInterval, sc.ScrapeTimeout, cfg.Global.ScrapeInterval, cfg.Global.ScrapeTimeout)
		}
		if sc.BasicAuth == nil || sc.BasicAuth.PasswordFile == "" || sc.BasicAuth.Password != "" {
			t.Errorf("clavis-pop: basic auth must come from password_file only")
		}
		if sc.TLSConfig == nil || sc.TLSConfig.CAFile == "" {
			t.Errorf("clavis-pop: tls_config.ca_file missing")
		}
		if len(sc.FileSD) == 0 {
			t.Errorf("clavis-pop: no file_sd_configs")
		}
	}
	if !found {
		t.Fatal("no clavis-pop job")
	}

	// Every example target has the pop and region labels.
	var groups []struct {
		Targets []string          `yaml:"targets"`
		Labels  map[string]string `yaml:"labels"`
	}
	readYAML(t, filepath.Join(dir, "targets", "pops.yml"), &groups)
	if len(groups) == 0 {
		t.Fatal("targets/pops.yml has no target")
	}
	for _, g := range groups {
		if g.Labels["pop"] == "" || g.Labels["region"] == "" {
			t.Errorf("target group %v lacks pop or region label", g.Targets)
		}
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// promtools returns the promtools the central config must satisfy, by
// major version: Debian's 2.x (Prometheus 2.42, what Debian's package
// runs) and the current 3.x that tools/ builds from its Go module. Rule
// windows behave differently between them (3.x range selectors are
// left-open), so every rule test runs on both.
func promtools(t *testing.T) map[string]string {
	t.Helper()
	return map[string]string{
		"2": e2eutil.RequireBinary(t, "promtool"),
		"3": e2eutil.Tool(t, "promtool"),
	}
}

func TestRulesCheckAndUnitTests(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(e2eutil.RepoRoot(t), "prometheus")
	rules, _ := filepath.Glob(filepath.Join(dir, "rules", "*.yml"))
	tests, _ := filepath.Glob(filepath.Join(dir, "tests", "*.yml"))
	if len(rules) == 0 || len(tests) == 0 {
		t.Fatalf("rules %v tests %v", rules, tests)
	}
	for major, promtool := range promtools(t) {
		t.Run("promtool"+major, func(t *testing.T) {
			t.Parallel()
			if v := runTool(t, dir, promtool, "--version"); !strings.Contains(v, "version "+major+".") {
				t.Fatalf("%s is not promtool %s.x:\n%s", promtool, major, v)
			}
			runTool(t, dir, promtool, append([]string{"check", "rules"}, rules...)...)
			out := runTool(t, dir, promtool, append([]string{"test", "rules"}, tests...)...)
			if strings.Contains(out, "FAILED") || strings.Count(out, "SUCCESS") != len(tests) {
				t.Fatalf("promtool %s test rules: want SUCCESS for each of %d files:\n%s", major, len(tests), out)
			}
		})
	}
}

type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

type ruleTestFile struct {
	Tests []struct {
		AlertRuleTest []struct {
			Alertname string        `yaml:"alertname"`
			ExpAlerts []interface{} `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTest []struct {
			Expr string `yaml:"expr"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// The alerts the issues ask for, each with severity, summary, description
// and a runbook_url pointing at a heading of docs/runbooks.md, and each with
// a promtool unit test where it fires and one where it does not.
var requiredAlerts = []string{
	"PopDown", "PopScrapesFailing", "PopTelemetryCollectorFailing",
	"PopDiskWillFillIn24h", "PopDiskWillFillIn4h", "PopDiskAlmostFull", "PopInodesAlmostExhausted",
	"PopFilesystemReadOnly", "PopFilesystemDeviceError",
	"PopMemoryPressure", "PopHighCPU", "PopErrorBudgetBurnFast", "PopErrorBudgetBurnSlow", "PopHTTPLatencyHigh",
	"PopNoTraffic", "PopVaultCountDropped", "PopVaultCountMissing", "PopVaultCountStale", "PopPrivacyRedactions",
	"PopExporterRestarting", "PopExporterRestartsUnseen", "PopScrapeNearTimeout",
	"TarpitSurge", "TarpitLogDropping", "TarpitAcceptErrors", "AccessLogStalled", "AccessLogUnparsable",
	"RegionPopsDown", "FleetPopsDown", "PopTargetsAbsent", "PopTargetMissing", "FleetShrunk",
	"AlertbridgeSpoolBacklog", "AlertbridgeDeliveryFailing", "AlertbridgeDown", "AlertmanagerDown",
	"AlertmanagerClusterMembersMissing", "PrometheusRuleEvaluationFailures", "PrometheusConfigReloadFailed",
	"PrometheusNotificationErrors", "PrometheusAlertmanagerNotConnected", "PrometheusFileSDReadErrors",
	"Watchdog",
}

func loadRules(t *testing.T) ruleFile {
	t.Helper()
	var all ruleFile
	files, _ := filepath.Glob(filepath.Join(e2eutil.RepoRoot(t), "prometheus", "rules", "*.yml"))
	for _, f := range files {
		var rf ruleFile
		readYAML(t, f, &rf)
		all.Groups = append(all.Groups, rf.Groups...)
	}
	return all
}

// promIdent matches whole PromQL identifiers, recording rule names
// (level:metric:operations) included.
var promIdent = regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)

func TestEveryAlertDocumentedAndTested(t *testing.T) {
	t.Parallel()
	root := e2eutil.RepoRoot(t)
	runbooks, err := os.ReadFile(filepath.Join(root, "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	headings := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)\s*$`).FindAllStringSubmatch(string(runbooks), -1) {
		headings[strings.ToLower(m[1])] = true
	}

	firing, silent := map[string]bool{}, map[string]bool{}
	tested := map[string]bool{}
	testFiles, _ := filepath.Glob(filepath.Join(root, "prometheus", "tests", "*.yml"))
	for _, f := range testFiles {
		var tf ruleTestFile
		readYAML(t, f, &tf)
		for _, tg := range tf.Tests {
			for _, at := range tg.AlertRuleTest {
				if len(at.ExpAlerts) > 0 {
					firing[at.Alertname] = true
				} else {
					silent[at.Alertname] = true
				}
			}
			// An expression test covers every recording rule it names
			// (some round a value whose last bits differ between versions).
			for _, pt := range tg.PromQLExprTest {
				for _, id := range promIdent.FindAllString(pt.Expr, -1) {
					tested[id] = true
				}
			}
		}
	}

	seen := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				if !tested[r.Record] {
					t.Errorf("recording rule %s has no promql_expr_test", r.Record)
				}
				continue
			}
			seen[r.Alert] = true
			if !slices.Contains([]string{"critical", "warning", "info", "none"}, r.Labels["severity"]) {
				t.Errorf("%s: severity %q", r.Alert, r.Labels["severity"])
			}
			for _, a := range []string{"summary", "description", "runbook_url"} {
				if r.Annotations[a] == "" {
					t.Errorf("%s: annotation %s missing", r.Alert, a)
				}
			}
			anchor := strings.ToLower(r.Alert)
			if !strings.HasSuffix(r.Annotations["runbook_url"], "docs/runbooks.md#"+anchor) {
				t.Errorf("%s: runbook_url %q does not point at docs/runbooks.md#%s", r.Alert, r.Annotations["runbook_url"], anchor)
			}
			if !headings[anchor] {
				t.Errorf("%s: docs/runbooks.md has no heading \"## %s\"", r.Alert, r.Alert)
			}
			if !firing[r.Alert] {
				t.Errorf("%s: no promtool test where it fires", r.Alert)
			}
			// Watchdog is always firing by definition: nothing to test silent.
			if !silent[r.Alert] && r.Alert != "Watchdog" {
				t.Errorf("%s: no promtool test where it does not fire", r.Alert)
			}
		}
	}
	for _, a := range requiredAlerts {
		if !seen[a] {
			t.Errorf("alert %s missing from prometheus/rules", a)
		}
	}
}

func TestAlertmanagerConfigValid(t *testing.T) {
	t.Parallel()
	amtool := e2eutil.RequireBinary(t, "amtool")
	dir := filepath.Join(e2eutil.RepoRoot(t), "prometheus")
	out := runTool(t, dir, amtool, "check-config", "alertmanager.yml")
	if !strings.Contains(out, "SUCCESS") {
		t.Fatalf("amtool check-config:\n%s", out)
	}

	// Routing, as Alertmanager itself computes it.
	routes := []struct {
		labels   []string
		receiver string
	}{
		{[]string{"alertname=Watchdog", "severity=none"}, "alertbridge-heartbeat"},
		{[]string{"alertname=PopDown", "severity=critical", "pop=fra1"}, "alertbridge"},
		{[]string{"alertname=PopHighCPU", "severity=warning", "pop=fra1"}, "alertbridge"},
		{[]string{"alertname=TarpitSurge", "severity=info", "pop=fra1"}, "alertbridge"},
	}
	for _, r := range routes {
		args := append([]string{"config", "routes", "test", "--config.file=alertmanager.yml", "--verify.receivers=" + r.receiver}, r.labels...)
		runTool(t, dir, amtool, args...)
	}

	var cfg struct {
		Route struct {
			GroupBy []string `yaml:"group_by"`
			Routes  []struct {
				Matchers       []string `yaml:"matchers"`
				Receiver       string   `yaml:"receiver"`
				RepeatInterval string   `yaml:"repeat_interval"`
			} `yaml:"routes"`
		} `yaml:"route"`
		InhibitRules []struct {
			SourceMatchers []string `yaml:"source_matchers"`
			TargetMatchers []string `yaml:"target_matchers"`
			Equal          []string `yaml:"equal"`
		} `yaml:"inhibit_rules"`
		Receivers []struct {
			Name           string `yaml:"name"`
			WebhookConfigs []struct {
				URL          string `yaml:"url"`
				SendResolved bool   `yaml:"send_resolved"`
				HTTPConfig   struct {
					Authorization struct {
						Type            string `yaml:"type"`
						Credentials     string `yaml:"credentials"`
						CredentialsFile string `yaml:"credentials_file"`
					} `yaml:"authorization"`
				} `yaml:"http_config"`
			} `yaml:"webhook_configs"`
		} `yaml:"receivers"`
	}
	readYAML(t, filepath.Join(dir, "alertmanager.yml"), &cfg)
	if !slices.Contains(cfg.Route.GroupBy, "alertname") || !slices.Contains(cfg.Route.GroupBy, "pop") {
		t.Errorf("group_by %v, want alertname and pop", cfg.Route.GroupBy)
	}
	var heartbeat bool
	for _, r := range cfg.Route.Routes {
		if slices.Contains(r.Matchers, `alertname="Watchdog"`) {
			heartbeat = r.RepeatInterval == "1m"
		}
	}
	if !heartbeat {
		t.Error("no Watchdog route with repeat_interval 1m")
	}
	var inhibit bool
	for _, ir := range cfg.InhibitRules {
		if slices.Contains(ir.SourceMatchers, `alertname="PopDown"`) && slices.Equal(ir.Equal, []string{"pop"}) {
			inhibit = true
		}
	}
	if !inhibit {
		t.Error("no inhibition of a POP's other alerts by PopDown")
	}
	for _, rc := range cfg.Receivers {
		if len(rc.WebhookConfigs) == 0 {
			t.Errorf("receiver %s: no webhook", rc.Name)
		}
		for _, wc := range rc.WebhookConfigs {
			a := wc.HTTPConfig.Authorization
			if !wc.SendResolved || !strings.HasSuffix(wc.URL, "/webhook") || a.CredentialsFile == "" || a.Credentials != "" || !strings.EqualFold(a.Type, "bearer") {
				t.Errorf("receiver %s: webhook %+v must post to alertbridge's /webhook with send_resolved and a bearer token from a file", rc.Name, wc)
			}
		}
	}
}

// TestScrapeNearTimeoutMatchesConfig keeps PopScrapeNearTimeout's threshold
// at 80% of the scrape_timeout prometheus.yml sets: a threshold above the
// timeout could never fire, and one far below it would fire on healthy POPs.
func TestScrapeNearTimeoutMatchesConfig(t *testing.T) {
	t.Parallel()
	var cfg struct {
		Global struct {
			ScrapeTimeout string `yaml:"scrape_timeout"`
		} `yaml:"global"`
	}
	readYAML(t, filepath.Join(e2eutil.RepoRoot(t), "prometheus", "prometheus.yml"), &cfg)
	timeout, err := time.ParseDuration(cfg.Global.ScrapeTimeout)
	if err != nil {
		t.Fatalf("global scrape_timeout %q: %v", cfg.Global.ScrapeTimeout, err)
	}
	threshold := regexp.MustCompile(`scrape_duration_seconds\{job="clavis-pop"\}\[[0-9a-z]+\]\)\s*>\s*([0-9.]+)\s*$`)
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert != "PopScrapeNearTimeout" {
				continue
			}
			m := threshold.FindStringSubmatch(strings.TrimSpace(r.Expr))
			if m == nil {
				t.Fatalf("PopScrapeNearTimeout: no `scrape_duration_seconds{job=\"clavis-pop\"}[...]) > N` in %q", r.Expr)
			}
			v, err := strconv.ParseFloat(m[1], 64)
			if err != nil {
				t.Fatal(err)
			}
			if want := 0.8 * timeout.Seconds(); math.Abs(v-want) > 1e-9 {
				t.Errorf("PopScrapeNearTimeout fires above %gs; scrape_timeout is %s, want 80%% of it (%gs)", v, timeout, want)
			}
			return
		}
	}
	t.Fatal("no PopScrapeNearTimeout rule")
}

// TestInfoAlertsNeverShareAPage: alertbridge sends a group whose alerts
// are all info at low priority (or drops it), and a group with anything
// else at the highest severity it holds. Alertmanager groups by alertname,
// so an info alert reaches a phone at paging priority only if one alert
// name had two severities: no rule may do that.
func TestInfoAlertsNeverShareAPage(t *testing.T) {
	t.Parallel()
	var cfg struct {
		Route struct {
			GroupBy []string `yaml:"group_by"`
			Routes  []struct {
				GroupBy []string `yaml:"group_by"`
			} `yaml:"routes"`
		} `yaml:"route"`
	}
	readYAML(t, filepath.Join(e2eutil.RepoRoot(t), "prometheus", "alertmanager.yml"), &cfg)
	if !slices.Contains(cfg.Route.GroupBy, "alertname") {
		t.Errorf("route group_by %v lacks alertname", cfg.Route.GroupBy)
	}
	for i, r := range cfg.Route.Routes {
		if r.GroupBy != nil && !slices.Contains(r.GroupBy, "alertname") && !slices.Contains(r.GroupBy, "...") {
			t.Errorf("route %d: group_by %v lacks alertname", i, r.GroupBy)
		}
	}
	severity := map[string]string{}
	var infos int
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			sev := r.Labels["severity"]
			if prev, ok := severity[r.Alert]; ok && prev != sev {
				t.Errorf("alert %s has severities %s and %s: one Alertmanager group would mix them", r.Alert, prev, sev)
			}
			severity[r.Alert] = sev
			if sev == "info" {
				infos++
			}
		}
	}
	if infos == 0 {
		t.Error("no info alert at all: the check above proves nothing")
	}
}
