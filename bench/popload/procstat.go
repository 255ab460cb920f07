package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// procSample is what /proc says about one process at one moment.
type procSample struct {
	CPUTicks  uint64 // utime + stime (+ cutime + cstime: waited-for children)
	RSSKiB    uint64
	HWMKiB    uint64 // peak RSS
	Threads   int
	FDs       int
	Available bool
}

// parseStat returns utime+stime+cutime+cstime from a /proc/PID/stat line.
// The command name (field 2) may hold spaces and parentheses: fields are
// counted from the last ')'.
func parseStat(b []byte) (uint64, error) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("stat: no ')' in %q", b)
	}
	f := strings.Fields(string(b[i+1:]))
	// After ')': state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17).
	if len(f) < 15 {
		return 0, fmt.Errorf("stat: %d fields after the name", len(f))
	}
	var sum uint64
	for _, k := range []int{11, 12, 13, 14} {
		v, err := strconv.ParseInt(f[k], 10, 64)
		if err != nil || v < 0 {
			return 0, fmt.Errorf("stat field %d: %q", k+3, f[k])
		}
		sum += uint64(v)
	}
	return sum, nil
}

// parseStatus reads VmRSS, VmHWM (KiB) and Threads from /proc/PID/status.
func parseStatus(b []byte) (rss, hwm uint64, threads int, err error) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	seen := 0
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, perr := strconv.ParseUint(f[0], 10, 64)
		switch k {
		case "VmRSS":
			rss, seen = n, seen+1
		case "VmHWM":
			hwm, seen = n, seen+1
		case "Threads":
			threads, seen = int(n), seen+1
		default:
			continue
		}
		if perr != nil {
			return 0, 0, 0, fmt.Errorf("status %s: %q", k, v)
		}
	}
	if seen < 3 {
		return 0, 0, 0, fmt.Errorf("status: VmRSS, VmHWM or Threads missing")
	}
	return rss, hwm, threads, nil
}

// parseSchedstat returns the first field of a /proc/PID/task/TID/schedstat
// line: nanoseconds the thread has run on a CPU.
func parseSchedstat(b []byte) (uint64, error) {
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return 0, fmt.Errorf("schedstat: %q", b)
	}
	return strconv.ParseUint(f[0], 10, 64)
}

// cpuNanos is the CPU time of every live thread of pid, from schedstat
// (nanosecond resolution; /proc/PID/stat counts in 10 ms ticks, too coarse
// for a few hundred scrapes).
func cpuNanos(pid int) (uint64, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return 0, err
	}
	var sum uint64
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, t.Name()))
		if err != nil {
			continue // the thread is gone
		}
		v, err := parseSchedstat(b)
		if err != nil {
			return 0, err
		}
		sum += v
	}
	return sum, nil
}

func sampleProc(pid int) procSample {
	var s procSample
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s
	}
	if s.CPUTicks, err = parseStat(b); err != nil {
		return s
	}
	b, err = os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s
	}
	if s.RSSKiB, s.HWMKiB, s.Threads, err = parseStatus(b); err != nil {
		return s
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return s
	}
	s.FDs = len(fds)
	s.Available = true
	return s
}
