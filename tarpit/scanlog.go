package tarpit

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
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

// scanLogOptions are the scanner log's settings (the --tarpit.log.* flags).
type scanLogOptions struct {
	path       string
	maxSizeMB  int           // rotate at this size
	maxTotalMB int           // the current and rotated files together; the oldest go first
	retention  time.Duration // delete files last written longer ago
	sweepEvery time.Duration // besides at start-up and after each rotation
}

type scanLog struct {
	path       string // as the operator named it, for messages
	dir        string // its directory, for messages
	fsPath     string // what the writer and the sweep open: fsDir + name
	fsDir      string // the held directory (/proc/self/fd/N) or, without /proc, dir
	dirFD      int    // the log directory, held open; -1 when not
	retention  time.Duration
	maxTotal   int64 // bytes
	sweepAfter int64 // bytes written since the last sweep that trigger one (a rotation)
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
	written  int64         // bytes since the last sweep; the writer's
	sweeps   atomic.Uint64 // sweeps finished: a signal for tests that something was looked at and kept
}

// openScanLog checks that the log's directory is safe and that path can
// be written, makes it and every rotated file mode 0600, and deletes the
// ones past retention or over the size budget.
//
// Symbolic links: the process may run as root, and a symlink planted at the
// log path or at a rotated name would make it append to, chmod or delete
// whatever the link points to. So:
//   - the directory must be one nobody else can write to (checkLogDir, and
//     again on the descriptor it is held by: then nobody else can plant a
//     name in it), reached through no symlink someone else owns;
//   - it is held open, and every later name is looked up under that
//     descriptor (/proc/self/fd/N/<name>): someone who may write to an
//     ancestor (Ubuntu's /var/log is root:syslog 0775) can rename the
//     directory away and put one of theirs in its place, but the log keeps
//     going to the directory that was checked. lumberjack opens and rotates
//     the file by name (and follows links) through that path too;
//   - the log is created with O_NOFOLLOW and looked at before every write
//     (ensureFile); the sweep acts only on regular files, chmods through a
//     descriptor opened with O_NOFOLLOW and deletes with unlink, which
//     removes a name, never what it points to.
//
// Without /proc the directory is used by name, and then no ancestor may be
// writable by anyone but root (checkLogDir's strict mode).
func openScanLog(o scanLogOptions, now func() time.Time, logger *slog.Logger) (*scanLog, error) {
	abs, err := filepath.Abs(o.path)
	if err != nil {
		return nil, fmt.Errorf("tarpit log: %w", err)
	}
	dir := filepath.Dir(abs)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("tarpit log: %w", err)
	}
	if err := checkLogDir(dir, false); err != nil {
		return nil, fmt.Errorf("tarpit log %s: %w", abs, err)
	}
	fd, fsDir, err := holdLogDir(dir)
	if err != nil {
		return nil, fmt.Errorf("tarpit log %s: %w", abs, err)
	}
	if fd < 0 {
		if err := checkLogDir(dir, true); err != nil {
			return nil, fmt.Errorf("tarpit log %s (no /proc/self/fd to hold its directory by): %w", abs, err)
		}
	}
	l := &scanLog{
		path:       abs,
		dir:        dir,
		fsDir:      fsDir,
		fsPath:     filepath.Join(fsDir, filepath.Base(abs)),
		dirFD:      fd,
		retention:  o.retention,
		maxTotal:   int64(o.maxTotalMB) << 20,
		sweepAfter: int64(o.maxSizeMB) << 20,
		sweepEvery: o.sweepEvery,
		now:        now,
		logger:     logger,
		ch:         make(chan logEntry, logQueue),
		quit:       make(chan struct{}),
		finished:   make(chan struct{}),
	}
	if err := createNoFollow(l.fsPath); err != nil {
		l.closeDir()
		return nil, fmt.Errorf("tarpit log: %w", l.named(err))
	}
	l.w = &lumberjack.Logger{Filename: l.fsPath, MaxSize: o.maxSizeMB}
	l.sweep()
	return l, nil
}

// named puts the operator's path in place of the /proc/self/fd one in err.
func (l *scanLog) named(err error) error {
	if err == nil || l.fsDir == l.dir {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), l.fsDir, l.dir))
}

func (l *scanLog) closeDir() {
	if l.dirFD >= 0 {
		unix.Close(l.dirFD)
		l.dirFD = -1
	}
}

// holdLogDir opens dir and checks, on the descriptor, what checkLogDir saw
// by name (closing the race of a directory swapped in between). It returns
// the descriptor and the path that names it, /proc/self/fd/N; without a
// usable /proc it returns -1 and dir.
func holdLogDir(dir string) (int, string, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", &os.PathError{Op: "open", Path: dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, "", &os.PathError{Op: "fstat", Path: dir, Err: err}
	}
	if err := checkDirStat(dir, &st, true, false); err != nil {
		unix.Close(fd)
		return -1, "", err
	}
	held := "/proc/self/fd/" + strconv.Itoa(fd)
	var hst unix.Stat_t
	if err := unix.Stat(held, &hst); err != nil || hst.Dev != st.Dev || hst.Ino != st.Ino {
		unix.Close(fd)
		return -1, dir, nil
	}
	return fd, held, nil
}

// checkLogDir refuses a log directory that someone other than this process's
// user or root could write to, or that is reached through a symlink someone
// else owns: such a user could plant a symlink in the log's place. The
// directory itself must be writable by its owner only. An ancestor may be
// sticky and writable by all (/tmp: nobody can rename or delete what is not
// theirs in it); one writable by all and not sticky is refused, since the
// name could then lead elsewhere at start-up. strict (no held directory)
// also refuses an ancestor writable by a group other than root's, not
// sticky: the group's members could rename the log directory away and put
// theirs in its place, the way logrotate refuses such a parent.
func checkLogDir(dir string, strict bool) error {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if err := checkLinks(abs); err != nil {
		return err
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return err
	}
	for d, first := resolved, true; ; d, first = filepath.Dir(d), false {
		var st unix.Stat_t
		if err := unix.Stat(d, &st); err != nil {
			return fmt.Errorf("directory %s: %w", d, err)
		}
		if err := checkDirStat(d, &st, first, strict); err != nil {
			return err
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// checkDirStat applies checkLogDir's rule to one directory: the log's own
// (first) or an ancestor.
func checkDirStat(d string, st *unix.Stat_t, first, strict bool) error {
	euid := uint32(os.Geteuid())
	mode := os.FileMode(st.Mode & 0o7777)
	sticky := mode&os.FileMode(unix.S_ISVTX) != 0
	switch {
	case st.Mode&unix.S_IFMT != unix.S_IFDIR:
		return fmt.Errorf("%s is not a directory", d)
	case st.Uid != euid && st.Uid != 0:
		return fmt.Errorf("directory %s is owned by uid %d, neither this process's user (%d) nor root: its owner could plant symbolic links in the scanner log's place", d, st.Uid, euid)
	case first && mode&0o022 != 0:
		return fmt.Errorf("directory %s has mode %04o: others may write to it and plant symbolic links in the scanner log's place; use a directory only its owner can write to (chmod go-w)", d, mode)
	case !first && mode&0o002 != 0 && !sticky:
		return fmt.Errorf("directory %s, above the scanner log's, has mode %04o: anyone may rename or replace what is in it (chmod o-w, or +t)", d, mode)
	case !first && strict && mode&0o020 != 0 && st.Gid != 0 && !sticky:
		return fmt.Errorf("directory %s, above the scanner log's, has mode %04o and group %d: the group's members may rename or replace what is in it (chmod g-w, or +t)", d, mode, st.Gid)
	}
	return nil
}

// checkLinks refuses a path that goes through a symlink owned by someone
// other than this process's user or root: its owner could point it at
// another directory at any time. Links are followed by hand, so a link in
// a link's target is checked too. (The directories they lead to are checked
// by checkLogDir on the resolved path.)
func checkLinks(abs string) error {
	euid := uint32(os.Geteuid())
	parts := strings.Split(strings.TrimPrefix(filepath.Clean(abs), "/"), "/")
	p := "/"
	for links := 0; len(parts) > 0; {
		part := parts[0]
		parts = parts[1:]
		if part == "" || part == "." {
			continue
		}
		next := filepath.Join(p, part)
		var st unix.Stat_t
		if err := unix.Lstat(next, &st); err != nil {
			return &os.PathError{Op: "lstat", Path: next, Err: err}
		}
		if st.Mode&unix.S_IFMT != unix.S_IFLNK {
			p = next
			continue
		}
		if st.Uid != euid && st.Uid != 0 {
			return fmt.Errorf("%s is a symbolic link owned by uid %d, neither this process's user (%d) nor root: its owner could point the scanner log elsewhere", next, st.Uid, euid)
		}
		if links++; links > 40 {
			return &os.PathError{Op: "lstat", Path: abs, Err: unix.ELOOP}
		}
		target, err := os.Readlink(next)
		if err != nil {
			return err
		}
		if filepath.IsAbs(target) {
			p = "/"
		}
		parts = append(strings.Split(target, "/"), parts...)
	}
	return nil
}

// createNoFollow makes path as an empty mode-0600 file if it does not exist,
// without following a symlink in its place, and checks that what is there
// is a regular file.
func createNoFollow(path string) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(logMode))
	if err == unix.ELOOP {
		return fmt.Errorf("%s is a symbolic link; refusing to write through it", path)
	}
	var st unix.Stat_t
	if err == unix.ENXIO && unix.Lstat(path, &st) == nil { // a FIFO without a reader, a socket
		return fmt.Errorf("%s is not a regular file; refusing to write to it", path)
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
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
			l.logger.Warn("not writing the tarpit scanner log", "file", l.path, "err", l.named(err))
		}
		l.refusing = true
		return
	}
	l.refusing = false
	n, err := l.w.Write(b)
	if err != nil {
		l.dropped.Add(1)
		l.logger.Warn("cannot write tarpit scanner log", "file", l.path, "err", l.named(err))
	}
	// lumberjack rotates at maxSizeMB: sweep after each rotation's worth,
	// so a flood of scanners churning connections fills at most the
	// size budget, not the disk, before the hourly sweep comes.
	if l.written += int64(n); l.written >= l.sweepAfter {
		l.sweep()
	}
}

// ensureFile checks, before each write, that the log path is a regular file
// (making it with O_NOFOLLOW when it is gone), so lumberjack, which opens it
// by name when it has no file open, never opens a symlink. One lstat a line:
// the log takes two lines per trapped connection.
func (l *scanLog) ensureFile() error {
	var st unix.Stat_t
	err := unix.Lstat(l.fsPath, &st)
	switch {
	case err == unix.ENOENT:
		return createNoFollow(l.fsPath)
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
// the file and the directory.
func (l *scanLog) close() {
	l.stopOnce.Do(func() {
		close(l.quit)
		if l.running.Load() {
			<-l.finished
		}
		l.w.Close()
		l.closeDir()
	})
}

// sweep deletes the scanner log files (current and rotated) last modified
// before now-retention, then the oldest rotated ones while all of them
// together exceed the size budget, and puts every one left to mode 0600. It
// runs on the writer goroutine (or before it starts), so it never races a
// write. Only regular files are touched: a symlink (or anything else) under
// a log name is left alone and reported, neither followed, chmod-ed nor
// deleted.
func (l *scanLog) sweep() {
	defer l.sweeps.Add(1)
	l.written = 0
	entries, err := os.ReadDir(l.fsDir)
	if err != nil {
		l.logger.Warn("cannot list tarpit scanner log directory", "dir", l.dir, "err", l.named(err))
		return
	}
	cutoff := l.now().Add(-l.retention)
	base := filepath.Base(l.path)
	type kept struct {
		name string
		info os.FileInfo
	}
	var rotated []kept
	var total int64
	remove := func(name, why string) {
		if name == base {
			l.w.Close() // reopened, mode 0600, on the next write
		}
		// unlink removes the name: had it become a symlink since the
		// lstat, the link would go, not what it points to.
		if err := unix.Unlink(filepath.Join(l.fsDir, name)); err != nil && err != unix.ENOENT {
			l.logger.Warn("cannot delete tarpit scanner log", "file", filepath.Join(l.dir, name), "err", l.named(err))
		} else {
			l.logger.Info("deleted tarpit scanner log", "file", filepath.Join(l.dir, name), "reason", why)
		}
	}
	for _, de := range entries {
		name := de.Name()
		if !l.isLogFile(name) {
			continue
		}
		if !de.Type().IsRegular() { // ReadDir's type is lstat's: a link shows as a link
			l.logger.Warn("tarpit scanner log name is not a regular file; left alone", "file", filepath.Join(l.dir, name), "type", de.Type().String())
			continue
		}
		info, err := de.Info() // lstat
		if err != nil {
			continue
		}
		if info.ModTime().Before(cutoff) {
			remove(name, "older than --tarpit.log.retention "+l.retention.String())
			continue
		}
		if info.Mode().Perm() != logMode {
			if err := chmodNoFollow(filepath.Join(l.fsDir, name), logMode); err != nil {
				l.logger.Warn("cannot restrict tarpit scanner log mode", "file", filepath.Join(l.dir, name), "err", l.named(err))
			}
		}
		total += info.Size()
		if name != base {
			rotated = append(rotated, kept{name, info})
		}
	}
	if total <= l.maxTotal {
		return
	}
	// Oldest first; the current file is never deleted for size (it is at
	// most one rotation's worth, within the budget by the flags' bounds).
	sort.Slice(rotated, func(i, j int) bool { return rotated[i].info.ModTime().Before(rotated[j].info.ModTime()) })
	for _, k := range rotated {
		if total <= l.maxTotal {
			break
		}
		remove(k.name, "over --tarpit.log.max-total-size-mb")
		total -= k.info.Size()
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
