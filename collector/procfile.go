package collector

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
)

// The system collectors read five small /proc files on every scrape. The
// generic readers of github.com/prometheus/procfs open the file, parse every
// field of it (all ~500 interrupt counters of /proc/stat, every meminfo
// line into a pointer, diskstats with fmt.Sscanf) and allocate the result
// afresh; on a scrape path budgeted at a fraction of a millisecond that was
// about 40% of a whole scrape (see docs/benchmarks.md). So the hot
// files are read here through a descriptor kept open, into a reused buffer,
// and parsed only for the fields we export. procfs stays the reference: the
// tests check these parsers against it on the fixture files and on fuzzed
// input (FuzzProcParsersMatchProcfs).

// maxProcFileSize bounds what one read may grow the buffer to; the files read
// here are a few kilobytes even on big hosts.
const maxProcFileSize = 4 << 20

// procFile rereads one file through the same descriptor. A pread at offset 0
// makes the kernel generate fresh content for a /proc file, so a scrape
// costs one or two system calls per file and no allocation. Any error closes
// the descriptor; the next read opens the file again.
type procFile struct {
	path string

	mu  sync.Mutex
	f   *os.File
	buf []byte
}

func newProcFile(path string) *procFile { return &procFile{path: path} }

// read returns the whole current content. The slice is valid until the next
// call; callers parse it under their own lock before reading again.
func (p *procFile) read() ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		f, err := os.Open(p.path)
		if err != nil {
			return nil, err
		}
		p.f = f
	}
	if p.buf == nil {
		p.buf = make([]byte, 8192)
	}
	n := 0
	for {
		m, err := p.f.ReadAt(p.buf[n:], int64(n))
		n += m
		if errors.Is(err, io.EOF) {
			return p.buf[:n], nil
		}
		if err != nil {
			p.f.Close()
			p.f = nil
			return nil, err
		}
		if len(p.buf) >= maxProcFileSize {
			return nil, fmt.Errorf("%s: larger than %d bytes", p.path, maxProcFileSize)
		}
		p.buf = append(p.buf, make([]byte, len(p.buf))...)
	}
}

// Close releases the descriptor; a later read opens the file again.
func (p *procFile) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.f == nil {
		return nil
	}
	err := p.f.Close()
	p.f = nil
	return err
}

// nextLine splits off the first line of b.
func nextLine(b []byte) (line, rest []byte) {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return b[:i], b[i+1:]
	}
	return b, nil
}

// nextField splits off the first space- or tab-separated field of b.
func nextField(b []byte) (field, rest []byte) {
	i := 0
	for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
		i++
	}
	j := i
	for j < len(b) && b[j] != ' ' && b[j] != '\t' {
		j++
	}
	return b[i:j], b[j:]
}

var errNotNumber = errors.New("not an unsigned decimal number")

// parseUint parses a decimal unsigned integer without allocating.
func parseUint(b []byte) (uint64, error) {
	if len(b) == 0 || len(b) > 20 {
		return 0, errNotNumber
	}
	var v uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, errNotNumber
		}
		d := uint64(c - '0')
		if v > (1<<64-1-d)/10 {
			return 0, errNotNumber // overflow
		}
		v = v*10 + d
	}
	return v, nil
}

func parseError(file string, line []byte, what string) error {
	if len(line) > 80 {
		line = line[:80]
	}
	return fmt.Errorf("%s: %s in line %q", file, what, line)
}

// cpuTicks is one per-CPU line of /proc/stat: user, nice, system, idle,
// iowait, irq, softirq, steal in USER_HZ ticks (guest columns dropped).
type cpuTicks struct {
	id    int64
	ticks [len(cpuModes)]uint64
}

// maxCPUs bounds the CPU numbers accepted from /proc/stat (Linux allows at
// most 8192), which also bounds the cpu collector's clamping memory.
const maxCPUs = 1 << 16

// userHZ is the unit of /proc/stat's CPU columns; fixed at 100 on Linux.
const userHZ = 100

// parseProcStat reads the per-CPU lines and btime of /proc/stat into cpus
// (reused) and returns them. Lines it does not need are skipped unread; a
// line it needs that does not parse is an error. Missing trailing columns
// (kernels before 2.6.11 had no steal) read as 0, as in procfs.
func parseProcStat(b []byte, cpus []cpuTicks) ([]cpuTicks, uint64, error) {
	cpus = cpus[:0]
	var btime uint64
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		name, rest := nextField(line)
		if f, _ := nextField(rest); len(f) == 0 {
			continue // a key without a value: procfs skips it too
		}
		switch {
		case len(name) > 3 && name[0] == 'c' && name[1] == 'p' && name[2] == 'u':
			id, err := parseUint(name[3:])
			if err != nil || id >= maxCPUs {
				return nil, 0, parseError("stat", line, "bad CPU number")
			}
			c := cpuTicks{id: int64(id)}
			for i := range c.ticks {
				var f []byte
				f, rest = nextField(rest)
				if len(f) == 0 {
					break
				}
				if c.ticks[i], err = parseUint(f); err != nil {
					return nil, 0, parseError("stat", line, "bad CPU time")
				}
			}
			cpus = append(cpus, c)
		case string(name) == "btime":
			f, _ := nextField(rest)
			v, err := parseUint(f)
			if err != nil {
				return nil, 0, parseError("stat", line, "bad btime")
			}
			btime = v
		}
	}
	return cpus, btime, nil
}

// memFields are the /proc/meminfo lines the memory collector exports, in
// the order of memValues.
var memFields = [...]string{"MemTotal", "MemAvailable", "MemFree", "Buffers", "Cached", "SwapTotal", "SwapFree"}

// memValues holds one meminfo reading in bytes; present marks the fields the
// file had.
type memValues struct {
	bytes   [len(memFields)]uint64
	present [len(memFields)]bool
}

// parseMeminfo checks every line of /proc/meminfo ("Key: value [kB]") and
// keeps the wanted fields, in bytes.
func parseMeminfo(b []byte) (memValues, error) {
	var m memValues
	for len(b) > 0 {
		var line []byte
		line, b = nextLine(b)
		key, rest := nextField(line)
		num, rest := nextField(rest)
		unit, rest := nextField(rest)
		if extra, _ := nextField(rest); len(extra) > 0 || len(num) == 0 {
			return m, parseError("meminfo", line, "malformed line")
		}
		v, err := parseUint(num)
		if err != nil {
			return m, parseError("meminfo", line, "bad value")
		}
		switch string(unit) {
		case "":
		case "kB":
			if v > (1<<64-1)/1024 {
				return m, parseError("meminfo", line, "value out of range")
			}
			v *= 1024
		default:
			return m, parseError("meminfo", line, "unknown unit")
		}
		if len(key) < 2 || key[len(key)-1] != ':' {
			continue // not a field we export (procfs ignores it too)
		}
		key = key[:len(key)-1]
		for i, f := range memFields {
			if string(key) == f {
				m.bytes[i], m.present[i] = v, true
				break
			}
		}
	}
	return m, nil
}

// parseLoadavg reads the three load averages of /proc/loadavg: the first
// three fields of the file, as procfs reads them.
func parseLoadavg(b []byte) ([3]float64, error) {
	var l [3]float64
	rest := b
	for i := range l {
		var f []byte
		f, rest = nextSpaceField(rest)
		v, err := strconv.ParseFloat(string(f), 64)
		if err != nil {
			line, _ := nextLine(b)
			return l, parseError("loadavg", line, "bad load average")
		}
		l[i] = v
	}
	return l, nil
}

// nextSpaceField is nextField that also treats line ends as separators.
func nextSpaceField(b []byte) (field, rest []byte) {
	isSpace := func(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f' }
	i := 0
	for i < len(b) && isSpace(b[i]) {
		i++
	}
	j := i
	for j < len(b) && !isSpace(b[j]) {
		j++
	}
	return b[i:j], b[j:]
}

// diskLine is what the diskstats collector exports of one /proc/diskstats
// line. name aliases the read buffer.
type diskLine struct {
	name                                     []byte
	reads, readSectors, writes, writeSectors uint64
	ioTicks                                  uint64 // milliseconds with I/O in flight
}

// parseDiskstats reads /proc/diskstats into disks (reused). Like procfs, it
// looks at the first 20 fields of a line; every one of them but the device
// name must be a number, and a line with fewer than 14 fields is skipped.
func parseDiskstats(b []byte, disks []diskLine) ([]diskLine, error) {
	disks = disks[:0]
	var v [20]uint64
	for len(b) > 0 {
		var line, name []byte
		line, b = nextLine(b)
		rest := line
		n := 0
		for n < len(v) {
			var f []byte
			f, rest = nextField(rest)
			if len(f) == 0 {
				break
			}
			if n == 2 {
				name = f
			} else {
				var err error
				if v[n], err = parseUint(f); err != nil {
					return nil, parseError("diskstats", line, "bad counter")
				}
			}
			n++
		}
		if n < 14 {
			continue
		}
		disks = append(disks, diskLine{
			name: name, reads: v[3], readSectors: v[5], writes: v[7], writeSectors: v[9], ioTicks: v[12],
		})
	}
	return disks, nil
}

// netLine is what the netdev collector exports of one /proc/net/dev line.
// name aliases the read buffer.
type netLine struct {
	name                               []byte
	rxBytes, rxPackets, rxErrs, rxDrop uint64
	txBytes, txPackets, txErrs, txDrop uint64
}

// parseNetDev reads /proc/net/dev into ifaces (reused): two header lines,
// then "name: 8 receive and 8 transmit counters" per interface.
func parseNetDev(b []byte, ifaces []netLine) ([]netLine, error) {
	ifaces = ifaces[:0]
	for n := 0; len(b) > 0; n++ {
		var line []byte
		line, b = nextLine(b)
		if n < 2 {
			continue
		}
		i := bytes.LastIndexByte(line, ':')
		if i < 0 {
			return nil, parseError("net/dev", line, "no colon")
		}
		name := bytes.TrimSpace(line[:i])
		if len(name) == 0 {
			return nil, parseError("net/dev", line, "empty interface name")
		}
		var v [16]uint64
		rest := line[i+1:]
		for k := range v {
			var f []byte
			f, rest = nextField(rest)
			var err error
			if v[k], err = parseUint(f); err != nil {
				return nil, parseError("net/dev", line, "bad or missing counter")
			}
		}
		ifaces = append(ifaces, netLine{
			name:    name,
			rxBytes: v[0], rxPackets: v[1], rxErrs: v[2], rxDrop: v[3],
			txBytes: v[8], txPackets: v[9], txErrs: v[10], txDrop: v[11],
		})
	}
	return ifaces, nil
}

// nameCache interns the device names of diskstats and netdev lines together
// with the filter's verdict, so a scrape neither allocates a label string
// nor runs a regexp for a device it has seen before. It is cleared when it
// grows past a bound, which only a host with device churn reaches.
type nameCache struct {
	filter  deviceFilter
	descs   []*prometheus.Desc // one series per desc for every kept name
	entries map[string]nameEntry
}

type nameEntry struct {
	ignored bool
	series  []*series // in the order of descs
}

const maxNameCache = 4096

func newNameCache(filter deviceFilter, descs ...*prometheus.Desc) *nameCache {
	return &nameCache{filter: filter, descs: descs, entries: map[string]nameEntry{}}
}

// lookup returns the label for name and whether the filter drops it. A name
// that is not valid UTF-8 cannot be a label value and is dropped too.
func (c *nameCache) lookup(name []byte) nameEntry {
	if e, ok := c.entries[string(name)]; ok { // no allocation for the lookup
		return e
	}
	if len(c.entries) >= maxNameCache {
		clear(c.entries)
	}
	s := string(name)
	e := nameEntry{ignored: !utf8.ValidString(s) || c.filter.ignored(s)}
	for _, d := range c.descs {
		if e.ignored {
			break
		}
		ser, err := newSeries(d, s)
		if err != nil {
			e = nameEntry{ignored: true}
			break
		}
		e.series = append(e.series, ser)
	}
	c.entries[s] = e
	return e
}

// checkProcDir fails start-up early when --path.procfs is not a directory,
// instead of every scrape failing later.
func checkProcDir(path string) error {
	st, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("--path.procfs: %w", err)
	}
	if !st.IsDir() {
		return fmt.Errorf("--path.procfs: %s is not a directory", path)
	}
	return nil
}
