package collector

import (
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sys/unix"

	"github.com/clavitor/clavis-telemetry/privacy"
)

// gatedMountPoints scrapes the filesystem collector through the privacy
// gate and returns the mount points exported, the collector's success and
// the series the gate dropped.
func gatedMountPoints(t *testing.T, cfg filesystemConfig) (mps []string, success, redacted float64) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(NewScraper([]Named{{"filesystem", newFilesystemCollector(cfg)}}, 5e9, nil))
	mfs, err := privacy.NewGate(reg, nil).Gather()
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
			case "clavis_privacy_redactions_total":
				redacted += m.GetCounter().GetValue()
			}
		}
	}
	slices.Sort(mps)
	return mps, success, redacted
}

// TestFilesystemLongMountPoints: kubelet volume mount points (these two
// lines are node_exporter's fixture proc/1/mountinfo, differing only in
// an escaped space and tab) run past the gate's 128-byte bound on label
// values. They are exported cut to fit, still two series, instead of being
// dropped by the gate (which counts every such drop as a collector bug).
func TestFilesystemLongMountPoints(t *testing.T) {
	t.Parallel()
	const vmdk = `bafb9e5a-8856-7e6c-699c-801844e77a4a/kubernetes-dynamic-pvc-3eba5bba-48a3-11e8-89ab-005056b92113.vmdk`
	table := "29 1 259:2 / / rw,relatime shared:1 - ext4 /dev/dm-2 errors=remount-ro,data=ordered\n" +
		`3148 3003 260:0 / /var/lib/kubelet/plugins/kubernetes.io/vsphere-volume/mounts/[vsanDatastore]\040` + vmdk + " rw,relatime shared:31 - ext4 /dev/sda rw,data=ordered\n" +
		`3149 3004 260:0 / /var/lib/kubelet/plugins/kubernetes.io/vsphere-volume/mounts/[vsanDatastore]\011` + vmdk + " rw,relatime shared:32 - ext4 /dev/sda rw,data=ordered\n" +
		// A long name made of multi-byte characters is cut on a character boundary.
		"3150 29 260:1 / /srv/" + strings.Repeat("é", 100) + " rw - ext4 /dev/sdb rw\n"
	cfg := defaultFilesystemConfig(t, writeMountinfo(t, table, table), func(string) (fsStats, error) { return fakeStats, nil })
	mps, ok, redacted := gatedMountPoints(t, cfg)
	if ok != 1 || redacted != 0 || len(mps) != 4 {
		t.Fatalf("success %v, %v series dropped by the gate, mount points %q", ok, redacted, mps)
	}
	for _, mp := range mps {
		if len(mp) > privacy.MaxLabelValueBytes || !utf8.ValidString(mp) {
			t.Errorf("mount point label %q: %d bytes, valid UTF-8 %v", mp, len(mp), utf8.ValidString(mp))
		}
		if mp != "/" && !strings.HasPrefix(mp, "/var/lib/kubelet/plugins/") && !strings.HasPrefix(mp, "/srv/éé") {
			t.Errorf("mount point label %q lost its head", mp)
		}
	}
	if len(slices.Compact(slices.Sorted(slices.Values(mps)))) != 4 {
		t.Errorf("the long mount points collapsed into one series: %q", mps)
	}
}

// TestFilesystemMountPointsCarryNoAddress: a mount point naming a host
// by address (autofs's /net/<host>) or an e-mail address is left for the
// gate, which drops its series and counts them (issue 13); user@host
// without a dot, which the gate lets through, is cut here.
func TestFilesystemMountPointsCarryNoAddress(t *testing.T) {
	t.Parallel()
	table := "27 1 254:0 / / rw - ext4 /dev/vda rw\n" +
		"40 27 254:16 / /net/10.0.0.5/export rw - ext4 /dev/vdb rw\n" +
		"41 27 254:17 / /mnt/alice@devbox/src rw - ext4 /dev/vdc rw\n" +
		"42 27 254:18 / /mnt/bob@example.com rw - ext4 /dev/vdd rw\n" +
		"43 27 254:19 / /srv/backup@2024 rw - ext4 /dev/vde rw\n"
	cfg := defaultFilesystemConfig(t, writeMountinfo(t, table, table), func(string) (fsStats, error) { return fakeStats, nil })
	mps, ok, redacted := gatedMountPoints(t, cfg)
	want := []string{"/", "/mnt/_/src", "/srv/backup@2024"}
	if ok != 1 || redacted == 0 || !slices.Equal(mps, want) {
		t.Errorf("success %v, %v series dropped by the gate, mount points %q, want %q and drops counted", ok, redacted, mps, want)
	}
}

// FuzzMountLabels: whatever a mountinfo path holds, its label is valid
// UTF-8 within the gate's bound, or holds an address or e-mail address,
// which the gate drops (and counts). Cutting a long value never makes an
// address of what is left.
func FuzzMountLabels(f *testing.F) {
	for _, s := range []string{"/", "/net/10.0.0.5/export", "/mnt/alice@devbox", "/srv/" + strings.Repeat("é", 100),
		"/a/" + strings.Repeat("x", 130) + "1.2.3.45678", strings.Repeat("1.2.3.4/", 40), "/mnt/bob@example.com/" + strings.Repeat("y", 200)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, l := range []string{mountPointLabel(s), labelValue(deviceLabel(s)), labelValue(s)} {
			if privacy.ContainsAddress(l) || privacy.IsEmailShaped(l) {
				if l != strings.ToValidUTF8(l, "\uFFFD") {
					t.Fatalf("%q -> %q: not UTF-8", s, l)
				}
				continue // the gate's to drop
			}
			if !utf8.ValidString(l) || len(l) > privacy.MaxLabelValueBytes {
				t.Fatalf("%q -> %q", s, l)
			}
		}
	})
}

// TestFilesystemStatsDoNotWrap: a FUSE daemon answers statfs with what it
// likes; sizes past 2^64 bytes are exported as the bytes they say (in
// uint64, 2^60 blocks of 1 MiB wrapped to 0), and a block size of 0 or
// less falls back to f_bsize, then to 0.
func TestFilesystemStatsDoNotWrap(t *testing.T) {
	t.Parallel()
	st := statsOf(&unix.Statfs_t{Blocks: 1 << 60, Bfree: 1<<60 + 1, Bavail: 3, Files: 1<<64 - 1, Ffree: 7, Frsize: 1 << 20, Bsize: 4096})
	if want := (fsStats{size: 1 << 80, free: (1<<60 + 1) << 20, avail: 3 << 20, files: 1<<64 - 1, filesFree: 7}); st != want {
		t.Errorf("got %+v, want %+v", st, want)
	}
	if st := statsOf(&unix.Statfs_t{Blocks: 10, Frsize: 0, Bsize: 4096}); st.size != 40960 {
		t.Errorf("f_frsize 0: size %v, want f_bsize's 40960", st.size)
	}
	if st := statsOf(&unix.Statfs_t{Blocks: 10, Frsize: -1, Bsize: -1}); st.size != 0 {
		t.Errorf("negative block sizes: size %v, want 0", st.size)
	}
}

// TestFilesystemSourcesInsideVaultOrHomeDirs: a FUSE file system's source
// is the directory it serves. One serving a vault's files (gocryptfs over
// /var/lib/clavitor/vaults/<id>) is that vault's mount wherever it is
// mounted, and is not reported (its device label would be a raw path under
// the data directory, naming the vault); one serving a user's directory
// has the user's name cut from its device label, as a network server's
// path does.
func TestFilesystemSourcesInsideVaultOrHomeDirs(t *testing.T) {
	t.Parallel()
	table := "27 1 254:0 / / rw - ext4 /dev/vda rw\n" +
		"60 27 254:16 / /var/lib/clavitor/vaults rw - ext4 /dev/vdb rw\n" +
		"70 27 0:90 / /run/clavitor/open/" + testVaultID + " rw - fuse.gocryptfs /var/lib/clavitor/vaults/" + testVaultID + " rw\n" +
		"71 27 0:91 / /mnt/private rw - fuse.encfs /home/alice/.encrypted rw\n" +
		"72 27 0:92 / /mnt/src rw - fuse.sshfs bob@devbox:/home/bob/src rw\n" +
		"73 27 0:93 / /mnt/media rw - fuse.bindfs /run/media/carol/USB rw\n"
	cfg := defaultFilesystemConfig(t, writeMountinfo(t, table, table), func(string) (fsStats, error) { return fakeStats, nil })
	cfg.fsTypes = deviceFilter{}
	cfg.vaultDir = "/var/lib/clavitor/vaults"
	c := newFilesystemCollector(cfg)
	ms, err := collectAll(c)
	if err != nil {
		t.Fatal(err)
	}
	devices := map[string]string{}
	for _, m := range ms {
		if s := metricSample(t, m); s.name == "clavis_filesystem_readonly" {
			devices[s.labels["mountpoint"]] = s.labels["device"]
		}
	}
	want := map[string]string{
		"/": "/dev/vda", "/var/lib/clavitor/vaults": "/dev/vdb",
		"/mnt/private": "/home/_/.encrypted", "/mnt/src": "_:/home/_/src", "/mnt/media": "/run/media/_/USB",
	}
	if !maps.Equal(devices, want) {
		t.Errorf("mount point -> device %v, want %v", devices, want)
	}
}

// TestFilesystemReadonlyFromSuperOptions: a file system the kernel made
// read-only after I/O errors keeps "rw" in the mount's options and says
// "ro" (or ext4's "emergency_ro") only in its super options; it must read
// as readonly 1, or the PopFilesystemReadOnly alert never fires for it.
func TestFilesystemReadonlyFromSuperOptions(t *testing.T) {
	t.Parallel()
	table := "27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,errors=remount-ro\n" +
		"28 27 254:16 / /data rw,relatime shared:1 - ext4 /dev/vdb ro,errors=remount-ro\n" +
		"29 27 254:32 / /srv rw,relatime - ext4 /dev/vdc rw,emergency_ro\n" +
		"30 27 254:48 / /mnt/ro rw,relatime - xfs /dev/vdd ro\n" +
		"31 27 254:64 / /mnt/m ro,relatime - xfs /dev/vde rw\n"
	cfg := defaultFilesystemConfig(t, writeMountinfo(t, table, table), func(string) (fsStats, error) { return fakeStats, nil })
	ms, err := collectAll(newFilesystemCollector(cfg))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range ms {
		if s := metricSample(t, m); s.name == "clavis_filesystem_readonly" {
			got[s.labels["mountpoint"]] = s.value
		}
	}
	if want := map[string]float64{"/": 0, "/data": 1, "/srv": 1, "/mnt/ro": 1, "/mnt/m": 1}; !maps.Equal(got, want) {
		t.Errorf("readonly %v, want %v", got, want)
	}
}

// TestFilesystemReadonlyNoticedWithoutMountEvent: a file system the kernel
// turns read-only after errors sends no mount event, so the cached mount
// table (read again when poll says the table changed) would report it
// writable for good: the table is read again once mountTableMaxAge old.
// statfs' read-only flag is not used for it: it also holds the flag of
// the mount statfs goes through, and in the README's container that is
// the read-only bind of / at --path.rootfs, for every file system.
func TestFilesystemReadonlyNoticedWithoutMountEvent(t *testing.T) {
	t.Parallel()
	rw := "27 1 254:0 / / rw - ext4 /dev/vda rw\n28 27 254:16 / /data rw - ext4 /dev/vdb rw\n29 27 254:32 / /srv rw - ext4 /dev/vdc rw\n"
	proc := writeMountinfo(t, rw, rw)
	c := newFilesystemCollector(defaultFilesystemConfig(t, proc, func(string) (fsStats, error) { return fakeStats, nil }))
	now := time.Unix(1_800_000_000, 0)
	c.now = func() time.Time { return now }
	readonly := func() map[string]float64 {
		t.Helper()
		ms, err := collectAll(c)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]float64{}
		for _, m := range ms {
			if s := metricSample(t, m); s.name == "clavis_filesystem_readonly" {
				got[s.labels["mountpoint"]] = s.value
			}
		}
		return got
	}
	readonly()
	// The fixture is no procfs file; act as if poll had said "no change"
	// since the first read, as it does on /proc for an error remount.
	c.tableMu.Lock()
	c.canPoll = true
	c.tableMu.Unlock()
	errored := strings.NewReplacer("/dev/vdb rw", "/dev/vdb ro,errors=remount-ro", "/dev/vdc rw", "/dev/vdc rw,emergency_ro").Replace(rw)
	if err := os.WriteFile(filepath.Join(proc, "1", "mountinfo"), []byte(errored), 0o644); err != nil {
		t.Fatal(err)
	}
	now = now.Add(15 * time.Second)
	if got, want := readonly(), map[string]float64{"/": 0, "/data": 0, "/srv": 0}; !maps.Equal(got, want) {
		t.Errorf("before the table is read again: %v, want %v (the cached table)", got, want)
	}
	now = now.Add(mountTableMaxAge)
	if got, want := readonly(), map[string]float64{"/": 0, "/data": 1, "/srv": 1}; !maps.Equal(got, want) {
		t.Errorf("a table age later: %v, want %v", got, want)
	}
}
