package collector

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/procfs/blockdevice"
)

// defaultDiskstatsExclude drops RAM disks, loop and floppy devices, and the
// partitions of the common disk types (sda1, vdb2, xvda1, nvme0n1p1,
// mmcblk0p1). Partitions are excluded so that summing over devices does not
// count the same I/O twice; whole disks, device-mapper (dm-*) and md RAID
// devices are kept. On LVM or RAID hosts, dm-* and md* still overlap with
// their underlying disks: exclude one side with this flag if you sum.
const defaultDiskstatsExclude = `^(z?ram\d+|loop\d+|fd\d+|(h|s|v|xv)d[a-z]+\d+|nvme\d+n\d+p\d+|mmcblk\d+p\d+)$`

func init() {
	Register(Spec{
		Name:           "diskstats",
		DefaultEnabled: true,
		Setup: func(app *kingpin.Application) Factory {
			exclude := addRegexpFlag(app, "collector.diskstats.device-exclude",
				"Regexp of block devices to leave out of diskstats (default: RAM, loop and floppy devices, and partitions of whole disks).",
				defaultDiskstatsExclude)
			max := AddIntFlag(app, "collector.diskstats.max-devices",
				"Most block devices reported; beyond it the first by name are kept and the rest counted in clavis_disk_devices_dropped (1 to 65536).",
				strconv.Itoa(defaultMaxDevices), minMaxDevices, maxMaxDevices)
			return func(env Env) (Collector, error) {
				fs, err := openBlockFS(env.Paths)
				if err != nil {
					return nil, err
				}
				c := newDiskstatsCollector(fs, deviceFilter{exclude: exclude.Regexp()})
				c.cap = newDeviceCap(*max, "--collector.diskstats.max-devices", env.Logger)
				c.procRoot = env.Paths.ProcFS
				return c, nil
			}
		},
	})
}

// openBlockFS opens procfs' block-device view of --path.procfs and
// --path.sysfs.
func openBlockFS(p Paths) (blockdevice.FS, error) {
	if _, err := openProcFS(p.ProcFS); err != nil {
		return blockdevice.FS{}, err
	}
	fs, err := blockdevice.NewFS(p.ProcFS, p.SysFS)
	if err != nil {
		return blockdevice.FS{}, fmt.Errorf("--path.sysfs: %w", err)
	}
	return fs, nil
}

// diskSectorSize is the unit of the sector columns of /proc/diskstats: always
// 512 bytes, whatever the device's real sector size.
const diskSectorSize = 512

// diskstatsCollector exports per-device I/O counters from /proc/diskstats
// (read by procfs' blockdevice package).
type diskstatsCollector struct {
	fs     blockdevice.FS
	filter deviceFilter
	cap    *deviceCap
	// procRoot (--path.procfs) is where diskstats is read line by line when
	// procfs cannot parse it (see salvageDiskstats); empty: not read again.
	procRoot string

	dropped                                        *prometheus.Desc
	readBytes, writtenBytes, reads, writes, ioTime *prometheus.Desc
}

func newDiskstatsCollector(fs blockdevice.FS, filter deviceFilter) *diskstatsCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "disk", name), help, []string{"device"}, nil)
	}
	return &diskstatsCollector{
		fs:     fs,
		filter: filter,
		cap:    newDeviceCap(defaultMaxDevices, "--collector.diskstats.max-devices", nil),
		dropped: prometheus.NewDesc(prometheus.BuildFQName(Namespace, "disk", "devices_dropped"),
			"Block devices that passed the filter but were left out because there are more than --collector.diskstats.max-devices.", nil, nil),
		readBytes:    desc("read_bytes_total", "Bytes read from the device."),
		writtenBytes: desc("written_bytes_total", "Bytes written to the device."),
		reads:        desc("reads_completed_total", "Read operations completed."),
		writes:       desc("writes_completed_total", "Write operations completed."),
		ioTime:       desc("io_time_seconds_total", "Seconds the device had I/O in flight (utilisation when rated)."),
	}
}

func (c *diskstatsCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	disks, err := c.read()
	if disks == nil && err != nil {
		return err
	}
	byName := make(map[string]int, len(disks))
	names := make([]string, 0, len(disks))
	for i, d := range disks {
		// The kernel never writes a name that is not UTF-8; it only comes
		// from a broken file, and cannot be a label value. Nor does it
		// write a name twice: the first line is kept, so the exposition
		// has no duplicate series.
		if _, dup := byName[d.DeviceName]; dup || !utf8.ValidString(d.DeviceName) || c.filter.ignored(d.DeviceName) {
			continue
		}
		byName[d.DeviceName] = i
		names = append(names, d.DeviceName)
	}
	names, dropped := c.cap.apply(names)
	ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.GaugeValue, float64(dropped))
	used := make(map[string]bool, len(names))
	for _, name := range names {
		d := disks[byName[name]]
		// As for interfaces (netdev.go): names whose labels read the same
		// give one series set; an address in a name is the gate's.
		label := labelValue(name)
		if used[label] {
			continue
		}
		used[label] = true
		name := label
		ch <- prometheus.MustNewConstMetric(c.readBytes, prometheus.CounterValue, float64(d.ReadSectors)*diskSectorSize, name)
		ch <- prometheus.MustNewConstMetric(c.writtenBytes, prometheus.CounterValue, float64(d.WriteSectors)*diskSectorSize, name)
		ch <- prometheus.MustNewConstMetric(c.reads, prometheus.CounterValue, float64(d.ReadIOs), name)
		ch <- prometheus.MustNewConstMetric(c.writes, prometheus.CounterValue, float64(d.WriteIOs), name)
		ch <- prometheus.MustNewConstMetric(c.ioTime, prometheus.CounterValue, float64(d.IOsTotalTicks)/1000, name)
	}
	return err
}

// read returns the devices of diskstats, or what salvageDiskstats keeps
// of a file procfs cannot parse (see readSalvaging).
func (c *diskstatsCollector) read() ([]blockdevice.Diskstats, error) {
	return readSalvaging("diskstats", c.procRoot, c.fs.ProcDiskstats, salvageDiskstats)
}

// salvageDiskstats reads diskstats line by line with procfs' rules (major,
// minor, name, then 11 to 17 counters; fewer is an old kernel's partition
// line, left out), keeping every line that parses and counting those that
// do not.
//
// Bespoke, and only used when procfs fails, for a user-visible target:
// one malformed line must not cost the other devices' series; procfs
// fails the whole file on one.
func salvageDiskstats(path string) ([]blockdevice.Diskstats, int, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	disks, bad := []blockdevice.Diskstats{}, 0
	for line := range strings.SplitSeq(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 14 {
			continue
		}
		f = f[:min(len(f), 20)]
		d := blockdevice.Diskstats{IoStatsCount: len(f)}
		d.DeviceName = f[2]
		counters := []*uint64{&d.ReadIOs, &d.ReadMerges, &d.ReadSectors, &d.ReadTicks,
			&d.WriteIOs, &d.WriteMerges, &d.WriteSectors, &d.WriteTicks,
			&d.IOsInProgress, &d.IOsTotalTicks, &d.WeightedIOTicks,
			&d.DiscardIOs, &d.DiscardMerges, &d.DiscardSectors, &d.DiscardTicks,
			&d.FlushRequestsCompleted, &d.TimeSpentFlushing}
		major, err1 := strconv.ParseUint(f[0], 10, 32)
		minor, err2 := strconv.ParseUint(f[1], 10, 32)
		ok := err1 == nil && err2 == nil
		for i, v := range f[3:] {
			n, err := strconv.ParseUint(v, 10, 64)
			ok = ok && err == nil
			*counters[i] = n
		}
		if !ok {
			bad++
			continue
		}
		d.MajorNumber, d.MinorNumber = uint32(major), uint32(minor)
		disks = append(disks, d)
	}
	return disks, bad, nil
}
