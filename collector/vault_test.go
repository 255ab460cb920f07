package collector

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/expfmt"

	"github.com/clavitor/clavis-telemetry/internal/vaultindex"
)

// newVaultFromFlags builds the collector the way the binary does: through
// its kingpin flags. The index runs until the test ends.
func newVaultFromFlags(t *testing.T, args ...string) (Collector, error) {
	t.Helper()
	app := kingpin.New("test", "")
	factory := setupVault(app)
	// A bad value is refused by flag parsing (exit code 2) or by the
	// constructor; either error must name the flag.
	if _, err := app.Parse(args); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return factory(Env{Logger: slog.New(slog.DiscardHandler), Context: ctx, Now: time.Now})
}

func writeFile(t *testing.T, path string, size int) {
	t.Helper()
	if err := os.WriteFile(path, bytes.Repeat([]byte{'x'}, size), 0o600); err != nil {
		t.Fatal(err)
	}
}

// vaultFixture lays out a data directory with three vaults and every kind
// of entry that is not a vault. The FIFO doubles as a tripwire: opening it
// for reading would block the index until the test times out.
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

// scrapeUntil scrapes until cond holds on what a scrape returns (the index
// works in the background); a wrong collector never satisfies it.
func scrapeUntil(t *testing.T, c Collector, what string, cond func(map[string]float64, string) bool) (map[string]float64, string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, logged := scrapeWithLog(t, c)
		if cond(got, logged) {
			return got, logged
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: last scrape %v\n%s", what, got, logged)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func counted(count, size float64) func(map[string]float64, string) bool {
	return func(got map[string]float64, _ string) bool {
		return got["clavis_scrape_collector_success"] == 1 && got["clavis_vault_index_ready"] == 1 &&
			got["clavis_vaults"] == count && got["clavis_vault_storage_bytes"] == size
	}
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
			scrapeUntil(t, c, "the first scan", func(got map[string]float64, _ string) bool { return got["clavis_vault_index_ready"] == 1 })
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(AsPrometheus("vault", c))
			expected := "# HELP clavis_vaults Number of vault files in the vault data directory (regular files matching --vault.file-pattern; symlinks, sub-directories, hidden and temp files excluded).\n" +
				"# TYPE clavis_vaults gauge\n" +
				"clavis_vaults " + strconv.Itoa(tc.count) + "\n" +
				"# HELP clavis_vault_storage_bytes Total apparent size of the vault files counted by clavis_vaults.\n" +
				"# TYPE clavis_vault_storage_bytes gauge\n" +
				"clavis_vault_storage_bytes " + strconv.Itoa(tc.bytes) + "\n" +
				"# HELP clavis_vault_index_live 1 while inotify keeps clavis_vaults current between full scans, 0 when the count is as of a scan (inotify limit reached, events lost and a rescan pending, FSNOTIFY_DEBUG set, or a look at the directory hung).\n" +
				"# TYPE clavis_vault_index_live gauge\n" +
				"clavis_vault_index_live 1\n" +
				"# HELP clavis_vault_result_age_seconds How old clavis_vaults may be: 0 while the index is live, else the seconds since the scan (or the event loss) it is as of.\n" +
				"# TYPE clavis_vault_result_age_seconds gauge\n" +
				"clavis_vault_result_age_seconds 0\n" +
				"# HELP clavis_scrape_collector_success Whether a collector succeeded during this scrape (1) or failed or timed out (0).\n" +
				"# TYPE clavis_scrape_collector_success gauge\n" +
				"clavis_scrape_collector_success{collector=\"vault\"} 1\n"
			if err := testutil.GatherAndCompare(reg, strings.NewReader(expected),
				"clavis_vaults", "clavis_vault_storage_bytes", "clavis_vault_index_live", "clavis_vault_result_age_seconds", "clavis_scrape_collector_success"); err != nil {
				t.Fatal(err)
			}
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					t.Fatal(err)
				}
			}
			out := buf.Bytes()
			for _, want := range []string{"clavis_vault_scan_duration_seconds ", "clavis_vault_scan_timestamp_seconds "} {
				if !bytes.Contains(out, []byte(want)) {
					t.Errorf("exposition lacks %s:\n%s", want, out)
				}
			}
			for _, n := range append(names, "v7Kq2xPz9a", "Lm3nB8cD1e", "fifo", "link-to-vault") {
				if bytes.Contains(out, []byte(n)) {
					t.Errorf("exposition contains vault file name %q", n)
				}
			}
		})
	}
}

// New, grown and removed vaults show up without a restart, from events.
func TestVaultCollectorFollowsChanges(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	c, err := newVaultFromFlags(t, "--vault.data-dir="+dir)
	if err != nil {
		t.Fatal(err)
	}
	scrapeUntil(t, c, "0 vaults", counted(0, 0))
	writeFile(t, filepath.Join(dir, "a"), 10)
	writeFile(t, filepath.Join(dir, "b"), 5)
	scrapeUntil(t, c, "2 vaults", counted(2, 15))
	writeFile(t, filepath.Join(dir, "a"), 100)
	scrapeUntil(t, c, "a grown", counted(2, 105))
	if err := os.Rename(filepath.Join(dir, "b"), filepath.Join(dir, "b.tmp")); err != nil {
		t.Fatal(err)
	}
	scrapeUntil(t, c, "b renamed to a companion name", counted(1, 100))
	got, _ := scrapeUntil(t, c, "the same count", counted(1, 100))
	if got["clavis_vault_scan_timestamp_seconds"] <= 0 {
		t.Errorf("scan timestamp %v", got["clavis_vault_scan_timestamp_seconds"])
	}
}

func TestVaultCollectorMissingDirectory(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "not-there")
	c, err := newVaultFromFlags(t, "--vault.data-dir="+dir)
	if err != nil {
		t.Fatalf("a missing directory is a scrape-time failure, not a start-up error: %v", err)
	}
	got, logged := scrapeUntil(t, c, "the failure", func(got map[string]float64, _ string) bool {
		return got["clavis_scrape_collector_success"] == 0
	})
	if _, ok := got["clavis_vaults"]; ok {
		t.Error("clavis_vaults exported although the directory is missing")
	}
	if v, ok := got["clavis_vault_index_ready"]; !ok || v != 0 {
		t.Errorf("clavis_vault_index_ready = %v (present %v), want 0", v, ok)
	}
	if !strings.Contains(logged, "collector failed") || !strings.Contains(logged, dir) || !strings.Contains(logged, "no such file or directory") {
		t.Errorf("log does not explain the failure:\n%s", logged)
	}
	// The directory shows up later: the index picks it up.
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "v1"), 3)
	scrapeUntil(t, c, "the directory to be counted", counted(1, 3))
}

func TestVaultCollectorUnreadableDirectory(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "vaults")
	writeFile(t, file, 1)
	// A path through a regular file fails with ENOTDIR, for root too.
	for _, dir := range []string{file, filepath.Join(file, "x")} {
		c, err := newVaultFromFlags(t, "--vault.data-dir="+dir)
		if err != nil {
			t.Fatal(err)
		}
		_, logged := scrapeUntil(t, c, "the failure", func(got map[string]float64, _ string) bool {
			return got["clavis_scrape_collector_success"] == 0
		})
		if !strings.Contains(logged, "not a directory") {
			t.Errorf("log does not explain the failure:\n%s", logged)
		}
	}
}

// A cold first scan of a huge directory (7-8 s for 300,000 files after a
// page-cache drop) runs in the background: a scrape during it returns at
// once, succeeds, and reports the index not ready instead of a partial count.
// The scan is held until the scrape has returned, so the scrape cannot have
// waited for it.
func TestVaultColdScanDoesNotBlockScrape(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "a"), 5)
	cfg, err := vaultConfig(dir, "*", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	held, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	cfg.OnScanStart = func(ctx context.Context) {
		once.Do(func() { close(held) })
		select {
		case <-release:
		case <-ctx.Done():
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c := startVaultCollector(ctx, cfg, 0)
	<-held
	got, logged := scrapeWithLog(t, c)
	close(release)
	if got["clavis_scrape_collector_success"] != 1 || got["clavis_vault_index_ready"] != 0 {
		t.Errorf("scrape during the first scan: %v, want success 1, index_ready 0\n%s", got, logged)
	}
	for _, absent := range []string{"clavis_vaults", "clavis_vault_storage_bytes", "clavis_vault_scan_timestamp_seconds"} {
		if _, ok := got[absent]; ok {
			t.Errorf("%s exported before the first scan completed", absent)
		}
	}
	scrapeUntil(t, c, "the first scan", counted(1, 5))
}

func TestVaultCollectorBadFlags(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--vault.file-pattern=[a-"}, "--vault.file-pattern"},
		{[]string{"--vault.file-pattern=sub/*.db"}, "--vault.file-pattern"},
		// filepath.Match(p, "") passes it; it fails on "xa" and counted nothing.
		{[]string{"--vault.file-pattern=x*["}, "--vault.file-pattern"},
		{[]string{"--vault.file-pattern="}, "--vault.file-pattern"},
		{[]string{"--vault.data-dir="}, "--vault.data-dir"},
		{[]string{"--vault.rescan-interval=59s"}, "--vault.rescan-interval"},
		{[]string{"--vault.rescan-interval=25h"}, "--vault.rescan-interval"},
		{[]string{"--vault.rescan-interval=-1h"}, "--vault.rescan-interval"},
		{[]string{"--vault.rescan-interval=0"}, "--vault.rescan-interval"},
		{[]string{"--vault.rescan-interval=2562047h"}, "--vault.rescan-interval"},
		{[]string{"--vault.rescan-interval=9999999999h"}, "--vault.rescan-interval"},
		{[]string{"--vault.rescan-interval=1h\n"}, "--vault.rescan-interval"},
	} {
		if _, err := newVaultFromFlags(t, tc.args...); err == nil {
			t.Errorf("%v: accepted, want an error", tc.args)
		} else if !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%v: error %q does not name %s", tc.args, err, tc.flag)
		}
	}
}

// vaultConfig hands the index the rules of what counts as a vault.
func TestVaultConfigFilter(t *testing.T) {
	t.Parallel()
	cfg, err := vaultConfig("/x", "*.db", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	var _ vaultindex.Config = cfg
	for name, want := range map[string]bool{"a.db": true, "a.db-wal": false, ".a.db": false, "a": false} {
		if cfg.Filter.Match(name) != want {
			t.Errorf("Match(%q) != %v", name, want)
		}
	}
}
