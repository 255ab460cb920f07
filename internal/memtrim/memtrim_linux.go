package memtrim

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReleaseExecutablePages drops this process's page-table entries for the
// read-only mappings of its own executable and returns how many bytes of
// mappings it released.
func ReleaseExecutablePages() (int, error) {
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return 0, fmt.Errorf("memtrim: %w", err)
	}
	regions, err := readOnlyRegions(maps, exe)
	if err != nil {
		return 0, err
	}
	released := 0
	for _, r := range regions {
		// The raw call takes the address as the kernel does: the region is
		// no Go memory, and never read through a pointer here.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_DONTNEED); errno != 0 {
			return released, fmt.Errorf("memtrim: madvise %#x-%#x: %w", r.start, r.end, errno)
		}
		released += int(r.end - r.start)
	}
	return released, nil
}

type region struct{ start, end uintptr }

// readOnlyRegions parses /proc/self/maps and returns the mappings of path
// that are private and neither writable nor shared, the ones whose pages
// are copies of the file nobody wrote to.
//
// A line reads "start-end perms offset dev inode   pathname".
func readOnlyRegions(maps []byte, path string) ([]region, error) {
	var out []region
	sc := bufio.NewScanner(bytes.NewReader(maps))
	for sc.Scan() {
		fields := bytes.Fields(sc.Bytes())
		if len(fields) < 6 {
			continue // anonymous mapping
		}
		if string(bytes.Join(fields[5:], []byte(" "))) != path {
			continue
		}
		perms := fields[1]
		if len(perms) != 4 || perms[0] != 'r' || perms[1] != '-' || perms[3] != 'p' {
			continue
		}
		start, end, ok := bytes.Cut(fields[0], []byte("-"))
		if !ok {
			return nil, fmt.Errorf("memtrim: bad maps line %q", sc.Text())
		}
		s, err1 := strconv.ParseUint(string(start), 16, 64)
		e, err2 := strconv.ParseUint(string(end), 16, 64)
		if err1 != nil || err2 != nil || e <= s {
			return nil, fmt.Errorf("memtrim: bad maps line %q", sc.Text())
		}
		out = append(out, region{uintptr(s), uintptr(e)})
	}
	return out, sc.Err()
}
