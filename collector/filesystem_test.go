package collector

import (
	"context"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"golang.org/x/sys/unix"

	"github.com/clavitor/clavis-telemetry/privacy"
	"github.com/clavitor/clavis-telemetry/privacy/privacytest"
)

// fakeStats is what the injected stat function answers for every mount but
// the failing one.
var fakeStats = fsStats{size: 4096000, free: 2048000, avail: 1024000, files: 1000, filesFree: 500}

func defaultFilesystemConfig(t testing.TB, proc string, stat statFunc) filesystemConfig {
	return filesystemConfig{
		procfs:      mustProcFS(t, proc),
		procRoot:    proc,
		rootfs:      "/rootfs",
		mountPoints: deviceFilter{exclude: mustRegexpFlag(t, defaultMountPointsExclude)},
		fsTypes:     deviceFilter{exclude: mustRegexpFlag(t, defaultFSTypesExclude)},
		statTimeout: 2 * time.Second,
		stat:        stat,
	}
}

// TestFilesystemFixture reads testdata/proc/1/mountinfo: pseudo file systems
// (proc, sysfs, cgroup, devpts, ...), the kernel's trees (/dev, /sys),
// network mounts (nfs4, cifs) and container layers are left out; /data is
// mounted twice and reports the mount on top (/dev/vdd); the octal escape in
// "/srv/backup\040disk" is decoded; ro mounts have readonly 1; a statfs error
// gives device_error 1 and no usage series.
func TestFilesystemFixture(t *testing.T) {
	t.Parallel()
	stat := func(path string) (fsStats, error) {
		if path == "/rootfs/srv/backup disk" {
			return fsStats{}, unix.EIO
		}
		return fakeStats, nil
	}
	c := newFilesystemCollector(defaultFilesystemConfig(t, fixtureProc, stat))
	l := func(dev, mp, fstype string) string {
		return `{device="` + dev + `",fstype="` + fstype + `",mountpoint="` + mp + `"}`
	}
	root, data, boot := l("/dev/vda", "/", "ext4"), l("/dev/vdd", "/data", "ext4"), l("/dev/vda1", "/boot", "vfat")
	sandbox := l("model_tools_unavailable", "/mnt/sandboxing/model_tools_env/v1/python", "tmpfs")
	run, backup := l("tmpfs", "/run", "tmpfs"), l("/dev/vdc", "/srv/backup disk", "xfs")
	ok := []string{boot, data, sandbox, root, run} // sorted by device label value
	var b strings.Builder
	family := func(name, help, typ string, value func(series string) string, series []string) {
		b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
		for _, s := range series {
			b.WriteString(name + s + " " + value(s) + "\n")
		}
	}
	constant := func(v string) func(string) string { return func(string) string { return v } }
	family("clavis_filesystem_avail_bytes", "Bytes available to unprivileged users.", "gauge", constant("1.024e+06"), ok)
	family("clavis_filesystem_device_error", "1 if statfs failed or did not answer within --collector.filesystem.stat-timeout (the mount is then skipped until it answers).", "gauge",
		func(s string) string {
			if s == backup {
				return "1"
			}
			return "0"
		}, []string{boot, data, backup, sandbox, root, run})
	family("clavis_filesystem_files", "Total inodes.", "gauge", constant("1000"), ok)
	family("clavis_filesystem_files_free", "Free inodes.", "gauge", constant("500"), ok)
	family("clavis_filesystem_free_bytes", "Free bytes, including those reserved for root.", "gauge", constant("2.048e+06"), ok)
	family("clavis_filesystem_readonly", "1 if the file system is mounted read-only.", "gauge",
		func(s string) string {
			if s == backup || s == sandbox {
				return "1"
			}
			return "0"
		}, []string{boot, data, backup, sandbox, root, run})
	family("clavis_filesystem_size_bytes", "File system size in bytes.", "gauge", constant("4.096e+06"), ok)
	b.WriteString(successHelp + `clavis_scrape_collector_success{collector="filesystem"} 1` + "\n")
	compareCollector(t, "filesystem", c, b.String(),
		"clavis_filesystem_size_bytes", "clavis_filesystem_free_bytes", "clavis_filesystem_avail_bytes",
		"clavis_filesystem_files", "clavis_filesystem_files_free", "clavis_filesystem_readonly", "clavis_filesystem_device_error")
}

// TestFilesystemHungStat injects a statfs that blocks on /data the way one
// on a dead NFS server does. The scrape must come back after the stat
// timeout with device_error 1 for /data and the other mounts served; while
// the call hangs no second call is started for /data; once it returns, /data
// is measured again.
func TestFilesystemHungStat(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	var dataCalls atomic.Int32
	stat := func(path string) (fsStats, error) {
		if path == "/rootfs/data" {
			if dataCalls.Add(1) == 1 {
				<-release // only the first call hangs
			}
		}
		return fakeStats, nil
	}
	cfg := defaultFilesystemConfig(t, fixtureProc, stat)
	// The answering mounts must come back within the stat timeout even on a
	// loaded CI machine (50 ms did not, at a load average of 35): the timeout
	// only costs this test its length, twice.
	cfg.statTimeout = 2 * time.Second
	c := newFilesystemCollector(cfg)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(AsPrometheus("filesystem", c))

	const help = `# HELP clavis_filesystem_device_error 1 if statfs failed or did not answer within --collector.filesystem.stat-timeout (the mount is then skipped until it answers).
# TYPE clavis_filesystem_device_error gauge
`
	series := func(dataErr string) string {
		return help +
			`clavis_filesystem_device_error{device="/dev/vda",fstype="ext4",mountpoint="/"} 0
clavis_filesystem_device_error{device="/dev/vda1",fstype="vfat",mountpoint="/boot"} 0
clavis_filesystem_device_error{device="/dev/vdc",fstype="xfs",mountpoint="/srv/backup disk"} 0
clavis_filesystem_device_error{device="/dev/vdd",fstype="ext4",mountpoint="/data"} ` + dataErr + `
clavis_filesystem_device_error{device="model_tools_unavailable",fstype="tmpfs",mountpoint="/mnt/sandboxing/model_tools_env/v1/python"} 0
clavis_filesystem_device_error{device="tmpfs",fstype="tmpfs",mountpoint="/run"} 0
` + successHelp + `clavis_scrape_collector_success{collector="filesystem"} 1
`
	}
	gather := func(want string) {
		t.Helper()
		// A liveness bound, not a performance assertion: without the
		// off-path statfs this call would never return.
		done := make(chan error, 1)
		go func() {
			done <- testutil.GatherAndCompare(reg, strings.NewReader(want),
				"clavis_filesystem_device_error", "clavis_scrape_collector_success")
		}()
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("scrape blocked behind a hung statfs")
		}
	}
	allMeasured := func() bool {
		t.Helper()
		n, err := testutil.GatherAndCount(reg, "clavis_filesystem_size_bytes")
		if err != nil {
			t.Fatal(err)
		}
		return n == 6 // all six mounts measured
	}

	gather(series("1")) // first scrape: /data hangs, the others are served
	if allMeasured() {
		t.Fatal("the hung mount was reported with a size")
	}
	gather(series("1")) // second scrape: /data still pending and skipped
	if n := dataCalls.Load(); n != 1 {
		t.Fatalf("statfs on the hung mount was called %d times while the first call hung, want 1", n)
	}

	close(release) // the server answers again
	deadline := time.Now().Add(30 * time.Second)
	for {
		c.mu.Lock()
		_, pending := c.pending["/rootfs/data"]
		c.mu.Unlock()
		if !pending {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the returned statfs was never recorded")
		}
		time.Sleep(5 * time.Millisecond)
	}
	gather(series("0"))
	if n := dataCalls.Load(); n < 2 {
		t.Fatalf("statfs on the recovered mount was not called again (calls: %d)", n)
	}
	if !allMeasured() {
		t.Fatal("the recovered mount has no size")
	}
}

// TestFilesystemHonoursContext: a scrape whose collector deadline passes
// before the stat timeout returns at the deadline. The calls cut short had
// not had their stat timeout: their mounts are not blamed (the scraper
// reports the collector's timeout), only listed.
func TestFilesystemHonoursContext(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	defer close(release)
	stat := func(string) (fsStats, error) { <-release; return fakeStats, nil }
	cfg := defaultFilesystemConfig(t, fixtureProc, stat)
	cfg.statTimeout = time.Hour
	c := newFilesystemCollector(cfg)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var ch batch
	if err := updateInto(ctx, c, &ch); err != nil {
		t.Fatal(err)
	}
	errs, listed := 0, 0
	for _, m := range ch.Metrics() {
		switch m.Desc() {
		case c.deviceError:
			errs++
		case c.readonly:
			listed++
		}
	}
	if errs != 0 || listed != 6 {
		t.Fatalf("got %d device_error series and %d mounts listed, want 0 and 6 for mounts whose calls were cut short", errs, listed)
	}
}

// TestFilesystemMountinfoFallback: with /proc/1 hidden (hidepid), the
// collector reads /proc/self/mountinfo.
func TestFilesystemMountinfoFallback(t *testing.T) {
	t.Parallel()
	c := newFilesystemCollector(defaultFilesystemConfig(t, "testdata/proc-missing", func(string) (fsStats, error) { return fakeStats, nil }))
	want := `# HELP clavis_filesystem_size_bytes File system size in bytes.
# TYPE clavis_filesystem_size_bytes gauge
clavis_filesystem_size_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"} 4.096e+06
clavis_filesystem_size_bytes{device="/dev/vdb",fstype="ext4",mountpoint="/data"} 4.096e+06
` + successHelp + `clavis_scrape_collector_success{collector="filesystem"} 1
`
	compareCollector(t, "filesystem", c, want, "clavis_filesystem_size_bytes")
}

// parseSystemFlags parses args with the registry's real flags and builds the
// scraper, as main does.
func parseSystemFlags(t *testing.T, args ...string) (*Scraper, error) {
	t.Helper()
	app := kingpin.New("test", "")
	app.Terminate(nil)
	set := NewSet(app)
	if _, err := app.Parse(args); err != nil {
		return nil, err
	}
	return set.Build(Env{})
}

// TestFilesystemFlags goes through the command line: include flags replace
// the default excludes (here to see the NFS and CIFS mounts, whose server
// names are cut from the device label), setting include and exclude together
// is refused, and a bad regexp is a parse error naming the flag.
func TestFilesystemFlags(t *testing.T) {
	t.Parallel()
	s, err := parseSystemFlags(t, "--collector.disable-defaults", "--collector.filesystem",
		"--path.procfs="+fixtureProc, "--path.rootfs=testdata/rootfs",
		"--collector.filesystem.fs-types-include=^(nfs4|cifs)$")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)
	// The mount points do not exist under testdata/rootfs: statfs fails.
	want := `# HELP clavis_filesystem_device_error 1 if statfs failed or did not answer within --collector.filesystem.stat-timeout (the mount is then skipped until it answers).
# TYPE clavis_filesystem_device_error gauge
clavis_filesystem_device_error{device="//_/share",fstype="cifs",mountpoint="/mnt/share"} 1
clavis_filesystem_device_error{device="_:/export/pop",fstype="nfs4",mountpoint="/mnt/nfs"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "clavis_filesystem_device_error"); err != nil {
		t.Fatal(err)
	}

	_, err = parseSystemFlags(t, "--collector.filesystem.mount-points-include=^/data$",
		"--collector.filesystem.mount-points-exclude=^/boot$", "--path.procfs="+fixtureProc)
	if err == nil || !strings.Contains(err.Error(), "mutually exclusive") {
		t.Fatalf("include and exclude together: got %v, want a 'mutually exclusive' error", err)
	}
	_, err = parseSystemFlags(t, "--collector.filesystem.fs-types-exclude=(unclosed")
	if err == nil || !strings.Contains(err.Error(), "fs-types-exclude") {
		t.Fatalf("bad regexp: got %v, want an error naming the flag", err)
	}
	_, err = parseSystemFlags(t, "--collector.filesystem.stat-timeout=0s", "--path.procfs="+fixtureProc)
	if err == nil || !strings.Contains(err.Error(), "stat-timeout") {
		t.Fatalf("zero stat timeout: got %v, want an error", err)
	}
}

func TestDeviceLabel(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"/dev/sda1":                       "/dev/sda1",
		"tmpfs":                           "tmpfs",
		"tank/data":                       "tank/data",
		"10.1.2.3:/export/pop":            "_:/export/pop",
		"nfs.example.org:/srv":            "_:/srv",
		"[2001:db8::1]:/export":           "_:/export",
		"mon1:6789,10.0.0.2:6789:/cephfs": "_:/cephfs",
		"deploy@192.0.2.7:":               "_:",
		"//fileserver/share":              "//_/share",
		"//192.0.2.9":                     "//_",
		"alice@example.com":               "_",
		"sshfs#alice@example.com":         "_",
		"https://dav.alice-home.example/remote.php/webdav": "https://_/remote.php/webdav",
		"davs://alice@dav.example:443":                     "davs://_",
		"fe80::1%eth0":                                     "_",
		"[fe80::1%eth0]:/export":                           "_:/export",
		"host:share":                                       "_",
		"/dev/disk/by-label/10.0.0.9":                      "/dev/disk/by-label/_",
		"pool/ds@snap":                                     "pool/ds@snap",
		"s3fs":                                             "s3fs",
	} {
		if got := deviceLabel(in); got != want {
			t.Errorf("deviceLabel(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestUnescapeMountinfo(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		`/plain`:              "/plain",
		`/srv/backup\040disk`: "/srv/backup disk",
		`/a\011b\012c\134d`:   "/a\tb\nc\\d",
		`/trailing\04`:        `/trailing\04`,
		`/not\999octal`:       `/not\999octal`,
		`/too\777big`:         `/too\777big`,
	} {
		if got := unescapeMountinfo(in); got != want {
			t.Errorf("unescapeMountinfo(%q) = %q, want %q", in, got, want)
		}
	}
}

// escapeMountinfo is what the kernel does to a path (show_path/mangle).
func escapeMountinfo(s string) string {
	r := strings.NewReplacer(`\`, `\134`, " ", `\040`, "\t", `\011`, "\n", `\012`)
	return r.Replace(s)
}

func FuzzUnescapeMountinfo(f *testing.F) {
	for _, s := range []string{"/", "/srv/backup disk", "a\\b", "\t\n", `\040`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := unescapeMountinfo(escapeMountinfo(s)); got != s {
			t.Fatalf("round trip of %q gave %q", s, got)
		}
		_ = unescapeMountinfo(s) // arbitrary input: must not panic
	})
}

// FuzzDeviceLabel builds mount sources around an address made from the
// fuzzer's bytes, in every shape a network or fuse source takes (server:path,
// [v6]:path, user@server:path, //server/share, scheme://server/path, a bare
// server or user@server, a Ceph monitor list), and checks that no spelling of
// the address survives in the label, nor any address at all. The fuzzer's
// path is also used as a source on its own: whatever it is, the label holds
// no address, and the server part of a network source is cut.
func FuzzDeviceLabel(f *testing.F) {
	f.Add("/export/pop", []byte{10, 1, 2, 3}, uint8(0), "alice")
	f.Add("share", []byte{0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint8(3), "")
	f.Add("x/10.0.0.8:/y", []byte{192, 168, 1, 1}, uint8(5), "u")
	f.Add("//h//h", []byte{1}, uint8(2), "")
	f.Add("u@h:", []byte{0, 0, 0, 0}, uint8(7), "deploy")
	f.Fuzz(func(t *testing.T, path string, raw []byte, shape uint8, user string) {
		var a netip.Addr
		if len(raw) >= 16 {
			a = netip.AddrFrom16([16]byte(raw[:16]))
		} else {
			var b [4]byte
			copy(b[:], raw)
			a = netip.AddrFrom4(b)
		}
		spellings := []string{a.String(), a.StringExpanded()}
		if a.Is6() {
			spellings = append(spellings, "["+a.String()+"]", a.String()+"%eth0", "["+a.StringExpanded()+"%25eth0]")
		}
		host := spellings[int(shape)%len(spellings)]
		path = strings.TrimPrefix(path, "/")
		sources := []string{
			host + ":/" + path,
			user + "@" + host + ":/" + path,
			"//" + host + "/" + path,
			"https://" + host + "/" + path,
			"davs://" + user + "@" + host + ":443/" + path,
			host,
			user + "@" + host,
			"mon1:6789," + host + ":6789:/" + path,
			host + ":",
		}
		for _, src := range sources {
			got := deviceLabel(src)
			if privacy.ContainsAddress(got) {
				t.Fatalf("deviceLabel(%q) = %q holds an address", src, got)
			}
			for _, form := range privacytest.Forms(a) {
				if strings.Contains(got, form) {
					t.Fatalf("deviceLabel(%q) = %q keeps %s", src, got, form)
				}
			}
		}

		s := "/" + path
		if shape%2 == 1 {
			s = path // a source that is not a path: network, fuse, pseudo
		}
		got := deviceLabel(s)
		if privacy.ContainsAddress(got) {
			t.Fatalf("deviceLabel(%q) = %q holds an address", s, got)
		}
		if !strings.HasPrefix(s, "/") && strings.Contains(s, ":") && !strings.Contains(s, "://") && !strings.HasPrefix(got, "_") {
			t.Fatalf("deviceLabel(%q) = %q keeps the server part", s, got)
		}
		if rest, ok := strings.CutPrefix(s, "//"); ok {
			want := "//_"
			if _, share, found := strings.Cut(rest, "/"); found {
				want += "/" + share
			}
			if got != privacy.ReplaceAddresses(want, "_") {
				t.Fatalf("deviceLabel(%q) = %q, want %q (server cut)", s, got, want)
			}
		}
	})
}

// TestFilesystemPrivateMountPoints: mount points inside the vault data
// directory (bind mounts named after vault identifiers) and inside people's
// home, runtime and removable-media directories are never reported, even
// when an include flag asks for everything; the data directory's own file
// system and the /home file system are. The vault directory is matched as
// a host path and as a path under --path.rootfs.
func TestFilesystemPrivateMountPoints(t *testing.T) {
	t.Parallel()
	const mountinfo = `27 1 254:0 / / rw,relatime - ext4 /dev/vda rw
60 27 254:16 / /var/lib/clavitor/vaults rw,noatime - ext4 /dev/vdb rw
61 60 254:16 /9f8e7d6c-5b4a-4321-8fed-cba987654321 /var/lib/clavitor/vaults/9f8e7d6c-5b4a-4321-8fed-cba987654321 rw - ext4 /dev/vdb rw
62 60 254:17 / /var/lib/clavitor/vaults/team\040alpha/inner rw - xfs /dev/vdc rw
63 27 254:18 / /home rw,relatime - ext4 /dev/vdd rw
64 63 254:19 / /home/alice rw,relatime - ext4 /dev/mapper/home-alice rw
65 64 254:20 / /home/alice/photos rw,relatime - ext4 /dev/vde rw
66 27 254:21 / /var/home/bob rw,relatime - btrfs /dev/vdf rw
67 27 0:50 / /run/user/1000 rw,nosuid,nodev - tmpfs tmpfs rw,size=100k
68 27 8:17 / /media/carol/USB\040STICK rw,nosuid - vfat /dev/sdb1 rw
69 27 8:33 / /run/media/dave/backup rw,nosuid - ext4 /dev/sdc1 rw
70 27 254:22 / /homestead rw - ext4 /dev/vdg rw
71 27 254:23 / /var/lib/clavitor/vaults-archive rw - ext4 /dev/vdh rw
`
	proc := t.TempDir()
	if err := os.MkdirAll(filepath.Join(proc, "1"), 0o755); err != nil {
		t.Fatal(err)
	}
	// The exporter runs in PID 1's mount namespace: its own table is the same.
	for _, pid := range []string{"1", "self"} {
		if err := os.MkdirAll(filepath.Join(proc, pid), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, pid, "mountinfo"), []byte(mountinfo), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want := `# HELP clavis_filesystem_size_bytes File system size in bytes.
# TYPE clavis_filesystem_size_bytes gauge
clavis_filesystem_size_bytes{device="/dev/vda",fstype="ext4",mountpoint="/"} 4.096e+06
clavis_filesystem_size_bytes{device="/dev/vdb",fstype="ext4",mountpoint="/var/lib/clavitor/vaults"} 4.096e+06
clavis_filesystem_size_bytes{device="/dev/vdd",fstype="ext4",mountpoint="/home"} 4.096e+06
clavis_filesystem_size_bytes{device="/dev/vdg",fstype="ext4",mountpoint="/homestead"} 4.096e+06
clavis_filesystem_size_bytes{device="/dev/vdh",fstype="ext4",mountpoint="/var/lib/clavitor/vaults-archive"} 4.096e+06
` + successHelp + `clavis_scrape_collector_success{collector="filesystem"} 1
`
	for name, vaultDir := range map[string]string{
		"host path":         "/var/lib/clavitor/vaults/",
		"under path.rootfs": "/rootfs/var/lib/clavitor/vaults",
	} {
		t.Run(name, func(t *testing.T) {
			cfg := defaultFilesystemConfig(t, proc, func(string) (fsStats, error) { return fakeStats, nil })
			cfg.vaultDir = vaultDir
			cfg.mountPoints = deviceFilter{include: mustRegexpFlag(t, ".*")} // "everything"
			compareCollector(t, "filesystem", newFilesystemCollector(cfg), want, "clavis_filesystem_size_bytes")
		})
	}
}
