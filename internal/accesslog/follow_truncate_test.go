package accesslog

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// stepFollower is a Follower the test drives itself: each step is one
// check of the path, what a poll pass or a settled event does, with no
// goroutine and no timer between the test's writes and the reads. What a
// truncation looks like to the follower then depends on nothing but the
// test.
type stepFollower struct {
	t  *testing.T
	c  *Counter
	fl *Follower
}

func newStepFollower(t *testing.T, fromStart bool, path string) *stepFollower {
	t.Helper()
	c := newTestCounter(t, Options{})
	fl, err := NewFollower(c, FollowOptions{Paths: []string{path}, FromStart: fromStart})
	if err != nil {
		t.Fatal(err)
	}
	fl.check(fl.files[0], true)
	if fl.files[0].cur == nil {
		t.Fatalf("%s not opened", path)
	}
	t.Cleanup(fl.closeAll)
	return &stepFollower{t: t, c: c, fl: fl}
}

func (s *stepFollower) step() { s.fl.check(s.fl.files[0], false) }

// expect checks the lines counted so far and the rotations noticed.
func (s *stepFollower) expect(parsed uint64, rotations uint64) {
	s.t.Helper()
	lines := s.c.Snapshot(testNow).Lines
	if lines["parsed"] != parsed || lines["malformed"] != 0 || lines["too_long"] != 0 {
		s.t.Fatalf("lines %v, want %d parsed and nothing else", lines, parsed)
	}
	if _, reqs := s.c.totals(); reqs != parsed {
		s.t.Fatalf("%d requests for %d parsed lines", reqs, parsed)
	}
	if r := s.fl.Rotations(); r != rotations {
		s.t.Fatalf("rotations %d, want %d", r, rotations)
	}
}

func linesText(from, to int) string {
	var b strings.Builder
	for i := from; i < to; i++ {
		b.WriteString(logLine(i))
	}
	return b.String()
}

// TestFollowerTruncatedAndRefilledPastOffset: copytruncate, and the front
// writes more than the follower had read before the follower reads again
// (a busy nginx writes 2,000 lines a second; a read can come a second or
// more after the truncation). The file is never shorter than the read
// position when the follower looks, yet every line of the new content
// counts, once, and the truncation is a rotation. Continuing at the old
// position lost the lines before it and counted half a line as
// malformed; in the "aligned" case the old position falls on a line
// boundary of the new content, so only the count tells.
//
// "same line ends": aligned too, with lines whose last bytes are the same
// on every line, as they often are (one browser's user agent; nginx's
// JSON format ends in `"http_x_forwarded_for":"","http_user_agent":"..."}`).
// The fingerprint of the bytes before the read position must reach back
// to what differs (a time, a request), or the truncation goes unnoticed
// for good: 64 bytes, all user agent, did not, and CI saw a real nginx
// JSON log rotated with copytruncate missed that way.
func TestFollowerTruncatedAndRefilledPastOffset(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		fromStart bool
		old, new  [2]int // line numbers [from, to) before and after the truncation
		text      func(from, to int) string
	}{
		{"just past", true, [2]int{0, 100}, [2]int{1000, 1101}, linesText},
		{"far past", true, [2]int{0, 100}, [2]int{1000, 5000}, linesText},
		{"aligned", true, [2]int{100, 150}, [2]int{600, 700}, linesText}, // lines of one length: the old end is a line end in the new
		{"short old file", true, [2]int{0, 1}, [2]int{1000, 1010}, linesText},
		{"before the first read", false, [2]int{0, 100}, [2]int{1000, 1200}, linesText},
		{"same line ends", true, [2]int{1000, 1050}, [2]int{5000, 5100}, sameEndText},
		{"same line ends, one line", true, [2]int{1000, 1001}, [2]int{5000, 5003}, sameEndText},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "access.log")
			w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			oldText, newText := tc.text(tc.old[0], tc.old[1]), tc.text(tc.new[0], tc.new[1])
			if tc.name == "aligned" && (len(oldText) != 50*len(logLine(100)) || len(newText) != 100*len(logLine(100))) {
				t.Fatal("the aligned case is not aligned")
			}
			if strings.HasPrefix(tc.name, "same line ends") && (len(newText)%len(oldText) != 0 || oldText[len(oldText)-64:] != newText[len(oldText)-64:len(oldText)]) {
				t.Fatal("no line of the new content ends with the same 64 bytes at the old end")
			}
			w.WriteString(oldText)
			s := newStepFollower(t, tc.fromStart, path)
			var oldLines uint64
			if tc.fromStart {
				oldLines = uint64(tc.old[1] - tc.old[0])
			}
			s.expect(oldLines, 0)
			// logrotate copytruncate; nginx (O_APPEND) goes on writing.
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
			w.WriteString(newText)
			if len(newText) <= len(oldText) {
				t.Fatal("the new content does not reach past the old")
			}
			s.step()
			s.expect(oldLines+uint64(tc.new[1]-tc.new[0]), 1)
			read := uint64(len(newText))
			if tc.fromStart {
				read += uint64(len(oldText))
			}
			if got := s.fl.BytesRead(); got != read {
				t.Fatalf("read %d bytes, want %d", got, read)
			}
			// And it goes on as before.
			w.WriteString(logLine(7))
			s.step()
			s.step()
			s.expect(oldLines+uint64(tc.new[1]-tc.new[0])+1, 1)
		})
	}
}

// sameEndText is lines of one length whose last 150 bytes are the same:
// a time and a request, then one browser's user agent.
func sameEndText(from, to int) string {
	const ua = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.86"
	var b strings.Builder
	for i := from; i < to; i++ {
		fmt.Fprintf(&b, `192.0.2.1 - - [29/Nov/2026:02:%02d:%02d +0000] "GET /x/%04d HTTP/1.1" 200 10 "-" "%s" 0.001`+"\n", i/60%60, i%60, i, ua)
	}
	return b.String()
}

// TestFollowerTruncatedUnderWriterWithoutAppend: a writer that does not
// open its log with O_APPEND (a shell's "> file", many daemons' own log
// files) goes on writing at its old position after copytruncate: the file
// is then a hole of NUL bytes up to there, and the new lines after it.
// Whether the follower looks while the file is still empty or only once
// it is past the old read position, the new lines count, once, and the
// NUL bytes are no malformed line; also where they are written out (a
// file system without holes), over more than one read's worth.
func TestFollowerTruncatedUnderWriterWithoutAppend(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name           string
		old            int
		lookWhileEmpty bool
		zeros          bool
	}{
		{"look later", 50, false, false},
		{"look while empty", 50, true, false},
		{"zeros written", 4000, false, true},
	} {
		path := filepath.Join(t.TempDir(), "access.log")
		w, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		oldText := linesText(0, tc.old)
		w.WriteString(oldText)
		s := newStepFollower(t, true, path)
		s.expect(uint64(tc.old), 0)
		if err := os.Truncate(path, 0); err != nil {
			t.Fatal(err)
		}
		if tc.lookWhileEmpty {
			s.step()
			s.expect(uint64(tc.old), 1)
		}
		if tc.zeros {
			if len(oldText) <= readSize {
				t.Fatal("the zeros fit in one read")
			}
			if _, err := w.WriteAt(make([]byte, len(oldText)), 0); err != nil {
				t.Fatal(err)
			}
		}
		w.WriteString(linesText(tc.old, tc.old+20))
		w.Close()
		s.step()
		s.expect(uint64(tc.old+20), 1)
		info, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		// The hole is skipped or read, never both: what was read is the
		// old file and the new one.
		if got, want := s.fl.BytesRead(), uint64(len(oldText))+uint64(info.Size()); got != want {
			t.Errorf("%s: read %d bytes, want %d", tc.name, got, want)
		}
	}
}

// TestFollowerAppendsAreNoTruncation: plain appends, in pieces of any size
// (a byte, part of a line, many lines, a line written twice in a row), never
// look like a truncation, however the reads fall between them.
func TestFollowerAppendsAreNoTruncation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.WriteString(linesText(0, 3))
	s := newStepFollower(t, false, path)
	var text strings.Builder
	for i := range 3000 {
		line := logLine(i % 400) // lines repeat: so do the bytes before a read position
		if i%7 == 0 {
			text.WriteString(line)
		}
		text.WriteString(line)
	}
	data := text.String()
	rng := rand.New(rand.NewPCG(3, 4))
	for len(data) > 0 {
		n := min(len(data), []int{1, 2, 63, 64, 65, 100, 4096, 300000}[rng.IntN(8)])
		w.WriteString(data[:n])
		data = data[n:]
		if rng.IntN(3) > 0 {
			s.step()
		}
	}
	s.step()
	s.expect(uint64(3000+3000/7+1), 0)
	if got, want := s.fl.BytesRead(), uint64(text.Len()); got != want {
		t.Fatalf("read %d bytes, want %d", got, want)
	}
}

// TestFollowerCopyTruncateRefillRunning: the same under a running
// follower, which may look at any moment of the truncate and the refill:
// either way every line counts once and there is one rotation.
func TestFollowerCopyTruncateRefillRunning(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	appendLines(t, path, 0, 1)
	f := startFollower(t, false, path)
	eventually(t, "following", func() bool { return f.fl.Following() == 1 })
	old := linesText(1, 200)
	appendLines(t, path, 1, 200)
	f.waitParsed(199)
	// nginx's O_APPEND descriptor after logrotate's truncate: the file
	// is refilled well past the old position in one write.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	newText := linesText(1000, 3000)
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString(newText)
	w.Close()
	want := uint64(len(old) + len(newText))
	eventually(t, "every byte read", func() bool { return f.fl.BytesRead() >= want })
	f.waitParsed(199 + 2000)
	if got := f.fl.BytesRead(); got != want {
		t.Fatalf("read %d bytes, want %d", got, want)
	}
	if r := f.fl.Rotations(); r != 1 {
		t.Fatalf("rotations %d, want 1", r)
	}
	if m := f.c.Snapshot(testNow).Lines["malformed"]; m != 0 {
		t.Fatalf("%d malformed lines", m)
	}
}

// BenchmarkFollowerRead: a file's lines through the follower's read (the
// fingerprint check, pread and line counting), from a warm page cache.
func BenchmarkFollowerRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), "access.log")
	data := genCombined(20000)
	if err := os.WriteFile(path, data, 0o644); err != nil {
		b.Fatal(err)
	}
	c := newTestCounter(b, Options{})
	fl, err := NewFollower(c, FollowOptions{Paths: []string{path}, FromStart: true})
	if err != nil {
		b.Fatal(err)
	}
	tf := fl.files[0]
	fl.check(tf, true)
	defer fl.closeAll()
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		tf.cur.offset, tf.cur.tailN = 0, 0
		if n := fl.read(tf, tf.cur); n != int64(len(data)) {
			b.Fatalf("read %d of %d bytes", n, len(data))
		}
	}
	b.ReportMetric(float64(20000*b.N)/b.Elapsed().Seconds(), "lines/s")
}

// TestFollowerRefilledToTheSameSize: truncated and refilled with other
// lines to exactly the size already read (a harness replaying logs of one
// length, lines of one length), the file was not checked for a
// truncation at all: nothing was appended, so its new lines were left
// unread until the next append, and lost for good when the file was
// rotated away (renamed) first.
func TestFollowerRefilledToTheSameSize(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	oldText, newText := linesText(100, 150), linesText(150, 200)
	if len(oldText) != len(newText) {
		t.Fatal("not the same size")
	}
	if err := os.WriteFile(path, []byte(oldText), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStepFollower(t, true, path)
	s.expect(50, 0)
	if err := os.WriteFile(path, []byte(newText), 0o644); err != nil { // O_TRUNC, then the write
		t.Fatal(err)
	}
	s.step()
	s.expect(100, 1)
	s.step()
	s.expect(100, 1)
	// And rotated away before anything is appended: nothing more, nothing twice.
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(linesText(0, 5)), 0o644); err != nil {
		t.Fatal(err)
	}
	s.step()
	s.fl.readDraining(false)
	s.expect(105, 2)
}

// TestFollowerSameContentRefillIsNoTruncation: truncated and refilled
// with the same lines before the follower looked (a harness replaying the
// same log, cp of a backup over it), the file cannot be told from one
// that was only appended to: what is past the read position counts, the
// rest not again. Counting it again is the worse mistake of the two: an
// append taken for a truncation would count a whole file twice.
func TestFollowerSameContentRefillIsNoTruncation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(path, []byte(linesText(0, 50)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStepFollower(t, true, path)
	for _, n := range []int{50, 60} {
		if err := os.WriteFile(path, []byte(linesText(0, n)), 0o644); err != nil {
			t.Fatal(err)
		}
		s.step()
		s.expect(uint64(n), 0)
	}
}

// flakyFile is an open log whose reads or fstat fail while told to (EIO:
// a failing disk, an NFS server gone away).
type flakyFile struct {
	*os.File
	failRead, failStat bool
	reads, stats       int // calls that failed
}

func (f *flakyFile) ReadAt(p []byte, off int64) (int, error) {
	if f.failRead {
		f.reads++
		return 0, &os.PathError{Op: "read", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.ReadAt(p, off)
}

func (f *flakyFile) Stat() (os.FileInfo, error) {
	if f.failStat {
		f.stats++
		return nil, &os.PathError{Op: "stat", Path: f.Name(), Err: syscall.EIO}
	}
	return f.File.Stat()
}

// TestFollowerReadErrorsAreNoTruncation: a pread of the fingerprint that
// failed was taken for a truncation: the read position went back to 0,
// and once reads worked again the whole file was counted a second time.
// A failing fstat left the file read blind (no truncation check). While
// either fails, the file is not read, nothing is counted, each check
// returns (no retry loop); once they work the lines written meanwhile
// count once.
func TestFollowerReadErrorsAreNoTruncation(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name             string
		failRead, failSt bool
	}{{"read", true, false}, {"stat", false, true}, {"both", true, true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "access.log")
			appendLines(t, path, 0, 100)
			s := newStepFollower(t, true, path)
			s.expect(100, 0)
			of := s.fl.files[0].cur
			ff := &flakyFile{File: of.f.(*os.File), failRead: tc.failRead, failStat: tc.failSt}
			of.f = ff
			appendLines(t, path, 100, 150)
			for range 3 {
				s.step()
				s.fl.readDraining(true)
			}
			s.expect(100, 0)
			if ff.reads+ff.stats == 0 || ff.reads+ff.stats > 6 {
				t.Fatalf("%d failed reads and %d failed stats in 3 checks", ff.reads, ff.stats)
			}
			ff.failRead, ff.failStat = false, false
			appendLines(t, path, 150, 160)
			s.step()
			s.expect(160, 0)
			info, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if got := s.fl.BytesRead(); got != uint64(info.Size()) {
				t.Fatalf("read %d bytes of %d", got, info.Size())
			}
		})
	}
}

// TestFollowerFilledInTailIsNoTruncation: a file whose reader saw a
// writer's later bytes before its earlier ones (NFS: pages written back
// out of order; the earlier ones read as NUL bytes) has those bytes
// filled in afterwards. When they fell among the last bytes before the
// read position, the fingerprint no longer matched, and the whole file
// was read again: every line counted twice. (The line read with the NUL
// bytes is malformed; nothing can be done about that.)
func TestFollowerFilledInTailIsNoTruncation(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	appendLines(t, path, 0, 50)
	s := newStepFollower(t, true, path)
	s.expect(50, 0)
	w, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	info, err := w.Stat()
	if err != nil {
		t.Fatal(err)
	}
	end := info.Size()
	line := logLine(50)
	cut := len(line) - 20 // the last 20 bytes land first, after a hole
	if _, err := w.WriteAt([]byte(line[cut:]), end+int64(cut)); err != nil {
		t.Fatal(err)
	}
	s.step()
	if _, err := w.WriteAt([]byte(line[:cut]), end); err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteAt([]byte(linesText(51, 60)), end+int64(len(line))); err != nil {
		t.Fatal(err)
	}
	s.step()
	s.step()
	lines := s.c.Snapshot(testNow).Lines
	if lines["parsed"] != 59 || lines["malformed"] > 1 || s.fl.Rotations() != 0 {
		t.Fatalf("lines %v, %d rotations; want 59 parsed, at most one malformed, no rotation", lines, s.fl.Rotations())
	}
	// The fingerprint is what was filled in now: a truncation is still
	// noticed.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path, 1000, 1100)
	s.step()
	if lines := s.c.Snapshot(testNow).Lines; lines["parsed"] != 159 || s.fl.Rotations() != 1 {
		t.Fatalf("after copytruncate: lines %v, %d rotations", lines, s.fl.Rotations())
	}
}
