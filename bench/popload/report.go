package main

import (
	"fmt"
	"io"
	"math"
	"time"
)

// Targets (issue 13 §5).
const (
	targetCPURatio       = 0.2 // our CPU at most 1/5 of the peer stack's
	targetRSSRatio       = 0.5 // our peak RSS at most 1/2 of the peers' sum
	targetP99            = 10 * time.Millisecond
	targetPerScrapeRatio = 0.5 // CPU per scrape vs node_exporter's
	maxRSSGrowth         = 0.10
)

type report struct {
	o          options
	phase      time.Duration
	samples    []sample
	procs      []*proc
	cpu        map[string]float64 // CPU seconds in the loaded phase
	findCPU    float64
	findRuns   int64
	perScrape  map[string]float64
	nodeBody   []byte
	idle       map[string]float64 // CPU seconds per second with the log and vault load stopped
	burstLat   map[string][]time.Duration
	onDisk     int
	peerVaults int64
	lines      int64
	drops      [3]int64
}

func mib(kib uint64) float64 { return float64(kib) / 1024 }

func ms(d time.Duration) float64 { return float64(d) / 1e6 }

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISSED"
}

// windowP99 is the worst p99 over consecutive windows of n scrapes.
func windowP99(lat []time.Duration, n int) time.Duration {
	var worst time.Duration
	for i := 0; i < len(lat); i += n {
		worst = max(worst, percentile(lat[i:min(i+n, len(lat))], 99))
	}
	return worst
}

func (r *report) print(w io.Writer) bool {
	ok := true
	names := make([]string, 0, len(r.procs))
	for _, p := range r.procs {
		names = append(names, p.name)
	}

	fmt.Fprintf(w, "\n-- every %s: RSS MiB / open fds / goroutines (endlessh: C, no goroutines)\n", r.o.sampleEvery)
	fmt.Fprintf(w, "%6s", "t s")
	for _, n := range names {
		fmt.Fprintf(w, "  %-24s", n)
	}
	fmt.Fprintln(w)
	// Growth is judged after warm-up: samples from the first fifth of the
	// run (at most a minute) are shown but not compared.
	warm := min(time.Minute, r.phase/5)
	series := map[string][3][]float64{}
	for _, s := range r.samples {
		fmt.Fprintf(w, "%6.0f", s.at.Seconds())
		for _, n := range names {
			ps := s.procs[n]
			g, hasG := s.goroutines[n]
			cell := fmt.Sprintf("%.1f / %d", mib(ps.RSSKiB), ps.FDs)
			if hasG {
				cell += fmt.Sprintf(" / %.0f", g)
			}
			fmt.Fprintf(w, "  %-24s", cell)
			if s.at < warm {
				continue
			}
			v := series[n]
			v[0], v[1], v[2] = append(v[0], float64(ps.RSSKiB)), append(v[1], float64(ps.FDs)), append(v[2], g)
			series[n] = v
		}
		fmt.Fprintln(w)
	}

	last := r.samples[len(r.samples)-1].procs
	maxOf := func(xs []float64) float64 {
		m := 0.0
		for _, x := range xs {
			m = math.Max(m, x)
		}
		return m
	}
	fmt.Fprintf(w, "\n-- loaded phase, %.0f s\n", r.phase.Seconds())
	fmt.Fprintf(w, "%-18s %9s %13s %8s %10s %10s %13s\n", "process", "CPU s", "peak RSS MiB", "max fds", "scrape p50", "scrape p99", "worst 1m p99")
	var peerCPU, peerRSS, peerFDs float64
	for _, p := range r.procs {
		p50, p99, w99 := "-", "-", "-"
		if len(p.lat) > 0 {
			p50 = fmt.Sprintf("%.2f ms", ms(percentile(p.lat, 50)))
			p99 = fmt.Sprintf("%.2f ms", ms(percentile(p.lat, 99)))
			w99 = fmt.Sprintf("%.2f ms", ms(windowP99(p.lat, int(time.Minute/r.o.scrapeEvery))))
		}
		fds := maxOf(series[p.name][1])
		fmt.Fprintf(w, "%-18s %9.2f %13.1f %8.0f %10s %10s %13s\n", p.name, r.cpu[p.name], mib(last[p.name].HWMKiB), fds, p50, p99, w99)
		if p.side == "peer" {
			peerCPU += r.cpu[p.name]
			peerRSS += mib(last[p.name].HWMKiB)
			peerFDs += fds
		}
	}
	fmt.Fprintf(w, "%-18s %9.2f %13s %8s   (%d runs of find | awk, every %s)\n", "peer vault count", r.findCPU, "-", "-", r.findRuns, r.o.peerVaultEvery)
	peerCPU += r.findCPU
	ours := r.procs[0]
	fmt.Fprintf(w, "%-18s %9.2f %13.1f %8.0f\n", "peer stack", peerCPU, peerRSS, peerFDs)

	cpuRatio := r.cpu[ours.name] / peerCPU
	rssRatio := mib(last[ours.name].HWMKiB) / peerRSS
	p99 := percentile(ours.lat, 99)
	w99 := windowP99(ours.lat, int(time.Minute/r.o.scrapeEvery))
	rssGrowth := growth(series[ours.name][0])
	fdFirst, fdLast := firstLastMax(series[ours.name][1])
	gFirst, gLast := firstLastMax(series[ours.name][2])
	fmt.Fprintf(w, "\n-- ratios and targets (clavis-telemetry : peer stack)\n")
	line := func(what string, got string, good bool) {
		fmt.Fprintf(w, "%-52s %-22s %s\n", what, got, verdict(good))
		ok = ok && good
	}
	line("CPU (target <= 0.20)", fmt.Sprintf("%.3f", cpuRatio), cpuRatio <= targetCPURatio)
	line("peak RSS vs the peers' sum (target <= 0.50)", fmt.Sprintf("%.3f", rssRatio), rssRatio <= targetRSSRatio)
	line("open fds vs the peers' sum (reported)", fmt.Sprintf("%.3f", maxOf(series[ours.name][1])/peerFDs), true)
	line("scrape p99, whole run (target < 10 ms)", fmt.Sprintf("%.2f ms", ms(p99)), p99 < targetP99)
	line("scrape p99, worst minute (target < 10 ms)", fmt.Sprintf("%.2f ms", ms(w99)), w99 < targetP99)
	line("RSS growth after warm-up, first to last third (<= 10%)", fmt.Sprintf("%+.1f %%", rssGrowth*100), rssGrowth <= maxRSSGrowth)
	line("open fds, max first third -> last third", fmt.Sprintf("%.0f -> %.0f", fdFirst, fdLast), fdLast <= fdFirst)
	line("goroutines, max first third -> last third", fmt.Sprintf("%.0f -> %.0f", gFirst, gLast), gLast <= gFirst)

	c, n := r.perScrape["clavis-telemetry"], r.perScrape["node_exporter"]
	fmt.Fprintf(w, "\n-- CPU per scrape, same processes, load stopped, %d back-to-back scrapes each, idle CPU subtracted\n", r.o.burst)
	fmt.Fprintf(w, "clavis-telemetry %.3f ms (p50 %.2f ms), node_exporter %.3f ms (p50 %.2f ms)\n",
		c*1e3, ms(percentile(r.burstLat["clavis-telemetry"], 50)), n*1e3, ms(percentile(r.burstLat["node_exporter"], 50)))
	line("CPU per scrape vs node_exporter (target <= 0.50)", fmt.Sprintf("%.3f", c/n), n > 0 && c/n <= targetPerScrapeRatio)
	keys, durs := labelledValues(ours.body(), "clavis_scrape_collector_duration_seconds", "collector")
	fmt.Fprintf(w, "clavis collector durations in the last scrape, ms:")
	for _, k := range keys {
		fmt.Fprintf(w, " %s %.2f", k, durs[k]*1e3)
	}
	fmt.Fprintf(w, "; exposition %d bytes (node_exporter %d)\n", len(ours.body()), len(r.nodeBody))
	fmt.Fprintf(w, "CPU with the load stopped and no scrapes (scanners still held), ms per s:")
	for _, p := range r.procs {
		fmt.Fprintf(w, " %s %.2f", p.name, r.idle[p.name]*1e3)
	}
	fmt.Fprintln(w)

	// The work must have been done, by both sides.
	fmt.Fprintf(w, "\n-- work done\n")
	ourVaults, _ := metricValue(ours.body(), "clavis_vaults")
	var mtailReq, ourReq float64
	for _, p := range r.procs {
		switch p.name {
		case "mtail":
			mtailReq, _ = metricValue(p.body(), "http_requests_total")
		case "clavis-telemetry":
			ourReq, _ = metricValue(p.body(), "clavis_http_requests_total")
		}
	}
	fmt.Fprintf(w, "vault files on disk %d; clavis_vaults %.0f; peer textfile %d\n", r.onDisk, ourVaults, r.peerVaults)
	fmt.Fprintf(w, "log lines written %d; clavis counted %.0f; mtail counted %.0f\n", r.lines, ourReq, mtailReq)
	fmt.Fprintf(w, "scanner reconnects after a drop: clavis ssh %d, clavis http %d, endlessh %d\n", r.drops[0], r.drops[1], r.drops[2])
	line("clavis_vaults exact at the end", fmt.Sprintf("%.0f / %d", ourVaults, r.onDisk), int(ourVaults) == r.onDisk)
	line("every log line counted by clavis", fmt.Sprintf("%.0f / %d", ourReq, r.lines), int64(ourReq) == r.lines)
	return ok
}

// firstLastMax returns the maximum of the first and of the last third.
func firstLastMax(xs []float64) (float64, float64) {
	if len(xs) < 3 {
		return 0, 0
	}
	k := len(xs) / 3
	m := func(v []float64) float64 {
		r := v[0]
		for _, x := range v {
			r = math.Max(r, x)
		}
		return r
	}
	return m(xs[:k]), m(xs[len(xs)-k:])
}
