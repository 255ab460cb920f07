package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// syncBuffer collects a process's output for concurrent reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMakeStack runs scripts/stack.sh (what `make stack` runs) as a person
// would, on free loopback ports: it must print its URLs, get every POP
// scraped and the Watchdog heartbeat to the fake Kuma it prints, and stop
// everything on Ctrl-C (SIGINT).
func TestMakeStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole central stack")
	}
	t.Parallel()
	e2eutil.RequireBinary(t, "prometheus")
	e2eutil.RequireBinary(t, "prometheus-alertmanager", "alertmanager")
	e2eutil.RequireBinary(t, "openssl")
	e2eutil.RequireBinary(t, "curl")
	pop := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "telemetry")
	e2eutil.BuildBinary(t, "./cmd/alertbridge")
	e2eutil.BuildBinary(t, "./internal/fakenotify/cmd/fakenotify")
	bin := filepath.Dir(pop)

	// Loopback addresses no other test uses, so a port picked here cannot
	// be taken by a parallel test before the script binds it.
	const host, popNet = "127.0.5.1", "127.0.5"
	prom, am, bridge, fake := e2eutil.FreeAddr(t, host), e2eutil.FreeAddr(t, host), e2eutil.FreeAddr(t, host), e2eutil.FreeAddr(t, host)
	_, popPort, _ := net.SplitHostPort(e2eutil.FreeAddr(t, popNet+".2"))
	cmd := exec.Command("bash", filepath.Join(e2eutil.RepoRoot(t), "scripts", "stack.sh"))
	stackDir := filepath.Join(t.TempDir(), "stack")
	cmd.Env = append(os.Environ(), "BIN="+bin, "PROM_ADDR="+prom, "AM_ADDR="+am, "BRIDGE_ADDR="+bridge,
		"FAKE_ADDR="+fake, "POP_PORT="+popPort, "POP_NET="+popNet, "STACK_DIR="+stackDir)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("stack.sh output:\n%s", out.String())
			logs, _ := filepath.Glob(filepath.Join(stackDir, "logs", "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil {
					t.Logf("--- %s (last 3000 bytes):\n%s", filepath.Base(l), tail(b, 3000))
				}
			}
		}
	})

	eventually(t, 90*time.Second, 200*time.Millisecond, "stack ready", func() (bool, string) {
		return strings.Contains(out.String(), "stack: ready"), "no 'stack: ready' yet"
	})
	for _, want := range []string{"http://" + prom, "http://" + am, "http://" + bridge + "/metrics", "http://" + fake + "/-/fake/ntfy/messages",
		fmt.Sprintf("https://%s.2:%s/metrics", popNet, popPort)} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("stack.sh does not print %s", want)
		}
	}
	s := &stack{client: newHTTPClient()}
	eventually(t, 60*time.Second, time.Second, "three POPs scraped by the stack's Prometheus", func() (bool, string) {
		v, ok, err := s.promValue(prom, `sum(up{job="clavis-pop"})`)
		return ok && v == 3, fmt.Sprintf("sum(up)=%v ok=%v err=%v", v, ok, err)
	})
	eventually(t, 90*time.Second, time.Second, "Watchdog heartbeat printed by the fake Kuma", func() (bool, string) {
		return strings.Contains(out.String(), `kuma {`) && strings.Contains(out.String(), `"status":"up"`), "no kuma line yet"
	})

	// Ctrl-C stops everything.
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("stack.sh did not stop within 30 s of SIGINT")
	}
	stopped = true
	if !strings.Contains(out.String(), "stack: stopped") {
		t.Error("stack.sh did not report stopping")
	}
	for _, a := range []string{prom, am, bridge, fake, popNet + ".2:" + popPort, popNet + ".3:" + popPort} {
		eventually(t, 10*time.Second, 200*time.Millisecond, a+" released", func() (bool, string) {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return true, ""
			}
			c.Close()
			return false, "still listening"
		})
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
