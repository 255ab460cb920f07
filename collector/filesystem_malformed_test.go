package collector

import (
	"bytes"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

// TestFilesystemMountinfoMalformedLineCostsOnlyItself: a malformed line
// fails the collector for the scrape but the file systems of every other
// line are still reported. A line with two spaces between fields (procfs'
// own fixture proc/26231/mountinfo has one; procfs accepts it) is read.
func TestFilesystemMountinfoMalformedLineCostsOnlyItself(t *testing.T) {
	t.Parallel()
	table := "27 1 254:0 / / rw - ext4 /dev/vda rw\n" +
		"28 27 254:1 /  /root rw,nosuid shared:8 - ext4 /dev/vdb rw\n" +
		"29 27 254:2 / /srv/broken rw ext4 /dev/vdc rw\n" +
		"30 27 254:3 / /srv/data rw - ext4 /dev/vdd rw\n" +
		"31 27 x / /srv/other rw\n"
	cfg := defaultFilesystemConfig(t, writeMountinfo(t, table, table), func(string) (fsStats, error) { return fakeStats, nil })
	mps, ok, logs := scrapeFilesystem(t, cfg)
	if want := []string{"/", "/root", "/srv/data"}; !slices.Equal(mps, want) {
		t.Errorf("reported %q, want %q", mps, want)
	}
	if ok != 0 || !strings.Contains(logs, "mountinfo: line 3 is malformed, and 1 more") {
		t.Errorf("success %v; log:\n%s", ok, logs)
	}
	if strings.Contains(logs, "/srv/") {
		t.Errorf("the log quotes a line:\n%s", logs)
	}
}

// TestFilesystemVaultDirMalformedOwnTableFailsSafe: when the table that
// places --vault.data-dir has a malformed line, that line may have been
// the mount holding the directory, so where the directory is cannot be
// told: only / is reported (the fail-safe of an unknown place), never a
// mount that might be inside it.
func TestFilesystemVaultDirMalformedOwnTableFailsSafe(t *testing.T) {
	t.Parallel()
	table := "27 1 254:0 / / rw - ext4 /dev/vda rw\n" +
		"60 27 254:16 / /var/lib/clavitor/vaults rw ext4 /dev/vdb rw\n" +
		"61 27 254:16 /" + testVaultID + " /srv/" + testVaultID + " rw - ext4 /dev/vdb rw\n"
	for _, pid1 := range []string{"", table} { // own table only; PID 1's and own
		cfg := defaultFilesystemConfig(t, writeMountinfo(t, pid1, table), func(string) (fsStats, error) { return fakeStats, nil })
		cfg.vaultDir = "/var/lib/clavitor/vaults"
		mps, ok, _ := scrapeFilesystem(t, cfg)
		if ok != 0 || !slices.Equal(mps, []string{"/"}) {
			t.Errorf("PID 1's table given %v: success %v, reported %q, want only /", pid1 != "", ok, mps)
		}
	}
}

// TestFilesystemVaultDirUnknownLoggedOnce: the warning that the vault
// data directory cannot be placed (only / is then reported) is logged when
// that starts, not at every read of the mount table (at least once a
// minute, and at every scrape where poll cannot tell a change).
func TestFilesystemVaultDirUnknownLoggedOnce(t *testing.T) {
	t.Parallel()
	host := "27 1 254:0 / / rw - ext4 /dev/vda rw\n60 27 254:16 / /srv/vaults rw - ext4 /dev/vdb rw\n"
	cfg := defaultFilesystemConfig(t, writeMountinfo(t, host, ""), func(string) (fsStats, error) { return fakeStats, nil })
	cfg.rootfs, cfg.vaultDir = "/host", "/vaults"
	var logs bytes.Buffer
	cfg.logger = slog.New(slog.NewTextHandler(&logs, nil))
	c := newFilesystemCollector(cfg)
	for range 3 {
		if _, err := collectAll(c); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(logs.String(), "--vault.data-dir"); n != 1 {
		t.Errorf("warned %d times over 3 reads of the table, want 1:\n%s", n, logs.String())
	}
}
