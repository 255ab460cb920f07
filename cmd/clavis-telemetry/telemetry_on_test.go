//go:build telemetry || commercial

package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime/debug"
	"strings"
	"syscall"
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
	args := []string{"--web.listen-address=" + addr, "--web.disable-exporter-metrics", "--tarpit.log.file="}
	if edition == "commercial" {
		// Its core collectors cannot be switched off: give them a tree.
		args = append(args, "--vault.data-dir="+t.TempDir())
	} else {
		args = append(args, "--collector.disable-defaults")
	}
	go func() {
		exit <- run(ctx, args, io.Discard, &stderr)
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

// TestScraperHangingUpIsNotAnError: a client that asks for /metrics and
// resets the connection mid-body made promhttp log one ERROR line per
// family left (ContinueOnError goes on to the next), 15 to 100 a request,
// from anyone who can reach the port. Those now go to debug; the failed
// writes are still counted in promhttp_metric_handler_errors_total. The
// /metrics handler is the one run mounts; the connection is a writer
// that fails as a reset socket does once the first bytes are out.
func TestScraperHangingUpIsNotAnError(t *testing.T) {
	app, f := newApp(io.Discard)
	if _, err := app.Parse([]string{"--collector.disable-defaults", "--collector.cpu", "--collector.memory"}); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	mux := http.NewServeMux()
	if _, err := f.tel.mount(context.Background(), mux, logger, nil); err != nil {
		t.Fatal(err)
	}
	reset := &net.OpError{Op: "write", Net: "tcp", Err: os.NewSyscallError("write", syscall.ECONNRESET)}
	w := &hangingUpWriter{ResponseRecorder: httptest.NewRecorder(), after: 1, err: reset}
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.failed < 2 {
		t.Fatalf("%d writes failed: the test did not fail the body mid-way", w.failed)
	}
	debug := strings.Count(logs.String(), "level=DEBUG msg=\"error encoding and sending metric family")
	if debug == 0 || strings.Contains(logs.String(), "level=ERROR") {
		t.Errorf("want the write errors at debug and none at error; logged:\n%s", logs.String())
	}

	// An error of the agent's own (not the client's connection) stays at error.
	logs.Reset()
	w = &hangingUpWriter{ResponseRecorder: httptest.NewRecorder(), after: 1, err: errors.New("encoder bug")}
	mux.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(logs.String(), "level=ERROR msg=\"error encoding and sending metric family: encoder bug") {
		t.Errorf("an encoding error of the agent's was not logged at error:\n%s", logs.String())
	}

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if !strings.Contains(rec.Body.String(), `promhttp_metric_handler_errors_total{cause="encoding"} `) ||
		strings.Contains(rec.Body.String(), `promhttp_metric_handler_errors_total{cause="encoding"} 0`) {
		t.Error("the failed writes are not counted in promhttp_metric_handler_errors_total")
	}
}

// hangingUpWriter takes `after` writes, then fails every write with err.
type hangingUpWriter struct {
	*httptest.ResponseRecorder
	after, failed int
	err           error
}

func (w *hangingUpWriter) Write(p []byte) (int, error) {
	if w.after > 0 {
		w.after--
		return w.ResponseRecorder.Write(p)
	}
	w.failed++
	return 0, w.err
}
