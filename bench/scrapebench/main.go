// Command scrapebench scrapes several running exporters in turn, the same
// number of times each, and reports per exporter: CPU time of the exporter
// process per scrape (utime+stime from /proc/PID/stat), scrape latency
// percentiles, resident memory and response size, plus each one's ratio to
// the first target, which is the baseline (node_exporter in bench/exporter.sh).
//
// Scrapes are interleaved (A, B, A, B, ...) so that background load on a
// shared machine hits every exporter alike. Requests ask for what Prometheus
// asks for: its Accept header and gzip. With -gap, every round of scrapes is
// followed by that much idle time, as between two scrapes of a real
// Prometheus: each exporter then starts its scrape from cold caches and
// sleeping threads, which costs a small exporter more than a large one.
//
// CPU time comes from the sum of the threads' run time in
// /proc/PID/task/*/schedstat (nanoseconds), or, where the kernel has no
// schedstat, from utime+stime in /proc/PID/stat (10 ms ticks, coarse for
// short runs). The ticks of /proc/PID/stat, the source issue 2 names, are
// reported next to it (the "stat" column and ratio): the kernel samples
// them at timer interrupts, so work shorter than a tick is charged by
// chance, and the two differ by a few per cent.
//
//	scrapebench -n 1000 node=http://127.0.0.1:9100/metrics@1234 ours=http://127.0.0.1:9745/metrics@5678
package main

import (
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// prometheusAccept is the Accept header Prometheus 2.x sends for a scrape.
const prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

// Targets to report on (not to fail on: a shared machine is noisy).
var (
	targetCPURatio float64
	targetP99      time.Duration
	targetRSSMB    float64
	references     map[string]bool
	floorName      string
	useGzip        bool
	gap            time.Duration
)

type target struct {
	encoding string // Content-Encoding of the last response
	name     string
	url      string
	pid      int

	latencies         []time.Duration
	wireBytes         int
	bodyBytes         int
	cpuStart, cpuTT   time.Duration
	statStart, statTT time.Duration // utime+stime, from /proc/PID/stat
	rssKB, hwmKB      int
}

func main() {
	n := flag.Int("n", 1000, "scrapes per target")
	warmup := flag.Int("warmup", 20, "untimed scrapes per target before measuring")
	timeout := flag.Duration("timeout", 10*time.Second, "timeout of one scrape")
	flag.BoolVar(&useGzip, "gzip", true, "ask for gzip, as Prometheus does (false: identity)")
	flag.Float64Var(&targetCPURatio, "target-cpu-ratio", 0, "if > 0, report whether each target's CPU per scrape is at most this fraction of the baseline's")
	flag.DurationVar(&targetP99, "target-p99", 0, "if > 0, report whether each target's p99 latency is below this")
	flag.Float64Var(&targetRSSMB, "target-rss-mb", 0, "if > 0, report whether each target's RSS is below this many MiB")
	reference := flag.String("reference", "", "comma-separated names of targets shown for comparison only, with no target verdicts")
	flag.StringVar(&floorName, "floor", "", "name of a reference target that is a bare HTTP server: also report each target's CPU above it, relative to the baseline's CPU above it")
	flag.DurationVar(&gap, "gap", 0, "idle time after each round of scrapes (a Prometheus scrape interval in miniature)")
	flag.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: %s [flags] name=URL@PID ... (the first target is the baseline)\n", os.Args[0])
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() < 1 {
		flag.Usage()
		os.Exit(2)
	}
	references = map[string]bool{}
	for _, name := range strings.Split(*reference, ",") {
		if name != "" {
			references[name] = true
		}
	}
	var targets []*target
	for _, arg := range flag.Args() {
		t, err := parseTarget(arg)
		if err != nil {
			fmt.Fprintln(os.Stderr, "scrapebench:", err)
			os.Exit(2)
		}
		targets = append(targets, t)
	}
	if err := run(targets, *n, *warmup, *timeout); err != nil {
		fmt.Fprintln(os.Stderr, "scrapebench:", err)
		os.Exit(1)
	}
	report(os.Stdout, targets, *n)
}

func parseTarget(s string) (*target, error) {
	name, rest, ok := strings.Cut(s, "=")
	if !ok {
		return nil, fmt.Errorf("%q: want name=URL@PID", s)
	}
	i := strings.LastIndexByte(rest, '@')
	if i < 0 {
		return nil, fmt.Errorf("%q: want name=URL@PID", s)
	}
	pid, err := strconv.Atoi(rest[i+1:])
	if err != nil {
		return nil, fmt.Errorf("%q: bad PID: %w", s, err)
	}
	u := rest[:i]
	if !strings.HasPrefix(u, "http://127.") && !strings.HasPrefix(u, "http://[::1]") && !strings.HasPrefix(u, "http://localhost") {
		return nil, fmt.Errorf("%q: only loopback targets are allowed", s)
	}
	return &target{name: name, url: u, pid: pid}, nil
}

func run(targets []*target, n, warmup int, timeout time.Duration) error {
	client := &http.Client{
		Timeout: timeout,
		// Keep gzip on the wire, as Prometheus does, and count its bytes.
		Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 1},
	}
	buf := new(bytes.Buffer)
	for _, t := range targets {
		for range warmup {
			if _, err := scrape(client, t, buf); err != nil {
				return err
			}
		}
		// The size of one response, uncompressed.
		t.bodyBytes, t.wireBytes = buf.Len(), buf.Len()
		// Prometheus asks for gzip; an exporter may answer uncompressed
		// (clavis-telemetry does unless --web.compression), as HTTP allows.
		if t.encoding == "gzip" {
			zr, err := gzip.NewReader(bytes.NewReader(buf.Bytes()))
			if err != nil {
				return fmt.Errorf("%s: response is not gzip: %w", t.name, err)
			}
			body, err := io.ReadAll(zr)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			t.bodyBytes = len(body)
		}
		t.latencies = make([]time.Duration, 0, n)
		var err error
		if t.cpuStart, err = cpuTime(t.pid); err != nil {
			return err
		}
		if t.statStart, err = statTime(fmt.Sprintf("/proc/%d/stat", t.pid)); err != nil {
			return err
		}
	}
	for range n {
		for _, t := range targets {
			d, err := scrape(client, t, buf)
			if err != nil {
				return err
			}
			t.latencies = append(t.latencies, d)
		}
		if gap > 0 {
			time.Sleep(gap)
		}
	}
	for _, t := range targets {
		end, err := cpuTime(t.pid)
		if err != nil {
			return err
		}
		t.cpuTT = end - t.cpuStart
		stat, err := statTime(fmt.Sprintf("/proc/%d/stat", t.pid))
		if err != nil {
			return err
		}
		t.statTT = stat - t.statStart
		if t.rssKB, t.hwmKB, err = memory(t.pid); err != nil {
			return err
		}
	}
	return nil
}

// scrape fetches the target once into buf and returns how long it took,
// from sending the request to the last byte of the body.
func scrape(client *http.Client, t *target, buf *bytes.Buffer) (time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, t.url, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Accept", prometheusAccept)
	if useGzip {
		req.Header.Set("Accept-Encoding", "gzip")
	} else {
		req.Header.Set("Accept-Encoding", "identity")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", t.name, err)
	}
	t.encoding = resp.Header.Get("Content-Encoding")
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("%s: %w", t.name, err)
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", t.name, resp.Status)
	}
	return d, nil
}

// clockTick is USER_HZ, the unit of utime and stime in /proc/PID/stat; it
// is 100 on every Linux architecture Go supports.
const clockTick = 100

// cpuTime is the CPU time a process has used so far: the run time of its
// threads from schedstat, to the nanosecond, or utime+stime where the kernel
// has no schedstat. schedstat misses threads that have exited; Go exporters
// keep theirs.
func cpuTime(pid int) (time.Duration, error) {
	if d, err := schedstatTime(fmt.Sprintf("/proc/%d/task", pid)); err == nil {
		return d, nil
	}
	return statTime(fmt.Sprintf("/proc/%d/stat", pid))
}

// schedstatTime sums the first field (time on a CPU, in ns) of
// taskDir/*/schedstat.
func schedstatTime(taskDir string) (time.Duration, error) {
	tasks, err := os.ReadDir(taskDir)
	if err != nil {
		return 0, err
	}
	var sum time.Duration
	for _, task := range tasks {
		b, err := os.ReadFile(taskDir + "/" + task.Name() + "/schedstat")
		if errors.Is(err, os.ErrNotExist) && len(tasks) > 1 {
			continue // the thread exited meanwhile
		}
		if err != nil {
			return 0, err
		}
		f := strings.Fields(string(b))
		if len(f) < 1 {
			return 0, fmt.Errorf("malformed %s/schedstat", task.Name())
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("malformed %s/schedstat: %w", task.Name(), err)
		}
		sum += time.Duration(ns)
	}
	return sum, nil
}

// statTime is utime+stime of a process from its /proc/PID/stat, its
// threads included (dead ones too).
func statTime(path string) (time.Duration, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces; fields count from after
	// its closing parenthesis. utime and stime are fields 14 and 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed /proc/PID/stat")
	}
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTick, nil
}

// memory returns VmRSS and VmHWM (peak RSS) of a process, in kB.
func memory(pid int) (rss, hwm int, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		switch k {
		case "VmRSS":
			rss, _ = strconv.Atoi(f[0])
		case "VmHWM":
			hwm, _ = strconv.Atoi(f[0])
		}
	}
	return rss, hwm, nil
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

func report(w io.Writer, targets []*target, n int) {
	idle := "back to back"
	if gap > 0 {
		idle = fmt.Sprintf("%s idle after each round", gap)
	}
	fmt.Fprintf(w, "%d scrapes per exporter, interleaved, %s; CPU = CPU time of the exporter process / scrapes\n\n", n, idle)
	fmt.Fprintf(w, "%-18s %14s %8s %9s %9s %9s %9s %9s %11s %10s\n",
		"exporter", "cpu/scrape ms", "stat ms", "p50 ms", "p99 ms", "max ms", "rss MB", "peak MB", "body bytes", "wire bytes")
	type row struct{ cpu, stat, p50, p99 time.Duration }
	rows := make([]row, len(targets))
	for i, t := range targets {
		s := slices.Clone(t.latencies)
		slices.Sort(s)
		rows[i] = row{t.cpuTT / time.Duration(n), t.statTT / time.Duration(n), percentile(s, 0.50), percentile(s, 0.99)}
		fmt.Fprintf(w, "%-18s %14s %8s %9s %9s %9s %9.1f %9.1f %11d %10d\n",
			t.name, ms(rows[i].cpu), ms(rows[i].stat), ms(rows[i].p50), ms(rows[i].p99), ms(s[len(s)-1]),
			float64(t.rssKB)/1024, float64(t.hwmKB)/1024, t.bodyBytes, t.wireBytes)
	}
	base := targets[0]
	for i, t := range targets[1:] {
		r := rows[i+1]
		ratio := func(a, b time.Duration) string {
			if b == 0 {
				return "n/a"
			}
			return fmt.Sprintf("%.3f", float64(a)/float64(b))
		}
		fmt.Fprintf(w, "\n%s / %s: cpu/scrape %s (stat %s), p50 %s, p99 %s, rss %.3f\n", t.name, base.name,
			ratio(r.cpu, rows[0].cpu), ratio(r.stat, rows[0].stat), ratio(r.p50, rows[0].p50), ratio(r.p99, rows[0].p99),
			float64(t.rssKB)/float64(max(base.rssKB, 1)))
		if f := slices.IndexFunc(targets, func(t *target) bool { return t.name == floorName }); f >= 0 && t.name != floorName {
			floor := rows[f].cpu
			fmt.Fprintf(w, "  above %s: cpu/scrape %s of %s's %s ms\n", floorName,
				ratio(max(r.cpu-floor, 0), max(rows[0].cpu-floor, 0)), base.name, ms(max(rows[0].cpu-floor, 0)))
		}
		if references[t.name] {
			continue
		}
		verdict := func(ok bool) string {
			if ok {
				return "met"
			}
			return "MISSED"
		}
		if targetCPURatio > 0 {
			fmt.Fprintf(w, "  target cpu/scrape <= %.3f x %s (%s ms): %s (%s ms)\n", targetCPURatio, base.name,
				ms(time.Duration(float64(rows[0].cpu)*targetCPURatio)), verdict(float64(r.cpu) <= float64(rows[0].cpu)*targetCPURatio), ms(r.cpu))
		}
		if targetP99 > 0 {
			fmt.Fprintf(w, "  target p99 < %s: %s (%s ms)\n", targetP99, verdict(r.p99 < targetP99), ms(r.p99))
		}
		if targetRSSMB > 0 {
			rss := float64(t.rssKB) / 1024
			fmt.Fprintf(w, "  target rss < %.0f MB: %s (%.1f MB)\n", targetRSSMB, verdict(rss < targetRSSMB), rss)
		}
	}
}
