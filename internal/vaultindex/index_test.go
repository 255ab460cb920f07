package vaultindex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/fsnotify/fsnotify"
	"pgregory.net/rapid"
)

// syncBuffer is a log sink safe for the index's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func mustFilter(t testing.TB, pattern string) Filter {
	t.Helper()
	f, err := NewFilter(pattern)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// start runs an index of dir until the test ends and returns it with its log.
func start(t testing.TB, cfg Config, hook func(*Index)) (*Index, *syncBuffer) {
	t.Helper()
	x, logs, stop := startStop(t, cfg, hook)
	t.Cleanup(stop)
	return x, logs
}

// startStop is start for the body of a rapid.Check, which runs a hundred
// times in one test: each run stops its index when it ends (stop), or a
// hundred of them, each with its inotify instance, would run to the end of
// the test, and with other packages' tests exhaust
// fs.inotify.max_user_instances (128 by default) of the whole user.
func startStop(t testing.TB, cfg Config, hook func(*Index)) (*Index, *syncBuffer, func()) {
	t.Helper()
	logs := &syncBuffer{}
	if cfg.Filter.pattern == "" {
		cfg.Filter = mustFilter(t, "*")
	}
	if cfg.Check == 0 {
		cfg.Check = 20 * time.Millisecond
	}
	if cfg.Retry == 0 {
		cfg.Retry = 20 * time.Millisecond
	}
	if cfg.Settle == 0 {
		cfg.Settle = 10 * time.Millisecond
	}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	x := New(cfg)
	if hook != nil {
		hook(x)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { x.Run(ctx); close(done) }()
	return x, logs, func() { cancel(); <-done }
}

// waitFor polls the published snapshot until cond holds: the signal is the
// index's own result, and a wrong index never satisfies it (the deadline
// only bounds how long a failing test takes).
func waitFor(t testing.TB, x *Index, what string, cond func(*Snapshot) bool) *Snapshot {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s := x.Snapshot()
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: last snapshot %+v", what, *s)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func writeFile(t testing.TB, path string, size int) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{'x'}, size), 0o600); err != nil {
		t.Fatal(err)
	}
}

func ready(count, size int64) func(*Snapshot) bool {
	return func(s *Snapshot) bool { return s.Ready && s.Err == nil && s.Count == count && s.Bytes == size }
}

func TestFilter(t *testing.T) {
	t.Parallel()
	f := mustFilter(t, "*.db")
	for name, want := range map[string]bool{
		"a.db": true, "x": false, ".a.db": false, "a.db-wal": false, "a.db-journal": false,
		"a.db-shm": false, "a.tmp": false, "": false, ".": false, "..": false, "sub/a.db": false,
	} {
		if got := f.Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
	for _, bad := range []string{"", "[a-", "sub/*.db", "x*[", "a*b\\", "v*[z-", "*.db[", "a?[^"} {
		if _, err := NewFilter(bad); err == nil {
			t.Errorf("NewFilter(%q) accepted", bad)
		}
	}
	for _, good := range []string{"*", "*.db", "[a-z]*", "[^.]*.db", "\\*x", "[\\]]", "v[0-9][0-9]", "??*", "[*]"} {
		if _, err := NewFilter(good); err != nil {
			t.Errorf("NewFilter(%q): %v", good, err)
		}
	}
}

// TestFilterAcceptsOnlyWellFormed: a pattern NewFilter accepts never makes
// filepath.Match fail on any name (Match would swallow the error and count
// nothing). filepath.Match(pattern, "") alone let "x*[" through.
func TestFilterAcceptsOnlyWellFormed(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		alphabet := rapid.SampledFrom([]rune{'a', 'b', 'x', '*', '?', '[', ']', '^', '-', '\\', '.', 'é', '\xff'})
		pattern := string(rapid.SliceOfN(alphabet, 1, 8).Draw(rt, "pattern"))
		if !utf8.ValidString(pattern) {
			pattern = strings.ToValidUTF8(pattern, "\xff")
		}
		_, nerr := NewFilter(pattern)
		names := rapid.SliceOfN(rapid.StringOfN(rapid.SampledFrom([]rune{'a', 'b', 'x', ']', '-', '.', 'é'}), 0, 8, -1), 1, 20).Draw(rt, "names")
		for _, name := range names {
			if _, err := filepath.Match(pattern, name); err != nil && nerr == nil {
				rt.Fatalf("NewFilter(%q) accepted; filepath.Match(%q, %q): %v", pattern, pattern, name, err)
			}
		}
	})
}

// vaultFixture holds three vaults and every kind of entry that is not one.
// The FIFO is a tripwire: opening it would block the index for ever.
func vaultFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "v7Kq2xPz9a.db"), 1000)
	writeFile(t, filepath.Join(dir, "Lm3nB8cD1e.db"), 234)
	writeFile(t, filepath.Join(dir, "zz-empty.vault"), 0)
	for _, name := range []string{"v7Kq2xPz9a.db-journal", "v7Kq2xPz9a.db-wal", "v7Kq2xPz9a.db-shm", "upload.tmp", ".lock", ".v7Kq2xPz9a.db.swp"} {
		writeFile(t, filepath.Join(dir, name), 5000)
	}
	for _, l := range [][2]string{{"v7Kq2xPz9a.db", "link-to-vault.db"}, {"nowhere", "dangling.db"}} {
		if err := os.Symlink(l[0], filepath.Join(dir, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.db"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub.db", "nested.db"), 7000)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.db"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestIndexCountsOnlyVaults(t *testing.T) {
	t.Parallel()
	dir := vaultFixture(t)
	for _, tc := range []struct {
		pattern      string
		count, bytes int64
	}{{"*", 3, 1234}, {"*.db", 2, 1234}, {"*.vault", 1, 0}, {"nothing-*", 0, 0}} {
		x, _ := start(t, Config{Dir: dir, Filter: mustFilter(t, tc.pattern)}, nil)
		s := waitFor(t, x, "first scan", func(s *Snapshot) bool { return s.Ready })
		if s.Count != tc.count || s.Bytes != tc.bytes || !s.Watching || !s.Live || s.Scans != 1 {
			t.Errorf("pattern %q: %+v, want %d vaults, %d bytes, watching, live, 1 scan", tc.pattern, *s, tc.count, tc.bytes)
		}
	}
}

// The property: whatever sequence of creates, writes, deletes and renames
// (inside the directory, in from and out to another directory, onto an
// existing vault, between vault and companion names) and non-vault entries
// (symlinks, directories) happens, the index ends up with exactly the count
// and bytes of a model of the directory, from events alone (one scan).
func TestIndexExactAfterRandomChanges(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		root := t.TempDir()
		dir, outside := filepath.Join(root, "vaults"), filepath.Join(root, "elsewhere")
		for _, d := range []string{dir, outside} {
			if err := os.Mkdir(d, 0o700); err != nil {
				rt.Fatal(err)
			}
		}
		names := []string{"a.db", "b.db", "c.db", "d.db", "e.db", "f.db", "a.db-wal", "b.tmp", ".c.db", "g"}
		model := map[string]int{} // vault name -> size
		isVault := func(n string) bool { return mustFilter(t, "*.db").Match(n) }
		// Some files exist before the index starts.
		for _, n := range rapid.SliceOfDistinct(rapid.SampledFrom(names), rapid.ID).Draw(rt, "initial") {
			size := rapid.IntRange(0, 300).Draw(rt, "size")
			writeFile(t, filepath.Join(dir, n), size)
			if isVault(n) {
				model[n] = size
			}
		}
		// Re-checked at once, or after a settle window short or long
		// enough to gather several operations.
		settle := rapid.SampledFrom([]time.Duration{-1, time.Millisecond, 20 * time.Millisecond}).Draw(rt, "settle")
		x, logs, stop := startStop(t, Config{Dir: dir, Filter: mustFilter(t, "*.db"), Settle: settle}, nil)
		defer stop()
		waitFor(t, x, "first scan", func(s *Snapshot) bool { return s.Ready })
		entries := map[string]bool{} // names present in dir as regular files
		for _, n := range names {
			if _, err := os.Lstat(filepath.Join(dir, n)); err == nil {
				entries[n] = true
			}
		}
		ops := rapid.IntRange(1, 60).Draw(rt, "ops")
		for range ops {
			n := rapid.SampledFrom(names).Draw(rt, "name")
			p := filepath.Join(dir, n)
			switch rapid.IntRange(0, 7).Draw(rt, "op") {
			case 0, 1: // create or overwrite
				size := rapid.IntRange(0, 300).Draw(rt, "size")
				writeFile(t, p, size)
				entries[n] = true
				if isVault(n) {
					model[n] = size
				}
			case 2: // delete
				if entries[n] {
					os.Remove(p)
					delete(entries, n)
					delete(model, n)
				}
			case 3: // rename within the directory, maybe onto an existing file
				to := rapid.SampledFrom(names).Draw(rt, "to")
				if entries[n] && to != n {
					if err := os.Rename(p, filepath.Join(dir, to)); err != nil {
						rt.Fatal(err)
					}
					size, had := model[n]
					if !had {
						fi, _ := os.Lstat(filepath.Join(dir, to))
						size = int(fi.Size())
					}
					delete(entries, n)
					delete(model, n)
					entries[to] = true
					delete(model, to)
					if isVault(to) {
						model[to] = size
					}
				}
			case 4: // move out of the directory
				if entries[n] {
					if err := os.Rename(p, filepath.Join(outside, n)); err != nil {
						rt.Fatal(err)
					}
					delete(entries, n)
					delete(model, n)
				}
			case 5: // move in from elsewhere (replacing what is there)
				if !entries[n] || rapid.Bool().Draw(rt, "replace") {
					size := rapid.IntRange(0, 300).Draw(rt, "size")
					src := filepath.Join(outside, "in-"+strconv.Itoa(size))
					writeFile(t, src, size)
					if err := os.Rename(src, p); err != nil {
						rt.Fatal(err)
					}
					entries[n] = true
					if isVault(n) {
						model[n] = size
					}
				}
			case 6: // append (size change of an existing file)
				if entries[n] {
					f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
					if err != nil {
						rt.Fatal(err)
					}
					k := rapid.IntRange(1, 50).Draw(rt, "grow")
					f.Write(bytes.Repeat([]byte{'y'}, k))
					f.Close()
					if isVault(n) {
						model[n] += k
					}
				}
			case 7: // entries with vault names that are not vaults
				other := "x" + strconv.Itoa(rapid.IntRange(0, 3).Draw(rt, "other")) + ".db"
				op := filepath.Join(dir, other)
				if _, err := os.Lstat(op); err == nil {
					os.RemoveAll(op)
				} else if rapid.Bool().Draw(rt, "symlink") {
					os.Symlink("a.db", op)
				} else {
					os.Mkdir(op, 0o700)
				}
			}
		}
		var wantBytes int64
		for _, s := range model {
			wantBytes += int64(s)
		}
		s := waitFor(t, x, fmt.Sprintf("%d vaults, %d bytes", len(model), wantBytes), ready(int64(len(model)), wantBytes))
		if s.Scans != 1 || s.Overflows != 0 || !s.Live {
			rt.Fatalf("the count must come from events, not a rescan: %+v", *s)
		}
		if got := logs.String(); strings.Contains(got, ".db\"") || strings.Contains(got, "a.db") {
			rt.Fatalf("a file name reached the log:\n%s", got)
		}
	})
}

// A cold first scan of a huge directory runs in the background: the
// snapshot answers at once and says the count is not ready.
// TestIndexBurstCostsOneLookPerName: the events of a burst (a create and
// many writes per file) are re-checked once per name, and published once.
func TestIndexBurstCostsOneLookPerName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var mu sync.Mutex
	var gate chan struct{}
	x, _ := start(t, Config{Dir: dir, Settle: 20 * time.Millisecond}, func(x *Index) {
		x.beforeEvent = func() {
			mu.Lock()
			g := gate
			mu.Unlock()
			if g != nil {
				<-g
			}
		}
	})
	waitFor(t, x, "first scan", ready(0, 0))
	before := x.Snapshot()
	mu.Lock()
	gate = make(chan struct{})
	mu.Unlock()
	// The index is held before it takes an event: the whole burst is
	// queued when it looks, as it would be at the end of a settle window.
	const files, writes = 10, 30
	for i := range files {
		f, err := os.Create(filepath.Join(dir, "v"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		for range writes {
			if _, err := f.Write([]byte{1}); err != nil {
				t.Fatal(err)
			}
		}
		f.Close()
	}
	mu.Lock()
	close(gate)
	gate = nil
	mu.Unlock()
	s := waitFor(t, x, "the burst", ready(files, files*writes))
	if n := x.rechecked.Load(); n != files {
		t.Errorf("%d names re-checked for %d files written in %d steps each, want one per file", n, files, writes)
	}
	if s == before || s.Scans != before.Scans {
		t.Errorf("the burst was counted by a scan, not by its events: %+v", *s)
	}
}

func TestIndexColdScanDoesNotBlockReaders(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), 5)
	held, release := make(chan struct{}), make(chan struct{})
	x, _ := start(t, Config{Dir: dir, OnScanStart: func(ctx context.Context) {
		close(held)
		select {
		case <-release:
		case <-ctx.Done():
		}
	}}, nil)
	<-held // the scan is running and cannot finish
	if s := x.Snapshot(); s.Ready || s.Err != nil || s.Scans != 0 {
		t.Fatalf("while the first scan runs: %+v, want not ready, no error", *s)
	}
	close(release)
	waitFor(t, x, "the first scan", ready(1, 5))
}

func TestIndexOverflowRescans(t *testing.T) {
	t.Parallel()
	queued := 16384
	if b, err := os.ReadFile("/proc/sys/fs/inotify/max_queued_events"); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			queued = n
		}
	}
	// Each file is a create and a write event; fsnotify's reader holds a
	// 64 KiB buffer of events on top of the kernel's queue.
	files := queued/2 + 8000
	if files > 300_000 {
		t.Fatalf("fs.inotify.max_queued_events = %d: overflowing it takes too many files for a test", queued)
	}
	dir := t.TempDir()
	var mu sync.Mutex
	var gate chan struct{}
	x, logs := start(t, Config{Dir: dir}, func(x *Index) {
		x.beforeEvent = func() {
			mu.Lock()
			g := gate
			mu.Unlock()
			if g != nil {
				<-g
			}
		}
	})
	waitFor(t, x, "first scan", ready(0, 0))
	mu.Lock()
	gate = make(chan struct{})
	mu.Unlock()
	for i := range files {
		writeFile(t, filepath.Join(dir, "secretVault"+strconv.Itoa(i)), 1)
	}
	mu.Lock()
	close(gate)
	gate = nil
	mu.Unlock()
	s := waitFor(t, x, "the rescan after the overflow", func(s *Snapshot) bool {
		return s.Overflows > 0 && s.Scans >= 2 && s.Live && s.Count == int64(files)
	})
	if s.Bytes != int64(files) {
		t.Errorf("bytes = %d, want %d", s.Bytes, files)
	}
	if !strings.Contains(logs.String(), "overflowed") || strings.Contains(logs.String(), "secretVault") {
		t.Errorf("log should report the overflow and no name:\n%s", logs.String())
	}
}

func TestIndexDirectoryRemovedAndBack(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "vaults")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "secretVault1"), 3)
	x, logs := start(t, Config{Dir: dir}, nil)
	waitFor(t, x, "first scan", ready(1, 3))

	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	s := waitFor(t, x, "the failure", func(s *Snapshot) bool { return s.Err != nil })
	if s.Ready || !errors.Is(s.Err, os.ErrNotExist) || !strings.Contains(s.Err.Error(), dir) {
		t.Errorf("after removal: %+v; want not ready, an error naming the directory", *s)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "secretVault2"), 4)
	writeFile(t, filepath.Join(dir, "secretVault3"), 4)
	waitFor(t, x, "recovery", ready(2, 8))

	// Renamed away and replaced by another directory.
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, x, "the failure after a rename", func(s *Snapshot) bool { return s.Err != nil })
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	waitFor(t, x, "recovery", ready(0, 0))
	// Replaced between two checks without a failure in between: the
	// identity check notices.
	writeFile(t, filepath.Join(root, "x"), 1)
	if got := logs.String(); strings.Contains(got, "secretVault") {
		t.Errorf("a file name reached the log:\n%s", got)
	}
}

// mountTmpfs mounts a tmpfs at dir; without the privilege the test cannot
// run, which fails it in CI and skips it elsewhere.
func mountTmpfs(t *testing.T, dir string) {
	t.Helper()
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=1m"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("mount tmpfs (needs CAP_SYS_ADMIN, as root in CI): %v", err)
		}
		t.Skipf("mount tmpfs: %v (needs root; runs in CI)", err)
	}
}

func TestIndexMountLostAndBack(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "vaults")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	mountTmpfs(t, dir)
	mounted := true
	t.Cleanup(func() {
		if mounted {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	for i := range 3 {
		writeFile(t, filepath.Join(dir, "v"+strconv.Itoa(i)), 10)
	}
	x, _ := start(t, Config{Dir: dir}, nil)
	waitFor(t, x, "first scan", ready(3, 30))
	// A plain (not lazy) unmount must succeed: the index holds nothing open
	// on the vault file system between looks.
	if err := syscall.Unmount(dir, 0); err != nil {
		t.Fatalf("unmount of the vault file system: %v (is the index holding it busy?)", err)
	}
	mounted = false
	s := waitFor(t, x, "the unmount to be reported", func(s *Snapshot) bool { return s.Err != nil })
	if !errors.Is(s.Err, ErrUnmounted) || s.Ready {
		t.Fatalf("after unmount: %+v, want ErrUnmounted", *s)
	}
	mountTmpfs(t, dir)
	mounted = true
	writeFile(t, filepath.Join(dir, "v"), 7)
	waitFor(t, x, "recovery after the remount", ready(1, 7))
}

// Mounting a file system over the watched directory generates no inotify
// event; the identity check sees it and indexes what is now at the path.
func TestIndexMountedOver(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "vaults")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "under"), 1)
	x, _ := start(t, Config{Dir: dir}, nil)
	waitFor(t, x, "first scan", ready(1, 1))
	mountTmpfs(t, dir)
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	writeFile(t, filepath.Join(dir, "over1"), 5)
	writeFile(t, filepath.Join(dir, "over2"), 5)
	waitFor(t, x, "the mounted file system's count", ready(2, 10))
}

// At inotify's instance limit (fs.inotify.max_user_instances; EMFILE from
// inotify_init1) or watch limit (ENOSPC from inotify_add_watch) the index
// falls back to full scans every Poll and says the count is not live.
func TestIndexWatchLimitFallsBackToPolling(t *testing.T) {
	t.Parallel()
	for _, limit := range []error{syscall.EMFILE, syscall.ENOSPC} {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "a"), 2)
		x, logs := start(t, Config{Dir: dir, Poll: 30 * time.Millisecond}, func(x *Index) {
			x.newWatcher = func() (*fsnotify.Watcher, error) { return nil, limit }
		})
		s := waitFor(t, x, "first scan", ready(1, 2))
		if s.Watching || s.Live || s.AsOf.IsZero() {
			t.Errorf("%v: %+v, want not watching, not live, AsOf set", limit, *s)
		}
		writeFile(t, filepath.Join(dir, "b"), 3)
		s = waitFor(t, x, "the next poll", ready(2, 5))
		if s.Scans < 2 {
			t.Errorf("%v: the change was seen without a scan: %+v", limit, *s)
		}
		// The log names the one limit to raise, not both.
		want, other := "max_user_instances", "max_user_watches"
		if limit == syscall.ENOSPC {
			want, other = other, want
		}
		if !strings.Contains(logs.String(), want) || strings.Contains(logs.String(), other) {
			t.Errorf("%v: the log does not say which limit to raise (%s):\n%s", limit, want, logs.String())
		}
	}
	// Once the limit is lifted, the index watches again at its next poll.
	dir := t.TempDir()
	var lifted atomic.Bool
	x, _ := start(t, Config{Dir: dir, Poll: 30 * time.Millisecond}, func(x *Index) {
		x.newWatcher = func() (*fsnotify.Watcher, error) {
			if lifted.Load() {
				return newWatcher()
			}
			return nil, syscall.EMFILE
		}
	})
	waitFor(t, x, "first scan, polling", func(s *Snapshot) bool { return s.Ready && !s.Watching })
	lifted.Store(true)
	waitFor(t, x, "watching again", func(s *Snapshot) bool { return s.Ready && s.Watching && s.Live })
}

func TestIndexPeriodicRescan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	x, _ := start(t, Config{Dir: dir, Rescan: 20 * time.Millisecond}, nil)
	s := waitFor(t, x, "three scans", func(s *Snapshot) bool { return s.Scans >= 3 })
	if !s.Live || s.LastScanEnd.IsZero() {
		t.Errorf("%+v", *s)
	}
}

func TestIndexNotADirectory(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "vaults")
	writeFile(t, file, 1)
	x, _ := start(t, Config{Dir: file}, nil)
	s := waitFor(t, x, "the failure", func(s *Snapshot) bool { return s.Err != nil })
	if !errors.Is(s.Err, syscall.ENOTDIR) {
		t.Errorf("err = %v, want ENOTDIR", s.Err)
	}
}

// TestIndexSwappedDirectoryIsNotLive: when the path comes to name another
// directory (a symlink switched, a mount over it), the count shown until
// the new directory's first scan ends is the old one's: it must say so
// (not live, aging) instead of passing for the new directory's.
func TestIndexSwappedDirectoryIsNotLive(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	for name, n := range map[string]int{"a": 3, "b": 1} {
		if err := os.Mkdir(filepath.Join(root, name), 0o700); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			writeFile(t, filepath.Join(root, name, "v"+strconv.Itoa(i)), 5)
		}
	}
	dir := filepath.Join(root, "vaults")
	if err := os.Symlink("a", dir); err != nil {
		t.Fatal(err)
	}
	restarted, release := make(chan struct{}, 1), make(chan struct{})
	// The index's clock, which the collector ages the count by, runs a
	// day behind the wall clock: the time the stale count is as of must
	// come from it.
	clock := func() time.Time { return time.Now().Add(-24 * time.Hour) }
	x, _ := start(t, Config{Dir: dir, Now: clock}, func(x *Index) {
		x.afterRestart = func() {
			select {
			case restarted <- struct{}{}:
			default:
			}
			<-release
		}
	})
	waitFor(t, x, "first scan", ready(3, 15))
	if err := os.Symlink("b", dir+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".new", dir); err != nil { // atomic: no failure in between
		t.Fatal(err)
	}
	<-restarted
	if s := x.Snapshot(); !s.Ready || s.Count != 3 || s.Live || s.AsOf.IsZero() || s.AsOf.After(clock()) {
		t.Errorf("between the swap and the new scan: %+v; want the old count, not live, with its time by Config.Now", *s)
	}
	close(release)
	s := waitFor(t, x, "the new directory's scan", ready(1, 5))
	if !s.Live {
		t.Errorf("after the new scan: %+v; want live", *s)
	}
}

// mountBind bind-mounts src at dir (the same file system: same device);
// without the privilege the test fails in CI and is skipped elsewhere.
func mountBind(t *testing.T, src, dir string) {
	t.Helper()
	if err := syscall.Mount(src, dir, "", syscall.MS_BIND, ""); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("bind mount (needs CAP_SYS_ADMIN, as root in CI): %v", err)
		}
		t.Skipf("bind mount: %v (needs root; runs in CI)", err)
	}
}

// TestIndexBindMountLost: a bind mount of the parent's own file system has
// the parent's device, so the device test alone took its unmount for a
// plain directory and counted the empty one underneath as live. The
// mount table tells. So it does for a volume mounted after start-up.
func TestIndexBindMountLost(t *testing.T) {
	t.Parallel()
	for _, late := range []bool{false, true} {
		root := t.TempDir()
		src, dir := filepath.Join(root, "src"), filepath.Join(root, "vaults")
		for _, d := range []string{src, dir} {
			if err := os.Mkdir(d, 0o700); err != nil {
				t.Fatal(err)
			}
		}
		for i := range 3 {
			writeFile(t, filepath.Join(src, "v"+strconv.Itoa(i)), 10)
		}
		var x *Index
		if late { // the agent starts before the volume is mounted
			x, _ = start(t, Config{Dir: dir}, nil)
			waitFor(t, x, "first scan of the empty directory", ready(0, 0))
		}
		mountBind(t, src, dir)
		mounted := true
		t.Cleanup(func() {
			if mounted {
				syscall.Unmount(dir, syscall.MNT_DETACH)
			}
		})
		if !late {
			x, _ = start(t, Config{Dir: dir}, nil)
		}
		waitFor(t, x, "the bind mount's count", ready(3, 30))
		if err := syscall.Unmount(dir, 0); err != nil {
			t.Fatalf("unmount: %v", err)
		}
		mounted = false
		s := waitFor(t, x, "the unmount to be reported", func(s *Snapshot) bool { return s.Err != nil })
		if !errors.Is(s.Err, ErrUnmounted) || s.Ready {
			t.Errorf("late=%v, after unmount: %+v, want ErrUnmounted", late, *s)
		}
	}
}

// TestIndexSymlinkIntoMountIsNoMountPoint: a data directory that is a
// symlink to a plain sub-directory of another file system is no mount
// point (the symlink's own parent is not the directory's parent). Taken for
// one, it reported ErrUnmounted for ever once the symlink was pointed at a
// directory on the symlink's own file system.
func TestIndexSymlinkIntoMountIsNoMountPoint(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	disk, plain := filepath.Join(root, "disk"), filepath.Join(root, "plain")
	for _, d := range []string{disk, plain} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	mountTmpfs(t, disk)
	t.Cleanup(func() { syscall.Unmount(disk, syscall.MNT_DETACH) })
	if err := os.Mkdir(filepath.Join(disk, "vaults"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(disk, "vaults", "v1"), 4)
	writeFile(t, filepath.Join(plain, "v2"), 2)
	writeFile(t, filepath.Join(plain, "v3"), 2)
	dir := filepath.Join(root, "vaults")
	if err := os.Symlink(filepath.Join(disk, "vaults"), dir); err != nil {
		t.Fatal(err)
	}
	x, _ := start(t, Config{Dir: dir}, nil)
	waitFor(t, x, "first scan", ready(1, 4))
	if err := os.Symlink(plain, dir+".new"); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir+".new", dir); err != nil {
		t.Fatal(err)
	}
	waitFor(t, x, "the directory the symlink now names, counted", func(s *Snapshot) bool {
		return s.Err != nil || (s.Ready && s.Count == 2)
	})
	if s := x.Snapshot(); s.Err != nil {
		t.Fatalf("after the symlink was pointed at a plain directory: %v", s.Err)
	}
}

// TestIndexBindMountLostEscapedPath: the mount table writes a space, tab,
// newline or backslash in a mount point as an octal escape (\040); a data
// directory whose path holds one was never found in it, so the unmount of
// its bind mount went unnoticed and the empty directory underneath counted
// as live.
func TestIndexBindMountLostEscapedPath(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	src, dir := filepath.Join(root, "src"), filepath.Join(root, "vault data\\dir")
	for _, d := range []string{src, dir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		writeFile(t, filepath.Join(src, "v"+strconv.Itoa(i)), 10)
	}
	mountBind(t, src, dir)
	mounted := true
	t.Cleanup(func() {
		if mounted {
			syscall.Unmount(dir, syscall.MNT_DETACH)
		}
	})
	x, _ := start(t, Config{Dir: dir}, nil)
	waitFor(t, x, "the bind mount's count", ready(2, 20))
	if err := syscall.Unmount(dir, 0); err != nil {
		t.Fatalf("unmount: %v", err)
	}
	mounted = false
	s := waitFor(t, x, "the unmount to be reported", func(s *Snapshot) bool { return s.Err != nil || s.Count == 0 })
	if !errors.Is(s.Err, ErrUnmounted) || s.Ready {
		t.Errorf("after unmount: %+v, want ErrUnmounted", *s)
	}
}

func TestUnescapeMountPoint(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`/a\040b`: "/a b", `/a\011b\012c`: "/a\tb\nc", `/a\134b`: `/a\b`, `/plain`: "/plain",
		`/bad\04`: `/bad\04`, `/bad\9x1`: `/bad\9x1`, `/end\`: `/end\`,
	} {
		if got := unescapeMountPoint(in); got != want {
			t.Errorf("unescapeMountPoint(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestIndexHardLinksCountPerName pins the documented (package comment)
// treatment of hard links: each matching name is a vault with the file's
// size, whether it was found by the scan or by an event, and a removed name
// leaves the other counted.
func TestIndexHardLinksCountPerName(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), 3)
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	x, _ := start(t, Config{Dir: dir}, nil)
	waitFor(t, x, "the scan of two names of one file", ready(2, 6))
	if err := os.Link(filepath.Join(dir, "a"), filepath.Join(dir, "c")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, x, "a third name from its event", ready(3, 9))
	if err := os.Remove(filepath.Join(dir, "a")); err != nil {
		t.Fatal(err)
	}
	s := waitFor(t, x, "one name removed", ready(2, 6))
	if s.Scans != 1 {
		t.Errorf("counted by a rescan, not by events: %+v", *s)
	}
}

// TestIndexDeletedDirectoryBehindBindMount: a data directory that is a bind
// mount (a container's volume) of a directory the host then removes still
// opens, lists and watches under its path, empty and deleted, while the
// vault service writes to the new directory the host made. It was indexed
// again as a live empty directory; it must fail as a removed one.
func TestIndexDeletedDirectoryBehindBindMount(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	src, dir := filepath.Join(root, "host"), filepath.Join(root, "vaults")
	for _, d := range []string{src, dir} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	writeFile(t, filepath.Join(src, "v1"), 10)
	mountBind(t, src, dir)
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	x, _ := start(t, Config{Dir: dir}, nil)
	waitFor(t, x, "the volume's count", ready(1, 10))
	if err := os.RemoveAll(src); err != nil { // the host removes the directory
		t.Fatal(err)
	}
	s := waitFor(t, x, "the removal", func(s *Snapshot) bool { return s.Err != nil || (s.Ready && s.Count == 0 && s.Scans > 1) })
	if s.Err == nil || !errors.Is(s.Err, os.ErrNotExist) {
		t.Errorf("after the directory behind the mount was removed: %+v, want a not-exist error", *s)
	}
}

// TestIndexSelfBindMountIsNoMountPoint: systemd's ReadOnlyPaths= (the
// unit's) bind-mounts the data directory onto itself. That mount hides
// nothing: it is no vault volume whose unmount would leave an empty
// directory. Taken for one, the directory removed and made again on the
// host (which detaches the unit's bind mount) was reported ErrUnmounted
// for ever.
func TestIndexSelfBindMountIsNoMountPoint(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "vaults")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "v1"), 10)
	mountBind(t, dir, dir)
	t.Cleanup(func() { syscall.Unmount(dir, syscall.MNT_DETACH) })
	x, _ := start(t, Config{Dir: dir}, nil)
	waitFor(t, x, "first scan", ready(1, 10))
	// What the host's rm -r and mkdir do to the unit's view.
	if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "v2"), 3)
	writeFile(t, filepath.Join(dir, "v3"), 3)
	waitFor(t, x, "the new directory's count", func(s *Snapshot) bool {
		return errors.Is(s.Err, ErrUnmounted) || (s.Ready && s.Err == nil && s.Count == 2)
	})
	if s := x.Snapshot(); s.Err != nil {
		t.Fatalf("after the directory was made again: %v", s.Err)
	}
}

// TestIndexRunLeavesNoGoroutine: Run returns once ctx is done and leaves
// nothing running (scan goroutine, fsnotify reader, timers), whether it is
// stopped during a scan that waits for ctx, while live, while polling at
// the inotify limit, or while retrying a missing directory. Not parallel:
// it counts the process's goroutines.
func TestIndexRunLeavesNoGoroutine(t *testing.T) {
	before := runtime.NumGoroutine()
	for _, mode := range []string{"in a scan", "live", "polling", "retrying"} {
		for range 3 {
			dir := t.TempDir()
			writeFile(t, filepath.Join(dir, "a"), 3)
			held := make(chan struct{})
			var once sync.Once
			cfg := Config{Dir: dir, Filter: mustFilter(t, "*"), Poll: time.Millisecond, Retry: time.Millisecond}
			if mode == "in a scan" {
				cfg.OnScanStart = func(ctx context.Context) {
					once.Do(func() { close(held) })
					<-ctx.Done()
				}
			}
			if mode == "retrying" {
				cfg.Dir = filepath.Join(dir, "missing")
			}
			x := New(cfg)
			if mode == "polling" {
				x.newWatcher = func() (*fsnotify.Watcher, error) { return nil, syscall.EMFILE }
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { x.Run(ctx); close(done) }()
			switch mode {
			case "in a scan":
				<-held
			case "retrying":
				waitFor(t, x, "the failure", func(s *Snapshot) bool { return s.Err != nil })
			default:
				waitFor(t, x, "first scan", ready(1, 3))
			}
			cancel()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("%s: Run did not return after cancel", mode)
			}
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("%d goroutines after the indexes stopped, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestIndexExactWhileRescansRace: events that race full rescans (a rescan
// every 1-3 ms, so scans start and finish between and during the changes)
// leave the index exact. Once the changes stop, scans are held: what makes
// the count right then is events and the re-check of names that changed
// during a scan, not a later scan.
func TestIndexExactWhileRescansRace(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(rt *rapid.T) {
		root := t.TempDir()
		dir, out := filepath.Join(root, "v"), filepath.Join(root, "o")
		for _, d := range []string{dir, out} {
			if err := os.Mkdir(d, 0o700); err != nil {
				rt.Fatal(err)
			}
		}
		var frozen atomic.Bool
		blocked := make(chan struct{}, 1)
		settle := rapid.SampledFrom([]time.Duration{-1, time.Millisecond, 5 * time.Millisecond}).Draw(rt, "settle")
		rescan := time.Duration(rapid.IntRange(1, 3).Draw(rt, "rescan ms")) * time.Millisecond
		x, _, stop := startStop(t, Config{Dir: dir, Rescan: rescan, Settle: settle, OnScanStart: func(ctx context.Context) {
			if frozen.Load() {
				select {
				case blocked <- struct{}{}:
				default:
				}
				<-ctx.Done()
			}
		}}, nil)
		defer stop()
		waitFor(t, x, "first scan", func(s *Snapshot) bool { return s.Ready })
		names := []string{"a", "b", "c", "d", "e.tmp", ".f"}
		present := map[string]int{}
		for range rapid.IntRange(20, 150).Draw(rt, "ops") {
			n := rapid.SampledFrom(names).Draw(rt, "name")
			p := filepath.Join(dir, n)
			switch rapid.IntRange(0, 4).Draw(rt, "op") {
			case 0, 1:
				size := rapid.IntRange(0, 50).Draw(rt, "size")
				writeFile(t, p, size)
				present[n] = size
			case 2:
				os.Remove(p)
				delete(present, n)
			case 3:
				to := rapid.SampledFrom(names).Draw(rt, "to")
				if size, ok := present[n]; ok && to != n {
					if err := os.Rename(p, filepath.Join(dir, to)); err != nil {
						rt.Fatal(err)
					}
					delete(present, n)
					present[to] = size
				}
			case 4:
				if _, ok := present[n]; ok {
					if err := os.Rename(p, filepath.Join(out, n)); err != nil {
						rt.Fatal(err)
					}
					delete(present, n)
				}
			}
			if rapid.IntRange(0, 9).Draw(rt, "pause") == 0 {
				time.Sleep(time.Millisecond)
			}
		}
		frozen.Store(true)
		<-blocked // every scan from now on waits: no scan corrects the count
		scans := x.Snapshot().Scans
		var count, size int64
		for n, sz := range present {
			if mustFilter(t, "*").Match(n) {
				count++
				size += int64(sz)
			}
		}
		s := waitFor(t, x, fmt.Sprintf("%d vaults, %d bytes from events", count, size), ready(count, size))
		if s.Scans != scans {
			rt.Fatalf("a scan completed after scans were held: %+v", *s)
		}
	})
}

// TestIndexOddNames: names with a newline, invalid UTF-8, terminal escapes
// or 255 bytes are counted like any other, by events and by a scan, and
// none reaches a log line; truncation (also to a sparse size, counted
// apparent as documented) is followed from write events.
func TestIndexOddNames(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	x, logs := start(t, Config{Dir: dir}, nil)
	waitFor(t, x, "first scan", ready(0, 0))
	names := []string{"secret\nnewline", "secret\xff\xfeutf8", "secret" + strings.Repeat("L", 249), "secret\x1b[31mred", "secret\ttab"}
	for _, n := range names {
		writeFile(t, filepath.Join(dir, n), 3)
	}
	n := int64(len(names))
	waitFor(t, x, "odd names from events", ready(n, 3*n))
	if err := os.Truncate(filepath.Join(dir, names[0]), 1<<40); err != nil {
		t.Fatal(err)
	}
	waitFor(t, x, "a sparse 1 TiB file, apparent size", ready(n, 3*n-3+1<<40))
	if err := os.Truncate(filepath.Join(dir, names[0]), 0); err != nil {
		t.Fatal(err)
	}
	waitFor(t, x, "truncated to 0", ready(n, 3*n-3))
	x2, logs2 := start(t, Config{Dir: dir}, nil)
	waitFor(t, x2, "odd names by a scan", ready(n, 3*n-3))
	for _, l := range []string{logs.String(), logs2.String()} {
		if strings.Contains(l, "secret") || strings.Contains(l, "LLLL") {
			t.Errorf("a file name reached the log:\n%s", l)
		}
	}
}

// TestIndexHungDirectoryIsNotLive: when a look at the directory hangs (a
// dead network mount: stat or lstat never returns), the index cannot
// follow changes any more. Its last count must stop passing for live and
// age, instead of reading live with age 0 for as long as the hang lasts.
func TestIndexHungDirectoryIsNotLive(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), 2)
	var hang atomic.Bool
	unhang := make(chan struct{})
	x, logs := start(t, Config{Dir: dir, Check: 10 * time.Millisecond}, func(x *Index) {
		x.beforeCheck = func() {
			if hang.Load() {
				<-unhang
			}
		}
	})
	var unhangOnce sync.Once
	t.Cleanup(func() { unhangOnce.Do(func() { close(unhang) }) }) // before the index's cleanup
	waitFor(t, x, "first scan", func(s *Snapshot) bool { return s.Ready && s.Live })
	hang.Store(true)
	s := waitFor(t, x, "the hang to show", func(s *Snapshot) bool { return !s.Live })
	if !s.Ready || s.Count != 1 || s.AsOf.IsZero() || time.Since(s.AsOf) > 10*time.Second {
		t.Errorf("while hung: %+v; want the last count, not live, as of the last look", *s)
	}
	hang.Store(false)
	unhangOnce.Do(func() { close(unhang) })
	waitFor(t, x, "live again", func(s *Snapshot) bool { return s.Ready && s.Live })
	if got := logs.String(); strings.Count(got, "has not come round") != 1 || strings.Count(got, "looks at the directory again") != 1 {
		t.Errorf("the log should say once that the index is stuck, and once that it is back:\n%s", got)
	}
}

// TestIndexFsnotifyDebugKeepsNamesOut: with FSNOTIFY_DEBUG=1 in the
// environment, fsnotify prints every event's path, vault file names
// included, to stderr (the journal). The index must not watch then: it
// counts by full scans, says why once, and names no file. Not parallel:
// it sets the environment.
func TestIndexFsnotifyDebugKeepsNamesOut(t *testing.T) {
	t.Setenv("FSNOTIFY_DEBUG", "1")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "secretVault1"), 2)
	x, logs := start(t, Config{Dir: dir, Poll: 20 * time.Millisecond}, nil)
	s := waitFor(t, x, "first scan", ready(1, 2))
	if s.Watching || s.Live {
		t.Errorf("watching with FSNOTIFY_DEBUG=1: %+v", *s)
	}
	writeFile(t, filepath.Join(dir, "secretVault2"), 3)
	waitFor(t, x, "the next scan", ready(2, 5))
	if got := logs.String(); !strings.Contains(got, "FSNOTIFY_DEBUG") || strings.Contains(got, "secretVault") {
		t.Errorf("the log should say why the index does not watch, and name no file:\n%s", got)
	}
}

// TestIndexRescanIntervalCountsFromScanEnd: a periodic rescan comes an
// interval after the previous scan ended. Counted from its start, a scan
// longer than the interval (10,000,000 files take minutes; the inotify
// fallback polls every minute) was followed by the next at once, and the
// agent scanned without pause, a core for ever.
func TestIndexRescanIntervalCountsFromScanEnd(t *testing.T) {
	t.Parallel()
	const interval = 150 * time.Millisecond
	var mu sync.Mutex
	var starts []time.Time
	var ends []time.Time
	x, _ := start(t, Config{Dir: t.TempDir(), Rescan: interval, OnScanStart: func(ctx context.Context) {
		mu.Lock()
		starts = append(starts, time.Now())
		n := len(starts)
		mu.Unlock()
		if n == 2 { // one slow scan: five intervals long
			select {
			case <-time.After(5 * interval):
			case <-ctx.Done():
			}
		}
		mu.Lock()
		ends = append(ends, time.Now())
		mu.Unlock()
	}}, nil)
	waitFor(t, x, "the scan after the slow one", func(*Snapshot) bool {
		mu.Lock()
		defer mu.Unlock()
		return len(starts) >= 3
	})
	mu.Lock()
	defer mu.Unlock()
	// ends[1] is when the slow scan's listing began; the listing of an
	// empty directory takes microseconds.
	if gap := starts[2].Sub(ends[1]); gap < interval*2/3 {
		t.Errorf("the scan after a slow one started %v after it, want about the interval (%v)", gap, interval)
	}
}

// FuzzFilter: no pattern or name panics NewFilter or Match, and a pattern
// NewFilter accepts never makes filepath.Match fail (Match would count
// nothing, silently).
func FuzzFilter(f *testing.F) {
	for _, p := range []string{"*", "*.db", "x*[", "[^a-z]?\\*", "a*b\\", "[]a]", "[\\]]*"} {
		f.Add(p, "a.db")
	}
	f.Fuzz(func(t *testing.T, pattern, name string) {
		flt, err := NewFilter(pattern)
		if err != nil {
			return
		}
		flt.Match(name)
		if _, err := filepath.Match(pattern, name); err != nil {
			t.Fatalf("NewFilter(%q) accepted; filepath.Match(%q, %q): %v", pattern, pattern, name, err)
		}
	})
}

// FuzzUnescapeMountPoint: any mountinfo field unescapes without a panic,
// and one with no backslash is returned as it is.
func FuzzUnescapeMountPoint(f *testing.F) {
	for _, s := range []string{`/a\040b`, `/x\`, `\\\`, `/\0`, `/\777`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := unescapeMountPoint(s)
		if !strings.Contains(s, `\`) && got != s {
			t.Fatalf("unescapeMountPoint(%q) = %q", s, got)
		}
		if len(got) > len(s) {
			t.Fatalf("unescapeMountPoint(%q) = %q, longer", s, got)
		}
	})
}

// TestIndexWallClockStepIsNoHang: a step of the wall clock (NTP at boot, a
// VM resumed) does not make a live count look hung: how long the session
// has gone without a round is measured on the monotonic clock.
func TestIndexWallClockStepIsNoHang(t *testing.T) {
	t.Parallel()
	var step atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(step.Load())) }
	x, _ := start(t, Config{Dir: t.TempDir(), Now: clock, Check: time.Hour}, nil)
	waitFor(t, x, "first scan", func(s *Snapshot) bool { return s.Ready && s.Live })
	step.Store(int64(24 * time.Hour))
	if s := x.Snapshot(); !s.Live {
		t.Errorf("after the wall clock stepped a day: %+v, want still live", *s)
	}
}

// TestIndexTooManyChangesDuringScan: past maxPending names changed while a
// scan runs, the index forgets them and scans again. The count must end
// exact and live, and the log must say why the index scans again (as it
// does for an inotify queue overflow), naming no file.
func TestIndexTooManyChangesDuringScan(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	x, logs := start(t, Config{Dir: dir, OnScanStart: func(ctx context.Context) {
		once.Do(func() {
			close(held)
			select {
			case <-release:
			case <-ctx.Done():
			}
		})
	}}, func(x *Index) { x.maxPending = 3 })
	<-held
	for i := range 10 {
		writeFile(t, filepath.Join(dir, "secretVault"+strconv.Itoa(i)), 2)
		time.Sleep(2 * time.Millisecond)
	}
	waitFor(t, x, "the changes to be dropped", func(*Snapshot) bool { return strings.Contains(logs.String(), "too many vault files changed") })
	close(release)
	s := waitFor(t, x, "the count after the next scan", func(s *Snapshot) bool { return s.Ready && s.Live && s.Count == 10 })
	if s.Scans < 2 || s.Bytes != 20 {
		t.Errorf("%+v, want 10 vaults, 20 bytes, counted by a second scan", *s)
	}
	if strings.Contains(logs.String(), "secretVault") {
		t.Errorf("a file name reached the log:\n%s", logs.String())
	}
}
