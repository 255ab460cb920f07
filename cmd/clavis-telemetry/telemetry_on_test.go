//go:build telemetry || commercial

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// TestRunServesMetricsInProcess runs the telemetry wiring in-process (under
// -race) and shuts it down through its context.
func TestRunServesMetricsInProcess(t *testing.T) {
	addr := e2eutil.FreeAddr(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	var stderr bytes.Buffer
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, []string{"--web.listen-address=" + addr, "--collector.disable-defaults",
			"--web.disable-exporter-metrics"}, io.Discard, &stderr)
	}()
	e2eutil.WaitHTTP(t, nil, "http://"+addr+"/-/ready", 200, 10*time.Second)

	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(body), `clavis_build_info{edition="`+edition+`"`) {
		t.Errorf("/metrics lacks clavis_build_info for edition %s:\n%s", edition, body)
	}
	if strings.Contains(string(body), "go_goroutines") {
		t.Error("--web.disable-exporter-metrics did not remove the Go metrics")
	}

	cancel()
	select {
	case code := <-exit:
		if code != 0 {
			t.Errorf("run exited %d after shutdown; stderr:\n%s", code, stderr.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
	}
}

// TestBuildVersionFallsBackToBuildInfo: a plain `go build` sets neither
// version nor revision by ldflags; the module's build information fills them.
func TestBuildVersionFallsBackToBuildInfo(t *testing.T) {
	info := &debug.BuildInfo{
		Main:     debug.Module{Path: "github.com/clavitor/clavis-telemetry", Version: "v0.0.0-20261201211500-3c9d620f6a1b+dirty"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "3c9d620f6a1b0000000000000000000000000000"}},
	}
	read := func() (*debug.BuildInfo, bool) { return info, true }
	for _, c := range []struct{ v, rev, wantV, wantRev string }{
		{"", "", info.Main.Version, "3c9d620f6a1b0000000000000000000000000000"},
		{"", "unknown", info.Main.Version, "3c9d620f6a1b0000000000000000000000000000"},
		{"1.4.0", "abc123", "1.4.0", "abc123"},
		{"1.4.0", "", "1.4.0", "3c9d620f6a1b0000000000000000000000000000"},
	} {
		if v, rev := buildVersion(c.v, c.rev, read); v != c.wantV || rev != c.wantRev {
			t.Errorf("buildVersion(%q, %q) = %q, %q; want %q, %q", c.v, c.rev, v, rev, c.wantV, c.wantRev)
		}
	}
	none := func() (*debug.BuildInfo, bool) { return nil, false }
	if v, rev := buildVersion("", "", none); v != "unknown" || rev != "unknown" {
		t.Errorf("without build information: %q, %q; want unknown, unknown", v, rev)
	}
	// And the real binary of this test has some version, never "".
	if v, _ := buildVersion("", "", debug.ReadBuildInfo); v == "" {
		t.Error("empty version from this binary's build information")
	}
}
