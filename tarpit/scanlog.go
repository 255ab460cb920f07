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
	path        string
	maxSizeMB   int           // rotate at this size
	maxTotalMB  int           // the current and rotated files together; the oldest go first
	retention   time.Duration // no line is kept longer
	sweepEvery  time.Duration // at least this often, besides at start-up and after each rotation
	rotateEvery time.Duration // 0: rotateInterval(retention)
}

// rotateInterval is how long the current file collects lines before it is
// rotated by age, whatever its size.
//
// Retention cannot go by a file's mtime alone: that is its newest line's
// time, and a file holds lines from its first to its newest. On a quiet POP
// the current file never reaches the rotation size and, written now and
// then, stays fresh for ever with months-old addresses in it. So the
// current file is rotated once its first line is rotateEvery old, and a
// rotated file, whose lines then span at most rotateEvery, is deleted once
// its newest line is retention-rotateEvery old: every line goes between
// retention-rotateEvery and retention after it was written.
//
// 1/30 of the retention (a day of the default 30) keeps every line for at
// least 29/30 of it and makes at most about 31 files by age, whatever the
// retention. A fixed floor such as an hour would, at the shortest retention
// (1h), delete lines as soon as they are rotated; the minute's floor only
// matters to tests.
func rotateInterval(retention time.Duration) time.Duration {
	return max(retention/30, time.Minute)
}

type scanLog struct {
	path        string // as the operator named it, for messages
	dir         string // its directory, for messages
	fsPath      string // what the writer and the sweep open: fsDir + name
	fsDir       string // the held directory (/proc/self/fd/N) or, without /proc, dir
	dirFD       int    // the log directory, held open; -1 when not
	dirUID      uint32 // the directory's owner, device and inode at start-up
	dirDev      uint64
	dirIno      uint64
	retention   time.Duration
	rotateEvery time.Duration
	maxSize     int64 // bytes: a line that would take the current file past it goes to a new one
	maxTotal    int64 // bytes
	sweepEvery  time.Duration
	now         func() time.Time
	logger      *slog.Logger

	ch       chan logEntry
	quit     chan struct{}
	dropped  atomic.Uint64
	stopOnce sync.Once
	// mu is held by run while it runs and by close, so they never overlap:
	// close may come before the goroutine run was started on is scheduled,
	// and must neither race it nor leave it writing after the file and the
	// directory are closed.
	mu     sync.Mutex
	closed bool
	sweeps atomic.Uint64 // sweeps finished: a signal for tests that something was looked at and kept

	// The rest is the writer goroutine's (the sweep runs on it too), or
	// openScanLog's before it starts.
	cur       logFile                               // the current file, held open
	writeFile func(*os.File, []byte) (int, error)   // (*os.File).Write; tests make it fail
	readFirst func(string) (time.Time, bool, error) // readFirstLineTime; tests make it fail
	trouble   troubleKind                           // what stops lines now, reported once; troubleNone when they are written
	lost      uint64                                // lines dropped since trouble began, for the message when it ends
	firsts    map[string]firstLine                  // rotated files' first-line times, by name: their contents do not change
	nextSweep time.Duration                         // when the last sweep wants the next one
	swept     bool                                  // a sweep ran off the timer: run resets it to nextSweep
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
//     name in it), reached through no symlink someone else owns; it is
//     checked again before every line, sweep, rotation and reopening
//     (checkDir), since an operator may chmod or chown it while we run;
//   - it is held open, and every later name is looked up under that
//     descriptor (/proc/self/fd/N/<name>): someone who may write to an
//     ancestor (Ubuntu's /var/log is root:syslog 0775) can rename the
//     directory away and put one of theirs in its place, but the log keeps
//     going to the directory that was checked;
//   - the log is opened with O_NOFOLLOW, must be a regular file of this
//     process's user with one link, and the path is looked at before every
//     write (ensureFile); the sweep acts only on regular files, chmods
//     through a descriptor opened with O_NOFOLLOW and deletes with unlink,
//     which removes a name, never what it points to.
//
// Without /proc the directory is used by name, and then no ancestor may be
// writable by anyone but root (checkLogDir's strict mode).
//
// Target of this hand-written writer (hard rule 2, scanner addresses are
// deleted after the retention period and stay local to this user): no line
// outlives --tarpit.log.retention, no line goes to a deleted or replaced
// file, none to a file another user owns (TestScanLogNoLineOutlivesRetention,
// TestScanLogReopensDeletedOrRenamedLog, TestScanLogStopsWhileDirectoryUnsafe
// and TestScanLogRefusesForeignLog fail without it). The file is written
// and rotated here, not by lumberjack, which this code used before: lumberjack keeps its file to itself (so whether the path
// still names it cannot be told), reopens and rotates by name with
// O_CREATE|O_TRUNC, following links, then chowns the new file to the old
// one's owner and copies its mode, and offers no rotation by age. Rotated
// files keep its names (tarpit-<time>.log).
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
	rotateEvery := o.rotateEvery
	if rotateEvery <= 0 {
		rotateEvery = rotateInterval(o.retention)
	}
	l := &scanLog{
		path:        abs,
		dir:         dir,
		fsDir:       fsDir,
		fsPath:      filepath.Join(fsDir, filepath.Base(abs)),
		dirFD:       fd,
		retention:   o.retention,
		rotateEvery: min(rotateEvery, o.retention/2),
		maxSize:     int64(o.maxSizeMB) << 20,
		maxTotal:    int64(o.maxTotalMB) << 20,
		sweepEvery:  o.sweepEvery,
		now:         now,
		logger:      logger,
		ch:          make(chan logEntry, logQueue),
		quit:        make(chan struct{}),
		writeFile:   (*os.File).Write,
		readFirst:   readFirstLineTime,
		firsts:      map[string]firstLine{},
		nextSweep:   o.sweepEvery,
	}
	var st unix.Stat_t
	if err := l.statDir(&st); err != nil {
		l.closeDir()
		return nil, fmt.Errorf("tarpit log: %w", err)
	}
	l.dirUID, l.dirDev, l.dirIno = st.Uid, st.Dev, st.Ino
	if err := l.openFile(); err != nil {
		l.closeDir()
		return nil, fmt.Errorf("tarpit log: %w", l.named(err))
	}
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
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	timer := time.NewTimer(l.nextSweep)
	defer timer.Stop()
	// The timer holds the sweep openScanLog scheduled: the first event
	// must not take that for a new one and restart the wait.
	l.swept = false
	for {
		select {
		case e := <-l.ch:
			l.write(&e)
		case <-timer.C:
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
		if l.swept {
			l.swept = false
			timer.Reset(l.nextSweep)
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
		l.drop(err)
		return
	}
	now := l.now()
	// Rotate before the line that would take the file past the size, or
	// once its first line is rotateEvery old: checked here too, not only by
	// the sweep, so a file never spans more than rotateEvery, which the
	// sweep's deletion of rotated files relies on.
	rotated := false
	if l.cur.size > 0 && (l.cur.size+int64(len(b)) > l.maxSize || l.ageDue(now)) {
		if err := l.rotate(now); err != nil {
			l.drop(err)
			return
		}
		rotated = true
	}
	if l.cur.midLine {
		b = append([]byte{'\n'}, b...)
	}
	n, err := l.writeFile(l.cur.f, b)
	if err != nil {
		l.undo(n)
		l.drop(err)
		return
	}
	if l.cur.size == 0 {
		l.cur.first = e.Time
		if e.Time.IsZero() || e.Time.After(now) {
			l.cur.first = now
		}
		l.cur.firstKnown = true
	}
	l.cur.size += int64(n)
	l.cur.midLine = false
	l.wrote()
	// A sweep after each rotation: a flood of scanners churning
	// connections fills at most the size budget, not the disk, before the
	// next timed sweep comes.
	if rotated {
		l.sweep()
	}
}

// ageDue tells whether the current file is to be rotated by age: its first
// line is rotateEvery old, or its first line's time is unknown (a file not
// written as this code writes), which is the safe side.
func (l *scanLog) ageDue(now time.Time) bool {
	// A first line in the future: the clock went back (an NTP step, a VM
	// restored). Every line written now would be dated by that first line
	// and kept for the step on top of the retention; rotate instead.
	d := now.Sub(l.cur.first)
	return l.cur.size > 0 && (!l.cur.firstKnown || d >= l.rotateEvery || d < -time.Minute)
}

// close stops the writer (after it has written what was queued: itself,
// when run has not started) and closes the file and the directory.
func (l *scanLog) close() {
	l.stopOnce.Do(func() {
		close(l.quit)
		l.mu.Lock()
		defer l.mu.Unlock()
		for drained := false; !drained; {
			select {
			case e := <-l.ch:
				l.write(&e)
			default:
				drained = true
			}
		}
		l.closed = true
		l.closeFile()
		l.closeDir()
	})
}

// sweep rotates the current file when its first line is rotateEvery old;
// deletes the current file once its newest line (mtime) or its first is
// past retention, and a rotated one once its newest line is
// retention-rotateEvery old or its first past retention (a file written
// before rotation by age, or by anything else, may span longer than
// rotateEvery); then deletes the oldest rotated ones while all of them
// together exceed the size budget, and puts every one left to mode 0600. It
// sets nextSweep to when the next of these falls due, so a line goes when
// its time comes, not up to a sweep interval later. It runs on the writer
// goroutine (or before it starts), so it never races a write. Only regular
// files are touched: a symlink (or anything else) under a log name is left
// alone and reported, neither followed, chmod-ed nor deleted.
//
// With the directory no longer safe it stops the writer, and deletes what
// is due (removing a name is harmless whoever put it there; keeping an
// address past retention is not) but rotates and chmods nothing.
func (l *scanLog) sweep() {
	defer l.sweeps.Add(1)
	now := l.now()
	next := now.Add(l.sweepEvery)
	due := func(t time.Time) {
		if t.Before(next) {
			next = t
		}
	}
	defer func() { l.scheduleSweep(next.Sub(now)) }()
	dirErr := l.checkDir()
	if dirErr == nil && l.dirFD < 0 {
		dirErr = checkLogDir(l.dir, true) // without a held directory, its ancestors matter too
	}
	if dirErr != nil {
		l.closeFile()
		l.report(dirErr)
	} else if l.cur.f != nil && l.ageDue(now) {
		switch held, err := l.heldAtPath(); {
		case err != nil || !held:
			l.closeFile() // not the log any more: the next line reopens the path
		default:
			if err := l.rotate(now); err != nil {
				l.report(err)
			}
		}
	}
	entries, err := os.ReadDir(l.fsDir)
	if err != nil {
		l.logger.Warn("cannot list tarpit scanner log directory", "dir", l.dir, "err", l.named(err))
		return
	}
	base := filepath.Base(l.path)
	type kept struct {
		name string
		info os.FileInfo
	}
	var rotated []kept
	var total int64
	remove := func(name, why string) {
		if name == base {
			l.closeFile() // reopened, mode 0600, on the next write
		}
		// unlink removes the name: had it become a symlink since the
		// lstat, the link would go, not what it points to.
		if err := unix.Unlink(filepath.Join(l.fsDir, name)); err != nil && err != unix.ENOENT {
			l.logger.Warn("cannot delete tarpit scanner log", "file", filepath.Join(l.dir, name), "err", l.named(err))
		} else {
			l.logger.Info("deleted tarpit scanner log", "file", filepath.Join(l.dir, name), "reason", why)
		}
	}
	firsts := make(map[string]firstLine, len(l.firsts))
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
		// The newest line is at the mtime; the first line is read (held in
		// memory for the current file while it is held).
		newest, keep, why := info.ModTime(), l.retention, "last written longer ago than --tarpit.log.retention "+l.retention.String()
		if name != base {
			keep, why = l.retention-l.rotateEvery, "last written longer ago than --tarpit.log.retention "+l.retention.String()+" less the rotation interval "+l.rotateEvery.String()
		}
		expires := newest.Add(keep)
		fl := l.firstOf(name, info)
		if name != base {
			firsts[name] = fl
		}
		if fl.known && fl.time.Add(l.retention).Before(expires) {
			expires, why = fl.time.Add(l.retention), "holds a line older than --tarpit.log.retention "+l.retention.String()
		}
		if !now.Before(expires) {
			remove(name, why)
			continue
		}
		due(expires)
		if name == base && fl.known && l.isHeld(info) {
			due(fl.time.Add(l.rotateEvery))
		}
		if dirErr == nil && info.Mode().Perm() != logMode {
			if err := chmodNoFollow(filepath.Join(l.fsDir, name), logMode); err != nil {
				l.logger.Warn("cannot restrict tarpit scanner log mode", "file", filepath.Join(l.dir, name), "err", l.named(err))
			}
		}
		total += info.Size()
		if name != base {
			rotated = append(rotated, kept{name, info})
		}
	}
	l.firsts = firsts
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

// scheduleSweep sets when run sweeps next: in d, when the next file falls
// due, and at most sweepEvery. Something due already was not deleted or
// rotated (an error, reported): tried again in a minute rather than in a
// loop; under a second, in a second, to bound the sweeps a busy directory
// makes.
func (l *scanLog) scheduleSweep(d time.Duration) {
	switch {
	case d <= 0:
		d = min(time.Minute, l.sweepEvery)
	case d < time.Second:
		d = min(time.Second, l.sweepEvery)
	}
	l.nextSweep = min(d, l.sweepEvery)
	l.swept = true
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
