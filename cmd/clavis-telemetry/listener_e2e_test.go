//go:build !telemetry && !commercial

package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// startFlood runs bench/connflood's flood against addr and waits until it
// reports how many connections it opened.
func startFlood(t *testing.T, bin string, args ...string) int {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, append([]string{"flood"}, args...)...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	ready := make(chan int, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if n, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				v, _ := strconv.Atoi(n)
				ready <- v
			}
		}
	}()
	select {
	case n := <-ready:
		return n
	case <-time.After(3 * time.Minute): // a liveness bound for a loaded machine
		t.Fatalf("connflood %v never got its connections open", args)
		return 0
	}
}

// procStatus reads a "Name:  value kB" field of /proc/<pid>/status.
func procStatus(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			n, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
			return n
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

func openFDs(t *testing.T, pid int) int {
	t.Helper()
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestIdleConnectionFloodLeavesMetricsServed is issue 13's attack on the
// main listener: 20,000 connections from loopback that never send a request
// (half-open TLS) or idle on keep-alive after a TLS handshake and one
// request. Before the connection cap they took every file descriptor (the
// process's limit here is this test's, 20,000) and about 32 kB each, and
// /metrics stopped answering. Now /metrics answers through the flood, on
// the scraper's keep-alive connection and on new ones, and the process
// holds at most --web.max-connections of them.
func TestIdleConnectionFloodLeavesMetricsServed(t *testing.T) {
	t.Parallel()
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "commercial")
	flood := e2eutil.BuildBinary(t, "./bench/connflood")
	config, pool := writeTLSConfig(t, "prometheus", "flood-scrape")
	addr := e2eutil.FreeAddr(t, "")
	const maxConns = 256
	srv := e2eutil.StartProcess(t, bin, "--web.listen-address="+addr, "--web.config.file="+config,
		"--web.max-connections="+strconv.Itoa(maxConns))
	url := "https://" + addr + "/metrics"
	tlsConfig := &tls.Config{RootCAs: pool}
	// Prometheus keeps one connection per target alive between scrapes.
	scraper := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig}}
	scrape := func(client *http.Client) error {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.SetBasicAuth("prometheus", "flood-scrape")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "clavis_build_info") {
			return fmt.Errorf("status %s, %d bytes", resp.Status, len(body))
		}
		return nil
	}
	deadline := time.Now().Add(30 * time.Second)
	for err := scrape(scraper); err != nil; err = scrape(scraper) {
		if time.Now().After(deadline) {
			t.Fatalf("exporter never served /metrics: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// 10,000 half-open connections (no TLS ClientHello) and 10,000 idle
	// keep-alive TLS connections, each from four source addresses of
	// 127/8, from two processes (each has 20,000 descriptors at most).
	opened := startFlood(t, flood, "-addr", addr, "-n", "10000", "-src", "127.0.1.1,127.0.1.2,127.0.1.3,127.0.1.4")
	opened += startFlood(t, flood, "-addr", addr, "-n", "10000", "-src", "127.0.2.1,127.0.2.2,127.0.2.3,127.0.2.4", "-tls", "-request")
	if opened < 19000 {
		t.Fatalf("the flood opened only %d of 20,000 connections: the test did not attack", opened)
	}

	pid := srv.Process.Pid
	maxFDs, maxRSS := 0, 0
	sample := func() {
		maxFDs = max(maxFDs, openFDs(t, pid))
		maxRSS = max(maxRSS, procStatus(t, pid, "VmRSS"))
	}
	// /metrics answers through the flood: on the scraper's keep-alive
	// connection, and on new connections. The client timeouts above are
	// liveness bounds, not latency checks (bench/listener.sh measures it).
	for i := 0; i < 10; i++ {
		if err := scrape(scraper); err != nil {
			t.Errorf("scrape %d on the keep-alive connection during the flood: %v", i, err)
		}
		sample()
	}
	for i := 0; i < 5; i++ {
		fresh := &http.Client{Timeout: 15 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}}
		if err := scrape(fresh); err != nil {
			t.Errorf("scrape %d on a new connection during the flood: %v", i, err)
		}
		sample()
	}
	// The cap plus the process's own descriptors (listeners, log files,
	// epoll, /proc files of a scrape in progress).
	if maxFDs > maxConns+64 {
		t.Errorf("exporter held %d file descriptors under the flood, want at most %d (--web.max-connections=%d + 64)", maxFDs, maxConns+64, maxConns)
	}
	// About 25 MB here with the cap; 20,000 TLS connections held cost
	// over 200 MB before it.
	peak := procStatus(t, pid, "VmHWM")
	if peak > 96<<10 {
		t.Errorf("exporter's peak RSS under the flood was %d kB, want under 96 MB", peak)
	}
	t.Logf("under a 20,000-connection flood: at most %d fds, RSS at most %d kB, peak RSS %d kB", maxFDs, maxRSS, peak)
}
