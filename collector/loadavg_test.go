package collector

import "testing"

func TestLoadavgFixture(t *testing.T) {
	t.Parallel()
	c := newLoadavgCollector(mustProcFS(t, fixtureProc))
	want := `# HELP clavis_load1 1-minute load average (runnable and uninterruptible tasks).
# TYPE clavis_load1 gauge
clavis_load1 2.45
# HELP clavis_load15 15-minute load average.
# TYPE clavis_load15 gauge
clavis_load15 0.42
# HELP clavis_load5 5-minute load average.
# TYPE clavis_load5 gauge
clavis_load5 0.99
` + successHelp + `clavis_scrape_collector_success{collector="loadavg"} 1
`
	compareCollector(t, "loadavg", c, want, "clavis_load1", "clavis_load5", "clavis_load15")
}
