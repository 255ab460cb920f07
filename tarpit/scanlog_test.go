package tarpit

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
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

// backupNamed is the name the log gives a rotated copy (lumberjack's naming, which it keeps).
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
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 1, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
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

	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 100, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
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
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 100, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: 10 * time.Millisecond}, clock.now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	go l.run()
	defer l.close()
	l.send(testEntry(1))
	backup := backupNamed(dir, time.Now().Add(-10*24*time.Hour), false)
	writeAged(t, backup, 10*24*time.Hour, 0o600)
	// Two more finished sweeps: at least one began after the backup was
	// written and looked at it.
	seen := l.sweeps.Load()
	waitFor(t, "two more sweeps", func() bool { return l.sweeps.Load() >= seen+2 })
	if !exists(backup) {
		t.Fatal("a 10-day-old backup was deleted under a 30-day retention")
	}
	clock.set(time.Now().Add(25 * 24 * time.Hour)) // now 35 days old
	waitFor(t, "the periodic sweep to delete the aged backup", func() bool { return !exists(backup) })
	// Writing goes on after the sweep, in a 0600 file. (A line of the fake
	// clock's time: one 25 days old would be rotated away at once.)
	e := testEntry(2)
	e.Time = clock.now()
	l.send(e)
	waitFor(t, "the log to be written", func() bool { info, err := os.Stat(path); return err == nil && info.Size() > 0 })
	if info, _ := os.Stat(path); info.Mode().Perm() != 0o600 {
		t.Fatalf("log mode %v", info.Mode().Perm())
	}
}

func TestScanLogNeverBlocks(t *testing.T) {
	t.Parallel()
	l, err := openScanLog(scanLogOptions{path: filepath.Join(t.TempDir(), "tarpit.log"), maxSizeMB: 100, maxTotalMB: 1024, retention: time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
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

// victimFile is a file outside the log directory that a planted symlink
// points at: what the scanner log must never append to, chmod or delete.
func victimFile(t *testing.T) (path string, check func()) {
	t.Helper()
	path = filepath.Join(t.TempDir(), "victim")
	const content = "root:x:0:0::/root:/bin/sh\n"
	writeAged(t, path, 0, 0o644)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path, func() {
		t.Helper()
		info, err := os.Stat(path)
		if err != nil {
			t.Fatalf("victim: %v", err)
		}
		b, _ := os.ReadFile(path)
		if string(b) != content || info.Mode().Perm() != 0o644 {
			t.Fatalf("the victim of a planted symlink was touched: mode %v, content %q", info.Mode().Perm(), b)
		}
	}
}

// TestScanLogRefusesSymlinkAtLogPath: a symlink at the log path is refused
// at start-up; the file it points to is neither chmod-ed nor appended to.
func TestScanLogRefusesSymlinkAtLogPath(t *testing.T) {
	t.Parallel()
	victim, check := victimFile(t)
	path := filepath.Join(t.TempDir(), "tarpit.log")
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 100, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
	if err == nil {
		l.write(&logEntry{Time: time.Now(), Event: "open", Remote: netip.MustParseAddrPort("192.0.2.1:1")})
		l.close()
		check()
		t.Fatal("a symlink at the log path was accepted")
	}
	if !strings.Contains(err.Error(), "symbolic link") {
		t.Errorf("error %q does not say why", err)
	}
	check()
}

// TestScanLogSymlinkPlantedWhileRunning: the log path replaced by a symlink
// after the log was opened (here: once the file the writer held is gone) is
// never written through; the lines are dropped and counted until the link
// goes, then writing resumes in a regular 0600 file.
func TestScanLogSymlinkPlantedWhileRunning(t *testing.T) {
	t.Parallel()
	victim, check := victimFile(t)
	path := filepath.Join(t.TempDir(), "tarpit.log")
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 100, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	e := testEntry(1)
	l.write(&e) // the writer goroutine is not running: write on this one
	l.closeFile()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	l.write(&e)
	check()
	if d := l.dropped.Load(); d != 1 {
		t.Fatalf("dropped %d lines, want the one refused", d)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	l.write(&e)
	l.closeFile()
	info, err := os.Lstat(path)
	if err != nil || !info.Mode().IsRegular() || info.Mode().Perm() != logMode || info.Size() == 0 {
		t.Fatalf("after the link went: %v, %v", info, err)
	}
	check()
}

// TestScanLogSweepLeavesSymlinksAlone: symlinks at rotated names, recent or
// past retention, are neither followed by the chmod to 0600 nor deleted with
// their target; the regular rotated files beside them still are.
func TestScanLogSweepLeavesSymlinksAlone(t *testing.T) {
	t.Parallel()
	victim, check := victimFile(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	recentLink := backupNamed(dir, time.Now().Add(-2*24*time.Hour), false)
	oldLink := backupNamed(dir, time.Now().Add(-40*24*time.Hour), true)
	for _, link := range []string{recentLink, oldLink} {
		if err := os.Symlink(victim, link); err != nil {
			t.Fatal(err)
		}
	}
	at := time.Now().Add(-40 * 24 * time.Hour)
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, oldLink, []unix.Timespec{unix.NsecToTimespec(at.UnixNano()), unix.NsecToTimespec(at.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		t.Fatal(err)
	}
	lax := backupNamed(dir, time.Now().Add(-3*24*time.Hour), false)
	expired := backupNamed(dir, time.Now().Add(-41*24*time.Hour), false)
	writeAged(t, lax, 3*24*time.Hour, 0o644)
	writeAged(t, expired, 41*24*time.Hour, 0o600)
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 100, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	check()
	for _, link := range []string{recentLink, oldLink} {
		if info, err := os.Lstat(link); err != nil || info.Mode()&os.ModeSymlink == 0 {
			t.Errorf("planted link %s: %v %v", filepath.Base(link), info, err)
		}
	}
	if info, err := os.Stat(lax); err != nil || info.Mode().Perm() != logMode {
		t.Errorf("regular rotated file beside the links: %v %v, want mode 0600", info, err)
	}
	if exists(expired) {
		t.Error("a regular rotated file past retention was kept")
	}
}

// TestScanLogRefusesUnsafeDirectory: a log directory that others may
// write to, or below one that anyone may rename things in, is a start-up
// error that says why; a sticky /tmp-like ancestor is fine.
func TestScanLogRefusesUnsafeDirectory(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	mk := func(rel string, mode uint32) string { // raw mode bits: 0o1000 is sticky
		d := filepath.Join(root, rel)
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(d, mode); err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		dir  string
		ok   bool
		want string
	}{
		{mk("world", 0o777), false, "others may write"},
		{mk("group", 0o770), false, "others may write"},
		{mk("sticky", 0o1777), false, "others may write"},
		{mk("open/below", 0o700), false, "anyone may rename"},
		{mk("tmp/below", 0o700), true, ""},
		{mk("private", 0o700), true, ""},
		{mk("readable", 0o755), true, ""},
	} {
		if strings.HasPrefix(tc.dir, filepath.Join(root, "open")) {
			mk("open", 0o777)
		}
		if strings.HasPrefix(tc.dir, filepath.Join(root, "tmp")) {
			mk("tmp", 0o1777)
		}
		l, err := openScanLog(scanLogOptions{path: filepath.Join(tc.dir, "tarpit.log"), maxSizeMB: 100, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
		if tc.ok {
			if err != nil {
				t.Errorf("%s: %v", tc.dir, err)
			} else {
				l.close()
			}
			continue
		}
		if err == nil {
			l.close()
			t.Errorf("%s: an unsafe log directory was accepted", tc.dir)
		} else if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q, want it to say %q", tc.dir, err, tc.want)
		}
	}
}

// requireRoot is for the tests that plant files owned by another user.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipUnlessCI(t, "needs root to make files owned by another user")
	}
}

// fill writes n entries through a running log, waiting for each.
func fill(l *scanLog, from, n int) {
	for i := from; i < from+n; i++ {
		l.ch <- testEntry(i)
	}
}

// TestScanLogKeepsToTheCheckedDirectory: whoever may write to an ancestor
// (Ubuntu's /var/log is root:syslog 0775) can rename the log directory away
// and put one of theirs in its place, with a symlink at the log's name. The
// log keeps going to the directory that was checked at start-up; the new
// one and the link's target get nothing.
func TestScanLogKeepsToTheCheckedDirectory(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	dir := filepath.Join(root, "log")
	path := filepath.Join(dir, "tarpit.log")
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 1, maxTotalMB: 1024, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	go l.run()
	fill(l, 0, 10)
	moved := filepath.Join(root, "log.old")
	if err := os.Rename(dir, moved); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(root, "victim")
	writeAged(t, victim, 0, 0o600)
	if err := os.Symlink(victim, path); err != nil {
		t.Fatal(err)
	}
	// Over 2 MB: the log rotates twice, by name, through the held directory.
	e := testEntry(1)
	line, _ := e.marshal()
	fill(l, 10, (2<<20)/len(line)+100)
	l.close()
	if b, _ := os.ReadFile(victim); string(b) != "{}\n" {
		t.Errorf("the symlink's target was written to: %d bytes", len(b))
	}
	des, _ := os.ReadDir(dir)
	if len(des) != 1 || des[0].Name() != "tarpit.log" {
		t.Errorf("the directory put in the log's place holds %v, want only the planted link", des)
	}
	des, err = os.ReadDir(moved)
	if err != nil {
		t.Fatal(err)
	}
	var lines int
	for _, de := range des {
		b, err := os.ReadFile(filepath.Join(moved, de.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines += strings.Count(string(b), "\n")
	}
	if want := 10 + (2<<20)/len(line) + 100; lines != want || len(des) < 3 {
		t.Errorf("the checked directory holds %d lines in %d files, want %d lines in 3 or more", lines, len(des), want)
	}
}

// TestScanLogStrictAncestors: without /proc to hold the directory by, an
// ancestor writable by a group other than root's (and not sticky) is
// refused, as logrotate does; with it, such an ancestor is fine.
func TestScanLogStrictAncestors(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	root := t.TempDir()
	for _, tc := range []struct {
		name      string
		mode, gid int
		strictOK  bool
	}{
		{"group-other", 0o775, 1000, false},
		{"group-root", 0o775, 0, true},
		{"group-other-sticky", 0o1775, 1000, true},
		{"private", 0o755, 1000, true},
	} {
		parent := filepath.Join(root, tc.name)
		dir := filepath.Join(parent, "log")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(parent, 0, tc.gid); err != nil {
			t.Fatal(err)
		}
		if err := unix.Chmod(parent, uint32(tc.mode)); err != nil {
			t.Fatal(err)
		}
		if err := checkLogDir(dir, false); err != nil {
			t.Errorf("%s, held directory: %v", tc.name, err)
		}
		err := checkLogDir(dir, true)
		if tc.strictOK && err != nil {
			t.Errorf("%s, strict: %v", tc.name, err)
		}
		if !tc.strictOK && (err == nil || !strings.Contains(err.Error(), "group 1000")) {
			t.Errorf("%s, strict: got %v, want a refusal naming the group", tc.name, err)
		}
	}
}

// TestScanLogRefusesForeignSymlinkInPath: a path through a symlink
// someone else owns (planted in a sticky directory, or anywhere) could be
// pointed elsewhere by its owner; it is refused, also when the link is
// reached through one of our own links.
func TestScanLogRefusesForeignSymlinkInPath(t *testing.T) {
	requireRoot(t)
	t.Parallel()
	root := t.TempDir()
	real := filepath.Join(root, "real")
	if err := os.MkdirAll(real, 0o700); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(root, "foreign")
	if err := os.Symlink(real, foreign); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(foreign, 1000, 1000); err != nil {
		t.Fatal(err)
	}
	ours := filepath.Join(root, "ours")
	if err := os.Symlink("foreign", ours); err != nil { // relative, to the foreign link
		t.Fatal(err)
	}
	direct := filepath.Join(root, "direct")
	if err := os.Symlink("real", direct); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{foreign, ours} {
		l, err := openScanLog(scanLogOptions{path: filepath.Join(p, "tarpit.log"), maxSizeMB: 1, maxTotalMB: 1024, retention: time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
		if err == nil {
			l.close()
			t.Errorf("%s: a path through a link owned by uid 1000 was accepted", p)
		} else if !strings.Contains(err.Error(), "symbolic link owned by uid 1000") {
			t.Errorf("%s: %v, want the link and its owner named", p, err)
		}
	}
	l, err := openScanLog(scanLogOptions{path: filepath.Join(direct, "tarpit.log"), maxSizeMB: 1, maxTotalMB: 1024, retention: time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
	if err != nil {
		t.Fatalf("a path through our own link: %v", err)
	}
	l.close()
}

// TestScanLogSizeBudget: a flood of churning scanners writes the log far
// faster than retention deletes it; the oldest rotated files go once the
// total passes --tarpit.log.max-total-size-mb, the newest lines stay.
func TestScanLogSizeBudget(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "tarpit.log")
	old := backupNamed(dir, time.Now().Add(-time.Hour), false)
	writeAged(t, old, time.Hour, 0o600)
	l, err := openScanLog(scanLogOptions{path: path, maxSizeMB: 1, maxTotalMB: 2, retention: 720 * time.Hour, sweepEvery: time.Hour}, time.Now, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	go l.run()
	e := testEntry(1)
	line, _ := e.marshal()
	n := (8 << 20) / len(line)
	fill(l, 0, n)
	l.close()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var total int64
	for _, de := range des {
		info, _ := de.Info()
		total += info.Size()
	}
	// The budget, plus at most one rotation's worth written since the last sweep.
	if total > 3<<20 {
		t.Errorf("%d bytes in %d files kept, want at most 3 MB (2 MB budget + one 1 MB file)", total, len(des))
	}
	if total < 1<<20 {
		t.Errorf("only %d bytes kept: the budget deleted more than it had to", total)
	}
	if exists(old) {
		t.Error("the oldest rotated file outlived the size budget")
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := `"bytes_sent":` + strconv.Itoa(n-1) + `,`; !strings.Contains(string(b[bytes.LastIndexByte(b[:len(b)-1], '\n')+1:]), want) {
		t.Errorf("the newest line is not at the end of the current file (want %s)", want)
	}
}
