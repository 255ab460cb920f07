package collector

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const testVaultID = "9f8e7d6c-5b4a-4321-8fed-cba987654321"

// writeMountinfo makes a proc tree holding the given mount tables
// ("1" for PID 1's, "self" for the exporter's own; "" leaves one out).
func writeMountinfo(t *testing.T, pid1, self string) string {
	t.Helper()
	proc := t.TempDir()
	for pid, content := range map[string]string{"1": pid1, "self": self} {
		if content == "" {
			continue
		}
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "mountinfo"), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return proc
}

// scrapeFilesystem runs the collector once under the scraper and returns the
// mount points reported, success, and the log.
func scrapeFilesystem(t *testing.T, cfg filesystemConfig) (mps []string, success float64, logs string) {
	t.Helper()
	var buf bytes.Buffer
	cfg.logger = slog.New(slog.NewTextHandler(&buf, nil))
	s := NewScraper([]Named{{"filesystem", newFilesystemCollector(cfg)}}, 5*time.Second, cfg.logger)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "clavis_filesystem_readonly":
				for _, l := range m.GetLabel() {
					if l.GetName() == "mountpoint" {
						mps = append(mps, l.GetValue())
					}
				}
			case "clavis_scrape_collector_success":
				success = m.GetGauge().GetValue()
			}
		}
	}
	return mps, success, buf.String()
}

// TestFilesystemVaultDirInContainer is the README's Docker set-up: the
// host's / at --path.rootfs=/host, the host's /var/lib/clavitor/vaults
// bind-mounted at /vaults (--vault.data-dir=/vaults), the host's mount
// table read as PID 1's. The per-vault mounts inside the host path are
// found through the bind mount's source in the container's own table and
// left out, whether the vault directory is a file system of its own or a
// directory of the host's root file system.
func TestFilesystemVaultDirInContainer(t *testing.T) {
	t.Parallel()
	for name, tc := range map[string]struct{ host, self string }{
		"own file system": {
			host: `27 1 254:0 / / rw - ext4 /dev/vda rw
60 27 254:16 / /var/lib/clavitor/vaults rw - ext4 /dev/vdb rw
61 60 254:16 /` + testVaultID + ` /var/lib/clavitor/vaults/` + testVaultID + ` rw - ext4 /dev/vdb rw
62 60 254:32 / /var/lib/clavitor/vaults/` + testVaultID + `-vol rw - xfs /dev/vdc rw
63 27 254:16 /` + testVaultID + ` /srv/exports/x rw - ext4 /dev/vdb rw
`,
			self: `500 400 0:77 / / rw - overlay overlay rw,lowerdir=/l
501 500 254:0 / /host ro,relatime master:1 - ext4 /dev/vda rw
502 500 254:16 / /vaults ro - ext4 /dev/vdb rw
`,
		},
		"directory of the root file system": {
			host: `27 1 254:0 / / rw - ext4 /dev/vda rw
61 27 254:16 / /var/lib/clavitor/vaults/` + testVaultID + ` rw - ext4 /dev/vdb rw
63 27 254:0 /var/lib/clavitor/vaults/` + testVaultID + ` /srv/exports/x rw - ext4 /dev/vda rw
`,
			self: `500 400 0:77 / / rw - overlay overlay rw,lowerdir=/l
501 500 254:0 / /host ro,relatime master:1 - ext4 /dev/vda rw
502 500 254:0 /var/lib/clavitor/vaults /vaults ro - ext4 /dev/vda rw
`,
		},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := defaultFilesystemConfig(t, writeMountinfo(t, tc.host, tc.self), func(string) (fsStats, error) { return fakeStats, nil })
			cfg.rootfs, cfg.vaultDir = "/host", "/vaults"
			cfg.mountPoints = deviceFilter{include: mustRegexpFlag(t, ".*")}
			mps, ok, logs := scrapeFilesystem(t, cfg)
			if ok != 1 {
				t.Fatalf("success %v; log:\n%s", ok, logs)
			}
			got := strings.Join(mps, " ")
			if strings.Contains(got, testVaultID) || strings.Contains(got, "/srv/exports") {
				t.Errorf("a mount inside the vault directory is reported: %s", got)
			}
			if !strings.Contains(" "+got+" ", " / ") {
				t.Errorf("/ is missing: %s", got)
			}
		})
	}
}

// TestFilesystemVaultDirSymlink: --vault.data-dir goes through a symbolic
// link; the mount table names the resolved path.
func TestFilesystemVaultDirSymlink(t *testing.T) {
	t.Parallel()
	d := t.TempDir()
	real := filepath.Join(d, "srv", "vaults")
	if err := os.MkdirAll(real, 0o755); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(d, "vaults")
	if err := os.Symlink(real, link); err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(real) // the temp dir may itself be behind a link
	if err != nil {
		t.Fatal(err)
	}
	table := fmt.Sprintf("27 1 254:0 / / rw - ext4 /dev/vda rw\n60 27 254:16 / %s rw - ext4 /dev/vdb rw\n61 60 254:32 / %s/%s rw - ext4 /dev/vdc rw\n", real, real, testVaultID)
	cfg := defaultFilesystemConfig(t, writeMountinfo(t, table, table), func(string) (fsStats, error) { return fakeStats, nil })
	cfg.rootfs, cfg.vaultDir = "/", link
	mps, _, _ := scrapeFilesystem(t, cfg)
	got := strings.Join(mps, " ")
	if strings.Contains(got, testVaultID) {
		t.Errorf("a mount inside the vault directory is reported: %s", got)
	}
	if !strings.Contains(got, real) {
		t.Errorf("the vault directory's own file system is missing: %s", got)
	}
}

// TestFilesystemVaultDirUnknownFailsSafe: the table is PID 1's and the
// exporter's own cannot be read, so where the vault directory is in PID
// 1's namespace cannot be told: only / is reported, with a warning.
func TestFilesystemVaultDirUnknownFailsSafe(t *testing.T) {
	t.Parallel()
	host := `27 1 254:0 / / rw - ext4 /dev/vda rw
60 27 254:16 / /srv/vaults rw - ext4 /dev/vdb rw
61 60 254:16 /` + testVaultID + ` /srv/vaults/` + testVaultID + ` rw - ext4 /dev/vdb rw
`
	cfg := defaultFilesystemConfig(t, writeMountinfo(t, host, ""), func(string) (fsStats, error) { return fakeStats, nil })
	cfg.rootfs, cfg.vaultDir = "/host", "/vaults"
	mps, ok, logs := scrapeFilesystem(t, cfg)
	if strings.Join(mps, " ") != "/" || ok != 1 {
		t.Errorf("reported %v (success %v), want only /", mps, ok)
	}
	if !strings.Contains(logs, "--vault.data-dir") {
		t.Errorf("no warning; log:\n%s", logs)
	}
}

// TestFilesystemMaxMounts: beyond --collector.filesystem.max-mounts, / and
// the vault directory's file system are kept, then the first mount points
// by name; the rest are counted, the cap is logged once without names, and
// no more than maxConcurrentStatfs statfs calls run at once.
func TestFilesystemMaxMounts(t *testing.T) {
	t.Parallel()
	table := srvMounts(500) + "9 27 254:17 / /zz/vaults rw - ext4 /dev/vdz rw\n"
	proc := writeMountinfo(t, table, table)
	var inFlight, peak atomic.Int32
	cfg := defaultFilesystemConfig(t, proc, func(string) (fsStats, error) {
		n := inFlight.Add(1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		time.Sleep(100 * time.Microsecond)
		inFlight.Add(-1)
		return fakeStats, nil
	})
	cfg.vaultDir, cfg.maxMounts = "/zz/vaults", 10
	var logs bytes.Buffer
	cfg.logger = slog.New(slog.NewTextHandler(&logs, nil))
	c := newFilesystemCollector(cfg)
	for range 2 {
		ms, err := collectAll(c)
		if err != nil {
			t.Fatal(err)
		}
		var mps []string
		dropped := -1.0
		for _, m := range ms {
			s := metricSample(t, m)
			switch s.name {
			case "clavis_filesystem_readonly":
				mps = append(mps, s.labels["mountpoint"])
			case "clavis_filesystem_mounts_dropped":
				dropped = s.value
			}
		}
		want := "/ /srv/m0000 /srv/m0001 /srv/m0002 /srv/m0003 /srv/m0004 /srv/m0005 /srv/m0006 /srv/m0007 /zz/vaults"
		if got := strings.Join(mps, " "); got != want {
			t.Errorf("kept %s, want %s", got, want)
		}
		if dropped != 492 {
			t.Errorf("clavis_filesystem_mounts_dropped %v, want 492", dropped)
		}
	}
	if p := peak.Load(); p > maxConcurrentStatfs {
		t.Errorf("%d statfs calls at once, want at most %d", p, maxConcurrentStatfs)
	}
	if n := strings.Count(logs.String(), "max-mounts"); n != 1 {
		t.Errorf("cap logged %d times, want once:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "/srv/") {
		t.Errorf("the log names mount points:\n%s", logs.String())
	}
}

// TestFilesystemMountinfoLongLine: an overlay mount whose options exceed
// bufio.Scanner's 64 KiB does not cost the rest of the table.
func TestFilesystemMountinfoLongLine(t *testing.T) {
	t.Parallel()
	long := "lowerdir=" + strings.Repeat("/var/lib/containerd/snapshots/12345/fs:", 3000)
	table := "27 1 254:0 / / rw - ext4 /dev/vda rw\n99 27 0:77 / /run/containerd/x/rootfs rw - overlay overlay rw," + long + "\n"
	cfg := defaultFilesystemConfig(t, writeMountinfo(t, table, table), func(string) (fsStats, error) { return fakeStats, nil })
	mps, ok, logs := scrapeFilesystem(t, cfg)
	if ok != 1 || strings.Join(mps, " ") != "/" {
		t.Errorf("reported %v, success %v; log:\n%.500s", mps, ok, logs)
	}
}

// TestFilesystemMountinfoMalformedNotQuoted: a malformed line fails the
// collector with its number, and nothing of its text reaches the log.
func TestFilesystemMountinfoMalformedNotQuoted(t *testing.T) {
	t.Parallel()
	table := "27 1 254:0 / / rw - ext4 /dev/vda rw\n61 60 254:16 /" + testVaultID + " /var/lib/clavitor/vaults/" + testVaultID + " rw ext4 /dev/vdb rw\n"
	cfg := defaultFilesystemConfig(t, writeMountinfo(t, table, table), func(string) (fsStats, error) { return fakeStats, nil })
	_, ok, logs := scrapeFilesystem(t, cfg)
	if ok != 0 || !strings.Contains(logs, "mountinfo: line 2 is malformed") {
		t.Errorf("success %v; log:\n%s", ok, logs)
	}
	if strings.Contains(logs, testVaultID) || strings.Contains(logs, "/var/lib") {
		t.Errorf("the log quotes the line:\n%s", logs)
	}
}

// TestFilesystemUnaskedMountsNotBlamed: when slow statfs calls ahead use up
// the stat timeout, the mounts never asked get no device_error=1 (healthy
// file systems, the same ones every scrape), and the log says how many.
func TestFilesystemUnaskedMountsNotBlamed(t *testing.T) {
	t.Parallel()
	table := srvMounts(40)
	proc := writeMountinfo(t, table, table)
	cfg := defaultFilesystemConfig(t, proc, func(string) (fsStats, error) {
		time.Sleep(150 * time.Millisecond) // slow, but answers
		return fakeStats, nil
	})
	cfg.statTimeout = 500 * time.Millisecond
	var logs bytes.Buffer
	cfg.logger = slog.New(slog.NewTextHandler(&logs, nil))
	c := newFilesystemCollector(cfg)
	ms, err := collectAll(c)
	if err != nil {
		t.Fatal(err)
	}
	readonly, ok, blamed := 0, 0, 0
	for _, m := range ms {
		s := metricSample(t, m)
		switch {
		case s.name == "clavis_filesystem_readonly":
			readonly++
		case s.name == "clavis_filesystem_device_error" && s.value == 0:
			ok++
		case s.name == "clavis_filesystem_device_error":
			blamed++
		}
	}
	if readonly != 41 || ok == 0 || ok == 41 {
		t.Fatalf("%d mounts, %d answered: the test did not run out of time part-way", readonly, ok)
	}
	if blamed != 0 {
		t.Errorf("%d healthy mounts that were never asked got device_error 1", blamed)
	}
	if !strings.Contains(logs.String(), fmt.Sprintf("mount_points=%d", 41-ok)) {
		t.Errorf("the unasked mounts are not counted in the log:\n%s", logs.String())
	}
}

// srvMounts is a mountinfo table of / and n ext4 mounts /srv/m0000 ...
func srvMounts(n int) string {
	var b strings.Builder
	b.WriteString("27 1 254:0 / / rw - ext4 /dev/vda rw\n")
	for i := range n {
		fmt.Fprintf(&b, "%d 27 254:16 / /srv/m%04d rw - ext4 /dev/vd%d rw\n", 100+i, i, i)
	}
	return b.String()
}
