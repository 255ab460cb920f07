package collector

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
				"Most interfaces reported; beyond it physical interfaces are kept first, then the first by name, and the rest counted in clavis_network_devices_dropped (1 to 65536).",
				strconv.Itoa(defaultMaxDevices), minMaxDevices, maxMaxDevices)
			return func(env Env) (Collector, error) {
				fs, err := openProcFS(env.Paths.ProcFS)
				if err != nil {
					return nil, err
				}
				c := newNetdevCollector(fs, deviceFilter{exclude: exclude.Regexp()})
				c.cap = newDeviceCap(*max, "--collector.netdev.max-devices", env.Logger)
				c.sysfs = env.Paths.SysFS
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
	// sysfs (--path.sysfs) tells physical interfaces from virtual ones when
	// the cap is exceeded; empty: no preference.
	sysfs string

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

// physical reports whether the kernel backs the interface with a device
// (sysfs class/net/NAME/device), as it does eth0 and not a container's
// veth or a bridge. On a host with more than --collector.netdev.max-devices
// veths (one per container), this keeps the uplink in the report instead
// of whatever sorts first by name.
func (c *netdevCollector) physical(name string) bool {
	if c.sysfs == "" || name == "" || name == "." || name == ".." || strings.ContainsRune(name, '/') {
		return false
	}
	_, err := os.Stat(filepath.Join(c.sysfs, "class", "net", name, "device"))
	return err == nil
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
	names, dropped := c.cap.applyPreferring(names, c.physical)
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
