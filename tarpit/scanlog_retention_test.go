package tarpit

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// scanLogLines reads every line of the log files in dir: the times of
// those that parse, and how many do not.
func scanLogLines(t *testing.T, dir string) (times []time.Time, broken int) {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			var v struct {
				Time string `json:"time"`
			}
			at, err := time.Time{}, json.Unmarshal(sc.Bytes(), &v)
			if err == nil {
				at, err = time.Parse(time.RFC3339Nano, v.Time)
			}
			if err != nil {
				broken++
				continue
			}
			times = append(times, at)
		}
	}
	return times, broken
}

// lineAt is a scanner log line written at at.
func lineAt(at time.Time) []byte {
	e := testEntry(1)
	e.Time, e.Start = at, at
	b, _ := e.marshal()
	return b
}

// scanLogRecorder keeps what the log reports, for the tests that count
// messages.
type scanLogRecorder struct {
	mu   sync.Mutex
	recs []string // "LEVEL message key=value ..."
}

func (r *scanLogRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *scanLogRecorder) WithAttrs([]slog.Attr) slog.Handler       { return r }
func (r *scanLogRecorder) WithGroup(string) slog.Handler            { return r }
func (r *scanLogRecorder) Handle(_ context.Context, rec slog.Record) error {
	s := rec.Level.String() + " " + rec.Message
	rec.Attrs(func(a slog.Attr) bool { s += " " + a.Key + "=" + a.Value.String(); return true })
	r.mu.Lock()
	r.recs = append(r.recs, s)
	r.mu.Unlock()
	return nil
}

// count is how many records contain every one of subs.
func (r *scanLogRecorder) count(subs ...string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
next:
	for _, s := range r.recs {
		for _, sub := range subs {
			if !strings.Contains(s, sub) {
				continue next
			}
		}
		n++
	}
	return n
}

func (r *scanLogRecorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.recs, "\n")
}

// TestScanLogNoLineOutlivesRetention: on a quiet POP the current file
// never reaches the rotation size, and written now and then it never gets
// old by its mtime; its first lines must go at retention all the same. One
// line every 19 hours for 100 days, with a fake clock that the file times
// follow: at every step no line is older than the retention, and none
// younger than the retention less the rotation interval was deleted.
func TestScanLogNoLineOutlivesRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	const retention = 720 * time.Hour
	var clock atomicTime
	start := time.Now()
	clock.set(start)
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 100, maxTotalMB: 1024, retention: retention, sweepEvery: time.Hour}, clock.now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if l.rotateEvery != 24*time.Hour {
		t.Fatalf("rotation interval %v, want a day (1/30 of 30 days)", l.rotateEvery)
	}
	// The file's mtime follows the fake clock, as it would the real one.
	l.writeFile = func(f *os.File, b []byte) (int, error) {
		n, err := f.Write(b)
		if at := clock.now(); err == nil {
			err = os.Chtimes(f.Name(), at, at)
		}
		return n, err
	}
	var written []time.Time
	for at := start; at.Before(start.Add(100 * 24 * time.Hour)); at = at.Add(19 * time.Hour) {
		clock.set(at)
		e := testEntry(len(written))
		e.Time, e.Start = at, at
		l.write(&e) // the writer goroutine is not running: write and sweep on this one
		written = append(written, at)
		l.sweep()
		times, broken := scanLogLines(t, dir)
		if broken != 0 {
			t.Fatalf("%d broken lines", broken)
		}
		kept := map[time.Time]bool{}
		for _, lt := range times {
			kept[lt.UTC()] = true
			if age := at.Sub(lt); age > retention {
				t.Fatalf("day %.1f: a line %.1f days old is kept under a 30-day retention", at.Sub(start).Hours()/24, age.Hours()/24)
			}
		}
		for _, w := range written {
			if at.Sub(w) < retention-l.rotateEvery && !kept[w.UTC()] {
				t.Fatalf("day %.1f: a line %.1f days old was deleted, before retention less the rotation interval", at.Sub(start).Hours()/24, at.Sub(w).Hours()/24)
			}
		}
	}
}

// TestScanLogAgeAfterRestart: the first line's time of a current file
// found at start-up is read from it, so a restart does not make old lines
// look new: it is rotated at start-up when that line is a rotation interval
// old, and deleted when it is past retention.
func TestScanLogAgeAfterRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	var clock atomicTime
	start := time.Now()
	clock.set(start)
	o := scanLogOptions{path: path, maxSizeMB: 100, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}
	l, err := openScanLog(o, clock.now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	e := testEntry(1)
	e.Time, e.Start = start, start
	l.write(&e)
	l.close()
	clock.set(start.Add(25 * time.Hour)) // past the day's rotation interval
	if l, err = openScanLog(o, clock.now, discardLogger()); err != nil {
		t.Fatal(err)
	}
	l.close()
	if info, err := os.Stat(path); err != nil || info.Size() != 0 {
		t.Fatalf("the current file, its first line 25 hours old, was not rotated at start-up: %v %v", info, err)
	}
	if times, _ := scanLogLines(t, dir); len(times) != 1 {
		t.Fatalf("%d lines kept, want the one, in a rotated file", len(times))
	}

	// A current file from before rotation by age: fresh by its mtime, but
	// with a first line past retention.
	old := start.Add(-40 * 24 * time.Hour)
	if err := os.WriteFile(path, append(lineAt(old), lineAt(start)...), 0o600); err != nil {
		t.Fatal(err)
	}
	clock.set(start)
	if l, err = openScanLog(o, clock.now, discardLogger()); err != nil {
		t.Fatal(err)
	}
	defer l.close()
	for _, lt := range must(scanLogLines(t, dir)) {
		if lt.Before(start.Add(-o.retention)) {
			t.Fatal("a current file holding a 40-day-old line was kept under a 30-day retention")
		}
	}
}

func must(times []time.Time, _ int) []time.Time { return times }

// TestScanLogRotatedFileSpanningPastRetention: a rotated file whose newest
// line is recent but whose first is past retention (rotated by size alone,
// before rotation by age) is deleted; one whose lines are all recent stays.
func TestScanLogRotatedFileSpanningPastRetention(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	long := backupNamed(dir, now.Add(-24*time.Hour), false)
	if err := os.WriteFile(long, append(lineAt(now.Add(-35*24*time.Hour)), lineAt(now.Add(-24*time.Hour))...), 0o600); err != nil {
		t.Fatal(err)
	}
	short := backupNamed(dir, now.Add(-23*time.Hour), false)
	if err := os.WriteFile(short, append(lineAt(now.Add(-10*24*time.Hour)), lineAt(now.Add(-23*time.Hour))...), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := openScanLog(scanLogOptions{path: filepath.Join(dir, "tarpit.log"), maxSizeMB: 100, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if exists(long) {
		t.Error("a rotated file holding a 35-day-old line was kept under a 30-day retention")
	}
	if !exists(short) {
		t.Error("a rotated file of lines 10 days old at most was deleted")
	}
}

// TestScanLogSweepsWhenDue: the next sweep is set for when the next file
// falls due (here the current file's rotation, in an hour), not a sweep
// interval later, so lines go at their time.
func TestScanLogSweepsWhenDue(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	var clock atomicTime
	start := time.Now()
	clock.set(start)
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 100, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: 10 * time.Hour}, clock.now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	e := testEntry(1)
	e.Time, e.Start = start, start
	l.write(&e)
	clock.set(start.Add(23 * time.Hour))
	l.sweep()
	if l.nextSweep != time.Hour {
		t.Fatalf("next sweep in %v, want the hour to the current file's rotation", l.nextSweep)
	}
	clock.set(start.Add(24 * time.Hour))
	l.sweep()
	if info, err := os.Stat(path); err != nil || info.Size() != 0 {
		t.Fatalf("the current file was not rotated at its time: %v %v", info, err)
	}
	// The rotated file goes at retention less the interval after its mtime
	// (the real time it was written); a sweep interval is sooner.
	if l.nextSweep != 10*time.Hour {
		t.Errorf("next sweep in %v, want the sweep interval", l.nextSweep)
	}
}

// TestScanLogClockStepBack: after a step of the wall clock 10 days back (an
// NTP correction, a VM restored), the current file's first line is in the
// future, and every line written meanwhile was dated by it: kept 10 days
// past retention. The file is rotated at once instead.
func TestScanLogClockStepBack(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const retention = 720 * time.Hour
	var clock atomicTime
	start := time.Now()
	clock.set(start)
	l, err := openScanLog(scanLogOptions{path: filepath.Join(dir, "tarpit.log"), maxSizeMB: 100, maxTotalMB: 1024, retention: retention, sweepEvery: time.Hour}, clock.now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	// File times follow the fake clock, as they follow the real one.
	l.writeFile = func(f *os.File, b []byte) (int, error) {
		n, err := f.Write(b)
		if at := clock.now(); err == nil {
			err = os.Chtimes(f.Name(), at, at)
		}
		return n, err
	}
	write := func(at time.Time) {
		clock.set(at)
		e := testEntry(1)
		e.Time, e.Start = at, at
		l.write(&e)
		l.sweep()
	}
	write(start)
	var worst time.Duration
	back := start.Add(-10 * 24 * time.Hour)
	for at := back; at.Before(back.Add(45 * 24 * time.Hour)); at = at.Add(time.Hour) {
		write(at)
		times, _ := scanLogLines(t, dir)
		for _, lt := range times {
			worst = max(worst, at.Sub(lt))
		}
	}
	if worst > retention+time.Hour {
		t.Errorf("oldest line seen %.1f days old under a %v retention", worst.Hours()/24, retention)
	}
}

// TestScanLogUnreadFirstLineNotKept: a rotated file whose first line could
// not be read (EMFILE while scanners flood the tarpit) was remembered as
// having no timed line, and, since rotated files do not change, never read
// again: its first-line rule was lost for good, and a 35-day-old line kept
// for 29 days after the file's mtime.
func TestScanLogUnreadFirstLineNotKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	now := time.Now()
	l, err := openScanLog(scanLogOptions{path: filepath.Join(dir, "tarpit.log"), maxSizeMB: 100, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	old := backupNamed(dir, now.Add(-24*time.Hour), false)
	if err := os.WriteFile(old, append(lineAt(now.Add(-35*24*time.Hour)), lineAt(now.Add(-24*time.Hour))...), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(old, now.Add(-24*time.Hour), now.Add(-24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	l.readFirst = func(string) (time.Time, bool, error) { return time.Time{}, false, syscall.EMFILE }
	l.sweep()
	if !exists(old) {
		t.Fatal("deleted by a sweep that could not read it: the test exercises nothing")
	}
	l.readFirst = readFirstLineTime
	l.sweep()
	if exists(old) {
		t.Error("a rotated file holding a 35-day-old line is kept after a sweep that could read it")
	}
}

// TestScanLogFirstLineDoesNotDelaySweep: the first line after start-up
// restarted the wait for the sweep openScanLog had scheduled, so a file
// due before that sweep went as late as the time until the first line
// (up to the sweep interval, an hour: double a 1 h retention).
func TestScanLogFirstLineDoesNotDelaySweep(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const retention = time.Hour
	now := time.Now()
	mt := now.Add(-(retention - rotateInterval(retention)) + 3*time.Second) // due at +3 s
	old := backupNamed(dir, mt, false)
	if err := os.WriteFile(old, lineAt(mt), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(old, mt, mt); err != nil {
		t.Fatal(err)
	}
	l, err := openScanLog(scanLogOptions{path: filepath.Join(dir, "tarpit.log"), maxSizeMB: 100, maxTotalMB: 1024, retention: retention, sweepEvery: time.Hour}, time.Now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	go l.run()
	time.Sleep(2500 * time.Millisecond)
	l.send(testEntry(1)) // without the fix, the sweep waits 3 s from here
	for exists(old) {
		if time.Since(now) > 4500*time.Millisecond {
			t.Fatalf("a rotated file due at +3 s is still there at +4.5 s (the first line at +2.5 s restarted the sweep's wait)")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
