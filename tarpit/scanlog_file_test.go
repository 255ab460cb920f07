package tarpit

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func openTestScanLog(t *testing.T, path string, logger *slog.Logger) *scanLog {
	t.Helper()
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 1, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, logger)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.close)
	return l
}

// writeN writes n lines on the calling goroutine (the writer is not running).
func writeN(l *scanLog, n int) {
	for i := range n {
		e := testEntry(i)
		l.write(&e)
	}
}

func countLines(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestScanLogReopensDeletedOrRenamedLog: once the log is deleted or renamed
// (an operator's rm, logrotate), the lines go to a new file at the path,
// not to the file no name, or another name, leads to.
func TestScanLogReopensDeletedOrRenamedLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	l := openTestScanLog(t, path, discardLogger())
	writeN(l, 1)
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	writeN(l, 5)
	if n := countLines(t, path); n != 5 {
		t.Fatalf("after the log was deleted, 5 lines written, %d in the file at the path", n)
	}
	moved := filepath.Join(dir, "tarpit.log.1")
	if err := os.Rename(path, moved); err != nil {
		t.Fatal(err)
	}
	writeN(l, 3)
	if n, m := countLines(t, path), countLines(t, moved); n != 3 || m != 5 {
		t.Fatalf("after the log was renamed, 3 lines written: %d at the path, %d in the renamed file (want 3 and 5)", n, m)
	}
	if info, _ := os.Stat(path); info.Mode().Perm() != logMode {
		t.Fatalf("reopened log mode %v", info.Mode().Perm())
	}
	if d := l.dropped.Load(); d != 0 {
		t.Fatalf("%d lines dropped", d)
	}
}

// TestScanLogFullDisk: while writes fail (a full disk writes what fits,
// then fails), lines are dropped and counted, one warning says so and one
// line says when it is over: not a warning a line. No partial line is
// left to merge with the next one.
func TestScanLogFullDisk(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tarpit.log")
	rec := &scanLogRecorder{}
	l := openTestScanLog(t, path, slog.New(rec))
	full := false
	l.writeFile = func(f *os.File, b []byte) (int, error) {
		if !full {
			return f.Write(b)
		}
		n, _ := f.Write(b[:len(b)/2])
		return n, &os.PathError{Op: "write", Path: f.Name(), Err: unix.ENOSPC}
	}
	writeN(l, 3)
	full = true
	writeN(l, 100)
	full = false
	writeN(l, 3)
	if d := l.dropped.Load(); d != 100 {
		t.Errorf("dropped %d, want 100", d)
	}
	if n := rec.count("WARN", "cannot write"); n != 1 {
		t.Errorf("%d warnings for 100 failed lines, want 1:\n%s", n, rec)
	}
	if n := rec.count("INFO", "again", "dropped=100"); n != 1 {
		t.Errorf("want one line when writing recovers, with the count:\n%s", rec)
	}
	if strings.Contains(rec.String(), "192.0.2.") {
		t.Error("an address went to the process log")
	}
	times, broken := scanLogLines(t, filepath.Dir(path))
	if len(times) != 6 || broken != 0 {
		t.Errorf("the log holds %d lines and %d broken ones, want 6 whole lines", len(times), broken)
	}
}

// TestScanLogStartsAfterABrokenLine: a file found ending mid-line (a crash,
// or a partial write that could not be undone) gets the next line on a line
// of its own.
func TestScanLogStartsAfterABrokenLine(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "tarpit.log")
	whole := lineAt(time.Now())
	if err := os.WriteFile(path, append(whole, whole[:40]...), 0o600); err != nil {
		t.Fatal(err)
	}
	l := openTestScanLog(t, path, discardLogger())
	writeN(l, 2)
	times, broken := scanLogLines(t, filepath.Dir(path))
	if len(times) != 3 || broken != 1 {
		t.Fatalf("%d whole lines and %d broken, want 3 and the one cut", len(times), broken)
	}
}

// TestScanLogStopsWhileDirectoryUnsafe: a log directory made writable by
// others after start-up (they could then replace the log by a file of
// theirs, or a link) stops the writer: lines are dropped and counted, one
// error names the directory and its mode, and writing resumes once it is
// fixed.
func TestScanLogStopsWhileDirectoryUnsafe(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	rec := &scanLogRecorder{}
	l := openTestScanLog(t, path, slog.New(rec))
	writeN(l, 1)
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	writeN(l, 5)
	l.sweep()
	writeN(l, 5)
	if n := countLines(t, path); n != 1 {
		t.Errorf("%d lines written with the directory mode 0777, want the 1 from before", n)
	}
	if d := l.dropped.Load(); d != 10 {
		t.Errorf("dropped %d, want 10", d)
	}
	if n := rec.count("ERROR", "dir="+dir, "mode=0777"); n != 1 {
		t.Errorf("want one error naming the directory and its mode:\n%s", rec)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeN(l, 2)
	if n := countLines(t, path); n != 3 {
		t.Errorf("%d lines after the directory was fixed, want 3", n)
	}
	if n := rec.count("INFO", "again", "dropped=10"); n != 1 {
		t.Errorf("want one line when writing resumes:\n%s", rec)
	}
	if strings.Contains(rec.String(), "192.0.2.") {
		t.Error("an address went to the process log")
	}
}

// TestScanLogStopsWhenDirectoryChangesOwner: the same for a directory
// given to another user.
func TestScanLogStopsWhenDirectoryChangesOwner(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	l := openTestScanLog(t, path, discardLogger())
	writeN(l, 1)
	if err := os.Chown(dir, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	writeN(l, 3)
	if n := countLines(t, path); n != 1 || l.dropped.Load() != 3 {
		t.Errorf("directory given to uid 1000: %d lines in the log, %d dropped; want 1 and 3", n, l.dropped.Load())
	}
	if err := os.Chown(dir, 0, 0); err != nil {
		t.Fatal(err)
	}
	writeN(l, 1)
	if n := countLines(t, path); n != 2 {
		t.Errorf("%d lines once the directory was given back, want 2", n)
	}
}

// TestScanLogRefusesHardLinkedLog: a log file with a second name is
// refused at start-up and while running (its lines would be readable, and
// outlive retention, under the other name).
func TestScanLogRefusesHardLinkedLog(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	if err := os.WriteFile(path, lineAt(time.Now()), 0o600); err != nil {
		t.Fatal(err)
	}
	other := filepath.Join(dir, "copy")
	if err := os.Link(path, other); err != nil {
		t.Fatal(err)
	}
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 1, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
	if err == nil {
		l.close()
		t.Fatal("a log file with two hard links was accepted at start-up")
	}
	if !strings.Contains(err.Error(), "hard links") {
		t.Errorf("error %q does not say why", err)
	}
	if err := os.Remove(other); err != nil {
		t.Fatal(err)
	}
	l = openTestScanLog(t, path, discardLogger())
	writeN(l, 1)
	if err := os.Link(path, other); err != nil {
		t.Fatal(err)
	}
	writeN(l, 2)
	if n := countLines(t, other); n != 2 || l.dropped.Load() != 2 { // the line there and the first written
		t.Errorf("with a second link: %d lines, %d dropped; want 2 and 2", n, l.dropped.Load())
	}
	if err := os.Remove(other); err != nil {
		t.Fatal(err)
	}
	writeN(l, 1)
	if n := countLines(t, path); n != 3 {
		t.Errorf("%d lines once the link was gone, want 3", n)
	}
}

// TestScanLogRefusesForeignLog: a log file owned by another user (one who
// replaced it while its directory was writable) is refused at start-up and
// when the path is reopened; nothing is written to it and it is not made
// ours.
func TestScanLogRefusesForeignLog(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	plant := func() {
		t.Helper()
		os.Remove(path)
		writeAged(t, path, 0, 0o600)
		if err := os.Chown(path, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	check := func() {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Stat(path, &st); err != nil || st.Uid != 1000 || st.Size != 3 {
			t.Fatalf("the planted file: uid %d, %d bytes, %v; want uid 1000 and untouched", st.Uid, st.Size, err)
		}
	}
	plant()
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 1, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
	if err == nil {
		l.close()
		t.Fatal("a log file owned by uid 1000 was accepted at start-up")
	}
	if !strings.Contains(err.Error(), "owned by uid 1000") {
		t.Errorf("error %q does not say why", err)
	}
	check()
	os.Remove(path)
	l = openTestScanLog(t, path, discardLogger())
	writeN(l, 1)
	plant()
	e := testEntry(1)
	line, _ := e.marshal()
	writeN(l, (1<<20)/len(line)+10) // past the rotation size too
	check()
	if d := l.dropped.Load(); d != uint64((1<<20)/len(line)+10) {
		t.Errorf("dropped %d lines, want every one since the file was replaced", d)
	}
}
