//go:build linux

package collector

import (
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// dirent64 builds one linux_dirent64 record as getdents64 returns it
// (8-byte aligned, NUL-terminated name).
func dirent64(typ byte, name string) []byte {
	reclen := (direntNameOff + len(name) + 1 + 7) &^ 7
	rec := make([]byte, reclen)
	binary.NativeEndian.PutUint64(rec[0:], 1) // d_ino
	binary.NativeEndian.PutUint16(rec[direntReclenOff:], uint16(reclen))
	rec[direntTypeOff] = typ
	copy(rec[direntNameOff:], name)
	return rec
}

// File systems that do not fill d_type report DT_UNKNOWN for everything:
// the collector must then decide by lstat, counting regular files only.
// The real kernel always fills d_type on the test's file system, so the
// listing is synthesized here and the lstat runs against real entries.
func TestVaultScanUnknownDirentType(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a.db"), 10)
	writeFile(t, filepath.Join(dir, "b.db"), 20)
	if err := os.Symlink("a.db", filepath.Join(dir, "link.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.db"), 0o700); err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for _, e := range []struct {
		typ  byte
		name string
	}{
		{unix.DT_DIR, "."}, {unix.DT_DIR, ".."},
		{unix.DT_UNKNOWN, "a.db"}, {unix.DT_REG, "b.db"},
		{unix.DT_UNKNOWN, "link.db"}, {unix.DT_UNKNOWN, "sub.db"},
		{unix.DT_UNKNOWN, "gone.db"}, // removed since the listing
		{unix.DT_LNK, "other-link.db"}, {unix.DT_UNKNOWN, "a.db-wal"},
	} {
		buf = append(buf, dirent64(e.typ, e.name)...)
	}
	c, err := newVaultCollector(dir, "*.db")
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	cands, err := selectCandidates(context.Background(), buf, nil, &seen, c.isVaultName)
	if err != nil {
		t.Fatal(err)
	}
	if seen != 9 || len(cands) != 5 {
		t.Fatalf("seen %d records, %d candidates; want 9 and 5 (a, b, link, sub, gone)", seen, len(cands))
	}
	fd, err := openDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	st, err := statCandidates(context.Background(), fd, buf, cands, 1)
	if err != nil {
		t.Fatal(err)
	}
	if st.count != 2 || st.bytes != 30 {
		t.Errorf("counted %d vaults, %d bytes; want 2, 30 (the symlink, directory and vanished entry are not vaults)", st.count, st.bytes)
	}
}

func TestVaultScanMalformedDirents(t *testing.T) {
	t.Parallel()
	good := dirent64(unix.DT_REG, "a.db")
	zeroLen := dirent64(unix.DT_REG, "b.db")
	binary.NativeEndian.PutUint16(zeroLen[direntReclenOff:], 0) // would loop forever if trusted
	tooLong := dirent64(unix.DT_REG, "c.db")
	binary.NativeEndian.PutUint16(tooLong[direntReclenOff:], 4096)
	for name, buf := range map[string][]byte{
		"truncated header": append(append([]byte{}, good...), good[:10]...),
		"zero reclen":      append(append([]byte{}, good...), zeroLen...),
		"reclen past end":  append(append([]byte{}, good...), tooLong...),
	} {
		seen := 0
		_, err := selectCandidates(context.Background(), buf, nil, &seen, func(string) bool { return true })
		if err == nil || !strings.Contains(err.Error(), "directory entry") {
			t.Errorf("%s: err = %v, want a malformed/truncated entry error", name, err)
		}
	}
	// A cancelled context stops the walk at the next check.
	var buf []byte
	for range vaultCtxCheckEvery {
		buf = append(buf, good...)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	seen := 0
	if _, err := selectCandidates(ctx, buf, nil, &seen, func(string) bool { return true }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled walk: err = %v", err)
	}
}
