package accesslog

import (
	"os"
	"path/filepath"
	"testing"
)

// copyTruncate does what logrotate's copytruncate does: copy path to
// copyPath, then truncate path in place.
func copyTruncate(t *testing.T, path, copyPath string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(copyPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
}

// TestFollowerCopyTruncateReadsTheCopysRest: the front writes lines the
// follower has not read yet (it reads up to a second after a write), then
// logrotate copies the file and truncates it. Those lines are only in the
// copy now: the follower read the truncated file from its start and lost
// them, about a second of requests per rotation on a busy front (found by
// TestAccesslogAgainstLogrotate with the real logrotate and nginx). They
// are read from the copy, found by the fingerprint of the bytes before
// the read position, whatever logrotate's naming (.1, dateext).
func TestFollowerCopyTruncateReadsTheCopysRest(t *testing.T) {
	t.Parallel()
	for _, suffix := range []string{".1", "-20261129"} {
		t.Run(suffix, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, "access.log")
			appendLines(t, path, 0, 10)
			// An older generation and another log's copy (with the very
			// bytes at the read position): never read.
			if err := os.WriteFile(path+".2", []byte(linesText(100, 130)), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "other.log.1"), []byte(linesText(0, 30)), 0o644); err != nil {
				t.Fatal(err)
			}
			s := newStepFollower(t, true, path)
			s.expect(10, 0)
			appendLines(t, path, 10, 20) // not read before the rotation
			copyTruncate(t, path, path+suffix)
			appendLines(t, path, 20, 25)
			s.step()
			s.expect(25, 1)
			s.step()
			s.expect(25, 1)
			// The next rotation: the copy of the first is no longer at
			// the read position's fingerprint.
			appendLines(t, path, 25, 30)
			copyTruncate(t, path, path+suffix)
			s.step()
			s.expect(30, 2)
		})
	}
}

// TestFollowerCopyTruncateReadPastTheCopy: logrotate's own race: lines the
// front wrote between the copy and the truncate are in neither file. The
// follower read them before the truncate: the copy ends before the read
// position and nothing of it is read again.
func TestFollowerCopyTruncateReadPastTheCopy(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	appendLines(t, path, 0, 10)
	s := newStepFollower(t, true, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path+".1", data, 0o644); err != nil { // the copy
		t.Fatal(err)
	}
	appendLines(t, path, 10, 12) // after the copy
	s.step()
	s.expect(12, 0)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path, 20, 25)
	s.step()
	s.expect(17, 1)
}

// TestFollowerTruncatedWithoutCopy: a truncation with no copy (a writer
// that truncates on open, `: > access.log`) reads the new content only,
// as before; a sibling whose bytes differ at the read position is no copy.
func TestFollowerTruncatedWithoutCopy(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "access.log")
	appendLines(t, path, 0, 10)
	if err := os.WriteFile(path+".1", []byte(linesText(100, 130)), 0o644); err != nil {
		t.Fatal(err)
	}
	s := newStepFollower(t, true, path)
	appendLines(t, path, 10, 20)
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendLines(t, path, 20, 25)
	s.step()
	s.expect(15, 1)
}
