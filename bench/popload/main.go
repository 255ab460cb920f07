// Command popload plays a busy POP, compressed in time, against
// clavis-telemetry and, side by side and on the same load, against the
// stack an operator would otherwise run: Debian's node_exporter (the
// equivalent collectors, plus its textfile collector for the vault count),
// mtail (bench/accesslog.mtail on the same log) and endlessh (the same
// scanners). bench/pop.sh builds and runs it; see there for the targets.
//
// Load: an access log written at -lines-per-sec (combined + request time,
// mixed methods, codes, IPv4/IPv6 clients), every /metrics scraped each
// -scrape-interval, -ssh scanners held in the SSH tarpit and -http in the
// HTTP tarpit (endlessh holds both kinds), a vault directory of -vaults
// files with -vault-ops creates or deletes per second. The peer's vault
// count is a cron-like loop: every -peer-vault-interval, find | awk over
// the directory writes a textfile for node_exporter.
//
// Then, in the same run with the log and vault load stopped, a burst of
// back-to-back scrapes measures CPU per scrape of clavis-telemetry and of
// node_exporter. Loopback only.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	clavisArgs                               []string
	clavis, node, mtail, endlessh, mtailProg string
	duration, scrapeEvery, sampleEvery       time.Duration
	peerVaultEvery, tarpitInterval           time.Duration
	linesPerSec, ssh, httpScanners           int
	vaults, vaultOps, burst                  int
	tmp                                      string
}

func main() {
	var o options
	flag.StringVar(&o.clavis, "clavis", "", "clavis-telemetry binary (telemetry edition)")
	flag.Func("clavis-arg", "extra flag for clavis-telemetry (repeatable), e.g. -clavis-arg=--runtime.gomaxprocs=1", func(v string) error {
		o.clavisArgs = append(o.clavisArgs, v)
		return nil
	})
	flag.StringVar(&o.node, "node", "prometheus-node-exporter", "node_exporter binary")
	flag.StringVar(&o.mtail, "mtail", "mtail", "mtail binary")
	flag.StringVar(&o.endlessh, "endlessh", "endlessh", "endlessh binary")
	flag.StringVar(&o.mtailProg, "mtail-prog", "bench/accesslog.mtail", "mtail program equivalent to the accesslog collector")
	flag.DurationVar(&o.duration, "duration", 5*time.Minute, "length of the loaded phase")
	flag.DurationVar(&o.scrapeEvery, "scrape-interval", time.Second, "interval between two scrapes of every /metrics")
	flag.DurationVar(&o.sampleEvery, "sample-interval", 10*time.Second, "interval between two samples of RSS, fds and goroutines")
	flag.DurationVar(&o.peerVaultEvery, "peer-vault-interval", time.Minute, "interval of the peer's find | awk vault count (cron's granularity)")
	flag.DurationVar(&o.tarpitInterval, "tarpit-interval", 10*time.Second, "delay between two tarpit lines, both tarpits (endlessh's default)")
	flag.IntVar(&o.linesPerSec, "lines-per-sec", 2000, "access log lines per second")
	flag.IntVar(&o.ssh, "ssh", 300, "scanners held in the SSH tarpit")
	flag.IntVar(&o.httpScanners, "http", 20, "scanners held in the HTTP tarpit")
	flag.IntVar(&o.vaults, "vaults", 100_000, "vault files in the directory at start")
	flag.IntVar(&o.vaultOps, "vault-ops", 10, "vault creates or deletes per second")
	flag.IntVar(&o.burst, "burst", 300, "back-to-back scrapes of each exporter in the CPU-per-scrape phase")
	flag.StringVar(&o.tmp, "tmp", "", "work directory (default: a new one, removed afterwards)")
	flag.Parse()
	if o.clavis == "" {
		fmt.Fprintln(os.Stderr, "popload: -clavis is required")
		os.Exit(2)
	}
	if err := validate(o); err != nil {
		fmt.Fprintln(os.Stderr, "popload:", err)
		os.Exit(2)
	}
	ok, err := run(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "popload:", err)
		os.Exit(1)
	}
	if !ok {
		os.Exit(1)
	}
}

func validate(o options) error {
	switch {
	case o.duration < 10*time.Second || o.duration > 24*time.Hour:
		return fmt.Errorf("-duration %s: 10s to 24h", o.duration)
	case o.scrapeEvery <= 0 || o.sampleEvery <= 0 || o.peerVaultEvery <= 0 || o.tarpitInterval <= 0:
		return errors.New("intervals must be positive")
	case o.linesPerSec < 0 || o.ssh < 0 || o.httpScanners < 0 || o.vaults < 0 || o.vaultOps < 0 || o.burst < 1:
		return errors.New("counts must not be negative (burst at least 1)")
	case o.ssh+o.httpScanners > 3000:
		return errors.New("at most 3000 scanners (30 loopback sources, 100 each)")
	}
	return nil
}

// proc is one process of either side.
type proc struct {
	name string
	side string // "clavis" or "peer"
	cmd  *exec.Cmd
	url  string // its /metrics, if any

	exited chan struct{} // closed once the process is gone

	mu       sync.Mutex
	lat      []time.Duration
	lastBody []byte
	failures int
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

// freePort returns a TCP port that can be bound on every address, taken
// below the kernel's ephemeral range (32768 up by default): endlessh binds
// the wildcard address, and on a busy host an ephemeral port free on
// 127.0.0.1 is often held by an outgoing connection from another 127.x
// address, which makes its bind fail. taken avoids handing a port twice.
func freePort(taken map[int]bool) (int, error) {
	for range 1000 {
		p := 20000 + rand.IntN(12000)
		if taken[p] {
			continue
		}
		l, err := net.Listen("tcp4", "0.0.0.0:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		taken[p] = true
		return p, nil
	}
	return 0, errors.New("no free TCP port in 20000-31999")
}

func startProc(name, side, logPath, bin string, args ...string) (*proc, error) {
	out, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		out.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, side: side, cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); out.Close(); close(p.exited) }()
	return p, nil
}

func (p *proc) gone() bool {
	select {
	case <-p.exited:
		return true
	default:
		return false
	}
}

func waitTCP(p *proc, addr string, within time.Duration) error {
	deadline := time.Now().Add(within)
	for {
		if p.gone() {
			return fmt.Errorf("%s exited (see its log): %v", p.name, p.cmd.ProcessState)
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s: %w", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scrapeClient scrapes as Prometheus does: keep-alive, gzip, OpenMetrics
// preferred.
var scrapeClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 2}}

func scrape(url string) ([]byte, time.Duration, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5,*/*;q=0.1")
	start := time.Now()
	resp, err := scrapeClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(start)
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	return body, took, err
}

func (p *proc) scrapeOnce(record bool) {
	body, took, err := scrape(p.url)
	p.mu.Lock()
	defer p.mu.Unlock()
	if err != nil {
		p.failures++
		return
	}
	if record {
		p.lat = append(p.lat, took)
	}
	p.lastBody = body
}

func (p *proc) body() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastBody
}

// makeVaults creates n vault files with apparent sizes of 1 to 64 KiB
// (sparse: truncate, no data written).
func makeVaults(dir string, n int) error {
	const workers = 4
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				if err := createVault(dir, fmt.Sprintf("%016x.db", uint64(i)*0x9e3779b97f4a7c15), int64(1024*(1+i%64))); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func createVault(dir, name string, size int64) error {
	f, err := os.OpenFile(filepath.Join(dir, name), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// holder keeps scanners connected to one tarpit, reconnecting (as a
// scanner retries) when one is dropped.
type holder struct {
	held, drops atomic.Int64
}

func (h *holder) hold(ctx context.Context, wg *sync.WaitGroup, addr string, n int, request []byte, firstSource int) {
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+(firstSource+i)%30))}
			d := net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}
			buf := make([]byte, 512)
			for ctx.Err() == nil {
				c, err := d.DialContext(ctx, "tcp", addr)
				if err != nil {
					h.drops.Add(1)
					sleepCtx(ctx, time.Second)
					continue
				}
				stop := context.AfterFunc(ctx, func() { c.Close() })
				if len(request) > 0 {
					c.Write(request)
				}
				h.held.Add(1)
				for {
					if _, err := c.Read(buf); err != nil {
						break
					}
				}
				h.held.Add(-1)
				stop()
				c.Close()
				if ctx.Err() == nil {
					h.drops.Add(1)
					sleepCtx(ctx, time.Second)
				}
			}
		}()
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// peerVaultLoop is the peer's vault count: every interval, find | awk over
// the directory with the vault rules (regular files, no hidden files, no
// companions, no recursion), written atomically as a node_exporter
// textfile. It returns the CPU its children used in the loaded phase.
type peerVaultLoop struct {
	dir, textDir string
	cpu          atomic.Int64 // nanoseconds, while counting is on
	counting     atomic.Bool
	runs         atomic.Int64
	last         atomic.Int64 // the count of the latest run
}

const peerFindScript = `find "$1" -mindepth 1 -maxdepth 1 -type f ! -name '.*' ! -name '*.tmp' ! -name '*-journal' ! -name '*-wal' ! -name '*-shm' -printf '%s\n' | awk '{n++; s+=$1} END {printf "clavis_vaults %d\nclavis_vault_storage_bytes %d\n", n, s}'`

func (l *peerVaultLoop) once() error {
	// The CPU of sh, find and awk: RUSAGE_CHILDREN grows by every
	// descendant that has been waited for (sh waits for find and awk; no
	// other child of this process exits while it runs). The rusage of sh
	// alone from wait4 leaves its own children out.
	before := childrenCPU()
	cmd := exec.Command("sh", "-c", peerFindScript, "sh", l.dir)
	out, err := cmd.Output()
	if err != nil {
		return fmt.Errorf("peer vault count: %w", err)
	}
	if l.counting.Load() {
		l.cpu.Add(int64(childrenCPU() - before))
	}
	l.runs.Add(1)
	if v, ok := metricValue(out, "clavis_vaults"); ok {
		l.last.Store(int64(v))
	}
	tmp := filepath.Join(l.textDir, ".vault.prom.tmp")
	if err := os.WriteFile(tmp, out, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(l.textDir, "vault.prom"))
}

func childrenCPU() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// run counts now and then every interval, as cron would.
func (l *peerVaultLoop) run(ctx context.Context, every time.Duration) {
	if err := l.once(); err != nil {
		fmt.Fprintln(os.Stderr, "popload:", err)
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := l.once(); err != nil {
				fmt.Fprintln(os.Stderr, "popload:", err)
			}
		}
	}
}

// writeLog appends lines at rate per second until ctx is done.
func writeLog(ctx context.Context, path string, rate int, written *atomic.Int64) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	g := newLogGen(1, 50_000)
	start := time.Now()
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var buf []byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			due := int64(now.Sub(start).Seconds() * float64(rate))
			buf = buf[:0]
			for n := written.Load(); n < due; n++ {
				buf = g.line(buf, now)
			}
			if _, err := f.Write(buf); err != nil {
				return err
			}
			written.Store(due)
		}
	}
}

// churnVaults creates or deletes (even odds) one vault file every 1/rate s.
func churnVaults(ctx context.Context, dir string, start, rate int) error {
	if rate == 0 {
		return nil
	}
	rng := rand.New(rand.NewPCG(2, 3))
	names := make([]string, 0, start)
	for i := range start {
		names = append(names, fmt.Sprintf("%016x.db", uint64(i)*0x9e3779b97f4a7c15))
	}
	next := start
	t := time.NewTicker(time.Second / time.Duration(rate))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if len(names) == 0 || rng.IntN(2) == 0 {
			name := fmt.Sprintf("n%08d.db", next)
			next++
			if err := createVault(dir, name, int64(1024*(1+rng.IntN(64)))); err != nil {
				return err
			}
			names = append(names, name)
		} else {
			i := rng.IntN(len(names))
			if err := os.Remove(filepath.Join(dir, names[i])); err != nil {
				return err
			}
			names[i] = names[len(names)-1]
			names = names[:len(names)-1]
		}
	}
}

func countVaultFiles(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		name := e.Name()
		if e.Type().IsRegular() && !strings.HasPrefix(name, ".") && !strings.HasSuffix(name, ".tmp") {
			n++
		}
	}
	return n, nil
}
