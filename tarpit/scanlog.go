package tarpit

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gopkg.in/natefinch/lumberjack.v2"
)

// The scanner log: one JSON line per trapped connection's open and close,
// with the scanner's address. It is the only place an address goes, it
// stays on the POP, and it is kept for --tarpit.log.retention at most.

// logMode is the mode of the scanner log and its rotated files: they hold
// scanner addresses, which are nobody else's business on the host.
const logMode os.FileMode = 0o600

// logQueue is how many lines may wait for the writer. Past it lines are
// dropped and counted: the scheduler never waits for the disk.
const logQueue = 8192

// lumberjack's name for a rotated file: <name>-<time><ext>[.gz].
const backupTimeFormat = "2006-01-02T15-04-05.000"

type logEntry struct {
	Time      time.Time
	Event     string // "open" or "close"
	Protocol  string
	Remote    netip.AddrPort
	LocalPort uint16
	Start     time.Time
	BytesSent uint64
	Method    string
	Path      string
}

// logLine is the JSON form of a logEntry.
type logLine struct {
	Time            string  `json:"time"`
	Event           string  `json:"event"`
	Protocol        string  `json:"protocol"`
	RemoteAddr      string  `json:"remote_addr"`
	RemotePort      uint16  `json:"remote_port"`
	LocalPort       uint16  `json:"local_port"`
	DurationSeconds float64 `json:"duration_seconds"`
	BytesSent       uint64  `json:"bytes_sent"`
	Method          string  `json:"method,omitempty"`
	Path            string  `json:"path,omitempty"`
}

func (e *logEntry) marshal() ([]byte, error) {
	d := e.Time.Sub(e.Start).Seconds()
	if e.Event == "open" || d < 0 {
		d = 0
	}
	b, err := json.Marshal(logLine{
		Time:            e.Time.UTC().Format(time.RFC3339Nano),
		Event:           e.Event,
		Protocol:        e.Protocol,
		RemoteAddr:      e.Remote.Addr().String(),
		RemotePort:      e.Remote.Port(),
		LocalPort:       e.LocalPort,
		DurationSeconds: float64(int64(d*1e3)) / 1e3,
		BytesSent:       e.BytesSent,
		Method:          e.Method,
		Path:            e.Path,
	})
	return append(b, '\n'), err
}

type scanLog struct {
	path       string
	retention  time.Duration
	sweepEvery time.Duration
	now        func() time.Time
	logger     *slog.Logger
	w          *lumberjack.Logger // owned by the writer goroutine once run starts

	ch       chan logEntry
	quit     chan struct{}
	finished chan struct{}
	running  atomic.Bool
	dropped  atomic.Uint64
	stopOnce sync.Once
}

// openScanLog checks that path can be written, makes it and every rotated
// file mode 0600, and deletes the ones past retention.
func openScanLog(path string, maxSizeMB int, retention, sweepEvery time.Duration, now func() time.Time, logger *slog.Logger) (*scanLog, error) {
	path = filepath.Clean(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("tarpit log: %w", err)
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, logMode)
	if err != nil {
		return nil, fmt.Errorf("tarpit log: %w", err)
	}
	f.Close()
	l := &scanLog{
		path:       path,
		retention:  retention,
		sweepEvery: sweepEvery,
		now:        now,
		logger:     logger,
		w:          &lumberjack.Logger{Filename: path, MaxSize: maxSizeMB},
		ch:         make(chan logEntry, logQueue),
		quit:       make(chan struct{}),
		finished:   make(chan struct{}),
	}
	l.sweep()
	return l, nil
}

// send queues e without ever blocking; a full queue drops and counts it.
func (l *scanLog) send(e logEntry) {
	select {
	case l.ch <- e:
	default:
		l.dropped.Add(1)
	}
}

// run writes queued lines and sweeps old files until close is called, then
// writes what is still queued.
func (l *scanLog) run() {
	l.running.Store(true)
	defer close(l.finished)
	tick := time.NewTicker(l.sweepEvery)
	defer tick.Stop()
	for {
		select {
		case e := <-l.ch:
			l.write(&e)
		case <-tick.C:
			l.sweep()
		case <-l.quit:
			for {
				select {
				case e := <-l.ch:
					l.write(&e)
				default:
					return
				}
			}
		}
	}
}

func (l *scanLog) write(e *logEntry) {
	b, err := e.marshal()
	if err != nil {
		l.dropped.Add(1)
		return
	}
	if _, err := l.w.Write(b); err != nil {
		l.dropped.Add(1)
		l.logger.Warn("cannot write tarpit scanner log", "file", l.path, "err", err)
	}
}

// close stops the writer (after it has written what was queued) and closes
// the file.
func (l *scanLog) close() {
	l.stopOnce.Do(func() {
		close(l.quit)
		if l.running.Load() {
			<-l.finished
		}
		l.w.Close()
	})
}

// sweep deletes the scanner log files (current and rotated) last modified
// before now-retention and puts every one to mode 0600. It runs on the
// writer goroutine (or before it starts), so it never races a write.
func (l *scanLog) sweep() {
	dir := filepath.Dir(l.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		l.logger.Warn("cannot list tarpit scanner log directory", "dir", dir, "err", err)
		return
	}
	cutoff := l.now().Add(-l.retention)
	base := filepath.Base(l.path)
	for _, de := range entries {
		name := de.Name()
		if de.IsDir() || !l.isLogFile(name) {
			continue
		}
		full := filepath.Join(dir, name)
		info, err := de.Info()
		if err != nil {
			continue
		}
		if info.ModTime().Before(cutoff) {
			if name == base {
				l.w.Close() // reopened, mode 0600, on the next write
			}
			if err := os.Remove(full); err != nil && !os.IsNotExist(err) {
				l.logger.Warn("cannot delete expired tarpit scanner log", "file", full, "err", err)
			} else {
				l.logger.Info("deleted expired tarpit scanner log", "file", full, "retention", l.retention)
			}
			continue
		}
		if info.Mode().Perm() != logMode {
			if err := os.Chmod(full, logMode); err != nil {
				l.logger.Warn("cannot restrict tarpit scanner log mode", "file", full, "err", err)
			}
		}
	}
}

// isLogFile tells the scanner log and lumberjack's rotated copies of it
// from anything else in the directory.
func (l *scanLog) isLogFile(name string) bool {
	base := filepath.Base(l.path)
	if name == base {
		return true
	}
	ext := filepath.Ext(base)
	prefix := strings.TrimSuffix(base, ext) + "-"
	rest, ok := strings.CutPrefix(name, prefix)
	if !ok {
		return false
	}
	rest = strings.TrimSuffix(rest, ".gz")
	stamp, ok := strings.CutSuffix(rest, ext)
	if !ok {
		return false
	}
	_, err := time.Parse(backupTimeFormat, stamp)
	return err == nil
}
