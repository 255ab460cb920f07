package collector

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestNetdevAndDiskstatsMaxDevices: beyond the cap the first devices by
// name are kept, the rest counted; the cap is logged once, without names;
// a device name written twice in diskstats gives one series set.
func TestNetdevAndDiskstatsMaxDevices(t *testing.T) {
	t.Parallel()
	proc := t.TempDir()
	var net, disk strings.Builder
	net.WriteString("Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
	for i := range 300 {
		fmt.Fprintf(&net, "veth%04d: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n", 299-i)
		fmt.Fprintf(&disk, "254 %d dm-%04d 1 0 8 0 1 0 8 0 0 0 0\n", i, 299-i)
	}
	disk.WriteString("254 999 dm-0000 1 0 8 0 1 0 8 0 0 0 0\n")
	for name, content := range map[string]string{"net/dev": net.String(), "diskstats": disk.String()} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(proc, name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proc, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	nd := newNetdevCollector(mustProcFS(t, proc), deviceFilter{})
	nd.cap = newDeviceCap(5, "--collector.netdev.max-devices", logger)
	ds := newDiskstatsCollector(mustBlockFS(t, proc), deviceFilter{})
	ds.cap = newDeviceCap(5, "--collector.diskstats.max-devices", logger)
	for _, tc := range []struct {
		c       Collector
		dropped string
		want    string
	}{
		{nd, "clavis_network_devices_dropped", "veth0000 veth0001 veth0002 veth0003 veth0004"},
		{ds, "clavis_disk_devices_dropped", "dm-0000 dm-0001 dm-0002 dm-0003 dm-0004"},
	} {
		for range 2 {
			ms, err := collectAll(tc.c)
			if err != nil {
				t.Fatal(err)
			}
			seen := map[string]bool{}
			var devs []string
			dropped := -1.0
			for _, m := range ms {
				s := metricSample(t, m)
				if s.name == tc.dropped {
					dropped = s.value
				} else if d := s.labels["device"]; !seen[d] {
					seen[d] = true
					devs = append(devs, d)
				}
			}
			if got := strings.Join(devs, " "); got != tc.want {
				t.Errorf("%s: kept %s, want %s", tc.dropped, got, tc.want)
			}
			if dropped != 295 {
				t.Errorf("%s = %v, want 295", tc.dropped, dropped)
			}
		}
	}
	if n := strings.Count(logs.String(), "level=WARN"); n != 2 {
		t.Errorf("%d warnings, want one per collector:\n%s", n, logs.String())
	}
	if strings.Contains(logs.String(), "veth") || strings.Contains(logs.String(), "dm-") {
		t.Errorf("the log names devices:\n%s", logs.String())
	}
}

// TestMaxDevicesFlagBounds: the caps are refused at 0 (which would blank
// the collector, a core one in the filesystem's case) and above 65536.
func TestMaxDevicesFlagBounds(t *testing.T) {
	t.Parallel()
	for _, flag := range []string{"collector.filesystem.max-mounts", "collector.netdev.max-devices", "collector.diskstats.max-devices"} {
		for _, v := range []string{"0", "-1", "65537", "lots"} {
			_, err := parseSystemFlags(t, "--path.procfs="+fixtureProc, "--"+flag+"="+v)
			if err == nil || !strings.Contains(err.Error(), "--"+flag) {
				t.Errorf("--%s=%s: err %v, want one naming the flag", flag, v, err)
			}
		}
		if _, err := parseSystemFlags(t, "--path.procfs="+fixtureProc, "--"+flag+"=1"); err != nil {
			t.Errorf("--%s=1: %v", flag, err)
		}
	}
}

// TestNetdevCapKeepsPhysicalInterfaces: on a container host with more
// veths than the cap, the uplinks (interfaces sysfs backs with a device)
// are kept, whatever their names sort as, and the rest of the room goes to
// the first by name. Without the preference, eth0 and ens5 sort after
// "cali*" and were dropped.
func TestNetdevCapKeepsPhysicalInterfaces(t *testing.T) {
	t.Parallel()
	proc, sys := t.TempDir(), t.TempDir()
	var net strings.Builder
	net.WriteString("Inter-|   Receive                                                |  Transmit\n face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n")
	names := []string{"eth0", "ens5", "docker0"}
	for i := range 300 {
		names = append(names, fmt.Sprintf("cali%04d", i))
	}
	for _, n := range names {
		fmt.Fprintf(&net, "%s: 1 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0\n", n)
		dir := filepath.Join(sys, "class", "net", n)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if n == "eth0" || n == "ens5" {
			// A physical NIC: sysfs links it to its bus device.
			if err := os.MkdirAll(filepath.Join(sys, "devices", "pci0000:00", n), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(filepath.Join(sys, "devices", "pci0000:00", n), filepath.Join(dir, "device")); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.MkdirAll(filepath.Join(proc, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(proc, "net", "dev"), []byte(net.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	nd := newNetdevCollector(mustProcFS(t, proc), deviceFilter{})
	nd.cap = newDeviceCap(4, "--collector.netdev.max-devices", nil)
	nd.sysfs = sys
	ms, err := collectAll(nd)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var devs []string
	for _, m := range ms {
		s := metricSample(t, m)
		if s.name == "clavis_network_devices_dropped" {
			if s.value != 299 {
				t.Errorf("dropped = %v, want 299", s.value)
			}
		} else if d := s.labels["device"]; !seen[d] {
			seen[d] = true
			devs = append(devs, d)
		}
	}
	if got, want := strings.Join(devs, " "), "cali0000 cali0001 ens5 eth0"; got != want {
		t.Errorf("kept %s, want %s", got, want)
	}
}
