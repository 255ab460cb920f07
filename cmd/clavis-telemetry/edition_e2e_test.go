//go:build !telemetry && !commercial

// These tests build and run the real binaries of all three editions. They
// live in the default-tag build only, so `go test -tags telemetry` of this
// package does not build the same binaries a second time.
package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"golang.org/x/crypto/bcrypt"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// telemetryOnly are the packages that must never be linked into the
// community edition: the collectors and the privacy gate, the access-log
// parsers, the unique-address sketches and their HyperLogLog, the Prometheus
// client (promhttp among it), the exposition encoders, procfs, and the
// exporter-toolkit web server (it pulls in the client). To these the test
// adds every package the telemetry editions link that the community edition
// does not need (go list -deps), so a package that becomes telemetry-only is
// checked from then on.
var telemetryOnly = []string{
	"github.com/clavitor/clavis-telemetry/collector",
	"github.com/clavitor/clavis-telemetry/privacy",
	"github.com/clavitor/clavis-telemetry/internal/accesslog",
	"github.com/clavitor/clavis-telemetry/internal/sketch",
	"github.com/axiomhq/hyperloglog",
	"github.com/prometheus/client_golang/prometheus",
	"github.com/prometheus/client_golang/prometheus/promhttp",
	"github.com/prometheus/common/expfmt",
	"github.com/prometheus/procfs",
	"github.com/prometheus/exporter-toolkit/web",
}

// deps lists the packages a build of the binary links, by go list.
func deps(t *testing.T, tags string) map[string]bool {
	t.Helper()
	args := []string{"list", "-deps"}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, "./cmd/clavis-telemetry")...)
	cmd.Dir = e2eutil.RepoRoot(t)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go %v: %v", args, err)
	}
	set := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		set[p] = true
	}
	return set
}

// symbolsOf returns, per package of pkgs, the symbols of bin that belong to
// it (a symbol is named <import path>.<name>).
func symbolsOf(t *testing.T, bin string, pkgs []string) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "tool", "nm", bin).Output()
	if err != nil {
		t.Fatalf("go tool nm %s: %v", bin, err)
	}
	hits := map[string][]string{}
	for _, line := range strings.Split(string(out), "\n") {
		fields := strings.Fields(line)
		if len(fields) < 3 {
			continue
		}
		sym := fields[len(fields)-1]
		for _, p := range pkgs {
			if strings.HasPrefix(sym, p+".") || strings.HasPrefix(sym, "type:*"+p+".") || strings.HasPrefix(sym, "type:"+p+".") {
				hits[p] = append(hits[p], sym)
			}
		}
	}
	return hits
}

func TestCommunityEditionLinksNoTelemetry(t *testing.T) {
	t.Parallel()
	community := deps(t, "")
	pkgs := slices.Clone(telemetryOnly)
	for p := range deps(t, "telemetry") {
		if !community[p] && !slices.Contains(pkgs, p) {
			pkgs = append(pkgs, p)
		}
	}
	slices.Sort(pkgs)
	for _, p := range telemetryOnly {
		if community[p] {
			t.Errorf("go list: the community edition depends on %s", p)
		}
	}
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry")
	for p, syms := range symbolsOf(t, bin, pkgs) {
		n := min(len(syms), 5)
		t.Errorf("community edition links %d symbols of %s, e.g.:\n%s", len(syms), p, strings.Join(syms[:n], "\n"))
	}
	t.Logf("checked %d telemetry-only packages", len(pkgs))
	// The check must be able to fail: the telemetry editions link the
	// listed packages that have code of their own.
	for _, tags := range []string{"telemetry", "commercial"} {
		hits := symbolsOf(t, e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", tags), telemetryOnly)
		for _, p := range []string{"github.com/clavitor/clavis-telemetry/collector", "github.com/clavitor/clavis-telemetry/privacy",
			"github.com/prometheus/client_golang/prometheus/promhttp", "github.com/prometheus/procfs", "github.com/axiomhq/hyperloglog"} {
			if len(hits[p]) == 0 {
				t.Errorf("%s edition shows no symbol of %s: the nm check is broken", tags, p)
			}
		}
	}
}

// runBinary runs a binary that is expected to exit by itself.
func runBinary(t *testing.T, bin string, args ...string) (code int, output string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, string(out)
	case errors.As(err, &ee):
		return ee.ExitCode(), string(out)
	default:
		t.Fatalf("%s %v: %v", bin, args, err)
		return -1, ""
	}
}

func TestBadFlagsExitTwo(t *testing.T) {
	t.Parallel()
	for _, tags := range []string{"", "telemetry", "commercial"} {
		bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", nonEmpty(tags)...)
		for _, args := range [][]string{
			{"--no-such-flag"},
			{"--log.level=loud"},
			{"--web.listen-address"}, // missing value
		} {
			code, out := runBinary(t, bin, args...)
			if code != 2 {
				t.Errorf("[%s] %v: exit %d, want 2\n%s", tags, args, code, out)
			}
			if !strings.Contains(out, "error") {
				t.Errorf("[%s] %v: no clear error in output:\n%s", tags, args, out)
			}
		}
	}
	// Collector-owned duration flags out of their bounds, in both telemetry
	// editions: exit 2 naming the flag.
	for _, tags := range []string{"telemetry", "commercial"} {
		bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", tags)
		for _, arg := range []string{"--collector.timeout=soon", "--collector.timeout=0s", "--collector.timeout=-1s",
			"--collector.timeout=1ns", "--collector.timeout=1h", "--collector.filesystem.stat-timeout=0s",
			"--collector.filesystem.stat-timeout=-5s", "--collector.filesystem.stat-timeout=1000h"} {
			flagName := strings.SplitN(strings.TrimPrefix(arg, "--"), "=", 2)[0]
			code, out := runBinary(t, bin, arg, "--web.listen-address=127.0.0.1:0")
			if code != 2 || !strings.Contains(out, flagName) {
				t.Errorf("[%s] %s: exit %d, want 2 naming %s\n%s", tags, arg, code, flagName, out)
			}
		}
		// Route names that read as addresses would be dropped by the gate at
		// every scrape: refused at start-up.
		for _, name := range []string{"0x0a000001", "3232235777", "c0a80101", "10_0_0_1", "ip10_0_0_1"} {
			code, out := runBinary(t, bin, "--accesslog.route="+name+"=^/x", "--web.listen-address=127.0.0.1:0")
			if code != 2 || !strings.Contains(out, name) || !strings.Contains(out, "address") {
				t.Errorf("[%s] route name %s: exit %d, want 2 saying it reads as an address\n%s", tags, name, code, out)
			}
		}
	}
}

func nonEmpty(tags string) []string {
	if tags == "" {
		return nil
	}
	return []string{tags}
}

func TestCommercialEditionEnforcesTelemetry(t *testing.T) {
	t.Parallel()
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "commercial")
	for _, args := range [][]string{
		{"--no-collector.cpu"},
		{"--no-collector.memory"},
		{"--no-collector.filesystem"},
		{"--no-collector.vault"},
		{"--no-collector.accesslog"},
		{"--collector.disable-defaults"},
	} {
		code, out := runBinary(t, bin, append(args, "--web.listen-address=127.0.0.1:0")...)
		if code != 2 || !strings.Contains(out, "commercial edition enforces telemetry") {
			t.Errorf("%v: exit %d, want 2 with the enforcement message; output:\n%s", args, code, out)
		}
	}
	// Filters that leave out the root file system blank the core filesystem
	// collector just as well.
	for _, arg := range []string{"--collector.filesystem.mount-points-include=^$", "--collector.filesystem.mount-points-exclude=.*"} {
		code, out := runBinary(t, bin, arg, "--web.listen-address=127.0.0.1:0", "--tarpit.log.file=")
		if code != 2 || !strings.Contains(out, "always reports the root file system") {
			t.Errorf("%s: exit %d, want 2 saying the root file system stays; output:\n%s", arg, code, out)
		}
	}
	// A collector timeout too short for any collector to finish would blank
	// every collector: the commercial edition refuses it, naming the flag.
	for _, arg := range []string{"--collector.timeout=10ms", "--collector.timeout=999ms"} {
		code, out := runBinary(t, bin, arg, "--web.listen-address=127.0.0.1:0")
		if code != 2 || !strings.Contains(out, "collector.timeout") {
			t.Errorf("%s: exit %d, want 2 naming --collector.timeout; output:\n%s", arg, code, out)
		}
	}
	// The opt-in edition lets the same flag through.
	tel := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "telemetry")
	addr := e2eutil.FreeAddr(t, "")
	e2eutil.StartProcess(t, tel, "--no-collector.cpu", "--web.listen-address="+addr)
	e2eutil.WaitHTTP(t, nil, "http://"+addr+"/-/ready", 200, 20*time.Second)
}

func get(t *testing.T, client *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestCommunityEditionServesNoMetrics(t *testing.T) {
	t.Parallel()
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry")
	addr := e2eutil.FreeAddr(t, "")
	logFile := filepath.Join(t.TempDir(), "out.log")
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--web.listen-address="+addr)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait(); f.Close() })
	e2eutil.WaitHTTP(t, nil, "http://"+addr+"/-/healthy", 200, 20*time.Second)

	client := &http.Client{Timeout: 5 * time.Second}
	if code, body := get(t, client, "http://"+addr+"/metrics"); code != 404 || strings.Contains(body, "clavis_") {
		t.Errorf("/metrics = %d %q, want 404 without metrics", code, body)
	}
	if code, body := get(t, client, "http://"+addr+"/"); code != 200 || !strings.Contains(body, "-tags telemetry") {
		t.Errorf("/ = %d %q, want the landing page telling how to opt in", code, body)
	}
	log, _ := os.ReadFile(logFile)
	if !bytes.Contains(log, []byte("telemetry is not compiled into this build")) || !bytes.Contains(log, []byte("-tags telemetry")) {
		t.Errorf("start-up log does not say telemetry is absent and how to opt in:\n%s", log)
	}
}

func TestTelemetryEditionEndpoints(t *testing.T) {
	t.Parallel()
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "telemetry")
	addr := e2eutil.FreeAddr(t, "")
	e2eutil.StartProcess(t, bin, "--web.listen-address="+addr, "--collector.disable-defaults")
	base := "http://" + addr
	e2eutil.WaitHTTP(t, nil, base+"/-/ready", 200, 20*time.Second)
	client := &http.Client{Timeout: 5 * time.Second}
	if code, body := get(t, client, base+"/-/healthy"); code != 200 || !strings.Contains(body, "Healthy") {
		t.Errorf("/-/healthy = %d %q", code, body)
	}
	code, body := get(t, client, base+"/metrics")
	if code != 200 || !strings.Contains(body, `clavis_build_info{edition="telemetry"`) {
		t.Errorf("/metrics = %d, want clavis_build_info with edition=telemetry:\n%s", code, body)
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total", "process_open_fds", "process_max_fds",
		"process_virtual_memory_bytes", "process_virtual_memory_max_bytes", "process_resident_memory_bytes",
		"process_start_time_seconds", "process_network_receive_bytes_total", "process_network_transmit_bytes_total"} {
		if !strings.Contains(body, "\n"+name+" ") {
			t.Errorf("exporter self-metric %s missing although not disabled", name)
		}
	}
	if code, body := get(t, client, base+"/"); code != 200 || !strings.Contains(body, `href="/metrics"`) {
		t.Errorf("/ = %d, want the landing page linking /metrics:\n%s", code, body)
	}
}

// TestGOMAXPROCSDefaultsToOne: the agent runs on one P unless told
// otherwise (as node_exporter), by --runtime.gomaxprocs or the GOMAXPROCS
// environment variable; 0 gives Go's own default back. The value is read
// from the agent's go_sched_gomaxprocs_threads.
func TestGOMAXPROCSDefaultsToOne(t *testing.T) {
	t.Parallel()
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "telemetry")
	client := &http.Client{Timeout: 5 * time.Second}
	type gomaxprocsCase struct {
		name string
		env  string
		args []string
		want int
	}
	cases := []gomaxprocsCase{
		// An empty GOMAXPROCS is unset for the runtime and for kingpin: the
		// test's own environment cannot leak in.
		{"default", "GOMAXPROCS=", nil, 1},
		{"flag", "GOMAXPROCS=", []string{"--runtime.gomaxprocs=2"}, 2},
		{"environment", "GOMAXPROCS=2", nil, 2},
		{"flag over environment", "GOMAXPROCS=2", []string{"--runtime.gomaxprocs=3"}, 3},
	}
	if os.Getenv("GOMAXPROCS") == "" && flag.Lookup("test.cpu").Value.String() == "" {
		// This test binary runs with Go's default, which 0 must give back.
		cases = append(cases, gomaxprocsCase{"zero is Go's default", "GOMAXPROCS=", []string{"--runtime.gomaxprocs=0"}, runtime.GOMAXPROCS(0)})
	}
	for _, c := range cases {
		addr := e2eutil.FreeAddr(t, "")
		args := append([]string{"--web.listen-address=" + addr, "--collector.disable-defaults", "--tarpit.log.file="}, c.args...)
		e2eutil.StartProcessEnv(t, []string{c.env}, bin, args...)
		e2eutil.WaitHTTP(t, nil, "http://"+addr+"/-/ready", 200, 20*time.Second)
		_, body := get(t, client, "http://"+addr+"/metrics")
		want := fmt.Sprintf("\ngo_sched_gomaxprocs_threads %d\n", c.want)
		if !strings.Contains(body, want) {
			i := strings.Index(body, "\ngo_sched_gomaxprocs_threads ")
			t.Errorf("%s (%s %v): want%s got %q", c.name, c.env, c.args, strings.TrimSuffix(want, "\n"), body[max(i, 0):min(max(i, 0)+40, len(body))])
		}
	}
}

// writeTLSConfig writes a self-signed certificate for 127.0.0.1 and a web
// config with TLS and one bcrypt-hashed user.
func writeTLSConfig(t *testing.T, user, password string) (configPath string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	certPath, keyPath, pool := e2eutil.SelfSignedCert(t, dir)
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	configPath = filepath.Join(dir, "web.yml")
	config := "tls_server_config:\n  cert_file: " + certPath + "\n  key_file: " + keyPath +
		"\nbasic_auth_users:\n  " + user + ": " + string(hash) + "\n"
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	return configPath, pool
}

func TestTLSAndBasicAuth(t *testing.T) {
	t.Parallel()
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "commercial")
	config, pool := writeTLSConfig(t, "prometheus", "s3cret-scrape")
	addr := e2eutil.FreeAddr(t, "")
	e2eutil.StartProcess(t, bin, "--web.listen-address="+addr, "--web.config.file="+config, "--tarpit.interval=200ms")
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	url := "https://" + addr + "/metrics"

	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("TLS listener never came up: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}

	try := func(user, pass string) int {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", url, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.TLS == nil {
			t.Fatal("response did not come over TLS")
		}
		return resp.StatusCode
	}
	if code := try("", ""); code != http.StatusUnauthorized {
		t.Errorf("no credentials: %d, want 401", code)
	}
	if code := try("prometheus", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("wrong password: %d, want 401", code)
	}
	if code := try("prometheus", "s3cret-scrape"); code != http.StatusOK {
		t.Errorf("right credentials: %d, want 200", code)
	}
	// A scanner has no credentials: a path the exporter does not serve is
	// held by the tarpit, not answered 401 by the auth check.
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /wp-login.php HTTP/1.1\r\nHost: pop\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	conn.SetReadDeadline(time.Now().Add(1500 * time.Millisecond))
	got, err := io.ReadAll(conn)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("unauthenticated scanner was not held (read ended with %v) after %q", err, got)
	}
	if !strings.HasPrefix(string(got), "HTTP/1.1 200") || strings.Contains(string(got), "401") ||
		strings.Count(string(got), "\r\n") < 2 {
		t.Errorf("unauthenticated scanner got %q, want dripped tarpit headers", got)
	}

	// Plain HTTP to the TLS port gets no metrics.
	plain := &http.Client{Timeout: 5 * time.Second}
	if resp, err := plain.Get("http://" + addr + "/metrics"); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || strings.Contains(string(b), "clavis_") {
			t.Errorf("plain HTTP got %d with metrics", resp.StatusCode)
		}
	}
}

// TestREADMEFlagsInEveryEdition runs TestREADMEFlagsMatchKingpin (which
// checks the edition it is built for, here the community edition) built for
// the two telemetry editions.
func TestREADMEFlagsInEveryEdition(t *testing.T) {
	t.Parallel()
	for _, tags := range []string{"telemetry", "commercial"} {
		cmd := exec.Command("go", "test", "-count=1", "-tags", tags, "-run", "^TestREADMEFlagsMatchKingpin$", "./cmd/clavis-telemetry/")
		cmd.Dir = e2eutil.RepoRoot(t)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("-tags %s: %v\n%s", tags, err, out)
		}
	}
}

// TestREADMEMetricsMatchScrape scrapes the real binary of each telemetry
// edition with every collector fed (fixture /proc, a vault directory, an
// access log with a timed line, a running SSH tarpit) and compares the
// clavis_ families and their label names with the README's metric tables.
// The community edition is checked the same way: its row of the README's
// Editions table says telemetry is not in the binary, so it must serve no
// clavis_ family at all.
func TestREADMEMetricsMatchScrape(t *testing.T) {
	t.Parallel()
	documented := readmeMetrics(t)
	t.Run("community", func(t *testing.T) {
		t.Parallel()
		if readmeEditionHasMetrics(t, "community") {
			t.Fatal("the README's Editions table no longer says the community edition has no telemetry: document its metrics per edition and check them here")
		}
		bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry")
		addr := e2eutil.FreeAddr(t, "127.0.0.1")
		e2eutil.StartProcess(t, bin, "--web.listen-address="+addr,
			"--tarpit.ssh.listen-address="+e2eutil.FreeAddr(t, "127.0.0.1"))
		client := &http.Client{Timeout: 10 * time.Second}
		e2eutil.WaitHTTP(t, client, "http://"+addr+"/-/healthy", http.StatusOK, 20*time.Second)
		for _, path := range []string{"/metrics", "/", "/-/healthy"} {
			code, body := get(t, client, "http://"+addr+path)
			if strings.Contains(body, "clavis_") || strings.Contains(body, "# TYPE") {
				t.Errorf("community edition: %s (%d) serves metrics, the README documents none:\n%.300s", path, code, body)
			}
		}
	})
	for _, edition := range []string{"community, opted in", "commercial POP"} {
		if !readmeEditionHasMetrics(t, edition) {
			t.Errorf("the README's Editions table says the %q edition has no telemetry", edition)
		}
	}
	root := e2eutil.RepoRoot(t)
	fixtures := filepath.Join(root, "collector", "testdata")
	for _, tags := range []string{"telemetry", "commercial"} {
		t.Run(tags, func(t *testing.T) {
			t.Parallel()
			bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", tags)
			vaults := t.TempDir()
			if err := os.WriteFile(filepath.Join(vaults, "v1.db"), []byte("x"), 0o600); err != nil {
				t.Fatal(err)
			}
			logPath := filepath.Join(t.TempDir(), "access.log")
			line := `192.0.2.10 - - [` + time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700") + `] "GET /api/x HTTP/1.1" 200 512 "-" "curl/8.0" 0.012` + "\n"
			if err := os.WriteFile(logPath, []byte(line), 0o600); err != nil {
				t.Fatal(err)
			}
			addr := e2eutil.FreeAddr(t, "127.0.0.1")
			e2eutil.StartProcess(t, bin,
				"--web.listen-address="+addr,
				"--path.procfs="+filepath.Join(fixtures, "proc"),
				"--path.sysfs="+filepath.Join(fixtures, "sys"),
				"--path.rootfs="+filepath.Join(fixtures, "rootfs"),
				"--vault.data-dir="+vaults,
				"--accesslog.path="+logPath, "--accesslog.from-start", "--accesslog.route=api=^/api/",
				"--tarpit.ssh.listen-address="+e2eutil.FreeAddr(t, "127.0.0.1"),
			)
			client := &http.Client{Timeout: 10 * time.Second}
			e2eutil.WaitHTTP(t, client, "http://"+addr+"/-/ready", http.StatusOK, 20*time.Second)
			var served map[string][]string
			deadline := time.Now().Add(30 * time.Second)
			for {
				served = scrapeFamilies(t, client, "http://"+addr+"/metrics")
				_, vault := served["clavis_vaults"]
				_, hist := served["clavis_http_request_duration_seconds"]
				if vault && hist {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("clavis_vaults or the request histogram never appeared: %v", served)
				}
				time.Sleep(50 * time.Millisecond)
			}
			for name, labels := range served {
				want, ok := documented[name]
				if !ok {
					t.Errorf("%s serves %s %v, not in the README's metric tables", tags, name, labels)
					continue
				}
				if !slices.Equal(labels, want) {
					t.Errorf("%s: %s has labels %v, the README says %v", tags, name, labels, want)
				}
			}
			for name := range documented {
				if _, ok := served[name]; !ok {
					t.Errorf("the README documents %s, which the %s edition does not serve", name, tags)
				}
			}
		})
	}
}

// scrapeFamilies returns the clavis_ families of one scrape with the sorted
// label names their series carry.
func scrapeFamilies(t *testing.T, client *http.Client, url string) map[string][]string {
	t.Helper()
	resp, err := client.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for name, mf := range mfs {
		if !strings.HasPrefix(name, "clavis_") {
			continue
		}
		labels := []string{}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if !slices.Contains(labels, lp.GetName()) {
					labels = append(labels, lp.GetName())
				}
			}
		}
		slices.Sort(labels)
		out[name] = labels
	}
	return out
}
