package collector

import (
	"math"
	"testing"
)

// TestSystemCollectorsMatchNodeExporter reads node_exporter's own fixture
// files (testdata/proc-nodeexporter: its collector/fixtures/proc stat,
// meminfo, diskstats with 11-, 15- and 17-counter lines, loadavg) and
// checks the values against what node_exporter exports for them
// (collector/fixtures/e2e-output.txt): the same base units, seconds from
// USER_HZ ticks and milliseconds, bytes from 512-byte sectors and kB.
func TestSystemCollectorsMatchNodeExporter(t *testing.T) {
	t.Parallel()
	const proc = "testdata/proc-nodeexporter"
	fs := mustProcFS(t, proc)
	want := map[string]float64{
		// node_cpu_seconds_total{cpu="0"}
		"clavis_cpu_seconds_total/0/idle": 10870.69, "clavis_cpu_seconds_total/0/iowait": 2.2,
		"clavis_cpu_seconds_total/0/irq": 0.01, "clavis_cpu_seconds_total/0/nice": 0.19,
		"clavis_cpu_seconds_total/0/softirq": 34.1, "clavis_cpu_seconds_total/0/steal": 0,
		"clavis_cpu_seconds_total/0/system": 210.45, "clavis_cpu_seconds_total/0/user": 444.9,
		"clavis_boot_time_seconds": 1.418183276e+09,
		// node_memory_*_bytes
		"clavis_memory_total_bytes": 3.831959552e+09, "clavis_memory_free_bytes": 2.30883328e+08,
		"clavis_memory_buffers_bytes": 2.256896e+07, "clavis_memory_cached_bytes": 9.53229312e+08,
		"clavis_memory_swap_total_bytes": 4.2949632e+09, "clavis_memory_swap_free_bytes": 3.23108864e+09,
		"clavis_load1": 0.21, "clavis_load5": 0.37, "clavis_load15": 0.39,
		// node_disk_*: sda has 11 counters, sdb 15, sdc 17.
		"clavis_disk_io_time_seconds_total/sda": 9653.88, "clavis_disk_io_time_seconds_total/sdb": 60.73,
		"clavis_disk_io_time_seconds_total/sdc": 10.73, "clavis_disk_io_time_seconds_total/dm-0": 11325.968,
		"clavis_disk_io_time_seconds_total/nvme0n1": 222.766,
		"clavis_disk_read_bytes_total/sda":          5.13713216512e+11, "clavis_disk_read_bytes_total/sdb": 4.944782848e+09,
		"clavis_disk_read_bytes_total/sdc": 8.48782848e+08, "clavis_disk_read_bytes_total/dm-0": 5.13708655616e+11,
		"clavis_disk_read_bytes_total/nvme0n1": 2.377714176e+09,
		"clavis_disk_written_bytes_total/sda":  2.58916880384e+11, "clavis_disk_written_bytes_total/sdb": 1.01012736e+09,
		"clavis_disk_written_bytes_total/sdc": 8.852736e+07, "clavis_disk_written_bytes_total/dm-0": 2.5891680256e+11,
		"clavis_disk_written_bytes_total/nvme0n1": 2.0199236096e+10,
		"clavis_disk_reads_completed_total/sda":   2.5354637e+07, "clavis_disk_reads_completed_total/sdb": 326552,
		"clavis_disk_reads_completed_total/sdc": 126552, "clavis_disk_reads_completed_total/dm-0": 5.9910002e+07,
		"clavis_disk_reads_completed_total/nvme0n1": 47114,
		"clavis_disk_writes_completed_total/sda":    2.8444756e+07, "clavis_disk_writes_completed_total/sdb": 41822,
		"clavis_disk_writes_completed_total/sdc": 11822, "clavis_disk_writes_completed_total/dm-0": 3.9231014e+07,
		"clavis_disk_writes_completed_total/nvme0n1": 1.07832e+06,
	}
	got := map[string]float64{}
	for _, c := range []Collector{
		newCPUCollector(fs, nil), newMemoryCollector(fs), newLoadavgCollector(fs),
		newDiskstatsCollector(mustBlockFS(t, proc), deviceFilter{exclude: mustRegexpFlag(t, defaultDiskstatsExclude)}),
	} {
		ms, err := collectAll(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			s := metricSample(t, m)
			key := s.name
			if cpu, ok := s.labels["cpu"]; ok {
				key += "/" + cpu + "/" + s.labels["mode"]
			} else if d, ok := s.labels["device"]; ok {
				key += "/" + d
			}
			got[key] = s.value
		}
	}
	for k, v := range want {
		g, ok := got[k]
		if !ok || math.Abs(g-v) > 1e-12*math.Max(1, math.Abs(v)) {
			t.Errorf("%s = %v (exported %v), node_exporter exports %v", k, g, ok, v)
		}
	}
	if _, ok := got["clavis_memory_available_bytes"]; ok {
		t.Error("the fixture has no MemAvailable line, node_exporter exports none, and nor may we")
	}
}
