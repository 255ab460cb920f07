package collector

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clavitor/clavis-telemetry/privacy"
)

// TestNetdevAndDiskstatsNamesCarryNoAddress: interface names may hold an
// address (a tunnel named after its peer: "gre-10.0.0.1"; "10.0.0.5" is a
// valid name of 15 bytes or less), and so, from a hostile file, may disk
// names. The address is cut from the label instead of the gate dropping
// the series, and two names that then read the same ("gre-_") give one
// series set, the first by name, not a duplicate that fails the scrape.
func TestNetdevAndDiskstatsNamesCarryNoAddress(t *testing.T) {
	t.Parallel()
	proc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"net/dev": "Inter-|   Receive |  Transmit\n face |bytes    packets|bytes packets\n" +
			"  eth0: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n" +
			"gre-10.0.0.1: 2 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n" +
			"gre-10.0.0.2: 3 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n" +
			"10.0.0.5: 4 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n",
		"diskstats": "   8 0 sda 1 0 8 0 1 0 8 0 0 0 0\n" +
			"  43 0 nbd-10.0.0.7 1 0 8 0 1 0 8 0 0 0 0\n" +
			"  43 1 nbd-10.0.0.8 1 0 8 0 1 0 8 0 0 0 0\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(proc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewScraper([]Named{
		{"netdev", newNetdevCollector(mustProcFS(t, proc), deviceFilter{})},
		{"diskstats", newDiskstatsCollector(mustBlockFS(t, proc), deviceFilter{})},
	}, 5e9, nil))
	mfs, err := privacy.NewGate(reg, nil).Gather()
	if err != nil {
		t.Fatal(err)
	}
	devices := map[string][]string{}
	rx := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "clavis_privacy_redactions_total":
				if v := m.GetCounter().GetValue(); v != 0 {
					t.Errorf("the gate dropped %v series: %v", v, m)
				}
			case "clavis_network_receive_bytes_total", "clavis_disk_reads_completed_total":
				d := m.GetLabel()[0].GetValue()
				devices[mf.GetName()] = append(devices[mf.GetName()], d)
				rx[d] = m.GetCounter().GetValue()
			case "clavis_scrape_collector_success":
				if m.GetGauge().GetValue() != 1 {
					t.Errorf("collector failed: %v", m)
				}
			}
		}
	}
	if got, want := devices["clavis_network_receive_bytes_total"], []string{"_", "eth0", "gre-_"}; !slices.Equal(got, want) {
		t.Errorf("interfaces %q, want %q", got, want)
	}
	if rx["gre-_"] != 2 || rx["_"] != 4 {
		t.Errorf("gre-_ took %v bytes (want gre-10.0.0.1's 2), _ %v (want 4)", rx["gre-_"], rx["_"])
	}
	if got, want := devices["clavis_disk_reads_completed_total"], []string{"nbd-_", "sda"}; !slices.Equal(got, want) {
		t.Errorf("disks %q, want %q", got, want)
	}
}
