package collector

import (
	"testing"
)

const cpuHeader = `# HELP clavis_boot_time_seconds Time the host booted, in seconds since the Unix epoch (btime in /proc/stat).
# TYPE clavis_boot_time_seconds gauge
clavis_boot_time_seconds 1.795918468e+09
# HELP clavis_cpus_online Number of online CPUs (per-CPU lines in /proc/stat).
# TYPE clavis_cpus_online gauge
`

const cpuSecondsHeader = `# HELP clavis_cpu_seconds_total Seconds the CPUs spent in each mode (from /proc/stat; clamped so it never goes backwards; guest time is inside user and nice).
# TYPE clavis_cpu_seconds_total counter
`

var cpuFamilies = []string{"clavis_cpu_seconds_total", "clavis_cpus_online", "clavis_boot_time_seconds"}

func TestCPUFixture(t *testing.T) {
	t.Parallel()
	c := newCPUCollector(mustProcFS(t, fixtureProc), nil)
	want := cpuHeader + `clavis_cpus_online 2
` + cpuSecondsHeader + `clavis_cpu_seconds_total{cpu="0",mode="idle"} 375.78
clavis_cpu_seconds_total{cpu="0",mode="iowait"} 0.42
clavis_cpu_seconds_total{cpu="0",mode="irq"} 0
clavis_cpu_seconds_total{cpu="0",mode="nice"} 0
clavis_cpu_seconds_total{cpu="0",mode="softirq"} 0.11
clavis_cpu_seconds_total{cpu="0",mode="steal"} 0.05
clavis_cpu_seconds_total{cpu="0",mode="system"} 28.13
clavis_cpu_seconds_total{cpu="0",mode="user"} 100.72
clavis_cpu_seconds_total{cpu="1",mode="idle"} 363.42
clavis_cpu_seconds_total{cpu="1",mode="iowait"} 3.35
clavis_cpu_seconds_total{cpu="1",mode="irq"} 0
clavis_cpu_seconds_total{cpu="1",mode="nice"} 0
clavis_cpu_seconds_total{cpu="1",mode="softirq"} 0.56
clavis_cpu_seconds_total{cpu="1",mode="steal"} 0.1
clavis_cpu_seconds_total{cpu="1",mode="system"} 31.2
clavis_cpu_seconds_total{cpu="1",mode="user"} 106.72
` + successHelp + `clavis_scrape_collector_success{collector="cpu"} 1
`
	compareCollector(t, "cpu", c, want, cpuFamilies...)
}

// TestCPUNeverGoesBackwards walks one collector through three states of
// /proc/stat: the machine's, then cpu0's iowait stepping back while cpu1 goes
// offline, then cpu1 returning with an idle count lower than it had.
func TestCPUNeverGoesBackwards(t *testing.T) {
	t.Parallel()
	c := newCPUCollector(mustProcFS(t, fixtureProc), nil)
	if _, err := collectAll(c); err != nil {
		t.Fatal(err)
	}

	c.fs = mustProcFS(t, "testdata/proc-backwards")
	// cpu0: user, system and idle moved on; iowait fell from 0.42 to 0.30
	// and stays at 0.42. cpu1 is offline: no series, count 1.
	want := cpuHeader + `clavis_cpus_online 1
` + cpuSecondsHeader + `clavis_cpu_seconds_total{cpu="0",mode="idle"} 376.48
clavis_cpu_seconds_total{cpu="0",mode="iowait"} 0.42
clavis_cpu_seconds_total{cpu="0",mode="irq"} 0
clavis_cpu_seconds_total{cpu="0",mode="nice"} 0
clavis_cpu_seconds_total{cpu="0",mode="softirq"} 0.11
clavis_cpu_seconds_total{cpu="0",mode="steal"} 0.05
clavis_cpu_seconds_total{cpu="0",mode="system"} 28.2
clavis_cpu_seconds_total{cpu="0",mode="user"} 101.28
` + successHelp + `clavis_scrape_collector_success{collector="cpu"} 1
`
	compareCollector(t, "cpu", c, want, cpuFamilies...)

	c.fs = mustProcFS(t, "testdata/proc-hotplug")
	// cpu0's iowait (0.45) passed the remembered 0.42 and is reported as is.
	// cpu1 is back: its idle (360.00) lags the 363.42 it reported before
	// going offline, so 363.42 is kept; user moved on to 107.
	want = cpuHeader + `clavis_cpus_online 2
` + cpuSecondsHeader + `clavis_cpu_seconds_total{cpu="0",mode="idle"} 377
clavis_cpu_seconds_total{cpu="0",mode="iowait"} 0.45
clavis_cpu_seconds_total{cpu="0",mode="irq"} 0
clavis_cpu_seconds_total{cpu="0",mode="nice"} 0
clavis_cpu_seconds_total{cpu="0",mode="softirq"} 0.11
clavis_cpu_seconds_total{cpu="0",mode="steal"} 0.05
clavis_cpu_seconds_total{cpu="0",mode="system"} 28.25
clavis_cpu_seconds_total{cpu="0",mode="user"} 102
clavis_cpu_seconds_total{cpu="1",mode="idle"} 363.42
clavis_cpu_seconds_total{cpu="1",mode="iowait"} 3.35
clavis_cpu_seconds_total{cpu="1",mode="irq"} 0
clavis_cpu_seconds_total{cpu="1",mode="nice"} 0
clavis_cpu_seconds_total{cpu="1",mode="softirq"} 0.56
clavis_cpu_seconds_total{cpu="1",mode="steal"} 0.1
clavis_cpu_seconds_total{cpu="1",mode="system"} 31.25
clavis_cpu_seconds_total{cpu="1",mode="user"} 107
` + successHelp + `clavis_scrape_collector_success{collector="cpu"} 1
`
	compareCollector(t, "cpu", c, want, cpuFamilies...)
}
