package vaultindex

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// makeVaultDir fills a new directory under parent with n vault entries,
// hard links of empty files (regular files to lstat like any other; n
// separate inodes would cost about 1 KB of tmpfs each, 10 GB at 10M), plus
// companions that must not count. Four goroutines: creating the entries is
// the slow part.
func makeVaultDir(tb testing.TB, parent string, n int) string {
	tb.Helper()
	dir := filepath.Join(parent, strconv.Itoa(n))
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	// ext4 allows 65,000 links per inode: a new source every 60,000.
	srcs := make([]string, (n+59_999)/60_000)
	for i := range srcs {
		srcs[i] = filepath.Join(parent, "src-"+strconv.Itoa(n)+"-"+strconv.Itoa(i))
		if err := os.WriteFile(srcs[i], nil, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := unix.Link(srcs[i/60_000], fmt.Sprintf("%s/%016x.db", dir, uint64(i)*0x9e3779b97f4a7c15)); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		tb.Fatal(err)
	}
	for _, name := range []string{"a.db-wal", "a.db-journal", "a.db-shm", "x.tmp", ".hidden"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// BenchmarkScan is one full scan (listing + one fstatat per candidate) of
// 1k, 100k and 1M vault files on warm caches: what the index pays once at
// start, once per --vault.rescan-interval and after an inotify overflow.
func BenchmarkScan(b *testing.B) {
	parent := b.TempDir()
	f := mustFilter(b, "*")
	x := New(Config{Dir: parent, Filter: f})
	for _, size := range []struct {
		name string
		n    int
	}{{"1k", 1_000}, {"100k", 100_000}, {"1M", 1_000_000}} {
		if s := os.Getenv("VAULT_BENCH_MAX"); s != "" {
			if maxN, err := strconv.Atoi(s); err != nil {
				b.Fatalf("VAULT_BENCH_MAX=%q: %v", s, err)
			} else if size.n > maxN {
				continue
			}
		}
		b.Run(size.name, func(b *testing.B) {
			dir := makeVaultDir(b, parent, size.n)
			defer os.RemoveAll(dir)
			fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			defer unix.Close(fd)
			defer reportCPU(b)()
			for b.Loop() {
				res := scanDir(context.Background(), fd, dir, f.Match, x.hash, 0)
				if res.err != nil || len(res.files) != size.n {
					b.Fatalf("scan: %d files, err %v; want %d", len(res.files), res.err, size.n)
				}
			}
			b.ReportMetric(float64(size.n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}

// reportCPU reports the process's CPU seconds (user + system) per op: on a
// loaded machine wall time says little about the work itself.
func reportCPU(b *testing.B) func() {
	cpu := func() float64 {
		var ru unix.Rusage
		unix.Getrusage(unix.RUSAGE_SELF, &ru)
		return float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	start := cpu()
	return func() { b.ReportMetric((cpu()-start)/float64(b.N), "cpu-s/op") }
}
