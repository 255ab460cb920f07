package tarpit

import (
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// TestCurlHeldWhileMetricsAnswers runs the telemetry edition of
// clavis-telemetry and points the real curl at /wp-login.php on the
// exporter's own listener: curl is held until its --max-time, having
// received header lines, while /metrics keeps answering and counts the
// trapped client.
func TestCurlHeldWhileMetricsAnswers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	t.Parallel()
	curl := e2eutil.RequireBinary(t, "curl")
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "telemetry")
	addr := e2eutil.FreeAddr(t, "127.0.0.1")
	logFile := filepath.Join(t.TempDir(), "tarpit.log")
	proc := e2eutil.StartProcess(t, bin, "--web.listen-address="+addr, "--tarpit.interval=100ms",
		"--tarpit.log.file="+logFile, "--collector.disable-defaults", "--collector.tarpit")
	e2eutil.WaitHTTP(t, nil, "http://"+addr+"/-/healthy", http.StatusOK, 20*time.Second)

	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		cmd := exec.Command(curl, "-sS", "--max-time", "2", "-D", "-", "-o", "/dev/null", "http://"+addr+"/wp-login.php")
		out, err := cmd.CombinedOutput()
		done <- result{string(out), err}
	}()

	client := &http.Client{Timeout: 5 * time.Second}
	var metrics string
	waitFor(t, "/metrics to show the trapped client", func() bool {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatalf("/metrics while the tarpit holds curl: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics: %s", resp.Status)
		}
		metrics = string(b)
		return strings.Contains(metrics, `clavis_tarpit_active_connections{protocol="http"} 1`)
	})
	if strings.Contains(metrics, "127.0.0.1") {
		t.Error("/metrics names the scanner's address")
	}

	r := <-done
	var ee *exec.ExitError
	if !errors.As(r.err, &ee) || ee.ExitCode() != 28 { // 28: operation timed out
		t.Fatalf("curl was not held until --max-time: %v\n%s", r.err, r.out)
	}
	if !strings.Contains(r.out, "HTTP/1.1 200 OK") || strings.Count(r.out, "X-") < 3 {
		t.Fatalf("curl got no dripped headers:\n%s", r.out)
	}
	waitFor(t, "the scanner log to record the request", func() bool {
		b, _ := readFile(logFile)
		return strings.Contains(b, `"event":"open"`) && strings.Contains(b, `"path":"/wp-login.php"`) && strings.Contains(b, `"method":"GET"`)
	})

	// A client still trapped when the process is stopped gets its close
	// line in the scanner log before the process exits.
	c, r2 := rawGet(t, "127.0.0.16", addr, "/admin")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := r2.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if err := proc.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	if err := proc.Wait(); err != nil {
		t.Fatalf("clavis-telemetry exited with %v", err)
	}
	b, _ := readFile(logFile)
	var closed bool
	for _, line := range strings.Split(b, "\n") {
		if strings.Contains(line, `"event":"close"`) && strings.Contains(line, `"path":"/admin"`) && strings.Contains(line, `"remote_addr":"127.0.0.16"`) {
			closed = true
		}
	}
	if !closed {
		t.Fatalf("no close line for the client trapped at shutdown:\n%s", b)
	}
}
