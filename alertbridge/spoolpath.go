package alertbridge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"

	"github.com/clavitor/clavis-telemetry/internal/cliflag"
)

// bbolt's on-disk marker: every meta page (the first two pages) starts,
// after the 16-byte page header, with this magic and the format version.
const (
	boltMagic      uint32 = 0xED0CDAED
	boltPageHeader        = 16
)

// CheckSpoolPath says whether path may be opened as the spool: nothing
// there yet (it is created), an empty regular file (it is initialised), or
// a regular file that is a bbolt database (it carries bbolt's magic in a
// meta page), directly or through a symlink. Anything else is refused with
// a *ConfigError naming --spool.path and what is there, so that a mistyped
// path never has a directory or somebody's file moved aside as a "damaged
// spool". A bbolt file that fails its checks is damage, handled by
// OpenSpool.
func CheckSpoolPath(path string) error {
	lfi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s=%s: %w", flagSpoolPath, path, err)
	}
	fi, what := lfi, ""
	if lfi.Mode()&fs.ModeSymlink != 0 {
		target, _ := os.Readlink(path)
		if fi, err = os.Stat(path); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return configErrorf("%s=%s is a symlink to %s, which does not exist; point --spool.path at the spool file itself", flagSpoolPath, path, target)
			}
			return fmt.Errorf("%s=%s: %w", flagSpoolPath, path, err)
		}
		what = fmt.Sprintf("a symlink to %s, which is ", target)
	}
	if !fi.Mode().IsRegular() {
		return configErrorf("%s=%s is %s%s, not a spool file; give the path of a file (it is created if missing)", flagSpoolPath, path, what, cliflag.DescribeMode(fi.Mode()))
	}
	if fi.Size() == 0 {
		return nil
	}
	// O_NONBLOCK: the file was regular a moment ago; should it have been
	// swapped for a FIFO since, the open must not hang.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("%s=%s: %w", flagSpoolPath, path, err)
	}
	defer f.Close()
	if ffi, err := f.Stat(); err != nil || !ffi.Mode().IsRegular() {
		return configErrorf("%s=%s changed while it was checked; not a regular file now", flagSpoolPath, path)
	}
	if !isBoltFile(f, fi.Size()) {
		return configErrorf("%s=%s is %sa file of %d bytes that is not a bbolt spool (no bbolt magic in its meta pages); refusing to touch it: move it away or give another --spool.path", flagSpoolPath, path, what, fi.Size())
	}
	return nil
}

// isBoltFile looks for bbolt's magic where a meta page may start: offset 0
// (the first meta page), then the second meta page at every page size bbolt
// tries when the first is unreadable (1 KiB to 16 MiB).
func isBoltFile(r io.ReaderAt, size int64) bool {
	hasMagic := func(off int64) bool {
		var b [boltPageHeader + 4]byte
		if _, err := r.ReadAt(b[:], off); err != nil {
			return false
		}
		return binary.NativeEndian.Uint32(b[boltPageHeader:]) == boltMagic
	}
	if hasMagic(0) {
		return true
	}
	for i := 0; i <= 14; i++ {
		off := int64(1024) << i
		if off+boltPageHeader+4 > size {
			break
		}
		if hasMagic(off) {
			return true
		}
	}
	return false
}
