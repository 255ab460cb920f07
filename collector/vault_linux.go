//go:build linux

package collector

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
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
func scanVaultDir(ctx context.Context, dir string, isVault func(string) bool) (vaultStats, error) {
	var st vaultStats
	fd, err := openDir(dir)
	if err != nil {
		return st, &os.PathError{Op: "open vault data directory", Path: dir, Err: err}
	}
	defer unix.Close(fd)

	buf := make([]byte, vaultDirentBuf)
	var stat unix.Stat_t
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
		for off := 0; off < n; {
			if off+direntNameOff > n {
				return st, fmt.Errorf("read vault data directory %s: truncated directory entry", dir)
			}
			reclen := int(binary.NativeEndian.Uint16(buf[off+direntReclenOff:]))
			if reclen < direntNameOff || off+reclen > n {
				return st, fmt.Errorf("read vault data directory %s: malformed directory entry", dir)
			}
			typ := buf[off+direntTypeOff]
			rec := buf[off+direntNameOff : off+reclen]
			off += reclen

			seen++
			if seen%vaultCtxCheckEvery == 0 {
				if err := ctx.Err(); err != nil {
					return st, fmt.Errorf("vault data directory %s: counting stopped after %d entries: %w", dir, seen, err)
				}
			}
			if typ != unix.DT_REG && typ != unix.DT_UNKNOWN {
				continue // symlinks, sub-directories, sockets, ...
			}
			nameLen := 0
			for nameLen < len(rec) && rec[nameLen] != 0 {
				nameLen++
			}
			if nameLen == 0 {
				continue
			}
			// The name is only looked at here, never kept: a view into buf
			// saves an allocation per entry.
			name := unsafe.String(&rec[0], nameLen)
			if !isVault(name) {
				continue
			}
			if err := fstatatNoFollow(fd, name, &stat); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue // removed since the listing: not a vault any more
				}
				// Never name the entry: it may be a vault identifier.
				return st, &os.PathError{Op: "lstat an entry of vault data directory", Path: dir, Err: err}
			}
			if stat.Mode&unix.S_IFMT != unix.S_IFREG {
				continue
			}
			st.count++
			st.bytes += stat.Size
		}
	}
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
