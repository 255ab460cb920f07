package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/clavitor/clavis-telemetry/bench/fleet/sim"
)

// measure watches a running Prometheus (and the processes named with -pid)
// for a window, then times every query of a Grafana dashboard over a range.
func measure(args []string) error {
	fs := flag.NewFlagSet("measure", flag.ExitOnError)
	prom := fs.String("prom", "http://127.0.0.1:9090", "Prometheus (or Prometheus-compatible API) URL")
	metricsURL := fs.String("metrics", "", "Prometheus' own /metrics (default: -prom + /metrics; empty with -no-self)")
	noSelf := fs.Bool("no-self", false, "do not read Prometheus' own metrics (query latency only)")
	var pids pidFlags
	fs.Var(&pids, "pid", "name=PID of a process whose CPU and RSS to report (repeatable)")
	window := fs.Duration("window", 2*time.Minute, "how long to watch ingestion, CPU and rule groups")
	dashboard := fs.String("dashboard", "", "Grafana dashboard JSON whose queries to time")
	rng := fs.Duration("range", 6*time.Hour, "range of every dashboard query")
	step := fs.Duration("step", 20*time.Second, "step of the dashboard's range queries ($__interval), unless a panel's min interval is longer")
	runs := fs.Int("runs", 20, "runs of every query")
	allRange := fs.Bool("all-range", false, "send the dashboard's instant queries (stat, table, bar gauge) as range queries over -range too: a worst case no Grafana sends")
	out := fs.String("out", "", "write the results as JSON here")
	label := fs.String("label", "", "label of this run in the output")
	fs.Parse(args)
	if *metricsURL == "" && !*noSelf {
		*metricsURL = *prom + "/metrics"
	}
	res := measureResult{Label: *label, Window: window.String(), Procs: map[string]procStats{}, RuleGroups: map[string]float64{}, Rules: map[string]float64{}}
	client := &http.Client{Timeout: 2 * time.Minute}
	res.LoadAvg[0] = loadAvg()

	if *window > 0 {
		start := map[string]procSample{}
		for _, p := range pids {
			s, err := readProc(p.pid)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			start[p.name] = s
		}
		var first, last promSample
		t0 := time.Now()
		for {
			if *metricsURL != "" {
				s, err := readPromMetrics(client, *metricsURL)
				if err != nil {
					return err
				}
				if first.at.IsZero() {
					first = s
				}
				last = s
				for g, d := range s.ruleGroups {
					res.RuleGroups[g] = math.Max(res.RuleGroups[g], d)
				}
				if err := ruleTimes(client, *prom, res.Rules); err != nil {
					return err
				}
			}
			if time.Since(t0) >= *window {
				break
			}
			time.Sleep(min(15*time.Second, *window-time.Since(t0)+time.Millisecond))
		}
		el := time.Since(t0).Seconds()
		for _, p := range pids {
			s, err := readProc(p.pid)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			res.Procs[p.name] = procStats{
				CPUCores: (s.cpu - start[p.name].cpu) / el,
				RSSMiB:   float64(s.rss) / (1 << 20), PeakRSSMiB: float64(s.hwm) / (1 << 20),
			}
		}
		if *metricsURL != "" {
			res.HeadSeries = last.headSeries
			if d := last.at.Sub(first.at).Seconds(); d > 0 {
				res.SamplesPerSecond = (last.appended - first.appended) / d
			}
			res.BlocksBytes, res.WALBytes = last.blocksBytes, last.walBytes
		}
		// Did every POP's scrape keep to its interval? From Prometheus'
		// own view of its targets.
		if *metricsURL != "" {
			for name, q := range map[string]string{
				"targets":              `count(up{job="clavis-pop"})`,
				"targets_up":           `count(up{job="clavis-pop"} == 1)`,
				"scrape_duration_max":  `max(max_over_time(scrape_duration_seconds{job="clavis-pop"}[` + promDuration(*window) + `]))`,
				"interval_p99_seconds": `max(prometheus_target_interval_length_seconds{quantile="0.99",interval="15s"})`,
				// Active alerts cost an evaluation more than their query:
				// state, ALERTS series and annotation templates per alert.
				"alerts_firing":  `count(ALERTS{alertstate="firing"}) or vector(0)`,
				"alerts_pending": `count(ALERTS{alertstate="pending"}) or vector(0)`,
			} {
				v, err := instant(client, *prom, q)
				if err != nil {
					return fmt.Errorf("%s: %w", q, err)
				}
				if res.Scrape == nil {
					res.Scrape = map[string]float64{}
				}
				res.Scrape[name] = v
			}
		}
	}

	if *dashboard != "" {
		exprs, err := sim.DashboardQueries(*dashboard, *step, *rng)
		if err != nil {
			return err
		}
		for _, q := range exprs {
			instantQ := q.Instant && !*allRange
			qs := queryStats{Panel: q.Panel, Expr: q.Expr, Instant: instantQ}
			if !instantQ {
				qs.Step = q.Step.String()
			}
			var lat []float64
			for i := 0; i < *runs; i++ {
				end := time.Now()
				var d time.Duration
				var series int
				var err error
				if instantQ {
					d, series, err = instantQuery(client, *prom, q.Expr, end)
				} else {
					d, series, err = rangeQuery(client, *prom, q.Expr, end.Add(-*rng), end, q.Step)
				}
				if err != nil {
					return fmt.Errorf("panel %q: %s: %w", q.Panel, q.Expr, err)
				}
				lat = append(lat, d.Seconds())
				qs.Series = series
			}
			sort.Float64s(lat)
			qs.P50 = lat[len(lat)/2]
			qs.P99 = lat[int(math.Ceil(0.99*float64(len(lat))))-1]
			qs.Max = lat[len(lat)-1]
			res.Queries = append(res.Queries, qs)
		}
	}
	res.LoadAvg[1] = loadAvg()
	b, _ := json.MarshalIndent(res, "", "  ")
	if *out != "" {
		if err := os.WriteFile(*out, b, 0o644); err != nil {
			return err
		}
	}
	printResult(os.Stdout, res)
	return nil
}

type measureResult struct {
	Label            string               `json:"label,omitempty"`
	Window           string               `json:"window"`
	HeadSeries       float64              `json:"head_series"`
	SamplesPerSecond float64              `json:"samples_per_second"`
	BlocksBytes      float64              `json:"blocks_bytes"`
	WALBytes         float64              `json:"wal_bytes"`
	Procs            map[string]procStats `json:"procs"`
	RuleGroups       map[string]float64   `json:"rule_group_max_last_duration_seconds"`
	// Rules: each rule's longest evaluation ("group/name"), from
	// /api/v1/rules, to say which rule makes a group slow.
	Rules   map[string]float64 `json:"rule_max_evaluation_seconds"`
	Scrape  map[string]float64 `json:"scrape,omitempty"`
	Queries []queryStats       `json:"queries,omitempty"`
	// LoadAvg is the machine's 1-minute load average at the start and the
	// end: the machine is shared, read every figure with it.
	LoadAvg [2]float64 `json:"loadavg"`
}

func loadAvg() float64 {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

type procStats struct {
	CPUCores   float64 `json:"cpu_cores"`
	RSSMiB     float64 `json:"rss_mib"`
	PeakRSSMiB float64 `json:"peak_rss_mib"`
}

type queryStats struct {
	Panel   string  `json:"panel"`
	Expr    string  `json:"expr"`
	Instant bool    `json:"instant"`
	Step    string  `json:"step,omitempty"`
	Series  int     `json:"series"`
	P50     float64 `json:"p50_seconds"`
	P99     float64 `json:"p99_seconds"`
	Max     float64 `json:"max_seconds"`
}

func printResult(w io.Writer, r measureResult) {
	fmt.Fprintf(w, "== %s (window %s, load average %.1f -> %.1f on %d CPUs)\n", r.Label, r.Window, r.LoadAvg[0], r.LoadAvg[1], runtime.NumCPU())
	if r.HeadSeries > 0 {
		fmt.Fprintf(w, "head series %.0f, samples/s %.0f, blocks %.1f MiB, WAL %.1f MiB\n", r.HeadSeries, r.SamplesPerSecond, r.BlocksBytes/(1<<20), r.WALBytes/(1<<20))
	}
	names := make([]string, 0, len(r.Procs))
	for n := range r.Procs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := r.Procs[n]
		fmt.Fprintf(w, "%-12s CPU %.3f cores, RSS %.0f MiB (peak %.0f MiB)\n", n, p.CPUCores, p.RSSMiB, p.PeakRSSMiB)
	}
	groups := make([]string, 0, len(r.RuleGroups))
	for g := range r.RuleGroups {
		groups = append(groups, g)
	}
	sort.Strings(groups)
	for _, g := range groups {
		fmt.Fprintf(w, "rule group %-40s max last duration %.3f s\n", g, r.RuleGroups[g])
	}
	rules := make([]string, 0, len(r.Rules))
	for n := range r.Rules {
		rules = append(rules, n)
	}
	sort.Slice(rules, func(i, j int) bool { return r.Rules[rules[i]] > r.Rules[rules[j]] })
	for _, n := range rules[:min(len(rules), 10)] {
		fmt.Fprintf(w, "rule %-60s max evaluation %.3f s\n", n, r.Rules[n])
	}
	if len(r.Scrape) > 0 {
		fmt.Fprintf(w, "scrape: %v\n", r.Scrape)
	}
	for _, q := range r.Queries {
		kind := "range " + q.Step
		if q.Instant {
			kind = "instant"
		}
		fmt.Fprintf(w, "query %-9s p50 %.3f s p99 %.3f s max %.3f s series %4d  [%s] %s\n", kind, q.P50, q.P99, q.Max, q.Series, q.Panel, strings.Join(strings.Fields(q.Expr), " "))
	}
}

type pidFlags []struct {
	name string
	pid  int
}

func (p *pidFlags) String() string { return fmt.Sprint(*p) }
func (p *pidFlags) Set(s string) error {
	name, v, ok := strings.Cut(s, "=")
	pid, err := strconv.Atoi(v)
	if !ok || err != nil {
		return fmt.Errorf("want name=PID, not %q", s)
	}
	*p = append(*p, struct {
		name string
		pid  int
	}{name, pid})
	return nil
}

type procSample struct {
	cpu      float64 // seconds
	rss, hwm int64   // bytes
}

// readProc reads a process's CPU time (utime+stime, USER_HZ = 100 on
// Linux) and its RSS and peak RSS.
func readProc(pid int) (procSample, error) {
	var s procSample
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// Fields after the command name (which may hold spaces) in parens.
	i := bytes.LastIndexByte(stat, ')')
	f := strings.Fields(string(stat[i+2:]))
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	s.cpu = (ut + st) / 100
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			s.rss = kb << 10
		case "VmHWM":
			s.hwm = kb << 10
		}
	}
	return s, nil
}

type promSample struct {
	at                    time.Time
	headSeries, appended  float64
	blocksBytes, walBytes float64
	ruleGroups            map[string]float64
}

func readPromMetrics(c *http.Client, u string) (promSample, error) {
	s := promSample{at: time.Now(), ruleGroups: map[string]float64{}}
	resp, err := c.Get(u)
	if err != nil {
		return s, err
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return s, fmt.Errorf("%s: %w", u, err)
	}
	sum := func(name string) float64 {
		v := 0.0
		if f := fams[name]; f != nil {
			for _, m := range f.GetMetric() {
				v += m.GetGauge().GetValue() + m.GetCounter().GetValue() + m.GetUntyped().GetValue()
			}
		}
		return v
	}
	s.headSeries = sum("prometheus_tsdb_head_series")
	s.appended = sum("prometheus_tsdb_head_samples_appended_total")
	s.blocksBytes = sum("prometheus_tsdb_storage_blocks_bytes")
	s.walBytes = sum("prometheus_tsdb_wal_storage_size_bytes")
	if f := fams["prometheus_rule_group_last_duration_seconds"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "rule_group" {
					// "path;name": keep the group's name.
					g := l.GetValue()
					if i := strings.LastIndexByte(g, ';'); i >= 0 {
						g = g[i+1:]
					}
					s.ruleGroups[g] = m.GetGauge().GetValue()
				}
			}
		}
	}
	return s, nil
}

type promResponse struct {
	Status   string   `json:"status"`
	Error    string   `json:"error"`
	Warnings []string `json:"warnings"`
	Data     struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
}

func apiGet(c *http.Client, u string) (promResponse, time.Duration, error) {
	var r promResponse
	t0 := time.Now()
	resp, err := c.Get(u)
	if err != nil {
		return r, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(t0)
	if err != nil {
		return r, d, err
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return r, d, fmt.Errorf("%s: %.200s", resp.Status, body)
	}
	if r.Status != "success" {
		return r, d, fmt.Errorf("%s: %s", resp.Status, r.Error)
	}
	return r, d, nil
}

func instant(c *http.Client, base, q string) (float64, error) {
	r, _, err := apiGet(c, base+"/api/v1/query?query="+url.QueryEscape(q))
	if err != nil {
		return 0, err
	}
	if len(r.Data.Result) == 0 {
		return 0, nil
	}
	var v struct {
		Value [2]any `json:"value"`
	}
	if err := json.Unmarshal(r.Data.Result[0], &v); err != nil {
		return 0, err
	}
	s, _ := v.Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

func rangeQuery(c *http.Client, base, q string, start, end time.Time, step time.Duration) (time.Duration, int, error) {
	u := base + "/api/v1/query_range?" + url.Values{
		"query": {q},
		"start": {strconv.FormatFloat(float64(start.UnixMilli())/1e3, 'f', 3, 64)},
		"end":   {strconv.FormatFloat(float64(end.UnixMilli())/1e3, 'f', 3, 64)},
		"step":  {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}.Encode()
	r, d, err := apiGet(c, u)
	return d, len(r.Data.Result), err
}

func promDuration(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return strconv.Itoa(int(d/time.Second)) + "s"
}

// instantQuery is what Grafana sends for an instant-only panel target.
func instantQuery(c *http.Client, base, q string, at time.Time) (time.Duration, int, error) {
	u := base + "/api/v1/query?" + url.Values{
		"query": {q},
		"time":  {strconv.FormatFloat(float64(at.UnixMilli())/1e3, 'f', 3, 64)},
	}.Encode()
	r, d, err := apiGet(c, u)
	return d, len(r.Data.Result), err
}

// ruleTimes folds each rule's last evaluation time from /api/v1/rules into
// longest ("group/name").
func ruleTimes(c *http.Client, base string, longest map[string]float64) error {
	resp, err := c.Get(base + "/api/v1/rules")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Groups []struct {
				Name  string `json:"name"`
				Rules []struct {
					Name           string  `json:"name"`
					EvaluationTime float64 `json:"evaluationTime"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return fmt.Errorf("/api/v1/rules: %s: %w", resp.Status, err)
	}
	if r.Status != "success" {
		return fmt.Errorf("/api/v1/rules: %s", resp.Status)
	}
	for _, g := range r.Data.Groups {
		for _, rule := range g.Rules {
			k := g.Name + "/" + rule.Name
			if rule.EvaluationTime > longest[k] {
				longest[k] = rule.EvaluationTime
			}
		}
	}
	return nil
}
