package vaultindex

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// readDirBatch is how many entries one ReadDir call returns: a few
// getdents64 calls' worth, and the interval between two looks at ctx.
const readDirBatch = 4096

// yieldEvery is how many entries the scan lstat()s between two
// runtime.Gosched calls (about 0.15 ms of work). The agent runs on one P
// (--runtime.gomaxprocs=1): without the yield a scrape that arrives during
// a rescan waits for the scan's 10 ms preemption slices, once per
// collector goroutine. bench/rescan-latency.sh, 300,000 files, a scrape
// every 50 ms: slowest scrape 60-64 ms without the yield, 25-35 ms
// yielding every 128 entries, 16 ms every 32 (two Ps: 12 ms); the scan
// itself takes the same 1.4-1.6 s.
const yieldEvery = 32

// scanResult is one full listing of the directory.
type scanResult struct {
	files map[key]int64 // vault files by keyed hash of the name -> size
	bytes int64
	err   error
}

// scanDir lists the directory open as dirfd with os.File.ReadDir (the
// portable path: the listing's d_type says which entries can be regular
// files) and lstat()s each candidate with fstatat(AT_SYMLINK_NOFOLLOW)
// relative to dirfd, so the kernel does not walk the path again and a
// directory replaced under the same path is not mixed in. Nothing in the
// directory is ever opened. The hand-written getdents64 scan that this
// replaced was measured against this path on 1,000,000 files
// (docs/benchmarks.md, "Vault index") and dropped: off the scrape path its
// speed no longer meets a user-visible target.
//
// Errors name no entry: names can be vault identifiers.
//
// sizeHint (the previous count) sizes the map up front, so a rescan does not
// leave the garbage of the map's growth behind.
func scanDir(ctx context.Context, dirfd int, dir string, match func(string) bool, hash func(string) key, sizeHint int) scanResult {
	res := scanResult{files: make(map[key]int64, sizeHint)}
	fd, err := unix.Openat(dirfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		res.err = &os.PathError{Op: "open vault data directory", Path: dir, Err: err}
		return res
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	var st unix.Stat_t
	for {
		if err := ctx.Err(); err != nil {
			res.err = err
			return res
		}
		entries, rerr := f.ReadDir(readDirBatch)
		for i, e := range entries {
			if i%yieldEvery == yieldEvery-1 {
				runtime.Gosched()
			}
			name := e.Name()
			if !e.Type().IsRegular() || !match(name) {
				continue // symlinks, sub-directories, sockets, companions, ...
			}
			size, ok, err := lstatRegular(dirfd, name, &st)
			if err != nil {
				res.err = &os.PathError{Op: "lstat an entry of vault data directory", Path: dir, Err: err}
				return res
			}
			if ok {
				res.files[hash(name)] = size
				res.bytes += size
			}
		}
		if rerr == io.EOF {
			return res
		}
		if rerr != nil {
			var pe *os.PathError
			if errors.As(rerr, &pe) {
				rerr = pe.Err // os names the directory; keep our own wording
			}
			res.err = fmt.Errorf("read vault data directory %s: %w", dir, rerr)
			return res
		}
	}
}

// lstatRegular reports whether name (relative to dirfd) is a regular file,
// and its size. A name that does not exist (any more) is not a vault.
func lstatRegular(dirfd int, name string, st *unix.Stat_t) (size int64, regular bool, err error) {
	for {
		err = unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENOTDIR) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return 0, false, nil
	}
	return st.Size, true, nil
}
