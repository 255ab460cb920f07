package accesslog

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func logLine(i int) string {
	return fmt.Sprintf(`192.0.2.%d - - [29/Nov/2026:02:00:00 +0000] "GET /x/%d HTTP/1.1" 200 10 "-" "ua" 0.001`+"\n", i%250+1, i)
}

func appendLines(t *testing.T, path string, from, to int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for i := from; i < to; i++ {
		if _, err := f.WriteString(logLine(i)); err != nil {
			t.Fatal(err)
		}
	}
}

type followFixture struct {
	t    *testing.T
	c    *Counter
	fl   *Follower
	path string
	done chan struct{}
}

func startFollower(t *testing.T, fromStart bool, paths ...string) *followFixture {
	t.Helper()
	return startFollowerGrace(t, fromStart, 2*time.Second, paths...)
}

// startFollowerGrace starts a follower with a short poll and the given
// grace period. The grace is generous: on a loaded CI machine a writer's
// 100 ms sleep can stretch well past it otherwise.
func startFollowerGrace(t *testing.T, fromStart bool, grace time.Duration, paths ...string) *followFixture {
	t.Helper()
	c := newTestCounter(t, Options{})
	fl, err := NewFollower(c, FollowOptions{Paths: paths, FromStart: fromStart, Poll: 50 * time.Millisecond, Grace: grace})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { fl.Run(ctx); close(done) }()
	<-fl.started
	t.Cleanup(func() {
		cancel()
		<-done
		if fl.Following() != 0 {
			t.Error("files still counted open after Run returned")
		}
	})
	return &followFixture{t: t, c: c, fl: fl, path: paths[0], done: done}
}

func (f *followFixture) parsed() uint64 { return f.c.Snapshot(testNow).Lines["parsed"] }

// waitIdle waits for two more finished poll passes: everything written
// before the call has then been read.
func (f *followFixture) waitIdle() {
	f.t.Helper()
	p := f.fl.Polls()
	eventually(f.t, "two more poll passes", func() bool { return f.fl.Polls() >= p+2 })
}

func (f *followFixture) waitParsed(n uint64) {
	f.t.Helper()
	eventually(f.t, fmt.Sprintf("%d parsed lines", n), func() bool { return f.parsed() >= n })
	f.waitIdle() // and no more arrive: all that was written has been read
	if got := f.parsed(); got != n {
		f.t.Fatalf("parsed %d, want %d", got, n)
	}
}

func TestFollowerStartsAtEnd(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	appendLines(t, path, 0, 10)
	f := startFollower(t, false, path)
	eventually(t, "following", func() bool { return f.fl.Following() == 1 })
	appendLines(t, path, 10, 15)
	f.waitParsed(5)
	if r := f.fl.Rotations(); r != 0 {
		t.Fatalf("rotations %d", r)
	}
}

func TestFollowerFromStart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	appendLines(t, path, 0, 10)
	f := startFollower(t, true, path)
	f.waitParsed(10)
}

func TestFollowerFileAppearsLater(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "nginx") // even the directory is missing
	path := filepath.Join(dir, "access.log")
	f := startFollower(t, false, path)
	f.waitIdle()
	if f.fl.Following() != 0 {
		t.Fatal("following a missing file")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path, 0, 7) // a new file is read from its start
	f.waitParsed(7)
	if f.fl.Following() != 1 {
		t.Fatal("not following")
	}
}

func TestFollowerRenameAndCreate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	appendLines(t, path, 0, 1)
	f := startFollower(t, false, path)
	eventually(t, "following", func() bool { return f.fl.Following() == 1 })
	// A writer holding the file open, like nginx.
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 20; i++ {
		w.WriteString(logLine(i))
	}
	f.waitParsed(20)
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	// Lines written after the rename, before the writer reopens, still count.
	for i := 20; i < 30; i++ {
		w.WriteString(logLine(i))
	}
	f.waitParsed(30)
	appendLines(t, path, 30, 45) // the new file
	// The old writer is late with one more line (nginx worker reopening).
	w.WriteString(logLine(45))
	f.waitParsed(46)
	eventually(t, "one rotation", func() bool { return f.fl.Rotations() == 1 })
	if f.fl.Following() != 1 {
		t.Fatal("not following the new file")
	}
}

func TestFollowerCopyTruncate(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	appendLines(t, path, 0, 1)
	f := startFollower(t, false, path)
	eventually(t, "following", func() bool { return f.fl.Following() == 1 })
	appendLines(t, path, 1, 40)
	f.waitParsed(39)
	// logrotate copytruncate: copy, then truncate in place.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".1", data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "truncation noticed", func() bool { return f.fl.Rotations() == 1 })
	appendLines(t, path, 40, 45)
	f.waitParsed(44)
}

func TestFollowerPartialLineWaits(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	f := startFollower(t, false, path)
	line := logLine(1)
	if err := os.WriteFile(path, []byte(line[:25]), 0o644); err != nil {
		t.Fatal(err)
	}
	eventually(t, "following", func() bool { return f.fl.Following() == 1 })
	f.waitIdle()
	if got := f.fl.BytesRead(); got != 25 {
		t.Fatalf("read %d bytes of the 25 written", got)
	}
	if s := f.c.Snapshot(testNow); s.Lines["parsed"]+s.Lines["malformed"] != 0 {
		t.Fatalf("partial line counted: %v", s.Lines)
	}
	fh, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	fh.WriteString(line[25:])
	fh.Close()
	f.waitParsed(1)
}

func TestFollowerDeletedFileIsClosed(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	appendLines(t, path, 0, 1)
	f := startFollower(t, false, path)
	eventually(t, "following", func() bool { return f.fl.Following() == 1 })
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "file closed after the grace period", func() bool { return f.fl.Following() == 0 })
	appendLines(t, path, 0, 3) // recreated: a rotation, read from the start
	f.waitParsed(3)
	if r := f.fl.Rotations(); r != 1 {
		t.Fatalf("rotations %d, want 1", r)
	}
}

func TestFollowerTwoLogsAndDuplicates(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log")
	f := startFollower(t, false, a, b, a)
	appendLines(t, a, 0, 3)
	appendLines(t, b, 0, 4)
	f.waitParsed(7)
	eventually(t, "both open", func() bool { return f.fl.Following() == 2 })
}

func TestNewFollowerRejects(t *testing.T) {
	t.Parallel()
	c := newTestCounter(t, Options{})
	if _, err := NewFollower(c, FollowOptions{Paths: []string{""}}); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := NewFollower(nil, FollowOptions{}); err == nil {
		t.Error("nil counter accepted")
	}
}

func TestFollowerRenamedWithoutCreateKeepsLateWriter(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	appendLines(t, path, 0, 1)
	f := startFollowerGrace(t, false, time.Second, path)
	eventually(t, "following", func() bool { return f.fl.Following() == 1 })
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	// The writer was never told to reopen: it keeps appending to the
	// renamed file for twice the grace period.
	for i := 0; i < 20; i++ {
		w.WriteString(logLine(i))
		time.Sleep(100 * time.Millisecond)
	}
	f.waitParsed(20)
	if f.fl.Following() != 1 {
		t.Fatal("a file still written to was closed")
	}
	eventually(t, "quiet renamed file closed", func() bool { return f.fl.Following() == 0 })
}

func TestFollowerNotARegularFile(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "access.log")
	if err := os.Mkdir(path, 0o755); err != nil { // a directory where the log should be
		t.Fatal(err)
	}
	var logs strings.Builder
	var mu sync.Mutex
	c := newTestCounter(t, Options{})
	fl, err := NewFollower(c, FollowOptions{Paths: []string{path}, Poll: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { fl.Run(ctx); close(done) }()
	// Five poll passes, each looking at the path again.
	eventually(t, "five poll passes", func() bool { return fl.Polls() >= 5 })
	cancel()
	<-done
	mu.Lock()
	out := logs.String()
	mu.Unlock()
	if fl.Following() != 0 || !strings.Contains(out, "not a regular file") {
		t.Fatalf("following %d, log %q", fl.Following(), out)
	}
	if n := strings.Count(out, "not a regular file"); n != 1 {
		t.Fatalf("logged %d times, want once until it changes", n)
	}
}

// TestFollowerFIFODoesNotBlock: a FIFO at a log's path (made there by
// mistake, or a symlink switched to one) is refused like any other
// non-file; opening it must not wait for a writer and stall the follower,
// the other logs with it, and its shutdown.
func TestFollowerFIFODoesNotBlock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo.log")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "access.log")
	third := filepath.Join(dir, "third.log")
	appendLines(t, other, 0, 0)
	appendLines(t, third, 0, 0)
	link := filepath.Join(dir, "current.log")
	if err := os.Symlink(third, link); err != nil {
		t.Fatal(err)
	}
	f := startFollower(t, true, fifo, other, link)
	appendLines(t, other, 0, 10)
	appendLines(t, third, 0, 5)
	f.waitParsed(15)
	// The link now leads to the FIFO.
	if err := os.Remove(link); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(fifo, link); err != nil {
		t.Fatal(err)
	}
	f.waitIdle()
	appendLines(t, other, 10, 20)
	f.waitParsed(25)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *strings.Builder
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// TestFollowerFollowingBeforeCounting: clavis_accesslog_following counts a
// file as open before any of its lines is counted. It was set after the
// first read, so a scrape during a long backlog (a log read from its start)
// saw lines counted from a log said not to be open (and the collector's
// fixture test failed now and then).
func TestFollowerFollowingBeforeCounting(t *testing.T) {
	t.Parallel()
	for _, appearsLater := range []bool{false, true} {
		dir := t.TempDir()
		path := filepath.Join(dir, "access.log")
		var b strings.Builder
		for i := range 200000 {
			b.WriteString(logLine(i))
		}
		write := func() {
			if err := os.WriteFile(path+".tmp", []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.Rename(path+".tmp", path); err != nil {
				t.Fatal(err)
			}
		}
		if !appearsLater {
			write()
		}
		c := newTestCounter(t, Options{})
		fl, err := NewFollower(c, FollowOptions{Paths: []string{path}, FromStart: true, Poll: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { fl.Run(ctx); close(done) }()
		if appearsLater {
			<-fl.started
			write()
		}
		parsed := func() uint64 {
			c.mu.Lock()
			defer c.mu.Unlock()
			return c.lines[ResultParsed]
		}
		deadline := time.Now().Add(10 * time.Second)
		for parsed() == 0 && time.Now().Before(deadline) {
			runtime.Gosched()
		}
		if n, f := parsed(), fl.Following(); n == 0 || f != 1 {
			t.Errorf("appears later %v: %d lines counted, following %d, want 1", appearsLater, n, f)
		}
		cancel()
		<-done
	}
}
