package e2e

// VictoriaMetrics as the global store behind the HA pair: both replicas of
// prometheus/ha/prometheus.yml scrape a few simulated POPs (bench/fleet,
// from a real capture of clavis-telemetry) and remote_write to one
// single-node VictoriaMetrics (built by tools/ at its pinned version) with
// -dedup.minScrapeInterval at the scrape interval. The remote_write section
// is the one the shipped file carries commented out, uncommented; only
// host:port pairs, the URL, secrets and the global intervals are templated.
//
// Asserted: the replicas' copies are one series in VictoriaMetrics (the
// replica label is dropped on the way out, so dedup merges them); every
// query of the fleet dashboard answers through VictoriaMetrics'
// Prometheus-compatible API as through replica a, the same series (VM's
// carry the external labels but replica), each point within what the
// replicas' sampling legitimately changes (see vmNoise); and after replica
// a stops, no POP's scraped `up` or recorded request rate in
// VictoriaMetrics has a gap longer than two scrape intervals.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/clavitor/clavis-telemetry/bench/fleet/sim"
	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// How a point read through VictoriaMetrics may legitimately differ from
// replica a's, and so what the comparison allows.
//
// The simulated counters grow at constant rates and its gauges are slow
// sinusoids (bench/fleet/sim: a pure function of time), so two replicas
// that scrape the same POP a second apart see the same curves, sampled at
// other instants. The dashboard reads recorded rates over 5 minutes to 3
// days, which in a test of a few minutes never hold a full window: while
// a window fills, rate() is the increase since the replica's first sample
// divided by the window, so it ramps up, and replica b's value at time e
// is replica a's at e minus the difference of their first scrapes (up to
// a scrape interval apart, each replica having its own scrape offset).
// VictoriaMetrics then answers at T with the newest deduplicated sample at
// or before T (one per -dedup.minScrapeInterval, from either replica,
// visible after -search.latencyOffset), evaluated by that replica up to an
// evaluation interval before. So VM's value at T is one replica a took
// somewhere in [T-vmLagBefore, T+vmLagAfter]: the comparison takes the
// envelope of replica a's answers (at a 1 s step) over that interval.
// The envelope is as wide as the value legitimately moves in those ~9 s:
// for the ratios and gauges a fraction of a percent, for a rate whose
// window is still filling about 9 s over the data's span (the test
// compares from 45 s of data on), so it stays tight where values are
// stable. On top of it, vmNoise: the integral counters are floored, so an
// increase carries +-1 count per series; at the capture's 400 requests/s
// the smallest increase a compared rate or ratio rests on (the requests of
// the quietest POP, scale 1/4, over the first 45 s; no bursts here, so no
// 5xx) is thousands of counts over a few dozen series, which bounds the
// residual well under 1 %; vmNoise allows 2 %. Measured: at most 0.25 % outside the
// envelope (2.0 % point for point at the same step, which a fixed
// tolerance of 5 % covered only by luck early in a window's ramp).
const (
	vmScrapeInterval = 2 * time.Second                                                                           // shortIntervals' scrape_interval
	vmEvalInterval   = time.Second                                                                               // shortIntervals' evaluation_interval
	vmLatencyOffset  = time.Second                                                                               // VictoriaMetrics' -search.latencyOffset below
	vmLagBefore      = vmScrapeInterval /* dedup bucket */ + vmEvalInterval + vmLatencyOffset + vmScrapeInterval /* first-scrape offset */
	vmLagAfter       = vmScrapeInterval + time.Second                                                            // first-scrape offset plus start-up skew
	vmNoise          = 0.02
)

func TestVictoriaMetricsBehindHAPair(t *testing.T) {
	t.Parallel()
	promBin := e2eutil.Tool(t, "prometheus")
	vmBin := e2eutil.Tool(t, "victoria-metrics")
	exporter := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "telemetry")
	root := e2eutil.RepoRoot(t)
	dir := t.TempDir()
	client := &http.Client{Timeout: 10 * time.Second}

	// A few simulated POPs from a fresh capture of the real exporter.
	capDir := filepath.Join(dir, "capture")
	if err := os.MkdirAll(capDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// 400 requests/s in the capture: counters that step often enough that
	// two replicas' rates over a short window agree.
	capture, err := sim.Capture(ctx, sim.CaptureOptions{Exporter: exporter, Dir: capDir, Interval: 2 * time.Second, RequestsPerSecond: 400})
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := sim.ParseCapture(capture)
	if err != nil {
		t.Fatal(err)
	}
	const pops = 3
	fleet, err := sim.NewFleet(tmpl, sim.Options{POPs: pops, Port: freeFleetPort(t), FlapShare: 0})
	if err != nil {
		t.Fatal(err)
	}
	srv := sim.NewServer(fleet)
	simCtx, stopSim := context.WithCancel(context.Background())
	simDone := make(chan error, 1)
	go func() { simDone <- srv.Run(simCtx) }()
	t.Cleanup(func() {
		stopSim()
		if err := <-simDone; err != nil {
			t.Errorf("simulator: %v", err)
		}
	})

	// VictoriaMetrics: dedup at the scrape interval; new samples visible
	// after 1 s instead of 30 s and no result cache, so the comparison
	// reads what was written.
	vmAddr := e2eutil.FreeAddr(t, "127.0.0.1")
	e2eutil.StartProcess(t, vmBin,
		"-httpListenAddr="+vmAddr,
		"-storageDataPath="+filepath.Join(dir, "vm"),
		"-retentionPeriod=1d",
		"-dedup.minScrapeInterval="+vmScrapeInterval.String(),
		"-search.latencyOffset=1s",
		"-search.disableCache",
		// A bare selector looks back 5 minutes, as in Prometheus, also for
		// a recorded series with one sample so far (its interval cannot
		// be detected yet: VM would look back one step only).
		"-search.minStalenessInterval=5m",
	)
	e2eutil.WaitHTTP(t, client, "http://"+vmAddr+"/health", http.StatusOK, 60*time.Second)
	vm := "http://" + vmAddr

	// The HA config as shipped, next to copies of rules/ and targets/.
	promDir := filepath.Join(dir, "prometheus")
	copyDir(t, filepath.Join(root, "prometheus"), promDir)
	writeFile(t, filepath.Join(promDir, "targets", "pops.yml"), fleet.Targets(), 0o644)
	cert := selfSignedCert(t, filepath.Join(dir, "tls"))
	caPEM, err := os.ReadFile(cert.certFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"pop-ca.crt", "alertbridge-ca.crt"} {
		writeFile(t, filepath.Join(promDir, "secrets", name), caPEM, 0o644)
	}
	writeFile(t, filepath.Join(promDir, "secrets", "pop-scrape-password"), []byte("unused\n"), 0o600)
	src, err := os.ReadFile(filepath.Join(promDir, "ha", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	promAddrs := []string{e2eutil.FreeAddr(t, "127.0.0.1"), e2eutil.FreeAddr(t, "127.0.0.1")}
	// Alertmanagers and the bridge are not part of this test: closed
	// loopback ports, so nothing leaves the machine.
	closed := []string{e2eutil.FreeAddr(t, "127.0.0.1"), e2eutil.FreeAddr(t, "127.0.0.1"), e2eutil.FreeAddr(t, "127.0.0.1")}
	cfg := vmHAConfig(t, string(src), promAddrs, closed, vm+"/api/v1/write")
	cfgPath := filepath.Join(promDir, "ha", "e2e-vm.yml")
	writeFile(t, cfgPath, []byte(cfg), 0o644)

	var replicas []*replicaProc
	for i, name := range []string{"a", "b"} {
		args := []string{
			"--config.file=" + cfgPath,
			"--storage.tsdb.path=" + filepath.Join(dir, "tsdb-"+name),
			"--web.listen-address=" + promAddrs[i],
		}
		cmd := e2eutil.StartProcessEnv(t, []string{"CLAVIS_REPLICA=" + name}, promBin, args...)
		replicas = append(replicas, &replicaProc{name: name, addr: promAddrs[i], stop: func() {
			_ = cmd.Process.Signal(os.Interrupt)
			_ = cmd.Wait()
		}})
	}
	for _, r := range replicas {
		e2eutil.WaitHTTP(t, client, "http://"+r.addr+"/-/ready", http.StatusOK, 60*time.Second)
	}
	promA := "http://" + replicas[0].addr

	// Both replicas scrape every POP and evaluate the rules; VM holds one
	// series per POP (not two: the replica label was dropped) and the
	// recorded series of both replicas merged.
	eventually(t, 90*time.Second, 500*time.Millisecond, "POPs up on both replicas and in VictoriaMetrics", func() (bool, string) {
		for _, base := range []string{promA, "http://" + replicas[1].addr, vm} {
			n, err := vmInstant(client, base, `count(up{job="clavis-pop"} == 1)`)
			if err != nil || n != pops {
				return false, fmt.Sprintf("%s: %v POPs up (%v)", base, n, err)
			}
		}
		n, err := vmInstant(client, vm, `count(pop:clavis_http_requests:rate5m)`)
		if err != nil || n != pops {
			return false, fmt.Sprintf("VM: %v recorded request rates (%v)", n, err)
		}
		return true, ""
	})
	// Some history in VM for every dashboard query to read.
	start := time.Now()
	// 45 s of it before the first compared point: every compared window
	// then holds at least 20 samples per POP. (start is after the first
	// samples: a lower bound.)
	const settle, compared = 45 * time.Second, 20 * time.Second
	eventually(t, 3*time.Minute, time.Second, "enough data in VictoriaMetrics", func() (bool, string) {
		if since := time.Since(start); since < settle+compared+vmLagAfter+time.Second+vmScrapeInterval /* end is truncated to it */ {
			return false, fmt.Sprintf("%s of data", since)
		}
		n, err := vmInstant(client, vm, `min(count_over_time(up{job="clavis-pop"}[70s]))`)
		return err == nil && n >= 30, fmt.Sprintf("%v samples per POP in 70 s (%v)", n, err)
	})
	for _, r := range replicas {
		n, err := vmInstant(client, vm, fmt.Sprintf(`count(up{job="clavis-pop", replica=%q})`, r.name))
		if err != nil || n != 0 {
			t.Errorf("VM keeps series with replica=%q (%v, %v): the replicas' copies are not merged", r.name, n, err)
		}
	}

	// Every fleet-dashboard query, through VM and through replica a. VM's
	// samples carry the replicas' external labels (all but replica, dropped
	// on the way out); a replica's own query results do not.
	var parsed struct {
		Global struct {
			ExternalLabels map[string]string `yaml:"external_labels"`
		} `yaml:"global"`
	}
	if err := yaml.Unmarshal([]byte(cfg), &parsed); err != nil {
		t.Fatal(err)
	}
	var external []string
	for k := range parsed.Global.ExternalLabels {
		if k != "replica" {
			external = append(external, k)
		}
	}
	queries, err := sim.DashboardQueries(filepath.Join(root, "grafana", "dashboards", "clavis-fleet.json"), vmScrapeInterval, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// The last 20 s, ending where replica a has answered the envelope of
	// the last point too.
	end := time.Now().Add(-vmLagAfter - time.Second).Truncate(vmScrapeInterval)
	from := end.Add(-compared)
	if from.Before(start.Add(settle)) {
		t.Fatalf("compared range starts %s after the first samples, want %s", from.Sub(start), settle)
	}
	// remote_write sends in batches (up to 5 s apart): VM has the whole
	// range once every POP's scraped and recorded series has a sample past
	// it.
	eventually(t, time.Minute, 500*time.Millisecond, "VictoriaMetrics caught up with the compared range", func() (bool, string) {
		for _, sel := range []string{`up{job="clavis-pop"}`, `pop:clavis_http_requests:rate5m`} {
			n, err := vmInstant(client, vm, "min(timestamp("+sel+"))")
			if err != nil || n < float64(end.Add(vmLagAfter).Unix()) {
				return false, fmt.Sprintf("%s: newest sample at %v (%v)", sel, n, err)
			}
		}
		return true, ""
	})
	worst, pointwise, empty := 0.0, 0.0, 0
	for _, q := range queries {
		// `@ end()` pins a panel's $topk choice at its range's end. Replica
		// a is asked over a wider range (the envelope), so its end() is
		// vmLagAfter later, and a subquery aligned to the minute can pick
		// another instant there (a series recorded between the two has
		// been chosen on one side only): both are pinned at the compared
		// range's end.
		expr := strings.ReplaceAll(q.Expr, "@ end()", fmt.Sprintf("@ %d", end.Unix()))
		want, err := vmRange(client, promA, expr, from.Add(-vmLagBefore), end.Add(vmLagAfter), time.Second)
		if err != nil {
			t.Fatalf("replica a: %s: %v", expr, err)
		}
		if len(want) == 0 {
			empty++
		}
		// The caught-up wait above covers the scraped and the 15 s recorded
		// series; a minute-interval group's sample may sit in another
		// remote-write batch or in VM's not-yet-searchable rows a little
		// longer. What VM answers for a past range cannot change after
		// that, so a difference that is still there 10 s later is one.
		var dev, pw float64
		for attempt := 0; ; attempt++ {
			got, err := vmRange(client, vm, expr, from, end, vmScrapeInterval, external...)
			if err != nil {
				t.Fatalf("VictoriaMetrics: %s: %v", expr, err)
			}
			dev, pw, err = compareRanges(want, got, from, end)
			if err == nil {
				break
			}
			if attempt == 2 {
				t.Errorf("panel %q, %s: %v", q.Panel, expr, err)
				vmDumpSelectors(t, client, vm, expr, from.Add(-time.Minute), end)
				break
			}
			t.Logf("panel %q: %v; asking VictoriaMetrics again in 5 s", q.Panel, err)
			time.Sleep(5 * time.Second)
		}
		worst, pointwise = math.Max(worst, dev), math.Max(pointwise, pw)
	}
	t.Logf("%d fleet-dashboard queries (%d still empty on replica a): largest deviation of VictoriaMetrics outside replica a's envelope %.4f%% (allowed %.1f%%); point for point, at the same step, %.2f%%", len(queries), empty, 100*worst, 100*vmNoise, 100*pointwise)
	if empty > len(queries)/2 {
		t.Errorf("%d of %d queries empty on replica a: nothing was compared", empty, len(queries))
	}

	// Stop replica a; b's samples go on and VM has no gap.
	stopAt := time.Now()
	replicas[0].stop()
	eventually(t, time.Minute, 500*time.Millisecond, "replica b's samples after the stop in VictoriaMetrics", func() (bool, string) {
		n, err := vmInstant(client, vm, `min(timestamp(up{job="clavis-pop"}))`)
		return err == nil && n >= float64(stopAt.Add(10*time.Second).Unix()), fmt.Sprintf("newest sample at %v (%v)", n, err)
	})
	// Scraped and recorded series alike: each replica writes its own.
	for _, match := range []string{`up{job="clavis-pop"}`, `pop:clavis_http_requests:rate5m`} {
		series, err := vmExport(client, vm, match, stopAt.Add(-20*time.Second), stopAt.Add(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if len(series) != pops {
			t.Fatalf("VM export: %d %s series, want %d", len(series), match, pops)
		}
		for name, ts := range series {
			if len(ts) < 2 || ts[0] > stopAt.Add(-15*time.Second).UnixMilli() || ts[len(ts)-1] < stopAt.Add(5*time.Second).UnixMilli() {
				t.Errorf("%s %s: samples do not span the stop: %v", match, name, ts)
				continue
			}
			for i := 1; i < len(ts); i++ {
				if gap := time.Duration(ts[i]-ts[i-1]) * time.Millisecond; gap > 2*vmScrapeInterval+500*time.Millisecond {
					t.Errorf("%s %s: %s without a sample at %s (replica a stopped at %s)", match, name, gap,
						time.UnixMilli(ts[i-1]).Format("15:04:05.000"), stopAt.Format("15:04:05.000"))
				}
			}
		}
	}
}

// popJobPlainHTTP turns the clavis-pop job to plain HTTP without auth, as
// bench/fleet-config.py does: `scheme: https` becomes http, its tls_config
// and basic_auth blocks go; each must be there once.
func popJobPlainHTTP(t *testing.T, src string) string {
	t.Helper()
	lines := strings.Split(src, "\n")
	start := -1
	for i, l := range lines {
		if l == "  - job_name: clavis-pop" {
			start = i
		}
	}
	if start < 0 {
		t.Fatal("no '  - job_name: clavis-pop' in the HA config")
	}
	var out []string
	edits := map[string]int{}
	inJob, skipping := false, false
	for i, l := range lines {
		if i == start {
			inJob = true
		} else if inJob && strings.HasPrefix(l, "  - job_name:") {
			inJob = false
		}
		if inJob {
			if skipping && strings.HasPrefix(l, "      ") {
				continue
			}
			skipping = false
			switch l {
			case "    tls_config:", "    basic_auth:":
				edits[l]++
				skipping = true
				continue
			case "    scheme: https":
				edits[l]++
				l = "    scheme: http"
			}
		}
		out = append(out, l)
	}
	if len(edits) != 3 {
		t.Fatalf("clavis-pop job: expected scheme https, tls_config and basic_auth, edited %v", edits)
	}
	return strings.Join(out, "\n")
}

// vmQuoted renders addresses as a YAML flow list's items: 'a', 'b'.
func vmQuoted(addrs []string) string { return "'" + strings.Join(addrs, "', '") + "'" }

type replicaProc struct {
	name, addr string
	stop       func()
}

// freeFleetPort is a port free on the simulator's first POP address.
func freeFleetPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.1.0.1:0")
	if err != nil {
		t.Fatalf("127.1.0.1 (the simulated POPs' loopback range): %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// vmHAConfig adapts prometheus/ha/prometheus.yml: the global intervals, the
// POP job to the simulator's plain HTTP (no TLS, no auth), every
// *.central.example.net peer to a loopback address (the replicas
// themselves, closed ports for the Alertmanagers and the bridge), and the
// commented remote_write example uncommented with VictoriaMetrics' URL and
// without its basic auth. Every edit must match.
func vmHAConfig(t *testing.T, src string, promAddrs, closed []string, writeURL string) string {
	t.Helper()
	src = popJobPlainHTTP(t, src)
	src = templated(t, src,
		globalIntervals, shortIntervals,
		"'alertmanager-a.central.example.net:9093', 'alertmanager-b.central.example.net:9093'", vmQuoted(closed[:2]),
		"'alertbridge.central.example.net:9746'", "'"+closed[2]+"'",
	)
	// The prometheus job scrapes both replicas (or, in older files, itself).
	if both := "'prometheus-a.central.example.net:9090', 'prometheus-b.central.example.net:9090'"; strings.Contains(src, both) {
		src = templated(t, src, both, vmQuoted(promAddrs))
	} else {
		src = templated(t, src, "'127.0.0.1:9090'", vmQuoted(promAddrs))
	}
	// Uncomment the remote_write example at the end of the file.
	lines := strings.Split(src, "\n")
	at := -1
	for i, l := range lines {
		if l == "# remote_write:" {
			at = i
		}
	}
	if at < 0 {
		t.Fatal("prometheus/ha/prometheus.yml: no commented '# remote_write:' example")
	}
	for i := at; i < len(lines); i++ {
		if l, ok := strings.CutPrefix(lines[i], "# "); ok {
			lines[i] = l
		} else if lines[i] == "#" {
			lines[i] = ""
		}
	}
	src = strings.Join(lines, "\n")
	var auth string
	for _, l := range strings.SplitAfter(src[strings.Index(src, "\nremote_write:"):], "\n") {
		if strings.HasPrefix(l, "    basic_auth:") || (auth != "" && strings.HasPrefix(l, "      ")) {
			auth += l
		} else if auth != "" {
			break
		}
	}
	if auth == "" {
		t.Fatal("remote_write example: no basic_auth block to replace")
	}
	src = strings.Replace(src, auth, "", 1)
	i := strings.Index(src, "\nremote_write:\n  - url: ")
	if i < 0 {
		t.Fatal("remote_write example: no '  - url:' line")
	}
	j := i + len("\nremote_write:\n  - url: ")
	k := strings.IndexByte(src[j:], '\n')
	src = src[:j] + writeURL + src[j+k:]
	for _, l := range strings.Split(src, "\n") {
		if strings.Contains(l, ".example.net") && !strings.HasPrefix(strings.TrimSpace(l), "#") {
			t.Fatalf("an .example.net host is left in the config: %s", l)
		}
	}
	return src
}

type vmResponse struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		Result []struct {
			Metric map[string]string `json:"metric"`
			Value  [2]any            `json:"value"`
			Values [][2]any          `json:"values"`
		} `json:"result"`
	} `json:"data"`
}

func vmGet(c *http.Client, u string) (vmResponse, error) {
	var r vmResponse
	resp, err := c.Get(u)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil || r.Status != "success" {
		return r, fmt.Errorf("%s: %s %.300s", resp.Status, r.Error, b)
	}
	return r, nil
}

// vmInstant is the first value of an instant query (0 if empty).
func vmInstant(c *http.Client, base, q string) (float64, error) {
	r, err := vmGet(c, base+"/api/v1/query?query="+url.QueryEscape(q))
	if err != nil || len(r.Data.Result) == 0 {
		return 0, err
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}

// vmRange runs a range query and returns its points per series (labels as
// a sorted key).
func vmRange(c *http.Client, base, q string, from, to time.Time, step time.Duration, ignore ...string) (map[string]map[int64]float64, error) {
	r, err := vmGet(c, base+"/api/v1/query_range?"+url.Values{
		"query": {q}, "start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix(), 10)},
		"step": {strconv.FormatFloat(step.Seconds(), 'f', -1, 64)},
	}.Encode())
	if err != nil {
		return nil, err
	}
	out := map[string]map[int64]float64{}
	for _, s := range r.Data.Result {
		var keys []string
		for k, v := range s.Metric {
			if !slices.Contains(ignore, k) {
				keys = append(keys, k+"="+v)
			}
		}
		sort.Strings(keys)
		pts := map[int64]float64{}
		for _, p := range s.Values {
			ts, _ := p[0].(float64)
			vs, _ := p[1].(string)
			v, err := strconv.ParseFloat(vs, 64)
			if err != nil {
				return nil, err
			}
			pts[int64(ts)] = v
		}
		out["{"+strings.Join(keys, ",")+"}"] = pts
	}
	return out, nil
}

// compareRanges checks that got (VictoriaMetrics, one point per scrape
// interval) has want's series (replica a, one point a second, over the
// compared range widened by the lags) and that every point of got lies in
// the envelope of want's points from vmLagBefore before to vmLagAfter
// after it, widened by vmNoise. At most one step at each end of the range
// may be missing from got (VictoriaMetrics and Prometheus align the first
// and last step's lookback differently). It returns the largest relative
// deviation outside the envelope.
func compareRanges(want, got map[string]map[int64]float64, from, end time.Time) (outside, pointwise float64, err error) {
	if len(want) == 0 {
		// Nothing to compare yet (a rule group with a long interval has not
		// run on replica a); counted by the caller.
		return 0, 0, nil
	}
	var problems []string
	worst := 0.0
	before, after := int64(vmLagBefore/time.Second), int64(vmLagAfter/time.Second)
	for k, wp := range want {
		onGrid := false
		for ts := from.Unix(); ts <= end.Unix() && !onGrid; ts += int64(vmScrapeInterval / time.Second) {
			_, onGrid = wp[ts]
		}
		if !onGrid {
			// Replica a has this series only in the margins around the
			// compared range: a rule group with a 1 m or 5 m interval
			// evaluated for the first time just after its end.
			continue
		}
		gp, ok := got[k]
		if !ok {
			var have []string
			for g := range got {
				have = append(have, g)
			}
			problems = append(problems, fmt.Sprintf("series %s missing (VM has %v)", k, have))
			continue
		}
		missing, steps := 0, 0
		var at []string
		for ts := from.Unix(); ts <= end.Unix(); ts += int64(vmScrapeInterval / time.Second) {
			if _, ok := wp[ts]; !ok {
				continue // replica a has no point here either
			}
			steps++
			g, ok := gp[ts]
			if !ok {
				missing++
				at = append(at, fmt.Sprintf("+%ds", ts-from.Unix()))
				continue
			}
			if w := wp[ts]; w != g {
				pointwise = math.Max(pointwise, math.Abs(w-g)/math.Max(math.Max(math.Abs(w), math.Abs(g)), 1e-9))
			}
			lo, hi := math.Inf(1), math.Inf(-1)
			for x := ts - before; x <= ts+after; x++ {
				if w, ok := wp[x]; ok {
					lo, hi = math.Min(lo, w), math.Max(hi, w)
				}
			}
			dev := 0.0
			switch {
			case g < lo:
				dev = (lo - g) / math.Max(math.Abs(lo), 1e-9)
			case g > hi:
				dev = (g - hi) / math.Max(math.Abs(hi), 1e-9)
			}
			worst = math.Max(worst, dev)
			if dev > vmNoise {
				problems = append(problems, fmt.Sprintf("%s at %d: replica a %g..%g around it, VM %g (%.2f%% outside)", k, ts, lo, hi, g, 100*dev))
			}
		}
		if missing > 2 || missing == steps {
			problems = append(problems, fmt.Sprintf("%s: VM lacks %d of %d points (at %s into the compared range)", k, missing, steps, strings.Join(at, " ")))
		}
	}
	// A series VM has and replica a lacks can be replica b's: b evaluated a
	// rule in the first seconds that a did not yet. Not a difference here.
	if len(problems) > 0 {
		if len(problems) > 5 {
			problems = append(problems[:5], fmt.Sprintf("... %d more", len(problems)-5))
		}
		return worst, pointwise, fmt.Errorf("%s", strings.Join(problems, "; "))
	}
	return worst, pointwise, nil
}

// vmDumpSelectors logs VictoriaMetrics' raw samples (staleness markers
// included) of every recorded or scraped metric expr names, so a failed
// comparison shows what VM held.
func vmDumpSelectors(t *testing.T, c *http.Client, base, expr string, from, to time.Time) {
	t.Helper()
	seen := map[string]bool{}
	for _, name := range vmMetricName.FindAllString(expr, -1) {
		if seen[name] {
			continue
		}
		seen[name] = true
		resp, err := c.Get(base + "/api/v1/export?" + url.Values{
			"match[]": {name}, "start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix(), 10)},
		}.Encode())
		if err != nil {
			t.Logf("VictoriaMetrics export of %s: %v", name, err)
			continue
		}
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		t.Logf("VictoriaMetrics holds for %s (%d..%d):\n%s", name, from.Unix(), to.Unix(), b)
	}
}

var vmMetricName = regexp.MustCompile(`[a-zA-Z_][a-zA-Z0-9_]*:[a-zA-Z0-9_:]+|\bclavis_[a-zA-Z0-9_]+|\bup\b`)

// vmExport returns the raw sample timestamps (ms) of every series matching
// match between from and to, from VictoriaMetrics' /api/v1/export.
func vmExport(c *http.Client, base, match string, from, to time.Time) (map[string][]int64, error) {
	resp, err := c.Get(base + "/api/v1/export?" + url.Values{
		"match[]": {match}, "start": {strconv.FormatInt(from.Unix(), 10)}, "end": {strconv.FormatInt(to.Unix(), 10)},
	}.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("export: %s: %s", resp.Status, b)
	}
	out := map[string][]int64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var line struct {
			Metric     map[string]string `json:"metric"`
			Timestamps []int64           `json:"timestamps"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			return nil, err
		}
		key := line.Metric["pop"]
		ts := append(out[key], line.Timestamps...)
		sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
		out[key] = ts
	}
	return out, sc.Err()
}
