// Package vaultindex keeps the number and total size of the vault files in
// one directory current without listing it on every scrape: one full scan
// in the background, then inotify events (create, delete, rename, write,
// attribute change) re-check just the names they concern, gathered over a
// short settle window so a burst costs one look per name, and a periodic
// full rescan corrects any drift. Readers take the latest Snapshot, which
// costs the same whatever the number of files.
//
// The index keeps no file names: a vault file is known by a keyed 128-bit
// hash of its name (names can be vault identifiers), mapped to its size.
// Names pass through only while an event is being handled. No error or log
// line carries a name; they name the directory, which is configuration.
//
// Hard links count once per name, each with the file's full size: a vault
// hard-linked under two matching names is two vaults and twice its bytes,
// in a scan and from events alike (bench/vault.sh relies on this: its
// millions of "vaults" are hard links of one empty file). Deduplicating by
// (device, inode) would cost every vault an inode number in memory or miss
// links made under a name indexed before (link(2) reports only the new
// name). One known drift: a write through one name is reported by inotify
// for that name only, so the other names of the inode keep their old size
// (clavis_vault_storage_bytes off by the difference, the count still
// exact) until the next full rescan.
package vaultindex

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/prometheus/procfs"
	"golang.org/x/sys/unix"
)

// key identifies a vault file by two independently seeded 64-bit hashes of
// its name: at 10,000,000 files the chance that two names collide is about
// 1.5e-25, so the count is exact in practice while the index holds no name
// and no pointer for the garbage collector to scan.
type key [2]uint64

// Config says what to index and how often to check it.
type Config struct {
	Dir    string
	Filter Filter
	// Rescan is the interval between two full scans while inotify keeps the
	// count current (they correct any drift), from the end of one to the
	// start of the next. Default 1h.
	Rescan time.Duration
	// Poll is the interval between full scans (end to start) when inotify
	// is unavailable (watch or instance limit reached). Default 1m.
	Poll time.Duration
	// Check is how often the directory's identity is verified (removed,
	// replaced, mounted over, its file system unmounted). Default 5s.
	Check time.Duration
	// Retry is the wait before looking again at a directory that failed.
	// Default 2s.
	Retry time.Duration
	// Settle is how long changes gather after the first event of a burst
	// before the names they concern are re-checked: one lstat per name and
	// one snapshot per window, however many events (a vault written in
	// several steps is a create and a few writes). A live count is at most
	// Settle (plus the time to lstat the window's names) behind the
	// directory. Default 1s (fewer wakes; see newWatcher); negative
	// re-checks at once.
	Settle time.Duration
	// OnScanStart, if set, is called in the scan's goroutine before each
	// full scan lists the directory (tests hold it to play a cold scan of a
	// huge directory; it must return once ctx is done).
	OnScanStart func(ctx context.Context)
	Logger      *slog.Logger
	Now         func() time.Time
}

// Snapshot is the index's latest result. It is never modified once
// published.
type Snapshot struct {
	// Ready is true once a full scan of the directory (as it is now) has
	// completed; Count and Bytes are meaningless before.
	Ready bool
	Count int64
	Bytes int64
	// Err is why the directory cannot be indexed right now (missing, not a
	// directory, unreadable, its file system unmounted). It names the
	// directory, never an entry.
	Err error
	// Watching is true while inotify keeps the count current between scans.
	Watching bool
	// Live is true when the count reflects every change reported so far:
	// Ready, Watching and no rescan pending after an event queue overflow.
	// Otherwise the count is as of AsOf.
	Live bool
	AsOf time.Time
	// Scans counts completed full scans; LastScanEnd and LastScanDuration
	// describe the latest.
	Scans            uint64
	LastScanEnd      time.Time
	LastScanDuration time.Duration
	// Overflows counts inotify queue overflows (each schedules a rescan).
	Overflows uint64
}

// Index is a background index of one vault directory. Run it with Run; read
// it with Snapshot from any goroutine.
type Index struct {
	cfg   Config
	seeds [2]maphash.Seed
	snap  atomic.Pointer[Snapshot]

	// newWatcher makes the watcher (an unbuffered one, see newWatcher);
	// tests replace it to reach the instance limit.
	newWatcher func() (*fsnotify.Watcher, error)
	// beforeEvent, if set (tests), is called before each event is taken
	// from the watcher: blocking in it lets the kernel's queue overflow.
	beforeEvent func()
	// afterRestart, if set (tests), is called when a session has ended
	// because the directory changed, before the next one starts.
	afterRestart func()
	// beforeCheck, if set (tests), is called before each identity check:
	// blocking in it plays a stat that hangs.
	beforeCheck func()
	// maxPending is maxPending; tests make it small.
	maxPending int
	// rechecked counts names looked at again after events (tests).
	rechecked atomic.Uint64
	// beat is when (Config.Now, Unix ns) the session last came round its
	// loop, and beatMono the same on the monotonic clock (ns since born),
	// which a step of the wall clock does not move; see Snapshot.
	beat, beatMono atomic.Int64
	born           time.Time
	hung           atomic.Bool // reported stuck (Snapshot), not come round since
}

// New returns an index of cfg.Dir; nothing happens until Run.
func New(cfg Config) *Index {
	cfg.Dir = filepath.Clean(cfg.Dir)
	if cfg.Rescan <= 0 {
		cfg.Rescan = time.Hour
	}
	if cfg.Poll <= 0 {
		cfg.Poll = time.Minute
	}
	if cfg.Check <= 0 {
		cfg.Check = 5 * time.Second
	}
	if cfg.Retry <= 0 {
		cfg.Retry = 2 * time.Second
	}
	if cfg.Settle == 0 {
		cfg.Settle = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	x := &Index{cfg: cfg, seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, newWatcher: newWatcher, born: time.Now(), maxPending: maxPending}
	x.snap.Store(&Snapshot{})
	return x
}

// Snapshot returns the latest published result.
//
// The session comes round its loop at least every Check. One that has not
// for hungAfter checks is stuck in a look at the directory (a stat on a
// dead network mount never returns): it follows no change, and its last
// count is returned not live, as of its last round, instead of passing for
// live at age 0 for as long as the hang lasts.
func (x *Index) Snapshot() *Snapshot {
	s := x.snap.Load()
	if !s.Live {
		return s
	}
	since := time.Duration(int64(time.Since(x.born)) - x.beatMono.Load())
	if since <= hungAfter*x.cfg.Check {
		return s
	}
	if x.hung.CompareAndSwap(false, true) {
		x.cfg.Logger.Warn("the vault index has not come round for a while, stuck in a look at the directory (a hung file system?); the count is not live",
			"dir", x.cfg.Dir, "for", since.Round(time.Second))
	}
	stale := *s
	stale.Live, stale.AsOf = false, time.Unix(0, x.beat.Load())
	return &stale
}

// hungAfter is how many Check intervals the session may go without coming
// round its loop before its count stops passing for live.
const hungAfter = 3

func (x *Index) hash(name string) key {
	return key{maphash.String(x.seeds[0], name), maphash.String(x.seeds[1], name)}
}

// errRestart ends a session without an error to report: the directory was
// replaced or its watch dropped, and a new session picks it up at once.
var errRestart = errors.New("vault data directory changed; indexing it again")

// ErrUnmounted is reported when the directory was a mount point when the
// index started and is not any more (its file system is gone): the empty
// directory underneath is not the vault store and is not counted.
var ErrUnmounted = errors.New("the vault data directory was a mount point and its file system is no longer mounted")

// Run indexes the directory until ctx is done. A directory that cannot be
// indexed is reported in the snapshot's Err and looked at again every
// Retry until it can.
func (x *Index) Run(ctx context.Context) {
	st := &state{}
	var lastErr string
	for {
		err := x.session(ctx, st)
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, errRestart) {
			x.cfg.Logger.Info("vault data directory changed; scanning it again", "dir", x.cfg.Dir)
			// Until the new directory's first scan ends, the count is the
			// old directory's: not live any more, and aging from now
			// (clavis_vault_index_live 0, clavis_vault_result_age_seconds).
			if prev := x.snap.Load(); prev != nil && prev.Ready && prev.Err == nil {
				stale := *prev
				if stale.Live {
					stale.AsOf = x.cfg.Now()
				}
				stale.Live, stale.Watching = false, false
				x.snap.Store(&stale)
			}
			if x.afterRestart != nil {
				x.afterRestart()
			}
			continue
		}
		if !st.failing || err.Error() != lastErr {
			x.cfg.Logger.Error("vault index unavailable; retrying", "dir", x.cfg.Dir, "err", err, "retry", x.cfg.Retry)
		}
		st.failing, lastErr = true, err.Error()
		x.snap.Store(&Snapshot{Err: err, Scans: st.scans, LastScanEnd: st.lastScanEnd,
			LastScanDuration: st.lastScanTook, Overflows: st.overflows})
		select {
		case <-ctx.Done():
			return
		case <-time.After(x.cfg.Retry):
		}
	}
}

// state is what survives from one session to the next.
type state struct {
	mountPoint    bool // the directory was a mount point at the first session
	sawFirst      bool
	overflows     uint64
	scans         uint64
	lastScanEnd   time.Time
	lastScanTook  time.Duration
	limitReported bool
	failing       bool  // the last session ended in an error
	linked        dirID // the directory last seen with a link count above 0
}

// dirID is what identifies the directory under its path.
type dirID struct{ dev, ino uint64 }

func statID(path string) (dirID, error) {
	id, _, err := statDir(path)
	return id, err
}

func statDir(path string) (dirID, uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return dirID{}, 0, &os.PathError{Op: "stat vault data directory", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return dirID{}, 0, &os.PathError{Op: "open vault data directory", Path: path, Err: syscall.ENOTDIR}
	}
	return dirID{uint64(st.Dev), uint64(st.Ino)}, uint64(st.Nlink), nil
}

// statDataDir identifies the data directory and fails it if it has been
// removed yet is still reached under its path: a bind mount (a
// container's volume) of a directory the host removed stays empty while
// the vault service writes to the one that replaced it, and no event says
// so. Removed is a link count of 0, once the same directory (a removed
// directory keeps its device and inode) has shown a link count above 0:
// some FUSE file systems leave st_nlink 0 throughout.
func (st *state) statDataDir(path string) (dirID, error) {
	id, nlink, err := statDir(path)
	switch {
	case err != nil:
		return id, err
	case nlink > 0:
		st.linked = id
	case st.linked == id:
		return dirID{}, &os.PathError{Op: "stat vault data directory (removed; a bind mount of a deleted directory?)", Path: path, Err: syscall.ENOENT}
	}
	return id, nil
}

// isMountPoint: the directory's device differs from its parent's, or,
// for a bind mount of the parent's own file system (same device), the
// mount table lists it. Looked at once a session, not per scrape.
//
// The parent is the resolved directory's: for a data directory reached
// through a symlink (vaults -> /srv/disk/vaults) the symlink's own parent
// is another directory, often on another file system, and comparing with
// it took a plain sub-directory of a mounted disk for a mount point; once
// the symlink was pointed at a directory on the parent's file system, the
// index reported ErrUnmounted for ever.
func isMountPoint(dir string, id dirID) bool {
	resolved, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return false
	}
	parent, err := statID(filepath.Dir(resolved))
	if err == nil && parent.dev != id.dev {
		return true
	}
	mounts, err := procfs.GetMounts()
	if err != nil {
		return false
	}
	for _, m := range mounts {
		if unescapeMountPoint(m.MountPoint) == resolved && !selfBind(m, mounts) {
			return true
		}
	}
	return false
}

// selfBind reports whether m is a bind mount of the very directory it is
// mounted on (systemd's ReadOnlyPaths= makes one of the data directory):
// it hides nothing, and gone, it leaves the same directory, not an empty
// one. Taken for a vault volume, the directory removed and made again on
// the host, which detaches the unit's bind mount, was ErrUnmounted for ever.
func selfBind(m *procfs.MountInfo, mounts []*procfs.MountInfo) bool {
	for _, p := range mounts {
		if p.MountID != m.ParentID {
			continue
		}
		if p.MajorMinorVer != m.MajorMinorVer {
			return false
		}
		pm := unescapeMountPoint(p.MountPoint)
		rel, ok := strings.CutPrefix(unescapeMountPoint(m.MountPoint), pm)
		if !ok || (pm != "/" && rel != "" && rel[0] != '/') {
			return false
		}
		return unescapeMountPoint(m.Root) == path.Join(unescapeMountPoint(p.Root), rel)
	}
	return false
}

// unescapeMountPoint undoes the kernel's octal escapes in a mount point of
// /proc/self/mountinfo (space \040, tab \011, newline \012, backslash
// \134), which procfs leaves in place.
func unescapeMountPoint(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) && isOctal(s[i+1]) && isOctal(s[i+2]) && isOctal(s[i+3]) {
			b.WriteByte((s[i+1]-'0')<<6 | (s[i+2]-'0')<<3 | (s[i+3] - '0'))
			i += 3
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func isOctal(c byte) bool { return c >= '0' && c <= '7' }

// limitToRaise names the limit behind a watchLimit error: inotify_init1
// fails with EMFILE at the instance limit (or the process's open-file
// limit, the same errno), inotify_add_watch with ENOSPC at the watch limit.
func limitToRaise(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "fs.inotify.max_user_watches"
	case errors.Is(err, syscall.EMFILE):
		return "fs.inotify.max_user_instances (or the open-file limit, LimitNOFILE)"
	default:
		return "the system's open-file limit (fs.file-max)"
	}
}

// watchLimit reports whether err is inotify's instance or watch limit.
func watchLimit(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.ENFILE)
}

// session indexes the directory from one full scan on, for as long as it
// stays the same directory. It holds no descriptor of the directory between
// two looks at it (a scan, a batch of events), so it never keeps the vault
// file system from being unmounted.
func (x *Index) session(ctx context.Context, st *state) error {
	dir := x.cfg.Dir
	id, err := st.statDataDir(dir)
	if err != nil {
		return err
	}
	mp := isMountPoint(dir, id)
	if !st.sawFirst {
		st.sawFirst, st.mountPoint = true, mp
	} else if mp {
		st.mountPoint = true // mounted after start-up: its unmount is noticed too
	} else if st.mountPoint {
		return fmt.Errorf("%s: %w", dir, ErrUnmounted)
	}

	// Watch before the first listing, so no change falls between the two.
	var events <-chan fsnotify.Event
	var errs <-chan error
	watching := false
	var w *fsnotify.Watcher
	werr := errFsnotifyDebug
	if !fsnotifyDebug() {
		w, werr = x.newWatcher()
	}
	if werr == nil {
		werr = w.Add(dir) // create, write, remove, rename, chmod (attributes)
		if werr != nil {
			w.Close()
		}
	}
	switch {
	case werr == nil:
		defer w.Close()
		events, errs, watching = w.Events, w.Errors, true
		st.limitReported = false
	case errors.Is(werr, errFsnotifyDebug):
		if !st.limitReported {
			x.cfg.Logger.Warn("inotify not used: the vault count is refreshed by a full scan every poll interval instead of live",
				"dir", dir, "why", werr.Error(), "poll", x.cfg.Poll)
			st.limitReported = true
		}
	case watchLimit(werr):
		if !st.limitReported {
			x.cfg.Logger.Warn("inotify limit reached: the vault count is refreshed by a full scan every poll interval instead of live",
				"dir", dir, "err", werr, "raise", limitToRaise(werr), "poll", x.cfg.Poll)
			st.limitReported = true
		}
	default:
		return &os.PathError{Op: "watch vault data directory", Path: dir, Err: werr}
	}

	s := &session{x: x, st: st, ctx: ctx, id: id, watching: watching,
		pending: map[string]struct{}{}, batch: map[string]struct{}{}}
	s.startScan()
	defer s.stopScan()

	check := time.NewTicker(x.cfg.Check)
	defer check.Stop()
	interval := x.cfg.Rescan
	if !watching {
		interval = x.cfg.Poll
	}
	rescan := time.NewTimer(interval)
	defer rescan.Stop()

	// While a settle window runs, events wait in the kernel's queue (take
	// is nil, and fsnotify's reader blocks on its unbuffered channel): no
	// goroutine is woken per event, and the window's events are read in
	// one go when it ends. After a window of maxBatch names or more the
	// index re-checks without settling, as it did before windows existed,
	// until a quieter window: at that rate a window could fill the
	// kernel's queue (fs.inotify.max_queued_events, 16,384 by default) and
	// cost a full rescan. Only a burst of more events than that within the
	// first window of a quiet directory (a restore of thousands of vaults
	// in a second) does: the count is then right after one rescan.
	settle := time.NewTimer(time.Hour)
	settle.Stop()
	defer settle.Stop()
	take := events
	busy := false

	for {
		x.beat.Store(x.cfg.Now().UnixNano())
		x.beatMono.Store(int64(time.Since(x.born)))
		if x.hung.Load() && x.hung.CompareAndSwap(true, false) {
			x.cfg.Logger.Info("the vault index looks at the directory again", "dir", dir)
		}
		if x.beforeEvent != nil {
			x.beforeEvent()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-take:
			if !ok {
				return errRestart
			}
			if err := s.gather(ev); err != nil {
				return err
			}
			if x.cfg.Settle > 0 && !busy {
				take = nil
				settle.Reset(x.cfg.Settle)
				continue
			}
			n, err := s.drain(events)
			if err != nil {
				return err
			}
			busy = busy && n >= maxBatch
		case <-settle.C:
			take = events
			n, err := s.drain(events)
			if err != nil {
				return err
			}
			busy = n >= maxBatch
		case err, ok := <-errs:
			if !ok {
				return errRestart
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				st.overflows++
				x.cfg.Logger.Warn("inotify event queue overflowed; rescanning the vault data directory", "dir", dir)
				s.overflowed()
				continue
			}
			return &os.PathError{Op: "watch vault data directory", Path: dir, Err: err}
		case res := <-s.scanDone:
			if err := s.finishScan(res); err != nil {
				return err
			}
			if s.scanDone == nil {
				// The next periodic scan is an interval after this one
				// ended: a scan longer than the interval (ten million
				// files take minutes, the fallback polls every minute)
				// is not followed at once by the next, for ever.
				rescan.Reset(interval)
			}
		case <-rescan.C:
			if s.scanDone != nil {
				break // its end arms the timer again
			}
			if !watching && !fsnotifyDebug() {
				// The inotify limit may have been raised (or other watchers
				// gone): a session that can watch replaces this one.
				if w2, err := x.newWatcher(); err == nil {
					err = w2.Add(dir)
					w2.Close()
					if err == nil {
						return errRestart
					}
				}
			}
			s.wantScan()
		case <-check.C:
			if x.beforeCheck != nil {
				x.beforeCheck()
			}
			now, err := st.statDataDir(dir)
			if err != nil {
				return err
			}
			if now != id || (watching && len(w.WatchList()) == 0) {
				return errRestart // replaced, mounted over, or the watch was dropped (unmount)
			}
		}
	}
}

// session is the state of one watched lifetime of the directory, owned by
// the session goroutine.
type session struct {
	x        *Index
	st       *state
	ctx      context.Context
	id       dirID
	watching bool

	ready bool
	files map[key]int64
	bytes int64
	asOf  time.Time // start of the scan the count comes from

	// drainWait is drain's timer, made once per session.
	drainWait *time.Timer

	// A scan in flight: its result arrives on scanDone; events meanwhile
	// are recorded in pending and re-checked once it is in.
	scanDone   chan scanResult
	scanCancel context.CancelFunc
	scanStart  time.Time
	scanGen    uint64
	pending    map[string]struct{}
	again      bool // another scan is wanted once this one is done
	// pendingDropped: pending overflowed during this scan (logged once).
	pendingDropped bool

	batch map[string]struct{} // names gathered from events, not yet re-checked
	dirty bool                // re-checked since the last publish

	// lossGen counts event losses (overflows, too many pending names); the
	// count is stale until a scan that started after the latest loss is in.
	lossGen    uint64
	doneGen    uint64 // the loss generation the current count accounts for
	staleSince time.Time
}

// maxPending bounds the names remembered while a scan runs; past it they
// are dropped and another scan follows.
const maxPending = 1 << 16

// openDir opens the session's directory and checks that it still is the
// one the session watches.
func (s *session) openDir() (int, error) {
	fd, err := unix.Open(s.x.cfg.Dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open vault data directory", Path: s.x.cfg.Dir, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || (dirID{uint64(st.Dev), uint64(st.Ino)}) != s.id {
		unix.Close(fd)
		return -1, errRestart
	}
	return fd, nil
}

func (s *session) wantScan() {
	if s.scanDone != nil {
		s.again = true
		return
	}
	s.startScan()
}

func (s *session) startScan() {
	sctx, cancel := context.WithCancel(s.ctx)
	done := make(chan scanResult, 1)
	s.scanDone, s.scanCancel, s.scanStart, s.scanGen = done, cancel, s.x.cfg.Now(), s.lossGen
	s.pendingDropped = false
	openDir, dir, match, hash, hint := s.openDir, s.x.cfg.Dir, s.x.cfg.Filter.Match, s.x.hash, len(s.files)
	onStart := s.x.cfg.OnScanStart
	go func() {
		if onStart != nil {
			onStart(sctx)
		}
		fd, err := openDir()
		if err != nil {
			done <- scanResult{err: err}
			return
		}
		defer unix.Close(fd)
		done <- scanDir(sctx, fd, dir, match, hash, hint)
	}()
}

func (s *session) stopScan() {
	if s.scanCancel != nil {
		s.scanCancel()
		<-s.scanDone
	}
}

// lost records that changes may have gone unseen: the count is stale until
// a scan started after now is in.
func (s *session) lost() {
	if !s.stale() {
		s.staleSince = s.x.cfg.Now()
	}
	s.lossGen++
	s.wantScan()
}

func (s *session) stale() bool { return s.lossGen != s.doneGen }

func (s *session) overflowed() {
	s.lost()
	s.publish()
}

func (s *session) finishScan(res scanResult) error {
	s.scanCancel()
	s.scanDone, s.scanCancel = nil, nil
	if res.err != nil {
		return res.err
	}
	end := s.x.cfg.Now()
	s.files, s.bytes, s.ready, s.asOf = res.files, res.bytes, true, s.scanStart
	s.st.scans++
	s.st.lastScanEnd, s.st.lastScanTook = end, end.Sub(s.scanStart)
	s.doneGen = s.scanGen
	if err := s.recheck(s.pending); err != nil {
		return err
	}
	clear(s.pending)
	if s.st.scans == 1 || s.st.failing {
		s.x.cfg.Logger.Info("vault data directory scanned", "dir", s.x.cfg.Dir, "vaults", len(s.files), "duration", s.st.lastScanTook)
	}
	s.st.failing = false
	s.publish()
	if s.again {
		s.again = false
		s.startScan()
	}
	return nil
}

// maxBatch bounds the names re-checked in one go.
const maxBatch = 1024

// drainWait is how long a drain waits for fsnotify's reader to offer the
// next event before it takes an empty channel for the end of the window's
// events, and drainMax how long one drain may last (see drain).
const (
	drainWait = 2 * time.Millisecond
	drainMax  = 100 * time.Millisecond
)

// newWatcher's channel is unbuffered. While a settle window runs, the
// session does not read events; fsnotify's reader then blocks on its first
// send and further events wait in the kernel's queue, so nothing in this
// process wakes per event: each wake of an idle Go process costs tens of
// microseconds, mostly the runtime's sysmon spinning up again. With this,
// the 1 s windows and the access-log follower's, the agent on bench/pop.sh
// (10 vault changes a second) woke 63 times a second instead of 155 and
// used a third less CPU (docs/benchmarks.md). At the end of the window the
// session drains (see drain).
func newWatcher() (*fsnotify.Watcher, error) { return fsnotify.NewWatcher() }

// errFsnotifyDebug: fsnotify, with FSNOTIFY_DEBUG=1 in the environment
// when the process started, prints every event's path to stderr, and the
// paths hold vault file names (hard rule: no name in a log line).
var errFsnotifyDebug = errors.New("FSNOTIFY_DEBUG=1 is set, and fsnotify would print every vault file name to stderr; unset it to count live")

func fsnotifyDebug() bool { return os.Getenv("FSNOTIFY_DEBUG") == "1" }

// gather records the name ev concerns for the next re-check.
func (s *session) gather(ev fsnotify.Event) error {
	dir := s.x.cfg.Dir
	if ev.Name == dir {
		if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
			return fmt.Errorf("vault data directory %s was removed or renamed: %w", dir, os.ErrNotExist)
		}
	} else if name, ok := strings.CutPrefix(ev.Name, dir+"/"); ok && s.x.cfg.Filter.Match(name) {
		s.batch[name] = struct{}{}
	}
	return nil
}

// drain gathers every event already queued, re-checking in batches of
// maxBatch names, and publishes once: a burst of events about one file
// costs one lstat. It returns the number of names re-checked.
//
// fsnotify's reader hands events over one at a time (newWatcher): after
// each, it has to run again (read the kernel's queue, parse) before it
// offers the next. So an empty channel is the end of the window's events
// only once the reader has had drainWait to offer another; a drain lasts
// at most drainMax however fast events come, and what is left waits for
// the next window. A handoff missed loses nothing: its names come in the
// next window, at one more look each.
func (s *session) drain(events <-chan fsnotify.Event) (int, error) {
	n := 0
	deadline := time.Now().Add(drainMax)
	for {
		if len(s.batch) >= maxBatch {
			n += len(s.batch)
			if err := s.flush(false); err != nil {
				return n, err
			}
		}
		var ev fsnotify.Event
		var ok, got bool
		select {
		case ev, ok = <-events:
			got = true
		default:
		}
		if !got && time.Now().Before(deadline) {
			if s.drainWait == nil {
				s.drainWait = time.NewTimer(drainWait)
			} else {
				s.drainWait.Reset(drainWait)
			}
			select {
			case ev, ok = <-events:
				got = true
				s.drainWait.Stop()
			case <-s.drainWait.C:
			}
		}
		if !got {
			n += len(s.batch)
			return n, s.flush(true)
		}
		if !ok {
			return n, errRestart
		}
		if err := s.gather(ev); err != nil {
			return n, err
		}
	}
}

// flush re-checks the gathered names (remembering them for the scan in
// flight, if any) and, if publish, publishes the result.
func (s *session) flush(publish bool) error {
	if len(s.batch) > 0 {
		if s.scanDone != nil {
			if len(s.pending)+len(s.batch) > s.x.maxPending {
				clear(s.pending) // too many to remember: the next scan sees them
				if !s.pendingDropped {
					s.pendingDropped = true
					s.x.cfg.Logger.Warn("too many vault files changed during a full scan to re-check them after it; scanning again",
						"dir", s.x.cfg.Dir, "changed", s.x.maxPending)
				}
				s.lost()
			} else {
				for name := range s.batch {
					s.pending[name] = struct{}{}
				}
			}
		}
		if s.ready {
			if err := s.recheck(s.batch); err != nil {
				return err
			}
			s.dirty = true
		}
		clear(s.batch)
	}
	if publish && s.dirty {
		s.dirty = false
		s.publish()
	}
	return nil
}

// recheck looks at each name now and makes the index agree: whatever
// happened to it (created, written, renamed away or onto, removed), lstat
// says what it is at this moment, and a later event says if that changes.
func (s *session) recheck(names map[string]struct{}) error {
	if len(names) == 0 || s.files == nil {
		return nil
	}
	fd, err := s.openDir()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	s.x.rechecked.Add(uint64(len(names)))
	for name := range names {
		size, regular, err := lstatRegular(fd, name, &st)
		if err != nil {
			return &os.PathError{Op: "lstat an entry of vault data directory", Path: s.x.cfg.Dir, Err: err}
		}
		k := s.x.hash(name)
		old, had := s.files[k]
		switch {
		case regular:
			s.files[k] = size
			s.bytes += size - old
		case had:
			delete(s.files, k)
			s.bytes -= old
		}
	}
	return nil
}

func (s *session) publish() {
	snap := &Snapshot{
		Ready:            s.ready,
		Watching:         s.watching,
		Scans:            s.st.scans,
		LastScanEnd:      s.st.lastScanEnd,
		LastScanDuration: s.st.lastScanTook,
		Overflows:        s.st.overflows,
	}
	if s.ready {
		snap.Count, snap.Bytes = int64(len(s.files)), s.bytes
		snap.Live = s.watching && !s.stale()
		switch {
		case s.stale():
			snap.AsOf = s.staleSince
		case !s.watching:
			snap.AsOf = s.asOf
		}
	}
	s.x.snap.Store(snap)
}
