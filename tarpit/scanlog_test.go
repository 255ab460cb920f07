package tarpit

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testEntry(i int) logEntry {
	now := time.Now()
	return logEntry{
		Time: now, Event: "close", Protocol: "http",
		Remote:    netip.MustParseAddrPort("192.0.2.44:40000"),
		LocalPort: 9745, Start: now.Add(-time.Duration(i) * time.Millisecond), BytesSent: uint64(i),
		Method: "GET", Path: "/wp-login.php?" + strings.Repeat("x", 200),
	}
}

// backupNamed is a file name lumberjack would give a rotated copy.
func backupNamed(dir string, at time.Time, gz bool) string {
	name := "tarpit-" + at.UTC().Format(backupTimeFormat) + ".log"
	if gz {
		name += ".gz"
	}
	return filepath.Join(dir, name)
}

func writeAged(t *testing.T, path string, age time.Duration, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("{}\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, mode); err != nil { // past the umask
		t.Fatal(err)
	}
	at := time.Now().Add(-age)
	if err := os.Chtimes(path, at, at); err != nil {
		t.Fatal(err)
	}
}

func exists(path string) bool { _, err := os.Stat(path); return err == nil }

func TestScanLogRotatesWithMode0600(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	writeAged(t, path, 0, 0o644) // an existing log with a lax mode
	l, err := openScanLog(path, 1, 720*time.Hour, time.Hour, time.Now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	// 1 MB rotation: write a bit over 2 MB of lines through the writer.
	go l.run()
	e := testEntry(1)
	line, _ := e.marshal()
	for i := 0; i < (2<<20)/len(line)+100; i++ {
		l.ch <- testEntry(i) // blocking here: this test wants every line
	}
	l.close()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var backups int
	for _, de := range des {
		info, _ := de.Info()
		if info.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", de.Name(), info.Mode().Perm())
		}
		if de.Name() != "tarpit.log" {
			if !l.isLogFile(de.Name()) {
				t.Errorf("unexpected file %s", de.Name())
			}
			backups++
		}
		if info.Size() > 1<<20 {
			t.Errorf("%s is %d bytes, past the 1 MB rotation size", de.Name(), info.Size())
		}
	}
	if backups < 2 {
		t.Fatalf("want at least two rotated files, got %d", backups)
	}
	if l.dropped.Load() != 0 {
		t.Fatalf("%d lines dropped", l.dropped.Load())
	}
}

func TestScanLogRetentionAtStartUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	old := backupNamed(dir, time.Now().Add(-40*24*time.Hour), false)
	oldGz := backupNamed(dir, time.Now().Add(-35*24*time.Hour), true)
	recent := backupNamed(dir, time.Now().Add(-2*24*time.Hour), false)
	unrelated := filepath.Join(dir, "notes.txt")
	writeAged(t, old, 40*24*time.Hour, 0o600)
	writeAged(t, oldGz, 35*24*time.Hour, 0o644)
	writeAged(t, recent, 2*24*time.Hour, 0o640)
	writeAged(t, unrelated, 90*24*time.Hour, 0o644)
	writeAged(t, path, 31*24*time.Hour, 0o600) // current log untouched for 31 days

	l, err := openScanLog(path, 100, 720*time.Hour, time.Hour, time.Now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	for _, gone := range []string{old, oldGz} {
		if exists(gone) {
			t.Errorf("%s is past retention but still there", filepath.Base(gone))
		}
	}
	if !exists(recent) || !exists(unrelated) {
		t.Fatal("a recent backup or an unrelated file was deleted")
	}
	if info, _ := os.Stat(recent); info.Mode().Perm() != 0o600 {
		t.Errorf("recent backup mode %v, want 0600", info.Mode().Perm())
	}
	if info, err := os.Stat(path); err == nil && time.Since(info.ModTime()) > time.Hour {
		t.Error("the current log, untouched past retention, was kept")
	}
}

// TestScanLogRetentionPeriodic: files that age past retention while the
// process runs are deleted by the periodic sweep, not only on rotation. A
// fake clock ages them.
func TestScanLogRetentionPeriodic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	var clock atomicTime
	clock.set(time.Now())
	l, err := openScanLog(path, 100, 720*time.Hour, 10*time.Millisecond, clock.now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	go l.run()
	defer l.close()
	l.send(testEntry(1))
	backup := backupNamed(dir, time.Now().Add(-10*24*time.Hour), false)
	writeAged(t, backup, 10*24*time.Hour, 0o600)
	time.Sleep(50 * time.Millisecond)
	if !exists(backup) {
		t.Fatal("a 10-day-old backup was deleted under a 30-day retention")
	}
	clock.set(time.Now().Add(25 * 24 * time.Hour)) // now 35 days old
	waitFor(t, "the periodic sweep to delete the aged backup", func() bool { return !exists(backup) })
	// Writing goes on after the sweep, in a 0600 file.
	l.send(testEntry(2))
	waitFor(t, "the log to be written", func() bool { info, err := os.Stat(path); return err == nil && info.Size() > 0 })
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("log mode %v", info.Mode().Perm())
	}
}

func TestScanLogNeverBlocks(t *testing.T) {
	t.Parallel()
	l, err := openScanLog(filepath.Join(t.TempDir(), "tarpit.log"), 100, time.Hour, time.Hour, time.Now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	// The writer is not running: the queue fills, then lines are dropped
	// and counted instead of blocking the caller.
	for i := 0; i < logQueue+10; i++ {
		l.send(testEntry(i))
	}
	if d := l.dropped.Load(); d != 10 {
		t.Fatalf("dropped %d, want 10", d)
	}
}
