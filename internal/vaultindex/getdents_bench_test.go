//go:build linux

package vaultindex

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"strconv"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Layout of struct linux_dirent64 as getdents64(2) returns it.
const (
	direntReclenOff = 16 // after d_ino (8) and d_off (8)
	direntTypeOff   = 18
	direntNameOff   = 19
)

// vaultDirentBuf is the getdents64 buffer: 256 KiB is a few thousand
// entries per system call, so a million files need a few hundred calls.
const vaultDirentBuf = 256 << 10

// scanVaultDir lists dir with getdents64 and lstat()s (fstatat with
// AT_SYMLINK_NOFOLLOW, relative to the directory's descriptor, so the
// kernel does not walk the path again) only the entries that the
// directory itself says are regular files, or does not say what they are
// (DT_UNKNOWN, some file systems), and whose name isVault accepts. Nothing
// in dir is ever opened.
//
// The fstatat calls are the cost (a million of them for a million vaults);
// they run on up to workers goroutines, each over its own share of one
// getdents buffer, since the kernel serves them in parallel.
func scanVaultDir(ctx context.Context, dir string, isVault func(string) bool, workers int) (vaultStats, error) {
	var st vaultStats
	fd, err := openDir(dir)
	if err != nil {
		return st, &os.PathError{Op: "open vault data directory", Path: dir, Err: err}
	}
	defer unix.Close(fd)

	buf := make([]byte, vaultDirentBuf)
	var candidates []int32 // offsets in buf of the names to lstat
	seen := 0
	for {
		n, err := unix.Getdents(fd, buf)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return st, &os.PathError{Op: "read vault data directory", Path: dir, Err: err}
		}
		if n <= 0 {
			return st, nil
		}
		candidates, err = selectCandidates(ctx, buf[:n], candidates[:0], &seen, isVault)
		if err != nil {
			return st, fmt.Errorf("read vault data directory %s: %w", dir, err)
		}
		part, err := statCandidates(ctx, fd, buf, candidates, workers)
		if err != nil {
			// Never name the entry: it may be a vault identifier.
			return st, &os.PathError{Op: "lstat an entry of vault data directory", Path: dir, Err: err}
		}
		st.count += part.count
		st.bytes += part.bytes
	}
}

// selectCandidates walks the linux_dirent64 records in buf and appends to
// candidates the offsets of the names worth an lstat: regular files, or
// entries of unknown type (DT_UNKNOWN), whose name isVault accepts. seen
// counts the records across calls, to look at ctx every so often.
func selectCandidates(ctx context.Context, buf []byte, candidates []int32, seen *int, isVault func(string) bool) ([]int32, error) {
	n := len(buf)
	for off := 0; off < n; {
		if off+direntNameOff > n {
			return candidates, errors.New("truncated directory entry")
		}
		reclen := int(binary.NativeEndian.Uint16(buf[off+direntReclenOff:]))
		if reclen < direntNameOff || off+reclen > n {
			return candidates, errors.New("malformed directory entry")
		}
		typ := buf[off+direntTypeOff]
		nameOff := off + direntNameOff
		rec := buf[nameOff : off+reclen]
		off += reclen

		*seen++
		if *seen%vaultCtxCheckEvery == 0 {
			if err := ctx.Err(); err != nil {
				return candidates, fmt.Errorf("counting stopped after %d entries: %w", *seen, err)
			}
		}
		if typ != unix.DT_REG && typ != unix.DT_UNKNOWN {
			continue // symlinks, sub-directories, sockets, ...
		}
		if name := direntName(rec); name != "" && isVault(name) {
			candidates = append(candidates, int32(nameOff))
		}
	}
	return candidates, nil
}

// direntName returns the NUL-terminated name at the start of rec as a view
// into the buffer (no copy: it is only looked at, never kept).
func direntName(rec []byte) string {
	n := 0
	for n < len(rec) && rec[n] != 0 {
		n++
	}
	if n == 0 {
		return ""
	}
	return unsafe.String(&rec[0], n)
}

// statCandidates lstat()s the names at the given offsets of buf, split
// across workers, and sums the regular files among them. An entry removed
// since the listing is skipped.
func statCandidates(ctx context.Context, dirfd int, buf []byte, offs []int32, workers int) (vaultStats, error) {
	statRange := func(offs []int32) (vaultStats, error) {
		var st vaultStats
		var stat unix.Stat_t
		for i, off := range offs {
			if i%vaultCtxCheckEvery == vaultCtxCheckEvery-1 {
				if err := ctx.Err(); err != nil {
					return st, err
				}
			}
			if err := fstatatNoFollow(dirfd, direntName(buf[off:]), &stat); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue // removed since the listing: not a vault any more
				}
				return st, err
			}
			if stat.Mode&unix.S_IFMT == unix.S_IFREG {
				st.count++
				st.bytes += stat.Size
			}
		}
		return st, nil
	}
	// Small batches are not worth a goroutine.
	if workers <= 1 || len(offs) < 256 {
		return statRange(offs)
	}
	type result struct {
		st  vaultStats
		err error
	}
	results := make(chan result, workers)
	per := (len(offs) + workers - 1) / workers
	started := 0
	for lo := 0; lo < len(offs); lo += per {
		hi := min(lo+per, len(offs))
		started++
		go func() {
			st, err := statRange(offs[lo:hi])
			results <- result{st, err}
		}()
	}
	var total vaultStats
	var firstErr error
	for range started {
		r := <-results
		total.count += r.st.count
		total.bytes += r.st.bytes
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
	}
	return total, firstErr
}

func openDir(dir string) (int, error) {
	for {
		fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return fd, err
	}
}

func fstatatNoFollow(dirfd int, name string, st *unix.Stat_t) error {
	for {
		err := unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		return err
	}
}

// The getdents64 scan of the former per-scrape collector (collector/
// vault_linux.go), kept here only to be measured against scanDir on the
// same 1M files (issue 13 §1: benchmark both, keep one).

type vaultStats struct{ count, bytes int64 }

const (
	vaultCtxCheckEvery = 4096
)

func BenchmarkScanGetdents(b *testing.B) {
	parent := b.TempDir()
	f := mustFilter(b, "*")
	dir := makeVaultDir(b, parent, 1_000_000)
	for _, workers := range []int{1, 4} {
		b.Run("1M/workers="+strconv.Itoa(workers), func(b *testing.B) {
			for b.Loop() {
				st, err := scanVaultDir(context.Background(), dir, f.Match, workers)
				if err != nil || st.count != 1_000_000 {
					b.Fatalf("%d, %v", st.count, err)
				}
			}
		})
	}
	x := New(Config{Dir: dir, Filter: f})
	b.Run("1M/portable", func(b *testing.B) {
		fd, _ := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		defer unix.Close(fd)
		defer reportCPU(b)()
		for b.Loop() {
			if res := scanDir(context.Background(), fd, dir, f.Match, x.hash); len(res.files) != 1_000_000 {
				b.Fatal(res.err)
			}
		}
	})
}

// portableCountOnly is scanDir without the index's hash and map: the
// listing and lstat part alone, to compare with the getdents64 scan.
func portableCountOnly(dir string, match func(string) bool) (n int64) {
	f, err := os.Open(dir)
	if err != nil {
		panic(err)
	}
	defer f.Close()
	fd := int(f.Fd())
	var st unix.Stat_t
	for {
		entries, err := f.ReadDir(readDirBatch)
		for _, e := range entries {
			if e.Type().IsRegular() && match(e.Name()) {
				if _, ok, _ := lstatRegular(fd, e.Name(), &st); ok {
					n++
				}
			}
		}
		if err != nil {
			return n
		}
	}
}

func BenchmarkScanPaths(b *testing.B) {
	parent := b.TempDir()
	f := mustFilter(b, "*")
	dir := makeVaultDir(b, parent, 1_000_000)
	b.Run("1M/getdents64", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			if st, err := scanVaultDir(context.Background(), dir, f.Match, 1); err != nil || st.count != 1_000_000 {
				b.Fatal(err)
			}
		}
	})
	b.Run("1M/readdir+fstatat", func(b *testing.B) {
		defer reportCPU(b)()
		for b.Loop() {
			if n := portableCountOnly(dir, f.Match); n != 1_000_000 {
				b.Fatal(n)
			}
		}
	})
	x := New(Config{Dir: dir, Filter: f})
	b.Run("1M/readdir+fstatat+index", func(b *testing.B) {
		fd, _ := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		defer unix.Close(fd)
		defer reportCPU(b)()
		for b.Loop() {
			if res := scanDir(context.Background(), fd, dir, f.Match, x.hash); len(res.files) != 1_000_000 {
				b.Fatal(res.err)
			}
		}
	})
}
