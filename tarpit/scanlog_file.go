package tarpit

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// The scanner log's current file: opening, checking, rotating, and what
// the writer reports when it cannot write.

// logFile is the current file as the writer holds it.
type logFile struct {
	f          *os.File // nil when closed: the next line reopens the path
	dev, ino   uint64   // what the path must still name for f to be written
	size       int64
	first      time.Time // its first line's time, while size > 0
	firstKnown bool      // false for a file found non-empty whose lines' times could not be read
	midLine    bool      // it does not end with a newline: the next line starts with one, not merged into the broken one
}

// dirError: the log directory is no longer safe (or no longer to be seen).
type dirError struct {
	mode os.FileMode
	err  error
}

func (e *dirError) Error() string { return e.err.Error() }

// fileError: what is at the log path is not to be written to.
type fileError struct{ err error }

func (e *fileError) Error() string { return e.err.Error() }

// statDir looks at the held directory, or at it by name without /proc.
func (l *scanLog) statDir(st *unix.Stat_t) error {
	if l.dirFD >= 0 {
		if err := unix.Fstat(l.dirFD, st); err != nil {
			return &os.PathError{Op: "fstat", Path: l.dir, Err: err}
		}
		return nil
	}
	if err := unix.Stat(l.dir, st); err != nil {
		return &os.PathError{Op: "stat", Path: l.dir, Err: err}
	}
	return nil
}

// checkDir applies the start-up rule to the directory again: an operator
// may chmod it group- or world-writable, or chown it, while we run, and
// then others could replace the log with a file of theirs (which a
// rotation or reopening would write scanner addresses to) or a symlink.
// One fstat, before every line, sweep, rotation and reopening.
func (l *scanLog) checkDir() error {
	var st unix.Stat_t
	if err := l.statDir(&st); err != nil {
		return &dirError{err: err}
	}
	mode := os.FileMode(st.Mode & 0o7777)
	switch {
	case st.Dev != l.dirDev || st.Ino != l.dirIno:
		return &dirError{mode, fmt.Errorf("directory %s is no longer the one checked at start-up", l.dir)}
	case st.Uid != l.dirUID:
		return &dirError{mode, fmt.Errorf("directory %s is now owned by uid %d, not %d as at start-up", l.dir, st.Uid, l.dirUID)}
	}
	if err := checkDirStat(l.dir, &st, true, false); err != nil {
		return &dirError{mode, err}
	}
	return nil
}

// checkLogFile refuses, besides a link or anything not a regular file, a
// log file this process's user does not own (its owner could read the
// addresses, and a replaced file is how another user would get them) or
// with another name (a hard link, or none: deleted under us).
func checkLogFile(path string, st *unix.Stat_t) error {
	euid := uint32(os.Geteuid())
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFLNK:
		return &fileError{fmt.Errorf("%s is a symbolic link; refusing to write through it", path)}
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		return &fileError{fmt.Errorf("%s is not a regular file; refusing to write to it", path)}
	case st.Uid != euid:
		return &fileError{fmt.Errorf("%s is owned by uid %d, not this process's user (%d); refusing to write to it", path, st.Uid, euid)}
	case st.Nlink != 1:
		return &fileError{fmt.Errorf("%s has %d hard links, not 1; refusing to write to it", path, st.Nlink)}
	}
	return nil
}

// openFile opens the log path for appending, making it mode 0600 when it
// is not there, without following a symlink in its place, after checking
// the directory; it reads where the file starts and how it ends.
func (l *scanLog) openFile() error {
	if err := l.checkDir(); err != nil {
		return err
	}
	// O_NONBLOCK: a FIFO put at the path must not hang the open; cleared
	// once the file is known to be regular. O_RDWR: to read its first line.
	fd, err := unix.Open(l.fsPath, unix.O_RDWR|unix.O_CREAT|unix.O_APPEND|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, uint32(logMode))
	if err == unix.ELOOP {
		return &fileError{fmt.Errorf("%s is a symbolic link; refusing to write through it", l.path)}
	}
	var st unix.Stat_t
	if err == unix.ENXIO && unix.Lstat(l.fsPath, &st) == nil { // a FIFO without a reader, a socket
		return &fileError{fmt.Errorf("%s is not a regular file; refusing to write to it", l.path)}
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: l.path, Err: err}
	}
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "fstat", Path: l.path, Err: err}
	}
	if err := checkLogFile(l.path, &st); err != nil {
		unix.Close(fd)
		return err
	}
	if os.FileMode(st.Mode&0o777) != logMode {
		if err := unix.Fchmod(fd, uint32(logMode)); err != nil {
			unix.Close(fd)
			return &os.PathError{Op: "fchmod", Path: l.path, Err: err}
		}
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "fcntl", Path: l.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), l.fsPath)
	l.cur = logFile{f: f, dev: st.Dev, ino: st.Ino, size: st.Size}
	if st.Size > 0 {
		// After a restart: the age of the lines already there.
		l.cur.first, l.cur.firstKnown = firstLineTime(io.NewSectionReader(f, 0, st.Size))
		var last [1]byte
		if _, err := f.ReadAt(last[:], st.Size-1); err != nil || last[0] != '\n' {
			l.cur.midLine = true // a line cut by a crash or a full disk
		}
	}
	return nil
}

func (l *scanLog) closeFile() {
	if l.cur.f != nil {
		l.cur.f.Close()
	}
	l.cur = logFile{}
}

// ensureFile checks, before each write, that the directory is still safe
// and that the log path still names the file held open, a regular file of
// ours with one link; it reopens the path when the file was deleted or
// renamed (logrotate, an operator's rm: else every later line would go to
// a file no name leads to) or replaced. An fstat and an lstat a line: the
// log takes two lines per trapped connection.
func (l *scanLog) ensureFile() error {
	if err := l.checkDir(); err != nil {
		l.closeFile()
		return err
	}
	var st unix.Stat_t
	err := unix.Lstat(l.fsPath, &st)
	switch {
	case err == unix.ENOENT:
		l.closeFile()
		return l.openFile()
	case err != nil:
		return &os.PathError{Op: "lstat", Path: l.path, Err: err}
	}
	if err := checkLogFile(l.path, &st); err != nil {
		l.closeFile()
		return err
	}
	if l.cur.f != nil && (st.Dev != l.cur.dev || st.Ino != l.cur.ino) {
		l.closeFile()
	}
	if l.cur.f == nil {
		return l.openFile()
	}
	return nil
}

// heldAtPath tells whether the log path still names the file held open.
func (l *scanLog) heldAtPath() (bool, error) {
	var st unix.Stat_t
	if err := unix.Lstat(l.fsPath, &st); err != nil {
		return false, err
	}
	return st.Mode&unix.S_IFMT == unix.S_IFREG && st.Dev == l.cur.dev && st.Ino == l.cur.ino, nil
}

// isHeld tells whether info (an lstat) is of the file held open.
func (l *scanLog) isHeld(info os.FileInfo) bool {
	st, ok := info.Sys().(*syscall.Stat_t)
	return ok && l.cur.f != nil && st.Dev == l.cur.dev && st.Ino == l.cur.ino
}

// rotate renames the current file to tarpit-<now>.log and opens a new one.
// The caller has checked that the path names the held file; the directory
// is checked here, since only its being ours makes renaming and creating
// by name safe.
func (l *scanLog) rotate(now time.Time) error {
	if err := l.checkDir(); err != nil {
		l.closeFile()
		return err
	}
	backup, err := l.backupPath(now)
	if err != nil {
		return err
	}
	if err := unix.Rename(l.fsPath, backup); err != nil {
		return &os.PathError{Op: "rename", Path: l.path, Err: err}
	}
	l.closeFile()
	return l.openFile()
}

// backupPath is a free rotated name for now: two rotations in one
// millisecond (a restart) must not make the second overwrite the first.
func (l *scanLog) backupPath(now time.Time) (string, error) {
	base := filepath.Base(l.path)
	ext := filepath.Ext(base)
	prefix := base[:len(base)-len(ext)] + "-"
	for range 1000 {
		p := filepath.Join(l.fsDir, prefix+now.UTC().Format(backupTimeFormat)+ext)
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err == unix.ENOENT {
			return p, nil
		}
		now = now.Add(time.Millisecond)
	}
	return "", fmt.Errorf("no free name to rotate %s to", l.path)
}

// undo takes back the n bytes a failed write left (a full disk writes what
// fits): a partial record merged with the next one would be neither line.
// When that fails the file is left mid-line, and the next line starts on a
// line of its own.
func (l *scanLog) undo(n int) {
	if n <= 0 {
		return
	}
	if info, err := l.cur.f.Stat(); err == nil && info.Size() >= int64(n) {
		// O_APPEND: our n bytes are the file's last.
		if err := l.cur.f.Truncate(info.Size() - int64(n)); err == nil {
			l.cur.size = info.Size() - int64(n)
			return
		}
	}
	l.cur.size += int64(n)
	l.cur.midLine = true
}

// firstLine is a file's first line's time, as the sweep read it.
type firstLine struct {
	ino, size uint64
	mtime     time.Time
	time      time.Time
	known     bool
}

// firstOf is the first line's time of the log file name (info: its lstat):
// kept in memory for the current file while it is held; read, once per
// rotated file (they do not change), otherwise.
func (l *scanLog) firstOf(name string, info os.FileInfo) firstLine {
	if name == filepath.Base(l.path) && l.isHeld(info) {
		return firstLine{time: l.cur.first, known: l.cur.firstKnown && l.cur.size > 0}
	}
	st, _ := info.Sys().(*syscall.Stat_t)
	if st == nil {
		return firstLine{}
	}
	if fl, ok := l.firsts[name]; ok && fl.ino == st.Ino && fl.size == uint64(st.Size) && fl.mtime.Equal(info.ModTime()) {
		return fl
	}
	fl := firstLine{ino: st.Ino, size: uint64(st.Size), mtime: info.ModTime()}
	var err error
	fl.time, fl.known, err = l.readFirst(filepath.Join(l.fsDir, name))
	if err != nil {
		// Not read (EMFILE while scanners flood the tarpit, ...): no
		// answer, and none kept, so the next sweep reads it again; the
		// file ages by its mtime meanwhile. A cached miss would lose its
		// first-line rule for good, since rotated files do not change.
		return firstLine{}
	}
	return fl
}

// readFirstLineTime opens path without following a link (and without
// hanging on a FIFO), and reads its first line's time, through gzip for a
// .gz file. ok is false for a file read without a timed line (or that is
// no regular file); err is set when it could not be read.
func readFirstLineTime(path string) (t time.Time, ok bool, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return time.Time{}, false, err
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return time.Time{}, false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return time.Time{}, false, nil
	}
	var r io.Reader = f
	if filepath.Ext(path) == ".gz" {
		z, err := gzip.NewReader(f)
		if err != nil {
			return time.Time{}, false, err
		}
		r = z
	}
	t, ok = firstLineTime(r)
	return t, ok, nil
}

// firstLineScan bounds how much of a file is read for its first line's
// time: lines are under 1 KB; a few broken ones (a crash) are skipped.
const firstLineScan = 8 << 10

// firstLineTime is the time of the first line in r that has one.
func firstLineTime(r io.Reader) (time.Time, bool) {
	b, _ := io.ReadAll(io.LimitReader(r, firstLineScan))
	for len(b) > 0 {
		var line []byte
		line, b, _ = bytes.Cut(b, []byte{'\n'})
		var v struct {
			Time string `json:"time"`
		}
		if json.Unmarshal(line, &v) != nil {
			continue
		}
		if t, err := time.Parse(time.RFC3339Nano, v.Time); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// troubleKind is why lines are not being written; each is reported once,
// when it begins, and its end once: a full disk must not log a warning a
// line.
type troubleKind int

const (
	troubleNone  troubleKind = iota
	troubleDir               // the directory is no longer safe
	troubleFile              // what is at the path is refused
	troubleWrite             // opening, rotating or writing fails
)

func kindOf(err error) troubleKind {
	var de *dirError
	var fe *fileError
	switch {
	case errors.As(err, &de):
		return troubleDir
	case errors.As(err, &fe):
		return troubleFile
	}
	return troubleWrite
}

// drop counts a line not written because of err, and reports err if it is
// a new kind of trouble.
func (l *scanLog) drop(err error) {
	l.dropped.Add(1)
	l.lost++
	l.report(err)
}

// report logs err once per kind of trouble. No message holds an address:
// errors name files and directories only.
func (l *scanLog) report(err error) {
	k := kindOf(err)
	if k == l.trouble {
		return
	}
	l.trouble = k
	switch k {
	case troubleDir:
		var de *dirError
		errors.As(err, &de)
		l.logger.Error("not writing the tarpit scanner log: its directory is no longer safe; lines are dropped (clavis_tarpit_log_dropped_total) until it is", "dir", l.dir, "mode", fmt.Sprintf("%04o", uint32(de.mode)), "err", l.named(err))
	case troubleFile:
		l.logger.Warn("not writing the tarpit scanner log; lines are dropped until it is fixed", "file", l.path, "err", l.named(err))
	default:
		l.logger.Warn("cannot write tarpit scanner log; lines are dropped until it can", "file", l.path, "err", l.named(err))
	}
}

// wrote ends the trouble, if any, once a line is written again.
func (l *scanLog) wrote() {
	if l.trouble == troubleNone {
		return
	}
	l.logger.Info("writing the tarpit scanner log again", "file", l.path, "dropped", l.lost)
	l.trouble, l.lost = troubleNone, 0
}
