package collector

import (
	"context"
	"strconv"
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
			max := AddIntFlag(app, "collector.netdev.max-devices",
				"Most interfaces reported; beyond it the first by name are kept and the rest counted in clavis_network_devices_dropped (1 to 65536).",
				strconv.Itoa(defaultMaxDevices), minMaxDevices, maxMaxDevices)
			return func(env Env) (Collector, error) {
				fs, err := openProcFS(env.Paths.ProcFS)
				if err != nil {
					return nil, err
				}
				c := newNetdevCollector(fs, deviceFilter{exclude: exclude.Regexp()})
				c.cap = newDeviceCap(*max, "--collector.netdev.max-devices", env.Logger)
				return c, nil
			}
		},
	})
}

// netdevCollector exports per-interface traffic counters from /proc/net/dev
// (read by procfs).
type netdevCollector struct {
	fs     procfs.FS
	filter deviceFilter
	cap    *deviceCap

	dropped                                                                *prometheus.Desc
	rxBytes, txBytes, rxPackets, txPackets, rxErrs, txErrs, rxDrop, txDrop *prometheus.Desc
}

func newNetdevCollector(fs procfs.FS, filter deviceFilter) *netdevCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "network", name), help, []string{"device"}, nil)
	}
	return &netdevCollector{
		fs:     fs,
		filter: filter,
		cap:    newDeviceCap(defaultMaxDevices, "--collector.netdev.max-devices", nil),
		dropped: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "network", "devices_dropped"),
			"Interfaces that passed the filter but were left out because there are more than --collector.netdev.max-devices.", nil, nil),
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
	devs, err := c.fs.NetDev()
	if err != nil {
		return procfsError("net/dev", err)
	}
	names := make([]string, 0, len(devs))
	for name := range devs {
		// Interface names are bytes to the kernel; one that is not UTF-8
		// cannot be a label value.
		if utf8.ValidString(name) && !c.filter.ignored(name) {
			names = append(names, name)
		}
	}
	names, dropped := c.cap.apply(names)
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.GaugeValue, float64(dropped))
	for _, name := range names {
		d := devs[name]
		for _, s := range [...]struct {
			desc *prometheus.Desc
			v    uint64
		}{
			{c.rxBytes, d.RxBytes}, {c.txBytes, d.TxBytes},
			{c.rxPackets, d.RxPackets}, {c.txPackets, d.TxPackets},
			{c.rxErrs, d.RxErrors}, {c.txErrs, d.TxErrors},
			{c.rxDrop, d.RxDropped}, {c.txDrop, d.TxDropped},
		} {
			ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, float64(s.v), name)
		}
	}
	return nil
}
