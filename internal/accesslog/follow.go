package accesslog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"golang.org/x/sys/unix"
)

// defaultSettle is how long after a file event the follower reads: it bounds
// the reads to about one a second however the front writes (nginx without
// buffer= writes every request), at no cost to freshness that a scrape
// could notice: a line is counted at most defaultSettle (plus the read)
// after it is written. Each wake of an idle Go process costs tens of
// microseconds (mostly the runtime's sysmon spinning up again); at 200 ms,
// with the vault index's own window, the agent on bench/pop.sh woke about
// 155 times a second and used 1.5-1.6 times the CPU (docs/benchmarks.md).
const defaultSettle = time.Second

// FollowOptions configure a Follower.
type FollowOptions struct {
	Paths []string
	// FromStart reads files that exist at start-up from their beginning;
	// by default they are read from their end, so a restart does not count
	// old lines twice. A file that appears later is always read whole.
	FromStart bool
	// Poll is the fallback check for events fsnotify cannot give (a
	// directory that does not exist yet, some copytruncate races, network
	// file systems); default 1s. It is a stat per file, not a busy loop.
	Poll time.Duration
	// Grace is how long a rotated-away (renamed or deleted) file is still
	// read after it goes quiet, for writers that reopen late (nginx after
	// logrotate's postrotate, workers after USR1); default 30s.
	Grace time.Duration
	// Settle is how long after a file event the follower reads; default
	// 1s (defaultSettle).
	Settle time.Duration
	Logger *slog.Logger
}

// Follower follows access logs across rotation and feeds a Counter.
type Follower struct {
	counter *Counter
	opts    FollowOptions
	files   []*tailFile
	logger  *slog.Logger

	rotations atomic.Uint64
	following atomic.Int64
	bytesRead atomic.Uint64 // see BytesRead
	polls     atomic.Uint64 // see Polls
	started   chan struct{} // closed once the files present at start are opened
}

type tailFile struct {
	path         string
	cur          *openFile
	draining     []*openFile
	seen         bool      // a file has existed at path: a new one is a rotation
	missingSince time.Time // path missing while cur is open: when cur last gave data
	lastErr      string    // last logged error, to log each change once
}

// logFile is what the follower uses of an open log: *os.File (tests put
// one that fails in its place).
type logFile interface {
	io.ReaderAt
	io.Seeker
	io.Closer
	Stat() (os.FileInfo, error)
}

type openFile struct {
	f      logFile
	info   os.FileInfo
	offset int64 // of the next byte to read: f is read with pread, its own position is not used
	remain int64 // bytes Read may still return, to the size fstat gave (no read that finds nothing); <0: no limit
	// tail holds the last tailN bytes before offset (the ones read last): a
	// file truncated and refilled past offset between two reads (see
	// sameTail) no longer has them there.
	tail  [tailBytes]byte
	tailN int
	// skipNUL: the file was truncated under a writer that does not use
	// O_APPEND, which goes on writing at its old position and leaves a run
	// of NUL bytes (a hole, mostly) before its next line: dropped until
	// the first other byte.
	skipNUL bool
	stream  *Stream
	idle    time.Time // draining: when it last gave data
}

// tailBytes is the size of openFile's fingerprint of the bytes before the
// read position. The position is a line end, and a line's last bytes are
// often the same on every line (one browser's user agent, nginx's JSON
// format ending in the forwarded-for and user-agent fields): 64 bytes were
// all user agent, and a copytruncate'd file refilled with a line ending at
// the old position went unnoticed for good. 1 KiB holds a whole line of
// nearly every access log, and so its time and request, which the refilled
// file does not have at the same offset; only lines whose last 1 KiB are
// the same on every line stay exposed. One pread of 1 KiB costs what a
// stat does.
const tailBytes = 1024

// NewFollower validates opts. Run starts following.
func NewFollower(c *Counter, opts FollowOptions) (*Follower, error) {
	if c == nil {
		return nil, errors.New("accesslog: nil counter")
	}
	if opts.Settle <= 0 {
		opts.Settle = defaultSettle
	}
	if opts.Poll <= 0 {
		opts.Poll = time.Second
	}
	if opts.Grace <= 0 {
		opts.Grace = 30 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	fl := &Follower{counter: c, opts: opts, logger: opts.Logger, started: make(chan struct{})}
	seen := map[string]bool{}
	for _, p := range opts.Paths {
		if p == "" {
			return nil, errors.New("accesslog: empty path")
		}
		abs, err := filepath.Abs(p)
		if err != nil {
			return nil, err
		}
		if seen[abs] {
			continue // the same log twice would count its lines twice
		}
		seen[abs] = true
		fl.files = append(fl.files, &tailFile{path: abs})
	}
	return fl, nil
}

// Rotations counts files replaced (rename + create, delete + create) or
// truncated (copytruncate; also when refilled past the read position
// before the follower looked) under a followed path.
func (fl *Follower) Rotations() uint64 { return fl.rotations.Load() }

// BytesRead is the number of bytes read from the followed files so far
// (not what was skipped by starting at a file's end; a hole skipped after a
// truncation counts as read). Once it reaches the
// size of everything written, every complete line has been counted: tests
// wait for it instead of sleeping.
func (fl *Follower) BytesRead() uint64 { return fl.bytesRead.Load() }

// Polls is the number of finished poll passes; each has looked at every
// path and read every open file to its end. Two more passes than at some
// moment mean everything written before that moment has been read.
func (fl *Follower) Polls() uint64 { return fl.polls.Load() }

// Following is the number of followed paths with an open file.
func (fl *Follower) Following() int { return int(fl.following.Load()) }

// Run follows the files until ctx is done, then closes them.
func (fl *Follower) Run(ctx context.Context) {
	var events <-chan fsnotify.Event
	var errs <-chan error
	w, err := fsnotify.NewWatcher()
	if err != nil {
		fl.logger.Warn("access log: no file notifications, polling only", "poll", fl.opts.Poll, "err", err)
	} else {
		defer w.Close()
		events, errs = w.Events, w.Errors
	}
	watched := map[string]bool{}
	watchDirs := func() {
		if w == nil {
			return
		}
		for _, tf := range fl.files {
			dir := filepath.Dir(tf.path)
			if watched[dir] {
				continue
			}
			if err := w.Add(dir); err == nil {
				watched[dir] = true
			}
		}
	}
	watchDirs()
	for _, tf := range fl.files {
		fl.check(tf, true)
	}
	fl.updateFollowing()
	close(fl.started)
	defer fl.closeAll()

	ticker := time.NewTicker(fl.opts.Poll)
	defer ticker.Stop()
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	take := events
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-take:
			if !ok {
				events, take = nil, nil
				continue
			}
			// Read a little later, not at every write: a busy front writes
			// a line per request. Until then events are not taken, so the
			// kernel folds a file's further writes into one queued event
			// and nothing here wakes per line; then every file is checked
			// (a stat each: there are a few), and one read per file takes
			// the whole batch.
			take = nil
			settle.Reset(fl.opts.Settle)
		case <-settle.C:
			take = events
			for _, tf := range fl.files {
				fl.check(tf, false)
			}
			fl.readDraining(false)
			fl.updateFollowing()
		case err, ok := <-errs:
			if !ok {
				errs = nil
				continue
			}
			fl.logger.Warn("access log: file notification error; the poll continues", "err", err)
		case <-ticker.C:
			// This pass reads every file, so a settle window running
			// would only read again: it ends here.
			if take == nil && events != nil {
				settle.Stop()
				take = events
			}
			watchDirs()
			for _, tf := range fl.files {
				fl.check(tf, false)
			}
			fl.readDraining(true)
			fl.updateFollowing()
			fl.polls.Add(1)
		}
	}
}

func (fl *Follower) updateFollowing() {
	n := 0
	for _, tf := range fl.files {
		if tf.cur != nil {
			n++
		}
	}
	fl.following.Store(int64(n))
}

func (fl *Follower) logErr(tf *tailFile, msg string, err error) {
	s := msg + ": " + err.Error()
	if s == tf.lastErr {
		return
	}
	tf.lastErr = s
	fl.logger.Warn("access log: "+msg, "path", tf.path, "err", err)
}

// check looks at what the path names now and reads what is new.
func (fl *Follower) check(tf *tailFile, initial bool) {
	fi, err := os.Stat(tf.path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			fl.logErr(tf, "cannot stat", err)
		} else if initial {
			// A typo in --accesslog.path would otherwise leave the request
			// metrics at zero without a word.
			fl.logger.Warn("access log does not exist (yet); it is followed once it appears", "path", tf.path)
		}
		if tf.cur == nil {
			return
		}
		// Renamed or deleted: the open file is still readable (a writer
		// that has not reopened still appends to it); the new one, if any,
		// is not there yet. It is closed once quiet for the grace period.
		now := time.Now()
		if fl.read(tf, tf.cur) > 0 || tf.missingSince.IsZero() {
			tf.missingSince = now
		} else if now.Sub(tf.missingSince) > fl.opts.Grace {
			fl.closeFile(tf.cur)
			tf.cur = nil
			tf.missingSince = time.Time{}
			fl.updateFollowing()
		}
		return
	}
	tf.missingSince = time.Time{}
	if tf.cur != nil && os.SameFile(tf.cur.info, fi) {
		fl.read(tf, tf.cur)
		return
	}
	if tf.cur != nil {
		// Rotated by rename (or delete) + create: finish the old file,
		// keep it open a while for late writers, start the new one.
		old := tf.cur
		fl.read(tf, old)
		old.idle = time.Now()
		tf.draining = append(tf.draining, old)
		tf.cur = nil
	}
	fromEnd := initial && !fl.opts.FromStart
	of, err := fl.open(tf, fromEnd)
	if err != nil {
		fl.logErr(tf, "cannot open", err)
		return
	}
	tf.lastErr = ""
	if tf.seen && !initial {
		fl.rotations.Add(1)
	}
	tf.seen = true
	tf.cur = of
	// Open before the first line of it counts: a long backlog is read
	// here, and a scrape meanwhile must not see its lines counted from a
	// log said not to be open.
	fl.updateFollowing()
	fl.read(tf, of)
}

func (fl *Follower) open(tf *tailFile, fromEnd bool) (*openFile, error) {
	// O_NONBLOCK: opening a FIFO (or a device) put at the log's path
	// would otherwise block until a writer came, and with it the whole
	// follower, every other log included. Regular files ignore the flag;
	// anything else is refused below.
	f, err := os.OpenFile(tf.path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !info.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("not a regular file (%s)", info.Mode().Type())
	}
	of := &openFile{f: f, info: info, stream: fl.counter.NewStream()}
	if fromEnd {
		off, err := f.Seek(0, io.SeekEnd)
		if err != nil {
			f.Close()
			return nil, err
		}
		of.offset = off
		// The fingerprint of what was skipped, so a truncation before the
		// first read is noticed too.
		n := min(off, tailBytes)
		m, _ := f.ReadAt(of.tail[:n], off-n)
		if int64(m) == n {
			of.tailN = m
		}
	}
	return of, nil
}

// read counts what was appended to of since the last read, first noticing
// a truncation: the file is shorter than the read position (copytruncate,
// or a writer that truncates on open), or it was truncated and has grown
// back to the position or past it before this read (a busy front writes
// thousands of lines a second, and a read can come seconds after the
// truncation): the bytes before the position are no longer the ones read
// there. Either way the file is read again from its start. The check costs
// one pread of tailBytes per check of a file not shorter than the position.
//
// A file that cannot be stat'ed, or whose fingerprint cannot be read (an
// I/O error: a failing disk, a network file system's server away), is not
// read until it can be: read blind, a truncation would go unnoticed, and
// an error taken for a mismatch would read the whole file again once the
// error passed, counting every line of it twice.
func (fl *Follower) read(tf *tailFile, of *openFile) int64 {
	info, err := of.f.Stat()
	if err != nil {
		fl.logErr(tf, "cannot stat the open file", err)
		return 0
	}
	size := info.Size()
	truncated := size < of.offset
	if !truncated {
		same, err := of.sameTail()
		if err != nil {
			fl.logErr(tf, "read error", err)
			return 0
		}
		truncated = !same
	}
	start := of.offset
	if truncated {
		fl.rotations.Add(1)
		if of == tf.cur {
			fl.bytesRead.Add(uint64(fl.readCopy(tf, of)))
		}
		of.stream.Reset()
		of.offset, of.tailN, of.skipNUL = 0, 0, true
		start = 0
	}
	if size == of.offset {
		return 0
	}
	if of.skipNUL {
		of.skipHole(size) // the hole counts as read
	}
	// Read what fstat says is there and stop, instead of reading until a
	// read finds nothing: a syscall saved per check (what is appended
	// meanwhile is read at the next event).
	of.remain = size - of.offset
	_, err = of.stream.ReadFrom(of)
	n := of.offset - start
	fl.bytesRead.Add(uint64(n))
	if err != nil {
		fl.logErr(tf, "read error", err)
	}
	return n
}

// readCopy reads, from the copy logrotate's copytruncate made of the
// file before truncating it, what of had not read yet: the lines the
// front wrote since the follower's last read (up to a Settle or a Poll
// earlier: on a busy front, thousands) are only there now. The copy is a
// file next to the path whose name is the path's name followed by '.',
// '-' or '_' (access.log.1, dateext's access.log-20261203) and that holds
// the fingerprint of what was read (the bytes before the read position)
// at the same place, and more after it; a copy already gzipped (compress
// without delaycompress) does not, and its rest stays lost. What the
// front wrote between logrotate's copy and its truncate is in neither
// file: the copy ends before the read position if the follower read it,
// and nothing is read twice. It returns the bytes read from the copy,
// which were the file's; a directory read once per truncation.
func (fl *Follower) readCopy(tf *tailFile, of *openFile) int64 {
	if of.offset == 0 || of.tailN == 0 {
		return 0 // nothing read: no fingerprint to find the copy by
	}
	dir, base := filepath.Split(tf.path)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	var cp *openFile
	cpName := ""
	for _, e := range entries {
		name := e.Name()
		if len(name) <= len(base) || name[:len(base)] != base || !e.Type().IsRegular() {
			continue
		}
		if c := name[len(base)]; c != '.' && c != '-' && c != '_' {
			continue
		}
		info, err := e.Info()
		if err != nil || info.Size() <= of.offset || os.SameFile(info, of.info) {
			continue
		}
		if cp != nil && !info.ModTime().After(cp.info.ModTime()) {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, name), os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			continue
		}
		c := &openFile{f: f, info: info, offset: of.offset, tail: of.tail, tailN: of.tailN}
		if same, err := c.sameTail(); err != nil || !same || !sameFileInfo(f, info) {
			f.Close()
			continue
		}
		if cp != nil {
			cp.f.Close()
		}
		cp, cpName = c, name
	}
	if cp == nil {
		return 0
	}
	defer cp.f.Close()
	cp.remain = cp.info.Size() - cp.offset
	cp.stream = of.stream // the line the follower was in continues there
	if _, err := cp.stream.ReadFrom(cp); err != nil {
		fl.logErr(tf, "read error in the rotated copy", err)
	}
	fl.logger.Debug("access log: copytruncate: read the rest from the copy", "path", tf.path, "copy", cpName, "bytes", cp.offset-of.offset)
	return cp.offset - of.offset
}

// sameFileInfo says whether f is still the file info was stat'ed from (not
// replaced between the directory read and the open).
func sameFileInfo(f *os.File, info os.FileInfo) bool {
	fi, err := f.Stat()
	return err == nil && os.SameFile(fi, info)
}

// sameTail says whether the bytes before the read position are still the
// ones read there. Appends never change them. A NUL byte read there is no
// mark: it was a part of the file not written yet when read (a network
// file system can show a writer's later bytes before its earlier ones),
// which the writer fills in later; taken for a truncation, it would count
// the whole file again. The error is that of a read that failed (not one
// that found the file shorter: a truncation).
func (of *openFile) sameTail() (bool, error) {
	if of.tailN == 0 {
		return true, nil
	}
	var buf [tailBytes]byte
	n, err := of.f.ReadAt(buf[:of.tailN], of.offset-int64(of.tailN))
	if n < of.tailN {
		if err == nil || err == io.EOF {
			return false, nil
		}
		return false, err
	}
	if bytes.Equal(buf[:n], of.tail[:n]) {
		return true, nil
	}
	for i, b := range of.tail[:n] {
		if b != 0 && buf[i] != b {
			return false, nil
		}
	}
	copy(of.tail[:n], buf[:n]) // what was filled in is the fingerprint now
	return true, nil
}

// skipHole moves the read position past a hole at it, where a writer
// without O_APPEND left one after a truncation (a sparse file: it is not
// read byte by byte). A file system that cannot tell says the data starts
// where asked; the NUL bytes are then dropped as they are read.
func (of *openFile) skipHole(size int64) {
	if d, err := of.f.Seek(of.offset, unix.SEEK_DATA); err == nil && d > of.offset && d <= size {
		of.offset = d
	}
}

// Read is io.Reader for Stream.ReadFrom: it reads from the read position
// (up to remain), keeps the fingerprint of what it read, and drops the NUL
// bytes a truncation under a writer without O_APPEND left.
func (of *openFile) Read(p []byte) (int, error) {
	for {
		if of.remain == 0 {
			return 0, io.EOF
		}
		if of.remain > 0 && int64(len(p)) > of.remain {
			p = p[:of.remain]
		}
		n, err := of.f.ReadAt(p, of.offset)
		of.offset += int64(n)
		if of.remain > 0 {
			of.remain -= int64(n)
		}
		of.noteTail(p[:n])
		if !of.skipNUL || n == 0 {
			return n, err
		}
		k := 0
		for k < n && p[k] == 0 {
			k++
		}
		if k < n {
			of.skipNUL = false
			return copy(p, p[k:n]), err
		}
		if err != nil {
			return 0, err
		}
	}
}

// noteTail keeps the last tailBytes of what was read.
func (of *openFile) noteTail(b []byte) {
	if len(b) >= tailBytes {
		copy(of.tail[:], b[len(b)-tailBytes:])
		of.tailN = tailBytes
		return
	}
	keep := min(of.tailN, tailBytes-len(b))
	copy(of.tail[:keep], of.tail[of.tailN-keep:of.tailN])
	copy(of.tail[keep:], b)
	of.tailN = keep + len(b)
}

// readDraining reads rotated-away files; on the poll it closes those quiet
// for the grace period.
func (fl *Follower) readDraining(expire bool) {
	now := time.Now()
	for _, tf := range fl.files {
		kept := tf.draining[:0]
		for _, of := range tf.draining {
			if fl.read(tf, of) > 0 {
				of.idle = now
			}
			if expire && now.Sub(of.idle) > fl.opts.Grace {
				fl.closeFile(of)
				continue
			}
			kept = append(kept, of)
		}
		clear(tf.draining[len(kept):])
		tf.draining = kept
	}
}

func (fl *Follower) closeFile(of *openFile) {
	of.stream.Discard()
	of.f.Close()
}

func (fl *Follower) closeAll() {
	for _, tf := range fl.files {
		if tf.cur != nil {
			tf.cur.f.Close()
			tf.cur = nil
		}
		for _, of := range tf.draining {
			of.f.Close()
		}
		tf.draining = nil
	}
	fl.following.Store(0)
}
