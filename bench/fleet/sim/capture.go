package sim

import (
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// CaptureOptions say how to run the real exporter for a capture.
type CaptureOptions struct {
	// Exporter is the path of a telemetry-edition clavis-telemetry binary.
	Exporter string
	// Dir is a scratch directory for the vault dir, access log and logs.
	Dir string
	// Interval between the two scrapes (default 10 s).
	Interval time.Duration
	// Routes are --accesslog.route values (default api and sync, as a
	// Clavitor POP classifies its vault API and sync endpoints).
	Routes []string
	// Vaults is the number of vault files (default 40).
	Vaults int
	// RequestsPerSecond written to the access log (default 40).
	RequestsPerSecond int
	// Log receives the exporter's output (default: discarded).
	Log io.Writer
}

// Capture runs the exporter with its default collectors against a vault
// dir, an access log that keeps growing, an SSH tarpit with trapped clients
// and a trapped HTTP client, scrapes it twice Interval apart and returns the
// capture (see ParseCapture).
func Capture(ctx context.Context, o CaptureOptions) ([]byte, error) {
	if o.Interval <= 0 {
		o.Interval = 10 * time.Second
	}
	if o.Routes == nil {
		o.Routes = []string{"api=^/api/", "sync=^/sync"}
	}
	if o.Vaults <= 0 {
		o.Vaults = 40
	}
	if o.RequestsPerSecond <= 0 {
		o.RequestsPerSecond = 40
	}
	if o.Log == nil {
		o.Log = io.Discard
	}
	vaultDir := filepath.Join(o.Dir, "vaults")
	if err := os.MkdirAll(vaultDir, 0o700); err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < o.Vaults; i++ {
		if err := os.WriteFile(filepath.Join(vaultDir, fmt.Sprintf("vault-%03d.db", i)), make([]byte, 4096*(1+rng.IntN(64))), 0o600); err != nil {
			return nil, err
		}
	}
	accessLog := filepath.Join(o.Dir, "access.log")
	if err := os.WriteFile(accessLog, nil, 0o644); err != nil {
		return nil, err
	}
	web, err := freeAddr()
	if err != nil {
		return nil, err
	}
	ssh, err := freeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{
		"--web.listen-address=" + web,
		"--vault.data-dir=" + vaultDir,
		"--accesslog.path=" + accessLog,
		"--tarpit.ssh.listen-address=" + ssh,
		"--tarpit.log.file=" + filepath.Join(o.Dir, "tarpit.log"),
	}
	for _, r := range o.Routes {
		args = append(args, "--accesslog.route="+r)
	}
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(cctx, o.Exporter, args...)
	cmd.Stdout, cmd.Stderr = o.Log, o.Log
	cmd.Cancel = func() error { return cmd.Process.Signal(os.Interrupt) }
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	defer func() { cancel(); _ = cmd.Wait() }()

	client := &http.Client{Timeout: 10 * time.Second}
	if err := waitReady(cctx, client, "http://"+web+"/-/ready"); err != nil {
		return nil, err
	}

	// Traffic: the access log grows, scanners sit in both tarpits.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Add(1)
	go func() { defer wg.Done(); writeAccessLog(cctx, accessLog, o.RequestsPerSecond) }()
	for i := 0; i < 3; i++ {
		wg.Add(2)
		go func() { defer wg.Done(); holdConn(cctx, ssh, "") }()
		go func() {
			defer wg.Done()
			holdConn(cctx, web, "GET /wp-login.php HTTP/1.1\r\nHost: pop\r\n\r\n")
		}()
	}

	// Let the collectors see the traffic, then the two scrapes.
	if err := sleep(cctx, 2*time.Second); err != nil {
		return nil, err
	}
	first, _, err := scrape(client, "http://"+web+"/metrics")
	if err != nil {
		return nil, err
	}
	t1 := time.Now()
	if err := sleep(cctx, o.Interval); err != nil {
		return nil, err
	}
	second, t2, err := scrape(client, "http://"+web+"/metrics")
	if err != nil {
		return nil, err
	}
	return WriteCapture(first, second, t2, t2.Sub(t1)), nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitReady(ctx context.Context, c *http.Client, url string) error {
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		resp, err := c.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
	return fmt.Errorf("exporter not ready at %s: %v", url, last)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

func scrape(c *http.Client, url string) ([]byte, time.Time, error) {
	resp, err := c.Get(url)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer resp.Body.Close()
	at := time.Now()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, at, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, at, fmt.Errorf("%s: %s", url, resp.Status)
	}
	return b, at, nil
}

// holdConn connects to a tarpit, sends req (if any) and reads slowly until
// ctx ends: a scanner stuck in the tarpit.
func holdConn(ctx context.Context, addr, req string) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return
	}
	go func() { <-ctx.Done(); c.Close() }()
	if req != "" {
		c.Write([]byte(req))
	}
	io.Copy(io.Discard, c)
}

// writeAccessLog appends combined-format lines with request times: the
// methods, route classes and status classes of a POP's day, from
// documentation-range client addresses (v4 and v6).
func writeAccessLog(ctx context.Context, path string, perSecond int) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return
	}
	defer f.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	type req struct {
		method, path string
		weight       int
	}
	reqs := []req{
		{"GET", "/api/v1/vault/entries", 30}, {"PUT", "/api/v1/vault/entries", 8}, {"POST", "/api/v1/session", 6},
		{"DELETE", "/api/v1/vault/entries", 1}, {"GET", "/sync/pull", 25}, {"POST", "/sync/push", 10},
		{"GET", "/", 5}, {"GET", "/favicon.ico", 2}, {"HEAD", "/", 1}, {"POST", "/wp-login.php", 1}, {"PROPFIND", "/", 1},
	}
	total := 0
	for _, r := range reqs {
		total += r.weight
	}
	pick := func() req {
		n := rng.IntN(total)
		for _, r := range reqs {
			if n -= r.weight; n < 0 {
				return r
			}
		}
		return reqs[0]
	}
	// 5xx answers only in the first batch, before the first scrape: the
	// 5xx series exist (their help text and labels are captured) with no
	// rate of their own, and a simulated POP answers 5xx only in its
	// bursts (Options.BurstShare). At a steady 3 codes in 19 every POP
	// burned the 99.9 % SLO's error budget 150 times over, and an alert
	// storm's pages drowned in PopErrorBudgetBurnFast for every POP.
	codes := []int{200, 200, 200, 200, 200, 200, 200, 201, 204, 304, 302, 401, 403, 404, 429, 101}
	first := []int{500, 502, 503}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	carry := 0.0
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			carry += float64(perSecond) / 10
			var b strings.Builder
			for _, code := range first {
				fmt.Fprintf(&b, "203.0.113.7 - - [%s] \"GET /api/v1/vault/entries HTTP/1.1\" %d 120 \"-\" \"clavitor/2.1\" 0.012\n",
					now.UTC().Format("02/Jan/2006:15:04:05 -0700"), code)
			}
			first = nil
			for ; carry >= 1; carry-- {
				r := pick()
				client := fmt.Sprintf("203.0.113.%d", 1+rng.IntN(250))
				if rng.IntN(4) == 0 {
					client = fmt.Sprintf("2001:db8::%x", 1+rng.IntN(4000))
				}
				fmt.Fprintf(&b, "%s - - [%s] \"%s %s HTTP/1.1\" %d %d \"-\" \"clavitor/2.1\" %.3f\n",
					client, now.UTC().Format("02/Jan/2006:15:04:05 -0700"), r.method, r.path,
					codes[rng.IntN(len(codes))], 100+rng.IntN(20000), rng.ExpFloat64()*0.03)
			}
			f.WriteString(b.String())
		}
	}
}
