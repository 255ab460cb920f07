package main

// The golden end-to-end test: the real telemetry-edition binary, started
// against the fixture /proc tree of the collector package, must serve the
// exposition recorded in testdata/system.golden.prom, and that exposition
// must pass `promtool check metrics` without a warning.
//
// Regenerate the golden file after an intended change with
//
//	go test ./cmd/clavis-telemetry/ -run TestSystemCollectorsGolden -update
//
// and review the diff like code.

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/ with what the binary serves")

const systemGolden = "testdata/system.golden.prom"

// volatileSeries are the series whose values depend on the run, not on the
// fixtures: how long each collector took, and what statfs says about the
// file system holding collector/testdata/rootfs. Their values are replaced
// by a placeholder; the series themselves (names and labels) still have to
// match the golden file.
var volatileSeries = regexp.MustCompile(`^(clavis_scrape_collector_duration_seconds|clavis_filesystem_(size_bytes|free_bytes|avail_bytes|files|files_free))\{`)

func TestSystemCollectorsGolden(t *testing.T) {
	t.Parallel()
	promtool := e2eutil.RequireBinary(t, "promtool")
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "telemetry")
	root := e2eutil.RepoRoot(t)
	fixtures := filepath.Join(root, "collector", "testdata")
	addr := e2eutil.FreeAddr(t, "127.0.0.1")
	e2eutil.StartProcess(t, bin,
		"--web.listen-address="+addr,
		"--web.disable-exporter-metrics",
		"--path.procfs="+filepath.Join(fixtures, "proc"),
		"--path.sysfs="+filepath.Join(fixtures, "sys"),
		"--path.rootfs="+filepath.Join(fixtures, "rootfs"),
		"--collector.disable-defaults",
		"--collector.cpu", "--collector.memory", "--collector.loadavg",
		"--collector.filesystem", "--collector.diskstats", "--collector.netdev",
	)
	client := &http.Client{Timeout: 10 * time.Second}
	e2eutil.WaitHTTP(t, client, "http://"+addr+"/-/ready", http.StatusOK, 20*time.Second)

	resp, err := client.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s\n%s", resp.Status, body)
	}

	// promtool lints the exposition exactly as served.
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}

	got := normalizeExposition(t, string(body))
	if *updateGolden {
		if err := os.WriteFile(systemGolden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote %s", systemGolden)
		return
	}
	want, err := os.ReadFile(systemGolden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("/metrics differs from %s (run with -update to accept):\n%s", systemGolden, lineDiff(string(want), got))
	}
}

// normalizeExposition replaces volatile values by a placeholder and takes
// out clavis_build_info, whose revision is the commit under test (it is
// checked for the edition here instead).
func normalizeExposition(t *testing.T, body string) string {
	t.Helper()
	var b strings.Builder
	sawBuildInfo := false
	for _, line := range strings.SplitAfter(body, "\n") {
		switch {
		case line == "":
		case strings.HasPrefix(line, "clavis_build_info{"):
			sawBuildInfo = true
			if !strings.Contains(line, `edition="telemetry"`) {
				t.Errorf("build info does not name the telemetry edition: %s", line)
			}
			// The test binary is a plain `go build`, without the Makefile's
			// ldflags: version and revision come from the build information.
			if strings.Contains(line, `version=""`) || strings.Contains(line, `revision=""`) {
				t.Errorf("build info has an empty version or revision: %s", line)
			}
		case strings.HasPrefix(line, "# HELP clavis_build_info "), strings.HasPrefix(line, "# TYPE clavis_build_info "):
		case volatileSeries.MatchString(line):
			i := strings.LastIndexByte(line, ' ')
			b.WriteString(line[:i] + " <volatile>\n")
		default:
			b.WriteString(line)
		}
	}
	if !sawBuildInfo {
		t.Error("no clavis_build_info in /metrics")
	}
	return b.String()
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	var plus []string
	for _, l := range strings.Split(got, "\n") {
		if count[l] > 0 {
			count[l]--
			continue
		}
		plus = append(plus, "+ "+l)
	}
	var minus []string
	for _, l := range strings.Split(want, "\n") {
		if count[l] > 0 {
			count[l]--
			minus = append(minus, "- "+l)
		}
	}
	return strings.Join(append(minus, plus...), "\n")
}
