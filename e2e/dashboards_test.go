package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
	"github.com/clavitor/clavis-telemetry/privacy"
)

// Dashboards are kept as JSON in grafana/dashboards/. These tests parse
// every panel and check each PromQL expression with the real Prometheus
// parser (promtool), without pulling Prometheus into go.mod; the end-to-end
// test runs the same expressions against a live Prometheus fed by real POPs.

// grafanaSchemaVersion is the dashboard JSON schema version every dashboard
// carries: the one Grafana 12 exports (its LATEST_VERSION in
// apps/dashboard/pkg/migration/schemaversion is 42 since the v42 migration,
// which adds tooltip to hideFrom overrides; these dashboards have no such
// override, so nothing is left for Grafana to migrate on load). Raise it
// here, and in every dashboard, in one change.
const grafanaSchemaVersion = 42

type dashboard struct {
	file          string
	UID           string `json:"uid"`
	Title         string `json:"title"`
	SchemaVersion int    `json:"schemaVersion"`
	Annotations   struct {
		List []struct {
			Name       string `json:"name"`
			Expr       string `json:"expr"`
			Enable     bool   `json:"enable"`
			Datasource *struct {
				UID string `json:"uid"`
			} `json:"datasource"`
		} `json:"list"`
	} `json:"annotations"`
	Templating struct {
		List []struct {
			Type  string `json:"type"`
			Name  string `json:"name"`
			Query any    `json:"query"`
		} `json:"list"`
	} `json:"templating"`
	Panels []panel `json:"panels"`
}

type panel struct {
	ID          int     `json:"id"`
	Type        string  `json:"type"`
	Title       string  `json:"title"`
	Description string  `json:"description"`
	Interval    string  `json:"interval"` // min interval (query options)
	Panels      []panel `json:"panels"`   // collapsed rows
	Datasource  *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	FieldConfig struct {
		Defaults struct {
			Unit       string          `json:"unit"`
			Thresholds *thresholdsJSON `json:"thresholds"`
		} `json:"defaults"`
		Overrides []struct {
			Matcher struct {
				ID      string `json:"id"`
				Options string `json:"options"`
			} `json:"matcher"`
			Properties []struct {
				ID    string          `json:"id"`
				Value json.RawMessage `json:"value"`
			} `json:"properties"`
		} `json:"overrides"`
	} `json:"fieldConfig"`
	Targets []struct {
		RefID        string `json:"refId"`
		Expr         string `json:"expr"`
		LegendFormat string `json:"legendFormat"`
		Datasource   *struct {
			UID string `json:"uid"`
		} `json:"datasource"`
	} `json:"targets"`
}

type thresholdsJSON struct {
	Mode  string `json:"mode"`
	Steps []struct {
		Color string   `json:"color"`
		Value *float64 `json:"value"`
	} `json:"steps"`
}

// query is one panel target, with Grafana's variables substituted.
type query struct {
	dashboard, panel, refID string
	expr                    string
}

func loadDashboards(t *testing.T) []dashboard {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(e2eutil.RepoRoot(t), "grafana", "dashboards", "*.json"))
	if len(files) < 4 {
		t.Fatalf("want at least 4 dashboards, found %v", files)
	}
	var out []dashboard
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var d dashboard
		if err := json.Unmarshal(b, &d); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		d.file = filepath.Base(f)
		out = append(out, d)
	}
	return out
}

func (d dashboard) allPanels() []panel {
	var out []panel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// substitute replaces the Grafana variables the dashboards use with values
// Prometheus accepts.
func substitute(expr, pop, rateInterval string) string {
	r := strings.NewReplacer(
		"$__rate_interval", rateInterval,
		"${__rate_interval}", rateInterval,
		"$__range", "1h",
		"$__interval", "1m",
		"${pop}", pop,
		"$pop", pop,
		// All regions: the region variable's "All" value.
		"${region}", ".*",
		"$region", ".*",
		// The fleet dashboard's Top N, at its saved default.
		"${topk}", "10",
		"$topk", "10",
	)
	return r.Replace(expr)
}

// annotationQueries are the dashboards' Prometheus annotation queries
// (alerts, exporter restarts), substituted like the panels'. They mark
// events, so they are parsed and name-checked but need not return data.
func annotationQueries(t *testing.T, pop string) []query {
	t.Helper()
	var qs []query
	for _, d := range loadDashboards(t) {
		for _, a := range d.Annotations.List {
			if a.Expr != "" {
				qs = append(qs, query{d.Title, "annotation " + a.Name, "", substitute(a.Expr, pop, "1m")})
			}
		}
	}
	return qs
}

func dashboardQueries(t *testing.T, pop, rateInterval string) []query {
	t.Helper()
	var qs []query
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				qs = append(qs, query{d.Title, p.Title, tg.RefID, substitute(tg.Expr, pop, rateInterval)})
			}
		}
	}
	return qs
}

// ipLabel matches label names that could carry an address.
var ipLabel = regexp.MustCompile(`(?i)instance|\bip\b|_ip|ip_|addr|remote|client|peer|source_address|src`)

func TestDashboardsWellFormed(t *testing.T) {
	t.Parallel()
	wantTitles := map[string]bool{"Clavis fleet": false, "Clavis POP": false, "Clavis tarpit": false, "Clavis alerting pipeline": false}
	uids := map[string]string{}
	legendVars := regexp.MustCompile(`\{\{\s*([^}\s]+)\s*\}\}`)
	byClause := regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
	for _, d := range loadDashboards(t) {
		if _, ok := wantTitles[d.Title]; ok {
			wantTitles[d.Title] = true
		}
		if d.UID == "" || uids[d.UID] != "" {
			t.Errorf("%s: uid %q empty or used twice", d.file, d.UID)
		}
		uids[d.UID] = d.file
		if d.SchemaVersion != grafanaSchemaVersion {
			t.Errorf("%s: schemaVersion %d, want %d (grafanaSchemaVersion)", d.file, d.SchemaVersion, grafanaSchemaVersion)
		}
		vars := map[string]string{}
		for _, v := range d.Templating.List {
			vars[v.Name] = v.Type
		}
		if vars["datasource"] != "datasource" {
			t.Errorf("%s: no datasource variable", d.file)
		}
		if d.Title == "Clavis POP" && vars["pop"] != "query" {
			t.Errorf("%s: no $pop variable", d.file)
		}
		// Hundreds of POPs: every dashboard narrows to a region.
		if vars["region"] != "query" {
			t.Errorf("%s: no $region variable", d.file)
		}
		for _, p := range d.allPanels() {
			if p.Type == "row" {
				continue
			}
			where := fmt.Sprintf("%s: panel %q", d.file, p.Title)
			if p.FieldConfig.Defaults.Unit == "" {
				t.Errorf("%s: no unit", where)
			}
			if p.Description == "" {
				t.Errorf("%s: no description", where)
			}
			if p.Datasource == nil || p.Datasource.UID != "${datasource}" {
				t.Errorf("%s: datasource must be the ${datasource} variable", where)
			}
			if len(p.Targets) == 0 {
				t.Errorf("%s: no query", where)
			}
			for _, tg := range p.Targets {
				if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" {
					t.Errorf("%s %s: target datasource must be ${datasource}", where, tg.RefID)
				}
				if strings.TrimSpace(tg.Expr) == "" {
					t.Errorf("%s %s: empty expression", where, tg.RefID)
				}
				for _, m := range legendVars.FindAllStringSubmatch(tg.LegendFormat, -1) {
					if ipLabel.MatchString(m[1]) {
						t.Errorf("%s %s: legend shows label %q, which may carry an address", where, tg.RefID, m[1])
					}
				}
				for _, m := range byClause.FindAllStringSubmatch(tg.Expr, -1) {
					if ipLabel.MatchString(m[1]) {
						t.Errorf("%s %s: groups by %q, which may carry an address", where, tg.RefID, m[1])
					}
				}
				if d.Title == "Clavis tarpit" && ipLabel.MatchString(tg.Expr) {
					t.Errorf("%s %s: tarpit query names an address-like label: %s", where, tg.RefID, tg.Expr)
				}
			}
		}
	}
	for title, ok := range wantTitles {
		if !ok {
			t.Errorf("dashboard %q missing", title)
		}
	}
}

// TestDashboardQueriesParse loads every panel and annotation expression,
// variables substituted, into a rules file and has promtool 2.x and 3.x
// check it: the real Prometheus parsers, type checks included.
func TestDashboardQueriesParse(t *testing.T) {
	t.Parallel()
	qs := append(dashboardQueries(t, "fra1", "1m"), annotationQueries(t, "fra1")...)
	var b strings.Builder
	b.WriteString("groups:\n  - name: dashboard-queries\n    rules:\n")
	for i, q := range qs {
		expr, _ := json.Marshal(q.expr) // a JSON string is a valid YAML scalar
		fmt.Fprintf(&b, "      - record: dashboard:query_%d\n        expr: %s\n", i, expr)
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	// Grafana users run both Prometheus majors.
	for major, promtool := range promtools(t) {
		out := runTool(t, "", promtool, "check", "rules", path)
		if want := fmt.Sprintf("SUCCESS: %d rules found", len(qs)); !strings.Contains(out, want) {
			t.Fatalf("promtool %s check rules: want %q in\n%s", major, want, out)
		}
	}
}

// TestDashboardMetricsExist checks that every clavis_ metric a dashboard or
// rule names is on the POP's allowlist or is exported by a real alertbridge,
// so a renamed metric cannot leave a panel silently empty or a rule silently
// false.
func TestDashboardMetricsExist(t *testing.T) {
	t.Parallel()
	// What the POP can expose at all: the privacy gate's allowlist.
	known := map[string]bool{}
	for _, n := range privacy.Families() {
		known[n] = true
	}
	bridge := alertbridgeMetricNames(t)
	for n := range bridge {
		known[n] = true
	}
	// The dashboards and rules use these; a bridge that stopped exporting
	// them would leave the alerting dashboard and the pipeline alerts blind.
	for _, n := range []string{"spool_depth", "notifications_sent_total", "watchdog_last_seen_timestamp_seconds"} {
		if !bridge["clavis_alertbridge_"+n] {
			t.Errorf("alertbridge's /metrics lacks clavis_alertbridge_%s; it has %v", n, slices.Sorted(maps.Keys(bridge)))
		}
	}
	// Whole identifiers, so recording rule names (level:metric:ops) are
	// recognised as such and skipped.
	ident := regexp.MustCompile(`[a-zA-Z_:][a-zA-Z0-9_:]*`)
	check := func(where, expr string) {
		for _, m := range ident.FindAllString(expr, -1) {
			if !strings.HasPrefix(m, "clavis_") || strings.Contains(m, ":") {
				continue
			}
			base := m
			for _, suf := range []string{"_bucket", "_sum", "_count"} {
				if known[strings.TrimSuffix(m, suf)] {
					base = strings.TrimSuffix(m, suf)
				}
			}
			if !known[base] {
				t.Errorf("%s: unknown metric %s", where, m)
			}
		}
	}
	for _, q := range append(dashboardQueries(t, "fra1", "1m"), annotationQueries(t, "fra1")...) {
		check(q.dashboard+"/"+q.panel, q.expr)
	}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			check("rule "+r.Alert+r.Record, r.Expr)
		}
	}
}

// TestGrafanaProvisioning checks the provisioning files are the shape
// Grafana reads: apiVersion 1, a Prometheus datasource, a file provider.
func TestGrafanaProvisioning(t *testing.T) {
	t.Parallel()
	root := filepath.Join(e2eutil.RepoRoot(t), "grafana", "provisioning")
	var ds struct {
		APIVersion  int `yaml:"apiVersion"`
		Datasources []struct {
			Name, Type, URL, UID string
		} `yaml:"datasources"`
	}
	readYAML(t, filepath.Join(root, "datasources", "clavis-prometheus.yml"), &ds)
	if ds.APIVersion != 1 || len(ds.Datasources) != 1 || ds.Datasources[0].Type != "prometheus" || ds.Datasources[0].URL == "" {
		t.Errorf("datasource provisioning: %+v", ds)
	}
	var dp struct {
		APIVersion int `yaml:"apiVersion"`
		Providers  []struct {
			Name    string            `yaml:"name"`
			Type    string            `yaml:"type"`
			Options map[string]string `yaml:"options"`
		} `yaml:"providers"`
	}
	readYAML(t, filepath.Join(root, "dashboards", "clavis.yml"), &dp)
	if dp.APIVersion != 1 || len(dp.Providers) != 1 || dp.Providers[0].Type != "file" || dp.Providers[0].Options["path"] == "" {
		t.Errorf("dashboard provisioning: %+v", dp)
	}
}

// alertbridgeMetricNames builds and runs the real alertbridge, with both
// targets configured (so every per-target family has its series), and
// returns the metric family names its /metrics exposes. The targets point
// at a closed loopback port: with no alert posted, nothing is sent.
func alertbridgeMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	bin := e2eutil.BuildBinary(t, "./cmd/alertbridge")
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("dashboard-test-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := e2eutil.FreeAddr(t, "127.0.0.1")
	nowhere := "http://" + e2eutil.FreeAddr(t, "127.0.0.1")
	e2eutil.StartProcess(t, bin,
		"--web.listen-address="+addr,
		"--webhook.token-file="+token,
		"--spool.path="+filepath.Join(dir, "spool.db"),
		"--ntfy.url="+nowhere+"/clavis-alerts",
		"--kuma.push-url="+nowhere+"/api/push/token",
	)
	client := &http.Client{Timeout: 5 * time.Second}
	url := "http://" + addr + "/metrics"
	e2eutil.WaitHTTP(t, client, url, http.StatusOK, 30*time.Second)
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	// Every family has a "# TYPE name type" line in the text format.
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) `).FindAllStringSubmatch(string(body), -1) {
		names[m[1]] = true
	}
	if len(names) == 0 {
		t.Fatalf("alertbridge's /metrics has no metric family:\n%s", body)
	}
	return names
}

// TestDashboardsForAFleet checks what a fleet of hundreds of POPs needs
// from the dashboards: the fleet and tarpit views filter every query by
// region and POP, the POP table links to the POP dashboard and colours its
// columns at thresholds, up is a state timeline per POP, the SLO has
// availability and error-budget panels, alerts and exporter restarts are
// annotations, and the POP view has the storage, network and collector
// health panels.
func TestDashboardsForAFleet(t *testing.T) {
	t.Parallel()
	byTitle := map[string]dashboard{}
	for _, d := range loadDashboards(t) {
		byTitle[d.Title] = d
	}
	exprs := func(d dashboard) []string {
		var out []string
		for _, p := range d.allPanels() {
			for _, tg := range p.Targets {
				out = append(out, tg.Expr)
			}
		}
		return out
	}
	has := func(d dashboard, pred func(p panel) bool) bool {
		for _, p := range d.allPanels() {
			if pred(p) {
				return true
			}
		}
		return false
	}
	names := func(p panel, re string) bool {
		for _, tg := range p.Targets {
			if regexp.MustCompile(re).MatchString(tg.Expr) {
				return true
			}
		}
		return false
	}

	for _, title := range []string{"Clavis fleet", "Clavis tarpit"} {
		d := byTitle[title]
		for _, e := range exprs(d) {
			if !strings.Contains(e, `region=~"$region"`) || !strings.Contains(e, `pop=~"$pop"`) {
				t.Errorf("%s: query does not filter by region and pop: %s", title, e)
			}
		}
	}

	fleet := byTitle["Clavis fleet"]
	var table *panel
	for _, p := range fleet.allPanels() {
		if p.Type == "table" {
			table = &p
		}
	}
	if table == nil {
		t.Fatal("fleet dashboard: no POP table")
	}
	var linked bool
	thresholded := map[string]bool{}
	for _, o := range table.FieldConfig.Overrides {
		for _, pr := range o.Properties {
			switch pr.ID {
			case "links":
				var links []struct{ URL string }
				if err := json.Unmarshal(pr.Value, &links); err != nil {
					t.Fatal(err)
				}
				for _, l := range links {
					linked = linked || (o.Matcher.Options == "pop" && strings.HasPrefix(l.URL, "/d/"+byTitle["Clavis POP"].UID+"/") &&
						strings.Contains(l.URL, "var-pop=${__value.raw}"))
				}
			case "thresholds":
				var th thresholdsJSON
				if err := json.Unmarshal(pr.Value, &th); err != nil {
					t.Fatal(err)
				}
				thresholded[o.Matcher.Options] = len(th.Steps) >= 2
			}
		}
	}
	if !linked {
		t.Error("fleet table: the pop column does not link to the POP dashboard with var-pop")
	}
	// Every column with an alert threshold shows it: up, CPU, memory, disk,
	// 5xx ratio, scrape success. Counts (vaults, requests, IPs) have none.
	for _, o := range table.FieldConfig.Overrides {
		var display, unit string
		for _, pr := range o.Properties {
			switch pr.ID {
			case "displayName":
				_ = json.Unmarshal(pr.Value, &display)
			case "unit":
				_ = json.Unmarshal(pr.Value, &unit)
			}
		}
		if (unit == "percentunit" || display == "Up") && !thresholded[o.Matcher.Options] {
			t.Errorf("fleet table: column %q (%s) has no thresholds", display, o.Matcher.Options)
		}
	}
	// A time series with one line per POP asks for at most one point a
	// minute: at 1,000 POPs Grafana's auto step over 6 h (20 s on a wide
	// screen) is 1.08 million points per panel, and those queries took
	// 2.0-2.8 s at p99 (bench/fleet.sh); a line per POP of a 5-minute rate
	// shows nothing more at 20 s. The state timeline of raw up keeps the
	// auto step: a short outage must not fall between two steps. The
	// tarpit dashboard's lines per POP read raw counters, dearer still.
	for _, d := range []dashboard{fleet, byTitle["Clavis tarpit"]} {
		for _, p := range d.allPanels() {
			if p.Type != "timeseries" {
				continue
			}
			perPOP := false
			for _, tg := range p.Targets {
				perPOP = perPOP || strings.Contains(tg.LegendFormat, "{{pop}}") || regexp.MustCompile(`^pop:|by \((pop|pop, [a-z_, ]+)\)`).MatchString(strings.TrimSpace(tg.Expr))
			}
			if !perPOP {
				continue
			}
			if iv, err := time.ParseDuration(p.Interval); err != nil || iv < time.Minute {
				t.Errorf("%s panel %q: one line per POP with min interval %q, want 1m or more", d.Title, p.Title, p.Interval)
			}
		}
	}
	if !has(fleet, func(p panel) bool { return p.Type == "state-timeline" && names(p, `\bup\{job="clavis-pop"`) }) {
		t.Error("fleet dashboard: no state timeline of up per POP")
	}
	if !has(fleet, func(p panel) bool {
		return names(p, `^1 - .*ratio_rate(1d|3d)|^1 - sum\(pop:clavis_http_requests_5xx:rate3d`)
	}) {
		t.Error("fleet dashboard: no SLO availability panel")
	}
	if !has(fleet, func(p panel) bool {
		return names(p, `slo:clavis_http_error_budget:ratio`) && strings.Contains(strings.ToLower(p.Title), "budget")
	}) {
		t.Error("fleet dashboard: no error-budget panel")
	}

	for _, title := range []string{"Clavis fleet", "Clavis POP"} {
		var alerts, restarts bool
		for _, a := range byTitle[title].Annotations.List {
			if a.Expr == "" {
				continue
			}
			if a.Datasource == nil || a.Datasource.UID != "${datasource}" || !a.Enable {
				t.Errorf("%s: annotation %q must be enabled on the ${datasource} variable", title, a.Name)
			}
			alerts = alerts || strings.Contains(a.Expr, `ALERTS{alertstate="firing"`)
			restarts = restarts || strings.Contains(a.Expr, "process_start_time_seconds{")
		}
		if !alerts || !restarts {
			t.Errorf("%s: annotations for firing alerts (%v) and exporter restarts (%v) wanted", title, alerts, restarts)
		}
	}

	pop := byTitle["Clavis POP"]
	for what, re := range map[string]string{
		"inodes":                 `clavis_filesystem_inodes_used`,
		"read-only":              `clavis_filesystem_readonly\{`,
		"device_error":           `clavis_filesystem_device_error\{`,
		"disk utilisation":       `rate\(clavis_disk_io_time_seconds_total\{`,
		"network errors":         `clavis_network_(receive|transmit)_errs_total`,
		"network drops":          `clavis_network_(receive|transmit)_drop_total`,
		"CPU steal":              `mode="steal"`,
		"collector health (SLT)": `clavis_scrape_collector_success\{`,
	} {
		if !has(pop, func(p panel) bool {
			return names(p, re) && (what != "collector health (SLT)" || p.Type == "state-timeline")
		}) {
			t.Errorf("POP dashboard: no %s panel (a query matching %s)", what, re)
		}
	}
}

// TestDashboardLinksExist: every Grafana dashboard URL (/d/<uid>) that the
// README (the ntfy click URL operators copy) or a dashboard's links name
// is a dashboard of grafana/dashboards/, so a page's click and a table's
// drill-down do not end on Grafana's "Dashboard not found".
func TestDashboardLinksExist(t *testing.T) {
	t.Parallel()
	root := e2eutil.RepoRoot(t)
	uids := map[string]bool{}
	for _, d := range loadDashboards(t) {
		uids[d.UID] = true
	}
	files := []string{filepath.Join(root, "README.md")}
	dash, _ := filepath.Glob(filepath.Join(root, "grafana", "dashboards", "*.json"))
	files = append(files, dash...)
	link := regexp.MustCompile(`/d/([A-Za-z0-9_-]+)`)
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range link.FindAllStringSubmatch(string(b), -1) {
			if !uids[m[1]] {
				t.Errorf("%s: link to dashboard %q, which grafana/dashboards/ does not have (uids %v)", filepath.Base(f), m[0], slices.Sorted(maps.Keys(uids)))
			}
		}
	}
}

// TestDashboardDescriptionsNameRealAlerts: a panel description that names
// an alert (and its threshold) is what on-call reads next to the graph;
// every alert name in one must be an alert of prometheus/rules/, so a
// renamed or removed alert does not leave a panel pointing at nothing.
func TestDashboardDescriptionsNameRealAlerts(t *testing.T) {
	t.Parallel()
	alerts := map[string]bool{}
	for _, g := range loadRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert != "" {
				alerts[r.Alert] = true
			}
		}
	}
	name := regexp.MustCompile(`\b(?:Pop|Region|Fleet|Alertbridge|Alertmanager|Prometheus|Tarpit|AccessLog|Watchdog)[A-Z0-9][A-Za-z0-9]*\b`)
	for _, d := range loadDashboards(t) {
		for _, p := range d.allPanels() {
			for _, n := range name.FindAllString(p.Description, -1) {
				if !alerts[n] {
					t.Errorf("%s: panel %q: description names %s, which no rule defines: %q", d.file, p.Title, n, p.Description)
				}
			}
		}
	}
}
