package collector

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestCPUMalformedLineCostsOnlyItself: a /proc/stat line procfs cannot
// parse fails the collector for the scrape, but every other CPU (on
// either side of the bad line, an old kernel's short line too) and the
// boot time are still exported, with procfs' values, and the error says
// how many lines were skipped and quotes none of them.
func TestCPUMalformedLineCostsOnlyItself(t *testing.T) {
	t.Parallel()
	const (
		cpu0 = "cpu0 100 200 300 400 500 600 700 800 900 1000\n"
		cpu2 = "cpu2 10 20 30 40\n" // an old kernel's four columns
	)
	allCPUs := map[string]float64{
		"0/user": 1, "0/nice": 2, "0/system": 3, "0/idle": 4, "0/iowait": 5, "0/irq": 6, "0/softirq": 7, "0/steal": 8,
		"2/user": 0.1, "2/nice": 0.2, "2/system": 0.3, "2/idle": 0.4, "2/iowait": 0, "2/irq": 0, "2/softirq": 0, "2/steal": 0,
	}
	for name, tc := range map[string]struct {
		bad     string
		seconds map[string]float64
		online  float64
		boot    float64
		err     string
	}{
		"letters in a cpu line": {
			bad:     "cpu1 9 9 alice 9 9 9 9 9 0 0\n",
			seconds: allCPUs, online: 2, boot: 1700000000,
			err: "reading stat: 1 malformed lines skipped",
		},
		"cpu number": {
			bad:     "cpualice 1 1 1 1 1 1 1 1 0 0\n",
			seconds: allCPUs, online: 2, boot: 1700000000,
			err: "reading stat: 1 malformed lines skipped",
		},
		"btime and intr": {
			bad:     "cpu1 1 1 1 1 1 1 1 1 0 0\nbtime alice\nintr 5 1 alice 2\n",
			seconds: withCPU1(allCPUs), online: 3, boot: 0,
			err: "reading stat: 2 malformed lines skipped",
		},
		"softirq and ctxt": {
			bad:     "softirq 1 2 3\nctxt -1\n",
			seconds: allCPUs, online: 2, boot: 1700000000,
			err: "reading stat: 2 malformed lines skipped",
		},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			proc := t.TempDir()
			btime := "btime 1700000000\n"
			if tc.boot == 0 {
				btime = ""
			}
			content := "cpu  110 220 330 440 500 600 700 800 900 1000\n" + cpu0 + tc.bad + cpu2 +
				"intr 12 3 4\nctxt 5\n" + btime + "processes 7\nprocs_running 1\nprocs_blocked 0\nsoftirq 1 2 3 4 5 6 7 8 9 10 11\n"
			if err := os.WriteFile(filepath.Join(proc, "stat"), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
			c := newCPUCollector(mustProcFS(t, proc), nil)
			c.procRoot = proc
			c.now = func() time.Time { return time.Unix(1700100000, 0) }
			ms, err := collectAll(c)
			if err == nil || err.Error() != tc.err {
				t.Errorf("error %v, want %q", err, tc.err)
			}
			seconds := map[string]float64{}
			online, boot := -1.0, -1.0
			for _, m := range ms {
				switch s := metricSample(t, m); s.name {
				case "clavis_cpu_seconds_total":
					seconds[s.labels["cpu"]+"/"+s.labels["mode"]] = s.value
				case "clavis_cpus_online":
					online = s.value
				case "clavis_boot_time_seconds":
					boot = s.value
				}
			}
			if !maps.EqualFunc(seconds, tc.seconds, closeEnough) {
				t.Errorf("seconds %v, want %v", seconds, tc.seconds)
			}
			if online != tc.online {
				t.Errorf("cpus online %v, want %v", online, tc.online)
			}
			wantBoot := tc.boot
			if wantBoot == 0 {
				wantBoot = -1 // not exported
			}
			if boot != wantBoot {
				t.Errorf("boot time %v, want %v", boot, wantBoot)
			}
		})
	}
}

func withCPU1(m map[string]float64) map[string]float64 {
	m = maps.Clone(m)
	for _, mode := range cpuModes {
		m["1/"+mode] = 0.01
	}
	return m
}

// closeEnough compares seconds that procfs and the test compute by
// different roundings of ticks / 100.
func closeEnough(a, b float64) bool { return a == b || (a-b < 1e-9 && b-a < 1e-9) }

// TestCPUAllLinesMalformed: when no per-CPU line parses, the boot time is
// still exported, no CPU count is (0 would read as a host without CPUs),
// and the error says how many lines were skipped.
func TestCPUAllLinesMalformed(t *testing.T) {
	t.Parallel()
	proc := t.TempDir()
	if err := os.WriteFile(filepath.Join(proc, "stat"), []byte("cpu 1 1 1 1\ncpu0 alice\ncpu1 1 bob\nbtime 1700000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newCPUCollector(mustProcFS(t, proc), nil)
	c.procRoot = proc
	ms, err := collectAll(c)
	if err == nil || err.Error() != "reading stat: 2 malformed lines skipped" {
		t.Errorf("error %v, want the count of skipped lines", err)
	}
	var names []string
	for _, m := range ms {
		s := metricSample(t, m)
		names = append(names, s.name)
		if s.name == "clavis_boot_time_seconds" && s.value != 1700000000 {
			t.Errorf("boot time %v", s.value)
		}
	}
	if strings.Join(names, ",") != "clavis_boot_time_seconds" {
		t.Errorf("exported %v, want only the boot time", names)
	}
}

// TestCPUSalvageKeepsClamping: salvaged readings go through the same
// backwards clamp as procfs' readings.
func TestCPUSalvageKeepsClamping(t *testing.T) {
	t.Parallel()
	proc := t.TempDir()
	c := newCPUCollector(mustProcFS(t, proc), nil)
	c.procRoot = proc
	now := time.Unix(1700000000+1000, 0)
	c.now = func() time.Time { return now }
	for i, tc := range []struct {
		stat string
		user float64
	}{
		{"cpu0 5000 1 1 1\nbtime 1700000000\n", 50},
		{"cpu0 4000 1 1 1\ncpu1 x\nbtime 1700000000\n", 50},
		{"cpu0 6000 1 1 1\ncpu1 x\nbtime 1700000000\n", 60},
	} {
		if err := os.WriteFile(filepath.Join(proc, "stat"), []byte(tc.stat), 0o644); err != nil {
			t.Fatal(err)
		}
		ms, _ := collectAll(c)
		found := false
		for _, m := range ms {
			if s := metricSample(t, m); s.name == "clavis_cpu_seconds_total" && s.labels["cpu"] == "0" && s.labels["mode"] == "user" {
				found = true
				if s.value != tc.user {
					t.Errorf("round %d: user %v, want %v", i, s.value, tc.user)
				}
			}
		}
		if !found {
			t.Errorf("round %d: no cpu0 user series", i)
		}
		now = now.Add(100 * time.Second)
	}
}
