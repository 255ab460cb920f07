package collector

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// defaultDiskstatsExclude drops RAM disks, loop and floppy devices, and the
// partitions of the common disk types (sda1, vdb2, xvda1, nvme0n1p1,
// mmcblk0p1). Partitions are excluded so that summing over devices does not
// count the same I/O twice; whole disks, device-mapper (dm-*) and md RAID
// devices are kept. On LVM or RAID hosts, dm-* and md* still overlap with
// their underlying disks: exclude one side with this flag if you sum.
const defaultDiskstatsExclude = `^(ram\d+|loop\d+|fd\d+|(h|s|v|xv)d[a-z]+\d+|nvme\d+n\d+p\d+|mmcblk\d+p\d+)$`

func init() {
	Register(Spec{
		Name:           "diskstats",
		DefaultEnabled: true,
		Setup: func(app *kingpin.Application) Factory {
			exclude := addRegexpFlag(app, "collector.diskstats.device-exclude",
				"Regexp of block devices to leave out of diskstats (default: RAM, loop and floppy devices, and partitions of whole disks).",
				defaultDiskstatsExclude)
			return func(env Env) (Collector, error) {
				if err := checkProcDir(env.Paths.ProcFS); err != nil {
					return nil, err
				}
				return newDiskstatsCollector(env.Paths.ProcFS, deviceFilter{exclude: exclude.Regexp()}), nil
			}
		},
	})
}

// diskSectorSize is the unit of the sector columns of /proc/diskstats: always
// 512 bytes, whatever the device's real sector size.
const diskSectorSize = 512

// diskstatsCollector exports per-device I/O counters from /proc/diskstats.
type diskstatsCollector struct {
	readBytes, writtenBytes, reads, writes *prometheus.Desc
	ioTime                                 *prometheus.Desc

	mu    sync.Mutex
	file  *procFile
	disks []diskLine // reused parse buffer
	names *nameCache
}

func newDiskstatsCollector(procPath string, filter deviceFilter) *diskstatsCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "disk", name), help, []string{"device"}, nil)
	}
	c := &diskstatsCollector{
		file:         newProcFile(filepath.Join(procPath, "diskstats")),
		readBytes:    desc("read_bytes_total", "Bytes read from the device."),
		writtenBytes: desc("written_bytes_total", "Bytes written to the device."),
		reads:        desc("reads_completed_total", "Read operations completed."),
		writes:       desc("writes_completed_total", "Write operations completed."),
		ioTime:       desc("io_time_seconds_total", "Seconds the device had I/O in flight (utilisation when rated)."),
	}
	c.names = newNameCache(filter, c.readBytes, c.writtenBytes, c.reads, c.writes, c.ioTime)
	return c
}

func (c *diskstatsCollector) Update(_ context.Context, ch *Batch) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	b, err := c.file.read()
	if err != nil {
		return fmt.Errorf("reading diskstats: %w", err)
	}
	disks, err := parseDiskstats(b, c.disks)
	if err != nil {
		return err
	}
	c.disks = disks
	for _, d := range disks {
		// Names that are not UTF-8 are dropped by the cache: the kernel
		// never writes one, so it only comes from a broken file.
		e := c.names.lookup(d.name)
		if e.ignored {
			continue
		}
		s := e.series
		ch.Send(s[0].counter(float64(d.readSectors) * diskSectorSize))
		ch.Send(s[1].counter(float64(d.writeSectors) * diskSectorSize))
		ch.Send(s[2].counter(float64(d.reads)))
		ch.Send(s[3].counter(float64(d.writes)))
		ch.Send(s[4].counter(float64(d.ioTicks) / 1000))
	}
	return nil
}
