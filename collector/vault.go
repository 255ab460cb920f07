package collector

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
)

// The vault collector counts the vault files of the POP's vault service and
// their total size. It only ever reads the directory and lstat()s entries:
// a vault file is never opened, read or hashed, and no file name ever leaves
// this file (names can be vault identifiers; hard rule 1). Errors name the
// data directory, which is operator configuration, never an entry.

const (
	// DefaultVaultDataDir is where the vault service keeps one file per vault.
	DefaultVaultDataDir = "/var/lib/clavitor/vaults"
	// DefaultVaultFilePattern matches every name: the data directory holds
	// vaults and nothing else, apart from the companions vaultTempSuffixes
	// and hidden files exclude. Narrow it (e.g. "*.db") if the directory is
	// shared.
	DefaultVaultFilePattern = "*"
	// vaultCtxCheckEvery is how many directory entries are handled between
	// two looks at the scrape's context: cheap enough to be invisible, often
	// enough that a timed-out scrape stops within milliseconds.
	vaultCtxCheckEvery = 4096
	// vaultStatWorkers caps the goroutines that lstat() the entries of one
	// directory buffer in parallel (fewer if GOMAXPROCS is lower).
	vaultStatWorkers = 4
)

// vaultTempSuffixes are companions of a vault file (SQLite journals, write
// ahead logs, shared memory, atomic-write temp files), never vaults.
var vaultTempSuffixes = []string{".tmp", "-journal", "-wal", "-shm"}

var (
	vaultsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "vaults"),
		"Number of vault files in the vault data directory (regular files matching --vault.file-pattern; symlinks, sub-directories, hidden and temp files excluded).",
		nil, nil)
	vaultStorageDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "vault_storage_bytes"),
		"Total apparent size of the vault files counted by clavis_vaults.",
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
		"Directory holding one file per vault; read with directory listings and lstat only, never opened.").
		Default(DefaultVaultDataDir).String()
	pattern := app.Flag("vault.file-pattern",
		"Glob (path.Match syntax, names only) of vault file names in --vault.data-dir. Hidden files and *.tmp, *-journal, *-wal, *-shm never count.").
		Default(DefaultVaultFilePattern).String()
	return func(env Env) (Collector, error) {
		return newVaultCollector(*dir, *pattern)
	}
}

type vaultCollector struct {
	dir     string
	pattern string
	workers int // parallel lstat() callers; 1 = serial
}

func newVaultCollector(dir, pattern string) (*vaultCollector, error) {
	if dir == "" {
		return nil, errors.New("--vault.data-dir is empty")
	}
	if pattern == "" {
		return nil, errors.New("--vault.file-pattern is empty")
	}
	if strings.ContainsRune(pattern, '/') {
		return nil, fmt.Errorf("--vault.file-pattern %q: a pattern matches file names, it cannot contain '/'", pattern)
	}
	// filepath.Match checks the whole pattern's syntax whatever the name.
	if _, err := filepath.Match(pattern, ""); err != nil {
		return nil, fmt.Errorf("--vault.file-pattern %q: %w", pattern, err)
	}
	return &vaultCollector{dir: dir, pattern: pattern, workers: min(runtime.GOMAXPROCS(0), vaultStatWorkers)}, nil
}

// isVaultName decides on the name alone, before any lstat: this keeps the
// syscalls to one per candidate vault.
func (c *vaultCollector) isVaultName(name string) bool {
	if name == "" || name[0] == '.' {
		return false // ".", "..", hidden files and dot-prefixed temp files
	}
	for _, s := range vaultTempSuffixes {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	ok, _ := filepath.Match(c.pattern, name) // syntax checked at construction
	return ok
}

// vaultStats is what one scan of the data directory finds.
type vaultStats struct {
	count int64
	bytes int64
}

func (c *vaultCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	st, err := scanVaultDir(ctx, c.dir, c.isVaultName, c.workers)
	if err != nil {
		return err
	}
	ch <- prometheus.MustNewConstMetric(vaultsDesc, prometheus.GaugeValue, float64(st.count))
	ch <- prometheus.MustNewConstMetric(vaultStorageDesc, prometheus.GaugeValue, float64(st.bytes))
	return nil
}
