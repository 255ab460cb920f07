// Package e2eutil holds what end-to-end tests share: finding the real peer
// binaries (Debian's, and the current upstream ones tools/build.sh builds;
// failing, not skipping, in CI), building our own binaries, free
// loopback ports and waiting for a server to answer.
package e2eutil

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
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

var (
	toolMu    sync.Mutex
	toolPaths = map[string]string{}
)

// Tool returns the path of a current upstream binary that tools/build.sh
// builds from its Go module at the version pinned in tools/ (prometheus,
// promtool, alertmanager, amtool, alertmanager-webui, victoria-metrics).
// It runs tools/build.sh for it once per test process: make test has built
// everything already, so that only checks the binary is up to date; from a
// cold Go cache it builds (Prometheus: minutes). If the build fails the test
// fails in CI and is skipped elsewhere (no module proxy, say).
func Tool(t testing.TB, name string) string {
	t.Helper()
	toolMu.Lock()
	defer toolMu.Unlock()
	if p, ok := toolPaths[name]; ok {
		return p
	}
	cmd := exec.Command("bash", filepath.Join(RepoRoot(t), "tools", "build.sh"), name)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	fields := strings.Fields(string(out))
	if err != nil || len(fields) != 2 || fields[0] != name {
		msg := fmt.Sprintf("tools/build.sh %s: %v: %s%s", name, err, out, stderr.String())
		if InCI() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	toolPaths[name] = fields[1]
	return fields[1]
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
	return StartProcessEnv(t, nil, name, args...)
}

// StartProcessEnv is StartProcess with extra environment variables
// ("NAME=value") on top of the test's own, as systemd's Environment= and
// EnvironmentFile= give them to a service.
func StartProcessEnv(t testing.TB, env []string, name string, args ...string) *exec.Cmd {
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
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	// A test binary killed by -timeout runs no Cleanup: without this its
	// Prometheus and Alertmanager servers kept running (and loading the
	// machine for the next benchmark) long after.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
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

// SelfSignedCert writes a self-signed ECDSA certificate for 127.0.0.1 and
// its key to dir (tls.crt, tls.key), valid for an hour either side of now,
// and returns their paths and a pool that trusts the certificate.
func SelfSignedCert(t testing.TB, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "clavis-test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(cert)
	return certPath, keyPath, pool
}
