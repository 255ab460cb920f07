package collector

import (
	"context"
	"fmt"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clavitor/clavis-telemetry/internal/vaultindex"
)

// The vault collector reports the number of vault files of the POP's vault
// service and their total size. It never lists the directory on the scrape
// path: internal/vaultindex scans it once in the background and inotify
// events keep the result current; a scrape reads the index's latest
// snapshot, at the same cost for ten files or ten million. Nothing in the
// directory is ever opened, and no file name leaves the index (names can be
// vault identifiers; hard rule 1). Errors name the data directory, which is
// operator configuration, never an entry.

const (
	// DefaultVaultDataDir is where the vault service keeps one file per vault.
	DefaultVaultDataDir = "/var/lib/clavitor/vaults"
	// DefaultVaultFilePattern matches every name: the data directory holds
	// vaults and nothing else, apart from the companions (*.tmp, *-journal,
	// *-wal, *-shm) and hidden files that never count. Narrow it (e.g.
	// "*.db") if the directory is shared.
	DefaultVaultFilePattern = "*"
	// Bounds of --vault.rescan-interval: a full scan of a million files costs
	// about a second of CPU, so more often than every minute is a waste, and
	// drift (lost events) should not outlive a day.
	minVaultRescan = time.Minute
	maxVaultRescan = 24 * time.Hour
	// vaultStartupWait is how long the constructor lets the first scan run
	// before start-up goes on: a usual directory is counted in milliseconds
	// and is then in the first scrape; a huge or cold one carries on in the
	// background while scrapes report it not ready.
	vaultStartupWait = time.Second
)

var (
	vaultsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "vaults"),
		"Number of vault files in the vault data directory (regular files matching --vault.file-pattern; symlinks, sub-directories, hidden and temp files excluded).",
		nil, nil)
	vaultStorageDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "vault_storage_bytes"),
		"Total apparent size of the vault files counted by clavis_vaults.",
		nil, nil)
	vaultReadyDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "vault_index_ready"),
		"1 once a full scan of the vault data directory has completed and the directory is usable (clavis_vaults is exported), 0 while the first scan runs or the directory is unusable.",
		nil, nil)
	vaultLiveDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "vault_index_live"),
		"1 while inotify keeps clavis_vaults current between full scans, 0 when the count is as of a scan (inotify limit reached, events lost and a rescan pending, FSNOTIFY_DEBUG set, or a look at the directory hung).",
		nil, nil)
	vaultAgeDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "vault_result_age_seconds"),
		"How old clavis_vaults may be: 0 while the index is live, else the seconds since the scan (or the event loss) it is as of.",
		nil, nil)
	vaultScanDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "vault_scan_duration_seconds"),
		"Duration of the latest completed full scan of the vault data directory.",
		nil, nil)
	vaultScanTimestampDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "vault_scan_timestamp_seconds"),
		"Unix time at which the latest full scan of the vault data directory completed.",
		nil, nil)
)

func init() {
	Register(Spec{
		Name:           "vault",
		DefaultEnabled: true,
		Core:           true,
		Setup:          setupVault,
	})
}

func setupVault(app *kingpin.Application) Factory {
	dir := app.Flag("vault.data-dir",
		"Directory holding one file per vault; indexed with directory listings, lstat and inotify, never opened.").
		Default(DefaultVaultDataDir).String()
	// The pattern is checked as the flag is parsed, so a bad glob is a flag
	// error (exit code 2) like every other, not a collector start-up failure.
	pattern := new(string)
	app.Flag("vault.file-pattern",
		"Glob (path.Match syntax, names only) of vault file names in --vault.data-dir. Hidden files and *.tmp, *-journal, *-wal, *-shm never count.").
		Default(DefaultVaultFilePattern).SetValue(&globFlag{name: "vault.file-pattern", s: pattern})
	rescan := AddDurationFlag(app, "vault.rescan-interval",
		"Interval between full rescans of --vault.data-dir, which correct any drift of the inotify-kept count (1m to 24h).",
		"1h", minVaultRescan, maxVaultRescan)
	return func(env Env) (Collector, error) {
		cfg, err := vaultConfig(*dir, *pattern, *rescan)
		if err != nil {
			return nil, err
		}
		cfg.Logger, cfg.Now = env.Logger, env.Now
		cfg.Settle = env.Settle
		return startVaultCollector(env.Context, cfg, vaultStartupWait), nil
	}
}

// vaultConfig checks the flags; errors name the flag.
func vaultConfig(dir, pattern string, rescan time.Duration) (vaultindex.Config, error) {
	if dir == "" {
		return vaultindex.Config{}, fmt.Errorf("--vault.data-dir is empty")
	}
	filter, err := vaultindex.NewFilter(pattern)
	if err != nil {
		return vaultindex.Config{}, fmt.Errorf("--vault.file-pattern: %w", err)
	}
	if rescan < minVaultRescan || rescan > maxVaultRescan {
		return vaultindex.Config{}, fmt.Errorf("--vault.rescan-interval=%s: must be between %s and %s", rescan, minVaultRescan, maxVaultRescan)
	}
	return vaultindex.Config{Dir: dir, Filter: filter, Rescan: rescan}, nil
}

type vaultCollector struct {
	index *vaultindex.Index
	now   func() time.Time
}

// startVaultCollector runs the index until ctx is done and waits up to
// wait for its first scan.
func startVaultCollector(ctx context.Context, cfg vaultindex.Config, wait time.Duration) *vaultCollector {
	if ctx == nil {
		ctx = context.Background()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	x := vaultindex.New(cfg)
	go x.Run(ctx)
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for s := x.Snapshot(); !s.Ready && s.Err == nil; s = x.Snapshot() {
		select {
		case <-deadline.C:
			return &vaultCollector{index: x, now: cfg.Now}
		case <-ctx.Done():
			return &vaultCollector{index: x, now: cfg.Now}
		case <-tick.C:
		}
	}
	return &vaultCollector{index: x, now: cfg.Now}
}

// Update reads the index's latest snapshot: no directory access, no
// allocation that grows with the number of files.
func (c *vaultCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	s := c.index.Snapshot()
	gauge := func(d *prometheus.Desc, v float64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v)
	}
	ok := s.Ready && s.Err == nil
	gauge(vaultReadyDesc, b2f(ok))
	gauge(vaultLiveDesc, b2f(ok && s.Live))
	if s.Scans > 0 {
		gauge(vaultScanDurationDesc, s.LastScanDuration.Seconds())
		gauge(vaultScanTimestampDesc, float64(s.LastScanEnd.UnixNano())/1e9)
	}
	if s.Err != nil {
		return fmt.Errorf("vault index: %w", s.Err)
	}
	if !ok {
		return nil // first scan still running: reported by clavis_vault_index_ready 0
	}
	age := 0.0
	if !s.Live {
		age = max(c.now().Sub(s.AsOf).Seconds(), 0)
	}
	gauge(vaultAgeDesc, age)
	gauge(vaultsDesc, float64(s.Count))
	gauge(vaultStorageDesc, float64(s.Bytes))
	return nil
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// globFlag is a kingpin value holding a vault file pattern that
// vaultindex.NewFilter accepts.
type globFlag struct {
	name string
	s    *string
}

func (f *globFlag) Set(v string) error {
	if _, err := vaultindex.NewFilter(v); err != nil {
		return fmt.Errorf("--%s: %w", f.name, err)
	}
	*f.s = v
	return nil
}

func (f *globFlag) String() string {
	if f.s == nil {
		return ""
	}
	return *f.s
}
