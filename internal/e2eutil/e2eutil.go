// Package e2eutil holds what end-to-end tests share: finding the real peer
// binaries (failing, not skipping, in CI), building our own binaries, free
// loopback ports and waiting for a server to answer.
package e2eutil

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI, where a missing peer binary is a
// failure and not a skip.
func InCI() bool { return os.Getenv("CI") != "" }

// RequireBinary returns the path of a peer program (prometheus, promtool,
// nginx, ...), looked up in PATH and in /usr/sbin and /usr/bin. When it is
// missing the test is skipped locally and fails in CI (make test installs
// the Debian packages; see scripts/install-deps.sh).
func RequireBinary(t testing.TB, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"} {
			p := filepath.Join(dir, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
	}
	msg := fmt.Sprintf("required binary %v not found (run scripts/install-deps.sh)", names)
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// RepoRoot returns the repository's top directory.
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate repository root")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	buildMu    sync.Mutex
	buildCache = map[string]string{}
	buildDir   string
)

// BuildBinary builds a main package of this module (e.g.
// "./cmd/clavis-telemetry") with the given build tags, once per test
// process, and returns the binary's path.
func BuildBinary(t testing.TB, pkg string, tags ...string) string {
	t.Helper()
	key := pkg + "|" + strings.Join(tags, ",")
	buildMu.Lock()
	defer buildMu.Unlock()
	if p, ok := buildCache[key]; ok {
		return p
	}
	if buildDir == "" {
		d, err := os.MkdirTemp("", "clavis-e2e-bin-")
		if err != nil {
			t.Fatal(err)
		}
		buildDir = d
	}
	name := filepath.Base(pkg)
	if len(tags) > 0 {
		name += "-" + strings.Join(tags, "-")
	}
	out := filepath.Join(buildDir, name)
	args := []string{"build", "-o", out}
	if len(tags) > 0 {
		args = append(args, "-tags", strings.Join(tags, ","))
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = RepoRoot(t)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	buildCache[key] = out
	return out
}

// FreeAddr returns "host:port" with a port that was free on host a moment
// ago (host "127.0.0.1" if empty).
func FreeAddr(t testing.TB, host string) string {
	t.Helper()
	if host == "" {
		host = "127.0.0.1"
	}
	l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// WaitHTTP polls url until it answers with status want or the timeout ends.
func WaitHTTP(t testing.TB, client *http.Client, url string, want int, timeout time.Duration) {
	t.Helper()
	if client == nil {
		client = &http.Client{Timeout: 2 * time.Second}
	}
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == want {
				return
			}
			last = resp.Status
		} else {
			last = err.Error()
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s did not answer %d within %s (last: %s)", url, want, timeout, last)
}

// StartProcess starts a long-running process whose output goes to files in a
// temp dir (shown when the test fails) and stops it at cleanup.
func StartProcess(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, filepath.Base(name)+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cancel()
		_ = cmd.Wait()
		f.Close()
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("--- output of %s %v:\n%s", name, args, tail(b, 8000))
			}
		}
	})
	return cmd
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
