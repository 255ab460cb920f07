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

	"golang.org/x/sys/unix"
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
	refusing bool          // the writer is refusing the path (a symlink); warned once
	sweeps   atomic.Uint64 // sweeps finished: a signal for tests that something was looked at and kept
}

// openScanLog checks that the log's directory is safe and that path can
// be written, makes it and every rotated file mode 0600, and deletes the
// ones past retention.
//
// Symbolic links: the process may run as root, and a symlink planted at the
// log path or at a rotated name would make it append to, chmod or delete
// whatever the link points to. So the directory must be one nobody else can
// write to (checkLogDir: then nobody else can plant a name in it); the log
// is created with O_NOFOLLOW and looked at before every write (ensureFile),
// a write never goes through a symlink; and the sweep acts only on regular
// files, chmods through a descriptor opened with O_NOFOLLOW and deletes with
// unlink, which removes a name, never what it points to. lumberjack opens
// and rotates the file by name (and follows links); it only ever finds the
// regular file made here, and the window inside its rotation (rename, then
// create) is closed by the directory check.
func openScanLog(path string, maxSizeMB int, retention, sweepEvery time.Duration, now func() time.Time, logger *slog.Logger) (*scanLog, error) {
	path = filepath.Clean(path)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("tarpit log: %w", err)
	}
	if err := checkLogDir(filepath.Dir(path)); err != nil {
		return nil, fmt.Errorf("tarpit log %s: %w", path, err)
	}
	if err := createNoFollow(path); err != nil {
		return nil, fmt.Errorf("tarpit log: %w", err)
	}
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

// checkLogDir refuses a log directory that someone other than this process's
// user or root could write to, directly or through an ancestor: such a user
// could plant a symlink or swap the directory. The directory itself must be
// writable by its owner only; an ancestor may be a sticky world-writable
// directory such as /tmp (nobody can then rename or delete what is not
// theirs in it).
func checkLogDir(dir string) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	euid := uint32(os.Geteuid())
	for d, first := resolved, true; ; d, first = filepath.Dir(d), false {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			return fmt.Errorf("directory %s: %w", d, err)
		}
		mode := os.FileMode(st.Mode & 0o7777)
		switch {
		case st.Uid != euid && st.Uid != 0:
			return fmt.Errorf("directory %s is owned by uid %d, neither this process's user (%d) nor root: its owner could plant symbolic links in the scanner log's place", d, st.Uid, euid)
		case first && mode&0o022 != 0:
			return fmt.Errorf("directory %s has mode %04o: others may write to it and plant symbolic links in the scanner log's place; use a directory only its owner can write to (chmod go-w)", d, mode)
		case !first && mode&0o002 != 0 && mode&os.FileMode(unix.S_ISVTX) == 0:
			return fmt.Errorf("directory %s, above the scanner log's, has mode %04o: anyone may rename or replace what is in it (chmod o-w, or +t)", d, mode)
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// createNoFollow makes path as an empty mode-0600 file if it does not exist,
// without following a symlink in its place, and checks that what is there
// is a regular file.
func createNoFollow(path string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(logMode))
	if err == unix.ELOOP {
		return fmt.Errorf("%s is a symbolic link; refusing to write through it", path)
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a regular file; refusing to write to it", path)
	}
	return nil
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
	if err := l.ensureFile(); err != nil {
		l.dropped.Add(1)
		if !l.refusing {
			l.logger.Warn("not writing the tarpit scanner log", "file", l.path, "err", err)
		}
		l.refusing = true
		return
	}
	l.refusing = false
	if _, err := l.w.Write(b); err != nil {
		l.dropped.Add(1)
		l.logger.Warn("cannot write tarpit scanner log", "file", l.path, "err", err)
	}
}

// ensureFile checks, before each write, that the log path is a regular file
// (making it with O_NOFOLLOW when it is gone), so lumberjack, which opens it
// by name when it has no file open, never opens a symlink. One lstat a line:
// the log takes two lines per trapped connection.
func (l *scanLog) ensureFile() error {
	var st unix.Stat_t
	err := unix.Lstat(l.path, &st)
	switch {
	case err == unix.ENOENT:
		return createNoFollow(l.path)
	case err != nil:
		return &os.PathError{Op: "lstat", Path: l.path, Err: err}
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		l.w.Close() // what it holds open may be a file the link replaced; reopened once the link is gone
		return fmt.Errorf("%s is a symbolic link; refusing to write through it", l.path)
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		l.w.Close()
		return fmt.Errorf("%s is not a regular file; refusing to write to it", l.path)
	}
	return nil
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
// writer goroutine (or before it starts), so it never races a write. Only
// regular files are touched: a symlink (or anything else) under a log name
// is left alone and reported, neither followed, chmod-ed nor deleted.
func (l *scanLog) sweep() {
	defer l.sweeps.Add(1)
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
		if !l.isLogFile(name) {
			continue
		}
		full := filepath.Join(dir, name)
		if !de.Type().IsRegular() { // ReadDir's type is lstat's: a link shows as a link
			l.logger.Warn("tarpit scanner log name is not a regular file; left alone", "file", full, "type", de.Type().String())
			continue
		}
		info, err := de.Info() // lstat
		if err != nil {
			continue
		}
		if info.ModTime().Before(cutoff) {
			if name == base {
				l.w.Close() // reopened, mode 0600, on the next write
			}
			// unlink removes the name: had it become a symlink since the
			// lstat, the link would go, not what it points to.
			if err := unix.Unlink(full); err != nil && err != unix.ENOENT {
				l.logger.Warn("cannot delete expired tarpit scanner log", "file", full, "err", err)
			} else {
				l.logger.Info("deleted expired tarpit scanner log", "file", full, "retention", l.retention)
			}
			continue
		}
		if info.Mode().Perm() != logMode {
			if err := chmodNoFollow(full, logMode); err != nil {
				l.logger.Warn("cannot restrict tarpit scanner log mode", "file", full, "err", err)
			}
		}
	}
}

// chmodNoFollow sets the mode of the regular file at path through a
// descriptor opened with O_NOFOLLOW, so a symlink swapped in after the
// directory listing is refused rather than followed.
func chmodNoFollow(path string, mode os.FileMode) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if err := unix.Fchmod(fd, uint32(mode)); err != nil {
		return &os.PathError{Op: "fchmod", Path: path, Err: err}
	}
	return nil
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
