package collector

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"
)

// The exporter's own process_* metrics (behind --web.disable-exporter-
// metrics, on their own registry, outside the privacy gate) came from
// client_golang's process collector. Through procfs it opens and parses six
// files per scrape (/proc/stat again for the boot time, every limit, the
// whole of net/netstat) with about 560 allocations: 0.28 ms of CPU per
// scrape in the benchmark, more than all six system collectors together.
// processCollector exports the same series, with the same names, help and
// types, from one pread of /proc/self/stat and one of /proc/self/net/netstat
// through descriptors kept open, one fstat, and two getrlimit calls.
// TestProcessCollectorMatchesClientGolang holds it to client_golang's.

// processCollector is a prometheus.Collector of this process's
// process_* metrics.
type processCollector struct {
	logger   *slog.Logger
	pageSize float64
	bootTime float64 // seconds since the epoch, from /proc/stat at start

	cpu, openFDs, maxFDs, vsize, maxVsize, rss, startTime, inBytes, outBytes *prometheus.Desc

	mu      sync.Mutex
	stat    *procFile // <procfs>/self/stat
	netstat *procFile // <procfs>/self/net/netstat
	fdDir   *os.File  // <procfs>/self/fd
	fdSized bool      // fdDir is on a real procfs, where its size is the count
	warned  map[string]bool
}

// NewProcessCollector returns the collector of this process's process_*
// metrics, reading procPath (normally /proc). It fails where procPath has
// no self/stat (not Linux); client_golang's collector can serve there.
func NewProcessCollector(procPath string, logger *slog.Logger) (prometheus.Collector, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	b, err := os.ReadFile(filepath.Join(procPath, "stat"))
	if err != nil {
		return nil, err
	}
	_, btime, err := parseProcStat(b, nil)
	if err != nil {
		return nil, err
	}
	if btime == 0 {
		return nil, errors.New("reading stat: no btime line")
	}
	c := &processCollector{
		logger:    logger,
		pageSize:  float64(os.Getpagesize()),
		bootTime:  float64(btime),
		stat:      newProcFile(filepath.Join(procPath, "self", "stat")),
		netstat:   newProcFile(filepath.Join(procPath, "self", "net", "netstat")),
		warned:    map[string]bool{},
		cpu:       prometheus.NewDesc("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.", nil, nil),
		openFDs:   prometheus.NewDesc("process_open_fds", "Number of open file descriptors.", nil, nil),
		maxFDs:    prometheus.NewDesc("process_max_fds", "Maximum number of open file descriptors.", nil, nil),
		vsize:     prometheus.NewDesc("process_virtual_memory_bytes", "Virtual memory size in bytes.", nil, nil),
		maxVsize:  prometheus.NewDesc("process_virtual_memory_max_bytes", "Maximum amount of virtual memory available in bytes.", nil, nil),
		rss:       prometheus.NewDesc("process_resident_memory_bytes", "Resident memory size in bytes.", nil, nil),
		startTime: prometheus.NewDesc("process_start_time_seconds", "Start time of the process since unix epoch in seconds.", nil, nil),
		inBytes:   prometheus.NewDesc("process_network_receive_bytes_total", "Number of bytes received by the process over the network.", nil, nil),
		outBytes:  prometheus.NewDesc("process_network_transmit_bytes_total", "Number of bytes sent by the process over the network.", nil, nil),
	}
	if _, err := c.stat.read(); err != nil {
		return nil, err
	}
	if c.fdDir, err = os.Open(filepath.Join(procPath, "self", "fd")); err != nil {
		return nil, err
	}
	var fs unix.Statfs_t
	c.fdSized = unix.Statfs(c.fdDir.Name(), &fs) == nil && fs.Type == unix.PROC_SUPER_MAGIC
	return c, nil
}

func (c *processCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.cpu, c.openFDs, c.maxFDs, c.vsize, c.maxVsize, c.rss, c.startTime, c.inBytes, c.outBytes} {
		ch <- d
	}
}

// Collect sends what it could read. Like client_golang's collector (without
// ReportErrors) a source that fails leaves its series out; the first failure
// of each source is logged at warning level, later ones at debug, so a
// missing file does not flood the log every scrape.
func (c *processCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if b, err := c.stat.read(); err != nil {
		c.fail("stat", err)
	} else if st, err := parseSelfStat(b); err != nil {
		c.fail("stat", err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.cpu, prometheus.CounterValue, float64(st.utime+st.stime)/userHZ)
		ch <- prometheus.MustNewConstMetric(c.vsize, prometheus.GaugeValue, float64(st.vsize))
		ch <- prometheus.MustNewConstMetric(c.rss, prometheus.GaugeValue, float64(st.rssPages)*c.pageSize)
		ch <- prometheus.MustNewConstMetric(c.startTime, prometheus.GaugeValue, c.bootTime+float64(st.startTicks)/userHZ)
	}
	if n, err := c.countFDs(); err != nil {
		c.fail("fd", err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.openFDs, prometheus.GaugeValue, float64(n))
	}
	var nofile, as unix.Rlimit
	if err := errors.Join(unix.Getrlimit(unix.RLIMIT_NOFILE, &nofile), unix.Getrlimit(unix.RLIMIT_AS, &as)); err != nil {
		c.fail("rlimit", err)
	} else {
		// The soft limits, which /proc/self/limits shows first; unlimited
		// is RLIM_INFINITY, 2^64-1, as procfs reads "unlimited".
		ch <- prometheus.MustNewConstMetric(c.maxFDs, prometheus.GaugeValue, float64(nofile.Cur))
		ch <- prometheus.MustNewConstMetric(c.maxVsize, prometheus.GaugeValue, float64(as.Cur))
	}
	if b, err := c.netstat.read(); err != nil {
		c.fail("netstat", err)
	} else if in, out, err := parseNetstatOctets(b); err != nil {
		c.fail("netstat", err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.inBytes, prometheus.CounterValue, float64(in))
		ch <- prometheus.MustNewConstMetric(c.outBytes, prometheus.CounterValue, float64(out))
	}
}

// countFDs is the number of entries in /proc/self/fd. Since Linux 6.2 the
// directory's size on procfs is that number (procfs uses the same fast
// path); older kernels report 0, and then the entries are listed.
func (c *processCollector) countFDs() (int, error) {
	if c.fdSized {
		fi, err := c.fdDir.Stat()
		if err != nil {
			return 0, err
		}
		if n := fi.Size(); n > 0 {
			return int(n), nil
		}
	}
	if _, err := c.fdDir.Seek(0, 0); err != nil {
		return 0, err
	}
	names, err := c.fdDir.Readdirnames(-1)
	return len(names), err
}

func (c *processCollector) fail(source string, err error) {
	level := slog.LevelDebug
	if !c.warned[source] {
		c.warned[source] = true
		level = slog.LevelWarn
	}
	c.logger.Log(context.Background(), level, "process metrics: reading failed; its series are left out", "source", source, "err", err)
}

// selfStat holds the fields of /proc/self/stat the collector exports.
type selfStat struct {
	utime, stime, startTicks, vsize, rssPages uint64
}

// parseSelfStat reads /proc/PID/stat. The command name (field 2) is in
// parentheses and may itself hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseSelfStat(b []byte) (selfStat, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return selfStat{}, parseError("self/stat", b, "no command name")
	}
	var st selfStat
	rest := b[i+1:]
	for field := 3; field <= 24; field++ {
		var f []byte
		f, rest = nextField(rest)
		if len(f) == 0 {
			return selfStat{}, parseError("self/stat", b, fmt.Sprintf("only %d fields", field-1))
		}
		var p *uint64
		switch field {
		case 14:
			p = &st.utime
		case 15:
			p = &st.stime
		case 22:
			p = &st.startTicks
		case 23:
			p = &st.vsize
		case 24:
			p = &st.rssPages
		default:
			continue
		}
		v, err := parseUint(f)
		if err != nil {
			return selfStat{}, parseError("self/stat", b, fmt.Sprintf("field %d is not a number", field))
		}
		*p = v
	}
	return st, nil
}

// parseNetstatOctets reads InOctets and OutOctets from the IpExt lines of
// /proc/PID/net/netstat: a line of names, then a line of values, both
// prefixed "IpExt:". A file without them reads as 0, as client_golang
// exports it; a values line that does not match its names is an error.
func parseNetstatOctets(b []byte) (in, out uint64, err error) {
	const prefix = "IpExt:"
	for len(b) > 0 {
		var names []byte
		names, b = nextLine(b)
		if !bytes.HasPrefix(names, []byte(prefix)) {
			continue
		}
		var values []byte
		values, _ = nextLine(b)
		if !bytes.HasPrefix(values, []byte(prefix)) {
			return 0, 0, parseError("self/net/netstat", names, "IpExt names without values")
		}
		names, values = names[len(prefix):], values[len(prefix):]
		for {
			var name, value []byte
			name, names = nextField(names)
			value, values = nextField(values)
			if len(name) == 0 && len(value) == 0 {
				return in, out, nil
			}
			if len(name) == 0 || len(value) == 0 {
				return 0, 0, parseError("self/net/netstat", b, "IpExt names and values differ in number")
			}
			switch string(name) {
			case "InOctets", "OutOctets":
				v, err := parseUint(value)
				if err != nil {
					return 0, 0, parseError("self/net/netstat", value, "bad "+string(name))
				}
				if name[0] == 'I' {
					in = v
				} else {
					out = v
				}
			}
		}
	}
	return 0, 0, nil
}
