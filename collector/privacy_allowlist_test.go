package collector

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
	"github.com/clavitor/clavis-telemetry/privacy"
	"github.com/clavitor/clavis-telemetry/tarpit"
)

type fakeTarpit struct{}

func (fakeTarpit) Snapshot() tarpit.Snapshot {
	return tarpit.Snapshot{
		Protocols:        map[string]tarpit.ProtocolStats{"ssh": {Connections: 3, Active: 1, TrappedSeconds: 12, BytesSent: 99}, "http": {Connections: 1}},
		Rejected:         map[string]uint64{"max_clients": 1, "per_source": 2},
		UniqueSources24h: 2,
	}
}

// popInputs are the files the vault and accesslog collectors read in these
// tests: a vault directory and an access log with a line in each format,
// so that every family (histogram included) has something to say.
func popInputs(t *testing.T) (vaultDir, logPath string, lines int) {
	t.Helper()
	vaultDir = t.TempDir()
	writeFile(t, filepath.Join(vaultDir, "aVaultIdentifier.db"), 42)
	logPath = filepath.Join(t.TempDir(), "access.log")
	now := time.Now().UTC()
	content := `192.0.2.10 - - [` + now.Format("02/Jan/2006:15:04:05 -0700") + `] "GET /api/x?y=1 HTTP/1.1" 200 512 "-" "curl/8.0" "-" 0.012` + "\n" +
		`{"ts":` + strconv.FormatInt(now.Unix(), 10) + `,"request":{"remote_ip":"2001:db8::7","client_ip":"2001:db8::7","method":"POST","uri":"/api/y"},"duration":0.2,"size":10,"status":503}` + "\n"
	if err := os.WriteFile(logPath, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return vaultDir, logPath, 2
}

// popFlags returns the command line that points every registered collector
// at test inputs. Flags are added only when the collector that owns them is
// registered, so the test follows the collectors that exist at run time.
func popFlags(app *kingpin.Application, enable []string, paths Paths, vaultDir, logPath string) []string {
	args := []string{"--collector.disable-defaults",
		"--path.procfs=" + paths.ProcFS, "--path.sysfs=" + paths.SysFS, "--path.rootfs=" + paths.RootFS}
	for _, n := range enable {
		args = append(args, "--collector."+n)
	}
	optional := []string{
		"--vault.data-dir=" + vaultDir,
		"--accesslog.path=" + logPath,
		"--accesslog.from-start",
		"--accesslog.route=api=^/api/",
	}
	for _, a := range optional {
		name := strings.TrimPrefix(a, "--")
		if i := strings.IndexByte(name, '='); i >= 0 {
			name = name[:i]
		}
		if app.GetFlag(name) != nil {
			args = append(args, a)
		}
	}
	return args
}

// buildPOP builds the named collectors through the registry and flags, as
// the binary does, and returns a registry holding their scraper. The
// collectors' background work stops when the test ends.
func buildPOP(t *testing.T, enable []string, paths Paths, vaultDir, logPath string, extra ...string) *prometheus.Registry {
	t.Helper()
	app := kingpin.New("clavis-telemetry-test", "")
	set := NewSet(app)
	args := append(popFlags(app, enable, paths, vaultDir, logPath), extra...)
	if _, err := app.Parse(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	scraper, err := set.Build(Env{Logger: slog.New(slog.DiscardHandler), Context: ctx, Tarpit: fakeTarpit{}})
	if err != nil {
		t.Fatalf("build %v: %v", enable, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(scraper)
	return reg
}

func familyValues(mfs []*dto.MetricFamily, name string) (sum float64, found bool) {
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		found = true
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + m.GetUntyped().GetValue()
		}
	}
	return sum, found
}

// gatherUntil gathers until the access log's lines are all counted (when
// the accesslog collector is built), so families that only appear after
// a line (requests, the histogram) are there.
func gatherUntil(t *testing.T, g prometheus.Gatherer, lines int) []*dto.MetricFamily {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs, err := g.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n, following := familyValues(mfs, "clavis_accesslog_lines_total")
		if !following || int(n) >= lines {
			return mfs
		}
		if time.Now().After(deadline) {
			t.Fatalf("the accesslog collector counted %v of %d lines in 10s", n, lines)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func collectorSuccess(mfs []*dto.MetricFamily) map[string]float64 {
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() == "clavis_scrape_collector_success" {
			for _, m := range mf.GetMetric() {
				out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
			}
		}
	}
	return out
}

// TestEveryCollectorFamilyIsAllowlisted builds every registered collector
// (whatever exists at run time) against fixtures and checks that each
// family it emits, and each label of it, is on the privacy gate's
// allowlist: a family missing there would silently vanish from /metrics.
func TestEveryCollectorFamilyIsAllowlisted(t *testing.T) {
	t.Parallel()
	names := Names()
	if len(names) == 0 {
		t.Fatal("no collector registered")
	}
	vaultDir, logPath, lines := popInputs(t)
	fixtures := Paths{ProcFS: "testdata/proc", SysFS: "testdata/sys", RootFS: "testdata/rootfs"}
	host := Paths{ProcFS: "/proc", SysFS: "/sys", RootFS: "/"}

	mfs := gatherUntil(t, buildPOP(t, names, fixtures, vaultDir, logPath), lines)
	success := collectorSuccess(mfs)
	for _, n := range names {
		if success[n] == 1 {
			continue
		}
		// Not every collector may have a fixture: try the host itself.
		t.Logf("collector %s failed against the fixtures; checking it against the host", n)
		more := gatherUntil(t, buildPOP(t, []string{n}, host, vaultDir, logPath), lines)
		if collectorSuccess(more)[n] != 1 {
			t.Errorf("collector %s failed against fixtures and host: its families cannot be checked", n)
		}
		mfs = append(mfs, more...)
	}

	seen := map[string]bool{}
	for _, mf := range mfs {
		name := mf.GetName()
		seen[name] = true
		allowed, ok := privacy.AllowedLabels(name)
		if !ok {
			t.Errorf("family %s is not in allowedFamilies (privacy/allowlist.go): the gate drops it", name)
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !slices.Contains(allowed, lp.GetName()) {
					t.Errorf("family %s has label %q, not allowed for it in privacy/allowlist.go", name, lp.GetName())
				}
			}
		}
	}
	// Sanity: the check saw the collectors' own families, not just the
	// scraper's.
	want := []string{"clavis_scrape_collector_success", "clavis_vaults"}
	if slices.Contains(names, "accesslog") {
		want = append(want, "clavis_http_requests_total", "clavis_http_request_duration_seconds", "clavis_unique_ips_24h")
	}
	for _, want := range want {
		if !seen[want] {
			t.Errorf("family %s missing from the gathered output", want)
		}
	}
	t.Logf("%d collectors, %d families checked", len(names), len(seen))
}

// TestVaultAndGateMetricsPromtoolClean runs the real promtool's metric lint
// over what the vault collector and the gate itself expose, through the
// gate, in the text format Prometheus scrapes.
func TestVaultAndGateMetricsPromtoolClean(t *testing.T) {
	t.Parallel()
	promtool := e2eutil.RequireBinary(t, "promtool")
	vaultDir, logPath, _ := popInputs(t)
	gate := privacy.NewGate(buildPOP(t, []string{"vault"}, Paths{ProcFS: "/proc", SysFS: "/sys", RootFS: "/"}, vaultDir, logPath), nil)
	mfs, err := gate.Gather()
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
	for _, want := range []string{"clavis_vaults 1\n", "clavis_vault_storage_bytes 42\n", `clavis_privacy_redactions_total{reason="ip_address"} 0`} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("exposition lacks %q:\n%s", want, buf.String())
		}
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\ninput:\n%s", err, out, buf.String())
	}
}
