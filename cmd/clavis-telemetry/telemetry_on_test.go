//go:build telemetry || commercial

package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
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
