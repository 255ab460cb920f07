package collector

import (
	"context"
	"errors"
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
				c.procRoot = env.Paths.ProcFS
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
	// procRoot (--path.procfs) is where net/dev is read line by line when
	// procfs cannot parse it (see salvageNetDev); empty: not read again.
	procRoot string

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
	devs, err := c.read()
	if devs == nil {
		return err
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
	used := make(map[string]bool, len(names))
	for _, name := range names {
		d := devs[name]
		// The label is valid UTF-8 within the gate's bound (labelValue);
		// two names that then read the same give one series set, the
		// first by name, not duplicates that fail the scrape. A name
		// holding an address (a tunnel named after its peer,
		// "gre-10.0.0.5") stays whole: the gate drops and counts it.
		label := labelValue(name)
		if used[label] {
			continue
		}
		used[label] = true
		for _, s := range [...]struct {
			desc *prometheus.Desc
			v    uint64
		}{
			{c.rxBytes, d.RxBytes}, {c.txBytes, d.TxBytes},
			{c.rxPackets, d.RxPackets}, {c.txPackets, d.TxPackets},
			{c.rxErrs, d.RxErrors}, {c.txErrs, d.TxErrors},
			{c.rxDrop, d.RxDropped}, {c.txDrop, d.TxDropped},
		} {
			ch <- prometheus.MustNewConstMetric(s.desc, prometheus.CounterValue, float64(s.v), label)
		}
	}
	return err
}

// read returns the interfaces of net/dev, or what salvageNetDev keeps of
// a file procfs cannot parse (see readSalvaging).
func (c *netdevCollector) read() (procfs.NetDev, error) {
	return readSalvaging("net/dev", c.procRoot, func() (procfs.NetDev, error) { return netDevOf(c.fs) }, salvageNetDev)
}

// netDevOf is procfs' reading of net/dev, with a panic made an error:
// procfs v0.23.0 indexes the columns of a line without counting them, so a
// short line panics.
func netDevOf(pfs procfs.FS) (devs procfs.NetDev, err error) {
	defer func() {
		if p := recover(); p != nil {
			devs, err = nil, errors.New("procfs panicked on a malformed line")
		}
	}()
	return pfs.NetDev()
}

// salvageNetDev reads net/dev line by line, as procfs does (two header
// lines, then "name: 16 counters"), keeping every line that parses and
// counting those that do not.
//
// Bespoke, and only used when procfs fails, for a user-visible target:
// one malformed line must not cost the other interfaces' series; procfs
// fails the whole file on one (or panics on a short one).
func salvageNetDev(path string) (procfs.NetDev, int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	devs, bad := procfs.NetDev{}, 0
	lines := strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	for i, line := range lines {
		if i < 2 {
			continue
		}
		l, ok := parseNetDevLine(line)
		if !ok {
			bad++
			continue
		}
		devs[l.Name] = l
	}
	return devs, bad, nil
}

func parseNetDevLine(line string) (procfs.NetDevLine, bool) {
	idx := strings.LastIndexByte(line, ':')
	if idx < 0 {
		return procfs.NetDevLine{}, false
	}
	name := strings.TrimSpace(line[:idx])
	fields := strings.Fields(line[idx+1:])
	if name == "" || len(fields) < 16 {
		return procfs.NetDevLine{}, false
	}
	var v [16]uint64
	for i := range v {
		n, err := strconv.ParseUint(fields[i], 10, 64)
		if err != nil {
			return procfs.NetDevLine{}, false
		}
		v[i] = n
	}
	return procfs.NetDevLine{
		Name: name, RxBytes: v[0], RxPackets: v[1], RxErrors: v[2], RxDropped: v[3],
		RxFIFO: v[4], RxFrame: v[5], RxCompressed: v[6], RxMulticast: v[7],
		TxBytes: v[8], TxPackets: v[9], TxErrors: v[10], TxDropped: v[11],
		TxFIFO: v[12], TxCollisions: v[13], TxCarrier: v[14], TxCompressed: v[15],
	}, true
}
