package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSchedstatTimeSumsThreads reads a fixture task tree: the run times of
// all threads, in nanoseconds, are summed.
func TestSchedstatTimeSumsThreads(t *testing.T) {
	dir := t.TempDir()
	for tid, line := range map[string]string{
		"100": "1500000000 2000 30\n",
		"101": "250000 10 2\n",
	} {
		if err := os.MkdirAll(filepath.Join(dir, tid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, tid, "schedstat"), []byte(line), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := schedstatTime(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1500*time.Millisecond + 250*time.Microsecond; got != want {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestSchedstatTimeRejectsGarbage(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "7"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "7", "schedstat"), []byte("twelve 1 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := schedstatTime(dir); err == nil || !strings.Contains(err.Error(), "malformed") {
		t.Fatalf("err = %v, want a malformed schedstat error", err)
	}
}

// TestStatTimeParsesAroundTheCommand: a command name with spaces and
// parentheses does not shift utime and stime.
func TestStatTimeParsesAroundTheCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "stat")
	stat := "4242 (my (odd) exporter) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 7 0 100 0 0\n"
	if err := os.WriteFile(path, []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := statTime(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := 1750 * time.Millisecond; got != want {
		t.Fatalf("got %v, want %v (175 ticks)", got, want)
	}
}

// TestCPUTimeOfThisProcessGrows checks both sources against the running
// test: busy work shows up in each. It spins until each has moved (no
// timing assertion: how long that takes depends on the machine).
func TestCPUTimeOfThisProcessGrows(t *testing.T) {
	pid := os.Getpid()
	for name, read := range map[string]func() (time.Duration, error){
		"cpuTime":  func() (time.Duration, error) { return cpuTime(pid) },
		"statTime": func() (time.Duration, error) { return statTime("/proc/self/stat") },
	} {
		before, err := read()
		if err != nil {
			t.Fatal(err)
		}
		for x := 0; ; x++ {
			_ = x * x
			if x%1_000_000 != 0 {
				continue
			}
			after, err := read()
			if err != nil {
				t.Fatal(err)
			}
			if after < before {
				t.Fatalf("%s went backwards: %v then %v", name, before, after)
			}
			if after > before {
				break
			}
		}
	}
}

// TestReportRatiosFromBothSources: each target's CPU is reported and
// compared with the baseline's from schedstat and from /proc/PID/stat
// ticks, and the verdict follows the schedstat figure.
func TestReportRatiosFromBothSources(t *testing.T) {
	targetCPURatio = 0.125
	t.Cleanup(func() { targetCPURatio = 0 })
	lat := []time.Duration{time.Millisecond}
	targets := []*target{
		{name: "node", latencies: lat, cpuTT: 1000 * time.Millisecond, statTT: 1000 * time.Millisecond, rssKB: 20480},
		{name: "ours", latencies: lat, cpuTT: 150 * time.Millisecond, statTT: 120 * time.Millisecond, rssKB: 10240},
	}
	var b strings.Builder
	report(&b, targets, 1000)
	out := b.String()
	for _, want := range []string{
		"ours / node: cpu/scrape 0.150 (stat 0.120)",
		"target cpu/scrape <= 0.125 x node (0.125 ms): MISSED (0.150 ms)",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if fields := strings.Fields(strings.Split(out, "\n")[3]); len(fields) < 3 || fields[0] != "node" || fields[1] != "1.000" || fields[2] != "1.000" {
		t.Errorf("node's row = %q, want name, cpu and stat ms first", fields)
	}
}
