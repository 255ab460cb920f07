package collector

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
)

// makeVaultDir fills a new directory under parent with n empty vault files
// (plus a few companions that must not count), using a few goroutines:
// creating a million files is the slow part of this benchmark.
func makeVaultDir(tb testing.TB, parent string, n int) string {
	tb.Helper()
	dir := filepath.Join(parent, strconv.Itoa(n))
	if err := os.Mkdir(dir, 0o700); err != nil {
		tb.Fatal(err)
	}
	const workers = 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%016x.db", uint64(i)*0x9e3779b97f4a7c15)), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
				if err != nil {
					errs <- err
					return
				}
				f.Close()
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

// BenchmarkVaultCollector counts 10k, 100k and 1M vault files with the
// collector (one Update per op, as in a scrape; "collector-serial" with the
// lstat calls on one goroutine) and, in the same run, with
// GNU find doing the same listing + lstat (-type f -printf %s), the peer the
// ratio in docs/benchmarks.md is against. Directories are created once.
func BenchmarkVaultCollector(b *testing.B) {
	parent := b.TempDir()
	for _, size := range []struct {
		name string
		n    int
	}{{"10k", 10_000}, {"100k", 100_000}, {"1M", 1_000_000}} {
		var once sync.Once
		var dir string
		setup := func(b *testing.B) {
			once.Do(func() { dir = makeVaultDir(b, parent, size.n) })
		}
		for _, variant := range []struct {
			name    string
			workers int // 0: the collector's default
		}{{"collector", 0}, {"collector-serial", 1}} {
			b.Run(size.name+"/"+variant.name, func(b *testing.B) {
				setup(b)
				c, err := newVaultCollector(dir, "*")
				if err != nil {
					b.Fatal(err)
				}
				if variant.workers > 0 {
					c.workers = variant.workers
				}
				for b.Loop() {
					var ch batch
					if err := updateInto(context.Background(), c, &ch); err != nil {
						b.Fatal(err)
					}
					if n := len(ch.Metrics()); n != 2 {
						b.Fatalf("%d metrics, want 2", n)
					}
				}
				st, _ := scanVaultDir(context.Background(), dir, c.isVaultName, 1)
				if st.count != int64(size.n) {
					b.Fatalf("counted %d vaults, want %d", st.count, size.n)
				}
				b.ReportMetric(float64(size.n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
			})
		}
		b.Run(size.name+"/find", func(b *testing.B) {
			setup(b)
			find, err := exec.LookPath("find")
			if err != nil {
				b.Skip("find not installed")
			}
			for b.Loop() {
				cmd := exec.Command(find, dir, "-mindepth", "1", "-maxdepth", "1", "-type", "f",
					"!", "-name", ".*", "!", "-name", "*.tmp", "!", "-name", "*-journal", "!", "-name", "*-wal", "!", "-name", "*-shm",
					"-printf", "%s\n")
				out, err := cmd.StdoutPipe()
				if err != nil {
					b.Fatal(err)
				}
				if err := cmd.Start(); err != nil {
					b.Fatal(err)
				}
				count, total := 0, int64(0)
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					v, _ := strconv.ParseInt(sc.Text(), 10, 64)
					count++
					total += v
				}
				if err := cmd.Wait(); err != nil {
					b.Fatal(err)
				}
				if count != size.n {
					b.Fatalf("find counted %d, want %d", count, size.n)
				}
			}
			b.ReportMetric(float64(size.n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}
