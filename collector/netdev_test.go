package collector

import "testing"

var netFamilies = []string{
	"clavis_network_receive_bytes_total", "clavis_network_transmit_bytes_total",
	"clavis_network_receive_packets_total", "clavis_network_transmit_packets_total",
	"clavis_network_receive_errs_total", "clavis_network_transmit_errs_total",
	"clavis_network_receive_drop_total", "clavis_network_transmit_drop_total",
}

func TestNetdevFixture(t *testing.T) {
	t.Parallel()
	c := newNetdevCollector(mustProcFS(t, fixtureProc), deviceFilter{exclude: mustRegexpFlag(t, "^lo$")})
	// lo is excluded by default; wg0 was added by hand with errors and drops.
	want := `# HELP clavis_network_receive_bytes_total Bytes received by the interface.
# TYPE clavis_network_receive_bytes_total counter
clavis_network_receive_bytes_total{device="eth0"} 1.35271541e+08
clavis_network_receive_bytes_total{device="ifb0"} 0
clavis_network_receive_bytes_total{device="ifb1"} 0
clavis_network_receive_bytes_total{device="wg0"} 9.87654321e+08
# HELP clavis_network_receive_drop_total Received packets dropped (no buffer space, unknown protocol, ...).
# TYPE clavis_network_receive_drop_total counter
clavis_network_receive_drop_total{device="eth0"} 0
clavis_network_receive_drop_total{device="ifb0"} 0
clavis_network_receive_drop_total{device="ifb1"} 0
clavis_network_receive_drop_total{device="wg0"} 7
# HELP clavis_network_receive_errs_total Receive errors the driver detected.
# TYPE clavis_network_receive_errs_total counter
clavis_network_receive_errs_total{device="eth0"} 0
clavis_network_receive_errs_total{device="ifb0"} 0
clavis_network_receive_errs_total{device="ifb1"} 0
clavis_network_receive_errs_total{device="wg0"} 3
# HELP clavis_network_receive_packets_total Packets received by the interface.
# TYPE clavis_network_receive_packets_total counter
clavis_network_receive_packets_total{device="eth0"} 6340
clavis_network_receive_packets_total{device="ifb0"} 0
clavis_network_receive_packets_total{device="ifb1"} 0
clavis_network_receive_packets_total{device="wg0"} 654321
# HELP clavis_network_transmit_bytes_total Bytes transmitted by the interface.
# TYPE clavis_network_transmit_bytes_total counter
clavis_network_transmit_bytes_total{device="eth0"} 488066
clavis_network_transmit_bytes_total{device="ifb0"} 0
clavis_network_transmit_bytes_total{device="ifb1"} 0
clavis_network_transmit_bytes_total{device="wg0"} 1.23456789e+08
# HELP clavis_network_transmit_drop_total Packets dropped while transmitting.
# TYPE clavis_network_transmit_drop_total counter
clavis_network_transmit_drop_total{device="eth0"} 0
clavis_network_transmit_drop_total{device="ifb0"} 0
clavis_network_transmit_drop_total{device="ifb1"} 0
clavis_network_transmit_drop_total{device="wg0"} 2
# HELP clavis_network_transmit_errs_total Transmit errors the driver detected.
# TYPE clavis_network_transmit_errs_total counter
clavis_network_transmit_errs_total{device="eth0"} 0
clavis_network_transmit_errs_total{device="ifb0"} 0
clavis_network_transmit_errs_total{device="ifb1"} 0
clavis_network_transmit_errs_total{device="wg0"} 1
# HELP clavis_network_transmit_packets_total Packets transmitted by the interface.
# TYPE clavis_network_transmit_packets_total counter
clavis_network_transmit_packets_total{device="eth0"} 4504
clavis_network_transmit_packets_total{device="ifb0"} 0
clavis_network_transmit_packets_total{device="ifb1"} 0
clavis_network_transmit_packets_total{device="wg0"} 54321
` + successHelp + `clavis_scrape_collector_success{collector="netdev"} 1
`
	compareCollector(t, "netdev", c, want, netFamilies...)
}
