// Command fleet simulates a fleet of POPs for the central side's
// benchmarks and tests: hundreds of clavis-telemetry targets on loopback
// addresses, each serving an exposition taken from a real scrape of the
// exporter, with values that evolve as on a real POP.
//
//	fleet capture -out pop.capture              # build and scrape the real exporter (telemetry edition)
//	fleet serve -capture pop.capture -pops 1000 -targets pops.yml -control 127.0.0.1:9799
//	fleet openmetrics -capture pop.capture -pops 1000 -hours 6 -out history.om
//
// serve puts POP i on 127.1.(i/254).(i%254+1):port (Linux routes all of
// 127/8 to lo), writes the file_sd targets with pop and region labels, and
// takes a region down on `POST /down?region=R&count=N` of its control
// address. openmetrics writes the same fleet's history for `promtool tsdb
// create-blocks-from openmetrics`. See bench/fleet.sh and docs/scaling.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"

	"github.com/clavitor/clavis-telemetry/bench/fleet/sim"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "capture":
		err = capture(os.Args[2:])
	case "serve":
		err = serve(os.Args[2:])
	case "measure":
		err = measure(os.Args[2:])
	case "storm":
		err = storm(os.Args[2:])
	case "openmetrics":
		err = openmetrics(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "fleet:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: fleet capture|serve|openmetrics [flags] (-h for each)")
	os.Exit(2)
}

func capture(args []string) error {
	fs := flag.NewFlagSet("capture", flag.ExitOnError)
	out := fs.String("out", "pop.capture", "capture file to write")
	exporter := fs.String("exporter", "", "telemetry-edition clavis-telemetry binary (default: go build -tags telemetry ./cmd/clavis-telemetry)")
	interval := fs.Duration("interval", 10*time.Second, "time between the two scrapes")
	fs.Parse(args)
	dir, err := os.MkdirTemp("", "fleet-capture-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	if *exporter == "" {
		*exporter = filepath.Join(dir, "clavis-telemetry")
		build := exec.Command("go", "build", "-tags", "telemetry", "-o", *exporter, "./cmd/clavis-telemetry")
		build.Dir, err = repoRoot()
		if err != nil {
			return err
		}
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			return fmt.Errorf("building the exporter: %w", err)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b, err := sim.Capture(ctx, sim.CaptureOptions{Exporter: *exporter, Dir: dir, Interval: *interval})
	if err != nil {
		return err
	}
	t, err := sim.ParseCapture(b)
	if err != nil {
		return fmt.Errorf("the capture does not parse: %w", err)
	}
	fmt.Fprintf(os.Stderr, "fleet: captured %d families, %d series per POP\n", len(t.Families), t.SeriesCount())
	return os.WriteFile(*out, b, 0o644)
}

// repoRoot is the module root of this repository (go env GOMOD).
func repoRoot() (string, error) {
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		return "", err
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		return "", errors.New("run capture inside the repository, or pass -exporter")
	}
	return filepath.Dir(mod), nil
}

type fleetFlags struct {
	capture                        *string
	pops, port                     *int
	flap, burst, fill              *float64
	downFor, downEvery, burstFor   *time.Duration
	burstEvery, fastFill, slowFill *time.Duration
	seed                           *uint64
}

func addFleetFlags(fs *flag.FlagSet) *fleetFlags {
	return &fleetFlags{
		capture:    fs.String("capture", "pop.capture", "capture file written by fleet capture"),
		pops:       fs.Int("pops", 100, "number of POPs"),
		port:       fs.Int("port", 9745, "port of every POP (each on its own 127.1.x.y address)"),
		flap:       fs.Float64("flap-share", 0.02, "share of POPs that go down for -down-for every -down-every"),
		downFor:    fs.Duration("down-for", 5*time.Minute, "length of a flapping POP's outage"),
		downEvery:  fs.Duration("down-every", 2*time.Hour, "period of a flapping POP's outages"),
		burst:      fs.Float64("burst-share", 0.05, "share of POPs with 5xx bursts (a quarter of requests) of -burst-for every -burst-every"),
		burstFor:   fs.Duration("burst-for", 15*time.Minute, "length of a 5xx burst"),
		burstEvery: fs.Duration("burst-every", 3*time.Hour, "period of 5xx bursts"),
		fill:       fs.Float64("fill-share", 0.05, "share of POPs whose disks fill within -fast-fill (the others take -slow-fill)"),
		fastFill:   fs.Duration("fast-fill", 36*time.Hour, "time for a fast-filling disk to fill"),
		slowFill:   fs.Duration("slow-fill", 60*24*time.Hour, "time for other disks to fill"),
		seed:       fs.Uint64("seed", 1, "seed of the per-POP draws"),
	}
}

func (ff *fleetFlags) fleet() (*sim.Fleet, error) {
	b, err := os.ReadFile(*ff.capture)
	if err != nil {
		return nil, err
	}
	t, err := sim.ParseCapture(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", *ff.capture, err)
	}
	return sim.NewFleet(t, sim.Options{
		POPs: *ff.pops, Port: *ff.port, Seed: *ff.seed,
		FlapShare: *ff.flap, DownFor: *ff.downFor, DownEvery: *ff.downEvery,
		BurstShare: *ff.burst, BurstFor: *ff.burstFor, BurstEvery: *ff.burstEvery,
		FillShare: *ff.fill, FastFill: *ff.fastFill, SlowFill: *ff.slowFill,
	})
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	ff := addFleetFlags(fs)
	targets := fs.String("targets", "", "write the file_sd targets file here")
	control := fs.String("control", "127.0.0.1:9799", "loopback address of the control API (empty = none)")
	duration := fs.Duration("duration", 0, "stop after this long (0 = until SIGINT/SIGTERM)")
	report := fs.Duration("report", time.Minute, "print scrapes served and own CPU this often")
	fs.Parse(args)
	f, err := ff.fleet()
	if err != nil {
		return err
	}
	if *targets != "" {
		if err := os.WriteFile(*targets, f.Targets(), 0o644); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}
	srv := sim.NewServer(f)
	if *control != "" {
		host, _, err := net.SplitHostPort(*control)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("-control must be a loopback address, not %q", *control)
		}
		l, err := net.Listen("tcp", *control)
		if err != nil {
			return err
		}
		cs := &http.Server{Handler: srv.ControlHandler(), ReadHeaderTimeout: 5 * time.Second}
		go cs.Serve(l)
		defer cs.Close()
	}
	go reportCPU(ctx, srv, *report)
	fmt.Fprintf(os.Stderr, "fleet: serving %d POPs (%d series each) on 127.1.x.y:%d\n", len(f.POPs), f.T.SeriesCount(), *ff.port)
	err = srv.Run(ctx)
	cpu := cpuSeconds()
	fmt.Fprintf(os.Stderr, "fleet: done: %d scrapes served, %.2f s CPU\n", srv.Scrapes(), cpu)
	return err
}

func reportCPU(ctx context.Context, srv *sim.Server, every time.Duration) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	lastCPU, lastN, last := cpuSeconds(), srv.Scrapes(), time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			cpu, n := cpuSeconds(), srv.Scrapes()
			el := now.Sub(last).Seconds()
			fmt.Fprintf(os.Stderr, "fleet: %.1f scrapes/s, %.3f CPU s/s (%.0f µs CPU per scrape)\n",
				float64(n-lastN)/el, (cpu-lastCPU)/el, 1e6*(cpu-lastCPU)/float64(max(1, n-lastN)))
			lastCPU, lastN, last = cpu, n, now
		}
	}
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func openmetrics(args []string) error {
	fs := flag.NewFlagSet("openmetrics", flag.ExitOnError)
	ff := addFleetFlags(fs)
	out := fs.String("out", "-", "OpenMetrics file to write (- = stdout)")
	hours := fs.Float64("hours", 6, "hours of history, ending at -end")
	end := fs.String("end", "now", "end of the history: RFC 3339 time or now")
	from := fs.String("from", "", "start of the history, RFC 3339 (instead of -hours); with -end one chunk of a longer history, both ends included")
	step := fs.Duration("step", 15*time.Second, "time between two samples (the scrape interval)")
	job := fs.String("job", "clavis-pop", "job label")
	drop := fs.String("drop", "", "drop samples whose name matches this regex (the scrape config's metric_relabel drop rule)")
	keep := fs.String("keep", "", "keep only samples whose name matches this regex")
	targets := fs.String("targets", "", "also write the file_sd targets file here")
	var keepIn, skipIn listFlag
	fs.Var(&keepIn, "keep-names-in", "keep only the samples whose names occur in this file (a dashboard, a rule file; repeatable)")
	fs.Var(&skipIn, "skip-names-in", "leave out the samples whose names occur in this file (repeatable)")
	fs.Parse(args)
	f, err := ff.fleet()
	if err != nil {
		return err
	}
	if len(keepIn) > 0 || len(skipIn) > 0 {
		names, err := namesIn(f, keepIn, skipIn)
		if err != nil {
			return err
		}
		if *keep != "" {
			return errors.New("-keep and -keep-names-in/-skip-names-in exclude each other")
		}
		*keep = strings.Join(names, "|")
		fmt.Fprintf(os.Stderr, "fleet: keeping %s\n", *keep)
	}
	o := sim.HistoryOptions{Step: *step, Job: *job, ScrapeSeries: true}
	o.To = time.Now()
	if *end != "now" {
		if o.To, err = time.Parse(time.RFC3339, *end); err != nil {
			return fmt.Errorf("-end: %w", err)
		}
	}
	o.To = o.To.Truncate(*step)
	o.From = o.To.Add(-time.Duration(*hours * float64(time.Hour)))
	if *from != "" {
		t, err := time.Parse(time.RFC3339, *from)
		if err != nil {
			return fmt.Errorf("-from: %w", err)
		}
		// The first step at or after -from, so chunks on step boundaries
		// neither overlap nor leave a gap.
		if o.From = t.Truncate(*step); o.From.Before(t) {
			o.From = o.From.Add(*step)
		}
		if o.From.After(o.To) {
			return fmt.Errorf("-from %s is after -end %s", *from, o.To.Format(time.RFC3339))
		}
	}
	for _, r := range []struct {
		src string
		dst **regexp.Regexp
	}{{*drop, &o.Drop}, {*keep, &o.Keep}} {
		if r.src != "" {
			re, err := regexp.Compile("^(?:" + r.src + ")$")
			if err != nil {
				return err
			}
			*r.dst = re
		}
	}
	if *targets != "" {
		if err := os.WriteFile(*targets, f.Targets(), 0o644); err != nil {
			return err
		}
	}
	w := os.Stdout
	if *out != "-" {
		if w, err = os.Create(*out); err != nil {
			return err
		}
	}
	n, err := f.WriteOpenMetrics(w, o)
	if err == nil && w != os.Stdout {
		err = w.Close()
	}
	fmt.Fprintf(os.Stderr, "fleet: %d samples, %d POPs, %s to %s every %s\n", n, len(f.POPs),
		o.From.UTC().Format(time.RFC3339), o.To.UTC().Format(time.RFC3339), *step)
	return err
}

type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

var identifier = regexp.MustCompile(`[A-Za-z_:][A-Za-z0-9_:]*`)

// namesIn returns the sample names of the fleet (and Prometheus' per-scrape
// series) that occur as words in any keep file and in no skip file.
func namesIn(f *sim.Fleet, keep, skip []string) ([]string, error) {
	words := func(files []string) (map[string]bool, error) {
		out := map[string]bool{}
		for _, p := range files {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			for _, w := range identifier.FindAllString(string(b), -1) {
				out[w] = true
			}
		}
		return out, nil
	}
	k, err := words(keep)
	if err != nil {
		return nil, err
	}
	if len(keep) == 0 {
		k = nil
	}
	sk, err := words(skip)
	if err != nil {
		return nil, err
	}
	served := append([]string(nil), sim.ScrapeSeriesNames...)
	for _, fam := range f.T.Families {
		for _, s := range fam.Samples {
			served = append(served, s.Name)
		}
	}
	seen := map[string]bool{}
	var names []string
	for _, n := range served {
		if seen[n] || (k != nil && !k[n]) || sk[n] {
			continue
		}
		seen[n] = true
		names = append(names, regexp.QuoteMeta(n))
	}
	if len(names) == 0 {
		return nil, errors.New("no served sample name occurs in the -keep-names-in files")
	}
	return names, nil
}
