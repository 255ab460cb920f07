package collector

import (
	"regexp"
	"testing"
)

var diskFamilies = []string{
	"clavis_disk_read_bytes_total", "clavis_disk_written_bytes_total",
	"clavis_disk_reads_completed_total", "clavis_disk_writes_completed_total",
	"clavis_disk_io_time_seconds_total",
}

func TestDiskstatsFixture(t *testing.T) {
	t.Parallel()
	c := newDiskstatsCollector(mustBlockFS(t, fixtureProc), deviceFilter{exclude: mustRegexpFlag(t, defaultDiskstatsExclude)})
	// Kept: whole disks (vda, nvme0n1, sda with the 11-column format of
	// kernels before 4.18) and dm-0. Dropped: loop*, ram0, zram0 and the
	// partitions vda1, nvme0n1p1, sda1. Bytes are sectors times 512.
	want := `# HELP clavis_disk_io_time_seconds_total Seconds the device had I/O in flight (utilisation when rated).
# TYPE clavis_disk_io_time_seconds_total counter
clavis_disk_io_time_seconds_total{device="dm-0"} 0.03
clavis_disk_io_time_seconds_total{device="nvme0n1"} 61.234
clavis_disk_io_time_seconds_total{device="sda"} 2
clavis_disk_io_time_seconds_total{device="vda"} 6.724
# HELP clavis_disk_read_bytes_total Bytes read from the device.
# TYPE clavis_disk_read_bytes_total counter
clavis_disk_read_bytes_total{device="dm-0"} 409600
clavis_disk_read_bytes_total{device="nvme0n1"} 5.056790528e+09
clavis_disk_read_bytes_total{device="sda"} 4.096e+07
clavis_disk_read_bytes_total{device="vda"} 1.298215936e+09
# HELP clavis_disk_reads_completed_total Read operations completed.
# TYPE clavis_disk_reads_completed_total counter
clavis_disk_reads_completed_total{device="dm-0"} 100
clavis_disk_reads_completed_total{device="nvme0n1"} 120034
clavis_disk_reads_completed_total{device="sda"} 5000
clavis_disk_reads_completed_total{device="vda"} 46349
# HELP clavis_disk_writes_completed_total Write operations completed.
# TYPE clavis_disk_writes_completed_total counter
clavis_disk_writes_completed_total{device="dm-0"} 200
clavis_disk_writes_completed_total{device="nvme0n1"} 88765
clavis_disk_writes_completed_total{device="sda"} 7000
clavis_disk_writes_completed_total{device="vda"} 10290
# HELP clavis_disk_written_bytes_total Bytes written to the device.
# TYPE clavis_disk_written_bytes_total counter
clavis_disk_written_bytes_total{device="dm-0"} 819200
clavis_disk_written_bytes_total{device="nvme0n1"} 3.91901184e+09
clavis_disk_written_bytes_total{device="sda"} 8.192e+07
clavis_disk_written_bytes_total{device="vda"} 1.459019776e+09
` + successHelp + `clavis_scrape_collector_success{collector="diskstats"} 1
`
	compareCollector(t, "diskstats", c, want, diskFamilies...)
}

func mustRegexpFlag(t testing.TB, expr string) *regexp.Regexp {
	t.Helper()
	var f regexpFlag
	if err := f.Set(expr); err != nil {
		t.Fatal(err)
	}
	return f.Regexp()
}

// TestDiskstatsDefaultExclude: the default leaves out RAM disks (ram0 and
// zram0, compressed RAM swap), loop and floppy devices and partitions, and
// keeps whole disks, device mapper and md devices.
func TestDiskstatsDefaultExclude(t *testing.T) {
	t.Parallel()
	re := mustRegexpFlag(t, defaultDiskstatsExclude)
	for name, excluded := range map[string]bool{
		"ram0": true, "zram0": true, "zram12": true, "loop3": true, "fd0": true, "sda1": true, "nvme0n1p2": true, "mmcblk0p1": true,
		"sda": false, "nvme0n1": false, "dm-0": false, "md0": false, "vda": false, "zramx": false,
	} {
		if got := re.MatchString(name); got != excluded {
			t.Errorf("%s: excluded %v, want %v", name, got, excluded)
		}
	}
}
