package collector

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// makeVaultDir fills a new directory under parent with n vault entries:
// hard links of empty files (each a regular file to lstat like any
// other; n separate inodes would cost about 1 KB of tmpfs each, 10 GB at
// 10M), plus companions that must not count.
func makeVaultDir(tb testing.TB, parent string, n int) string {
	tb.Helper()
	dir := filepath.Join(parent, strconv.Itoa(n))
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		tb.Fatal(err)
	}
	// ext4 allows 65,000 links per inode: a new source every 60,000.
	srcs := make([]string, (n+59_999)/60_000)
	for i := range srcs {
		srcs[i] = filepath.Join(parent, "src-"+strconv.Itoa(n)+"-"+strconv.Itoa(i))
		if err := os.WriteFile(srcs[i], nil, 0o600); err != nil && !os.IsExist(err) {
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
				// EEXIST: a kept directory (VAULT_BENCH_KEEP) is completed.
				if err := unix.Link(srcs[i/60_000], fmt.Sprintf("%s/%016x.db", dir, uint64(i)*0x9e3779b97f4a7c15)); err != nil && err != unix.EEXIST {
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
	for _, name := range []string{"a.db-wal", "a.db-journal", "a.db-shm", "x.tmp"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
	return dir
}

// BenchmarkVaultScrape is the vault collector's scrape (one Update) with
// 1k, 100k, 1M and 10M vault files indexed: the cost must not depend on
// the number of files. Also reported: the index's first full scan (scan-s,
// what every scrape used to cost) and the heap the index holds (index-MB).
// VAULT_BENCH_MAX (default 10000000) caps the sizes run. Nothing is
// skipped: a size that cannot be set up fails the benchmark.
func BenchmarkVaultScrape(b *testing.B) {
	maxN := 10_000_000
	if s := os.Getenv("VAULT_BENCH_MAX"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("VAULT_BENCH_MAX=%q: %v", s, err)
		}
		maxN = v
	}
	// VAULT_BENCH_KEEP=DIR makes the directories there and keeps them for
	// the next run (removing 10M entries from ext4 takes longer than the
	// benchmark); a kept directory is completed, not made again.
	parent := os.Getenv("VAULT_BENCH_KEEP")
	if parent == "" {
		parent = b.TempDir()
	}
	for _, size := range []struct {
		name string
		n    int
	}{{"1k", 1_000}, {"100k", 100_000}, {"1M", 1_000_000}, {"10M", 10_000_000}} {
		if size.n > maxN {
			continue
		}
		b.Run(size.name, func(b *testing.B) {
			dir := makeVaultDir(b, parent, size.n)
			if os.Getenv("VAULT_BENCH_KEEP") == "" {
				defer os.RemoveAll(dir)
			}
			cfg, err := vaultConfig(dir, "*", time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c := startVaultCollector(ctx, cfg, time.Hour)
			s := c.index.Snapshot()
			if !s.Ready || s.Count != int64(size.n) {
				b.Fatalf("index: %+v, want %d vaults", *s, size.n)
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			b.ReportAllocs()
			cpu0 := processCPU()
			for b.Loop() {
				var ch batch
				if err := updateInto(context.Background(), c, &ch); err != nil {
					b.Fatal(err)
				}
				if n := len(ch.Metrics()); n != 7 {
					b.Fatalf("%d metrics, want 7", n)
				}
			}
			b.ReportMetric((processCPU()-cpu0).Seconds()*1e9/float64(b.N), "cpu-ns/op")
			b.ReportMetric(s.LastScanDuration.Seconds(), "scan-s")
			b.ReportMetric(float64(int64(after.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "index-MB")
		})
	}
}

// processCPU is this process's user + system CPU time: on a loaded machine
// the CPU a scrape costs says more than its wall time.
func processCPU() time.Duration {
	var ru unix.Rusage
	unix.Getrusage(unix.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
