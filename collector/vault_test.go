package collector

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// newVaultFromFlags builds the collector the way the binary does: through
// its kingpin flags.
func newVaultFromFlags(t *testing.T, args ...string) (Collector, error) {
	t.Helper()
	app := kingpin.New("test", "")
	factory := setupVault(app)
	if _, err := app.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return factory(Env{Logger: slog.New(slog.DiscardHandler), Context: context.Background(), Now: time.Now})
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{'x'}, size), 0o600); err != nil {
		t.Fatal(err)
	}
}

// vaultFixture lays out a data directory with three vaults and every kind
// of entry that is not a vault. The FIFO doubles as a tripwire: opening it
// for reading would block the collector until the test times out.
func vaultFixture(t *testing.T) (dir string, vaultNames []string) {
	t.Helper()
	dir = t.TempDir()
	vaultNames = []string{"v7Kq2xPz9a.db", "Lm3nB8cD1e.db", "zz-empty.vault"}
	writeFile(t, filepath.Join(dir, vaultNames[0]), 1000)
	writeFile(t, filepath.Join(dir, vaultNames[1]), 234)
	writeFile(t, filepath.Join(dir, vaultNames[2]), 0)
	for _, name := range []string{"v7Kq2xPz9a.db-journal", "v7Kq2xPz9a.db-wal", "v7Kq2xPz9a.db-shm", "upload.tmp", ".lock", ".v7Kq2xPz9a.db.swp"} {
		writeFile(t, filepath.Join(dir, name), 5000)
	}
	if err := os.Symlink(filepath.Join(dir, vaultNames[0]), filepath.Join(dir, "link-to-vault.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "nowhere"), filepath.Join(dir, "dangling.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.db"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "sub.db", "nested.db"), 7000)
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo.db"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, vaultNames
}

func TestVaultCollectorCountsOnlyVaults(t *testing.T) {
	t.Parallel()
	dir, names := vaultFixture(t)
	for _, tc := range []struct {
		pattern      string
		count, bytes int
	}{
		{"*", 3, 1234},
		{"*.db", 2, 1234},
		{"*.vault", 1, 0},
		{"nothing-matches-*", 0, 0},
	} {
		t.Run(tc.pattern, func(t *testing.T) {
			c, err := newVaultFromFlags(t, "--vault.data-dir="+dir, "--vault.file-pattern="+tc.pattern)
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(AsPrometheus("vault", c))
			expected := "# HELP clavis_vaults Number of vault files in the vault data directory (regular files matching --vault.file-pattern; symlinks, sub-directories, hidden and temp files excluded).\n" +
				"# TYPE clavis_vaults gauge\n" +
				"clavis_vaults " + strconv.Itoa(tc.count) + "\n" +
				"# HELP clavis_vault_storage_bytes Total apparent size of the vault files counted by clavis_vaults.\n" +
				"# TYPE clavis_vault_storage_bytes gauge\n" +
				"clavis_vault_storage_bytes " + strconv.Itoa(tc.bytes) + "\n" +
				"# HELP clavis_scrape_collector_success Whether a collector succeeded during this scrape (1) or failed or timed out (0).\n" +
				"# TYPE clavis_scrape_collector_success gauge\n" +
				"clavis_scrape_collector_success{collector=\"vault\"} 1\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(expected),
				"clavis_vaults", "clavis_vault_storage_bytes", "clavis_scrape_collector_success"); err != nil {
				t.Fatal(err)
			}
			out, err := testutil.CollectAndFormat(AsPrometheus("vault", c), expfmt.TypeTextPlain)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range append(names, "v7Kq2xPz9a", "Lm3nB8cD1e", "fifo", "link-to-vault") {
				if bytes.Contains(out, []byte(n)) {
					t.Errorf("exposition contains vault file name %q", n)
				}
			}
		})
	}
}

// The collector reports what it found on every scrape: new, grown and
// removed vaults show up without a restart.
func TestVaultCollectorFollowsChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := newVaultFromFlags(t, "--vault.data-dir="+dir)
	if err != nil {
		t.Fatal(err)
	}
	check := func(count, size float64) {
		t.Helper()
		st, err := scanVaultDir(context.Background(), dir, c.(*vaultCollector).isVaultName, 2)
		if err != nil {
			t.Fatal(err)
		}
		if float64(st.count) != count || float64(st.bytes) != size {
			t.Fatalf("got %d vaults, %d bytes; want %v, %v", st.count, st.bytes, count, size)
		}
	}
	check(0, 0)
	writeFile(t, filepath.Join(dir, "a"), 10)
	writeFile(t, filepath.Join(dir, "b"), 5)
	check(2, 15)
	writeFile(t, filepath.Join(dir, "a"), 100)
	check(2, 105)
	if err := os.Remove(filepath.Join(dir, "b")); err != nil {
		t.Fatal(err)
	}
	check(1, 100)
}

// scrapeWithLog runs the collector inside a scraper, as the binary does, and
// returns the gathered families and what the scraper logged.
func scrapeWithLog(t *testing.T, c Collector) (map[string]float64, string) {
	t.Helper()
	var logBuf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	reg.MustRegister(NewScraper([]Named{{Name: "vault", Collector: c}}, 4*time.Second, logger))
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			got[mf.GetName()] = m.GetGauge().GetValue()
		}
	}
	return got, logBuf.String()
}

func TestVaultCollectorMissingDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "not-there")
	c, err := newVaultFromFlags(t, "--vault.data-dir="+dir)
	if err != nil {
		t.Fatalf("a missing directory is a scrape-time failure, not a start-up error: %v", err)
	}
	got, logged := scrapeWithLog(t, c)
	if v, ok := got["clavis_scrape_collector_success"]; !ok || v != 0 {
		t.Errorf("clavis_scrape_collector_success = %v (present %v), want 0", v, ok)
	}
	if _, ok := got["clavis_vaults"]; ok {
		t.Error("clavis_vaults exported although the directory is missing")
	}
	if !strings.Contains(logged, "collector failed") || !strings.Contains(logged, dir) || !strings.Contains(logged, "no such file or directory") {
		t.Errorf("log does not explain the failure:\n%s", logged)
	}
	// The directory shows up later: the next scrape counts it.
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "v1"), 3)
	got, _ = scrapeWithLog(t, c)
	if got["clavis_scrape_collector_success"] != 1 || got["clavis_vaults"] != 1 || got["clavis_vault_storage_bytes"] != 3 {
		t.Errorf("after the directory appeared: %v", got)
	}
}

func TestVaultCollectorUnreadableDirectory(t *testing.T) {
	t.Parallel()
	t.Run("not a directory", func(t *testing.T) {
		t.Parallel()
		file := filepath.Join(t.TempDir(), "vaults")
		writeFile(t, file, 1)
		c, err := newVaultFromFlags(t, "--vault.data-dir="+file)
		if err != nil {
			t.Fatal(err)
		}
		got, logged := scrapeWithLog(t, c)
		if got["clavis_scrape_collector_success"] != 0 {
			t.Errorf("success = %v, want 0", got["clavis_scrape_collector_success"])
		}
		if !strings.Contains(logged, "not a directory") {
			t.Errorf("log does not explain the failure:\n%s", logged)
		}
	})
	t.Run("permission denied", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() == 0 {
			// root reads a 0000 directory anyway; exercise EACCES through
			// a directory entry that cannot be searched instead.
			t.Log("running as root: permission bits do not apply, checking the error path with an unopenable path component")
		}
		parent := t.TempDir()
		dir := filepath.Join(parent, "vaults")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "secretVaultName42"), 9)
		if os.Geteuid() != 0 {
			if err := os.Chmod(dir, 0); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
		} else {
			// A path through a regular file fails with ENOTDIR for root too.
			dir = filepath.Join(dir, "secretVaultName42", "x")
		}
		c, err := newVaultFromFlags(t, "--vault.data-dir="+dir)
		if err != nil {
			t.Fatal(err)
		}
		got, logged := scrapeWithLog(t, c)
		if got["clavis_scrape_collector_success"] != 0 {
			t.Errorf("success = %v, want 0", got["clavis_scrape_collector_success"])
		}
		if !strings.Contains(logged, "collector failed") {
			t.Errorf("no log line:\n%s", logged)
		}
	})
}

func TestVaultCollectorHonoursContext(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for i := range 2 * vaultCtxCheckEvery {
		f, err := os.Create(filepath.Join(dir, "v"+strconv.Itoa(i)))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
	c, err := newVaultFromFlags(t, "--vault.data-dir="+dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ch := &batch{}
	err = updateInto(ctx, c, ch)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Update with a cancelled context: err = %v, want context.Canceled", err)
	}
	if n := len(ch.Metrics()); n != 0 {
		t.Errorf("a stopped count must not be exported as if complete (%d metrics sent)", n)
	}
	// And with a live context the same directory is counted in full.
	if err := updateInto(context.Background(), c, ch); err != nil {
		t.Fatal(err)
	}
	var m dto.Metric
	if err := ch.Metrics()[0].Write(&m); err != nil {
		t.Fatal(err)
	}
	if got := m.GetGauge().GetValue(); got != 2*vaultCtxCheckEvery {
		t.Errorf("clavis_vaults = %v, want %d", got, 2*vaultCtxCheckEvery)
	}
}

func TestVaultCollectorBadFlags(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--vault.file-pattern=[a-"},
		{"--vault.file-pattern=sub/*.db"},
		{"--vault.file-pattern="},
		{"--vault.data-dir="},
	} {
		if _, err := newVaultFromFlags(t, args...); err == nil {
			t.Errorf("%v: accepted, want an error", args)
		} else if !strings.Contains(err.Error(), "--vault.") {
			t.Errorf("%v: error %q does not name the flag", args, err)
		}
	}
}

// The parallel lstat split must count exactly what the serial scan counts.
func TestVaultScanParallelMatchesSerial(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	wantCount, wantBytes := 0, 0
	for i := range 1500 {
		name := "v" + strconv.Itoa(i)
		switch i % 10 {
		case 3:
			name += ".tmp"
		case 7:
			name += "-wal"
		default:
			wantCount++
			wantBytes += i % 17
		}
		writeFile(t, filepath.Join(dir, name), i%17)
	}
	c, err := newVaultCollector(dir, "*")
	if err != nil {
		t.Fatal(err)
	}
	for _, workers := range []int{1, 2, 3, 4, 16} {
		st, err := scanVaultDir(context.Background(), dir, c.isVaultName, workers)
		if err != nil {
			t.Fatal(err)
		}
		if st.count != int64(wantCount) || st.bytes != int64(wantBytes) {
			t.Errorf("workers=%d: %d vaults, %d bytes; want %d, %d", workers, st.count, st.bytes, wantCount, wantBytes)
		}
	}
}
