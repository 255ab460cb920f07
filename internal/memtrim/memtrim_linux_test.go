package memtrim

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

func TestReadOnlyRegions(t *testing.T) {
	maps := `00400000-009de000 r-xp 00000000 fe:00 9978497                            /opt/clavis telemetry/bin
009de000-0106c000 r--p 005de000 fe:00 9978497                            /opt/clavis telemetry/bin
0106c000-010e1000 rw-p 00c6c000 fe:00 9978497                            /opt/clavis telemetry/bin
010e1000-03126000 rw-p 00000000 00:00 0
1cd84a800000-1cd84b000000 rw-p 00000000 00:00 0
7f2bcd1d3000-7f2bcd329000 r-xp 00028000 fe:00 1234                       /usr/lib/x86_64-linux-gnu/libc.so.6
7f2bcd400000-7f2bcd401000 r--s 00000000 fe:00 9978497                    /opt/clavis telemetry/bin
7ffd6a9e5000-7ffd6aa06000 rw-p 00000000 00:00 0                          [stack]
`
	got, err := readOnlyRegions([]byte(maps), "/opt/clavis telemetry/bin")
	if err != nil {
		t.Fatal(err)
	}
	want := []region{{0x400000, 0x9de000}, {0x9de000, 0x106c000}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("regions = %x, want %x (text and rodata only: not data, not shared, not other files)", got, want)
	}

	for _, bad := range []string{
		"zzzz-009de000 r-xp 00000000 fe:00 1 /bin/x\n",
		"00400000 r-xp 00000000 fe:00 1 /bin/x\n",
		"009de000-00400000 r-xp 00000000 fe:00 1 /bin/x\n",
	} {
		if _, err := readOnlyRegions([]byte(bad), "/bin/x"); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// exeRSS sums the resident kB of this process's read-only mappings of its
// executable.
func exeRSS(t *testing.T) int {
	t.Helper()
	exe, err := os.Readlink("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	total, in := 0, false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		fields := strings.Fields(line)
		if len(fields) >= 5 && strings.Contains(fields[0], "-") && !strings.HasSuffix(fields[0], ":") {
			in = len(fields) >= 6 && strings.Join(fields[5:], " ") == exe && !strings.Contains(fields[1], "w")
			continue
		}
		if in && len(fields) == 3 && fields[0] == "Rss:" {
			kb, err := strconv.Atoi(fields[1])
			if err != nil {
				t.Fatal(err)
			}
			total += kb
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}

// TestReleaseExecutablePages releases the test binary's own pages, then
// keeps running code and data of all kinds: nothing it relies on may have
// gone with them.
func TestReleaseExecutablePages(t *testing.T) {
	before := exeRSS(t)
	n, err := ReleaseExecutablePages()
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("no region released")
	}
	after := exeRSS(t)
	t.Logf("released %d bytes of mappings; resident executable pages %d kB -> %d kB", n, before, after)
	if after >= before {
		t.Errorf("resident executable pages did not shrink: %d kB -> %d kB", before, after)
	}

	// Code, read-only data, type information and stack maps all fault back
	// in: formatting (fmt's tables, strconv's) and a GC (stack maps,
	// pointer bitmaps) work as before.
	var buf bytes.Buffer
	for i := range 1000 {
		fmt.Fprintf(&buf, "%d:%q,", i, strconv.FormatFloat(float64(i)/7, 'g', -1, 64))
	}
	runtime.GC()
	if !strings.HasPrefix(buf.String(), `0:"0",1:"0.14285714285714285",`) {
		t.Fatalf("formatting after release gave %.60q", buf.String())
	}
}
