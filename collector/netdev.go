package collector

import (
	"context"
	"fmt"
	"unicode/utf8"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs"
)

func init() {
	Register(Spec{
		Name:           "netdev",
		DefaultEnabled: true,
		Setup: func(app *kingpin.Application) Factory {
			exclude := addRegexpFlag(app, "collector.netdev.device-exclude",
				"Regexp of network interfaces to leave out of netdev.", "^lo$")
			return func(env Env) (Collector, error) {
				fs, err := procfs.NewFS(env.Paths.ProcFS)
				if err != nil {
					return nil, fmt.Errorf("opening procfs: %w", err)
				}
				return newNetdevCollector(fs, deviceFilter{exclude: exclude.Regexp()}), nil
			}
		},
	})
}

// netdevCollector exports per-interface traffic counters from /proc/net/dev.
type netdevCollector struct {
	fs     procfs.FS
	filter deviceFilter

	rxBytes, txBytes, rxPackets, txPackets, rxErrs, txErrs, rxDrop, txDrop *prometheus.Desc
}

func newNetdevCollector(fs procfs.FS, filter deviceFilter) *netdevCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "network", name), help, []string{"device"}, nil)
	}
	return &netdevCollector{
		fs:        fs,
		filter:    filter,
		rxBytes:   desc("receive_bytes_total", "Bytes received by the interface."),
		txBytes:   desc("transmit_bytes_total", "Bytes transmitted by the interface."),
		rxPackets: desc("receive_packets_total", "Packets received by the interface."),
		txPackets: desc("transmit_packets_total", "Packets transmitted by the interface."),
		rxErrs:    desc("receive_errs_total", "Receive errors the driver detected."),
		txErrs:    desc("transmit_errs_total", "Transmit errors the driver detected."),
		rxDrop:    desc("receive_drop_total", "Received packets dropped (no buffer space, unknown protocol, ...)."),
		txDrop:    desc("transmit_drop_total", "Packets dropped while transmitting."),
	}
}

func (c *netdevCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	stats, err := c.readNetDev()
	if err != nil {
		return fmt.Errorf("reading net/dev: %w", err)
	}
	for name, s := range stats {
		if c.filter.ignored(name) || !utf8.ValidString(name) {
			// Interface names are bytes to the kernel; a label must be
			// UTF-8. Such a name only comes from a broken file.
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.rxBytes, prometheus.CounterValue, float64(s.RxBytes), name)
		ch <- prometheus.MustNewConstMetric(c.txBytes, prometheus.CounterValue, float64(s.TxBytes), name)
		ch <- prometheus.MustNewConstMetric(c.rxPackets, prometheus.CounterValue, float64(s.RxPackets), name)
		ch <- prometheus.MustNewConstMetric(c.txPackets, prometheus.CounterValue, float64(s.TxPackets), name)
		ch <- prometheus.MustNewConstMetric(c.rxErrs, prometheus.CounterValue, float64(s.RxErrors), name)
		ch <- prometheus.MustNewConstMetric(c.txErrs, prometheus.CounterValue, float64(s.TxErrors), name)
		ch <- prometheus.MustNewConstMetric(c.rxDrop, prometheus.CounterValue, float64(s.RxDropped), name)
		ch <- prometheus.MustNewConstMetric(c.txDrop, prometheus.CounterValue, float64(s.TxDropped), name)
	}
	return nil
}

// readNetDev calls procfs, whose /proc/net/dev parser (v0.23) indexes the
// columns of a line without checking how many there are: a truncated line
// panics inside the library. That is turned into an ordinary error here, so a
// garbled file fails this collector like any other bad input.
func (c *netdevCollector) readNetDev() (stats procfs.NetDev, err error) {
	defer func() {
		if p := recover(); p != nil {
			stats, err = nil, fmt.Errorf("malformed line (procfs parser panicked: %v)", p)
		}
	}()
	return c.fs.NetDev()
}
