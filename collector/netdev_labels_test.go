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
// names. Their series reach the gate whole, which drops and counts them
// (issue 13: "drops the series"); the other devices and the collector are
// unaffected, and no duplicate series fails the scrape.
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
	redacted := 0.0
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "clavis_privacy_redactions_total":
				redacted += m.GetCounter().GetValue()
			case "clavis_network_receive_bytes_total", "clavis_disk_reads_completed_total":
				devices[mf.GetName()] = append(devices[mf.GetName()], m.GetLabel()[0].GetValue())
			case "clavis_scrape_collector_success":
				if m.GetGauge().GetValue() != 1 {
					t.Errorf("collector failed: %v", m)
				}
			}
		}
	}
	if got, want := devices["clavis_network_receive_bytes_total"], []string{"eth0"}; !slices.Equal(got, want) {
		t.Errorf("interfaces %q, want %q", got, want)
	}
	if got, want := devices["clavis_disk_reads_completed_total"], []string{"sda"}; !slices.Equal(got, want) {
		t.Errorf("disks %q, want %q", got, want)
	}
	if redacted == 0 {
		t.Error("the series of the names holding an address were not counted as dropped by the gate")
	}
}
