package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// sample is one row of the every-10-s table.
type sample struct {
	at         time.Duration
	procs      map[string]procSample
	goroutines map[string]float64
}

func run(o options) (bool, error) {
	tmp := o.tmp
	if tmp == "" {
		d, err := os.MkdirTemp("", "popload-")
		if err != nil {
			return false, err
		}
		defer os.RemoveAll(d)
		tmp = d
	}
	vaultDir, textDir, progDir := filepath.Join(tmp, "vaults"), filepath.Join(tmp, "textfile"), filepath.Join(tmp, "mtail")
	for _, d := range []string{vaultDir, textDir, progDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return false, err
		}
	}
	prog, err := os.ReadFile(o.mtailProg)
	if err != nil {
		return false, err
	}
	if err := os.WriteFile(filepath.Join(progDir, "accesslog.mtail"), prog, 0o600); err != nil {
		return false, err
	}
	logPath := filepath.Join(tmp, "access.log")
	if err := os.WriteFile(logPath, nil, 0o600); err != nil {
		return false, err
	}
	t0 := time.Now()
	if err := makeVaults(vaultDir, o.vaults); err != nil {
		return false, fmt.Errorf("vault directory: %w", err)
	}
	fmt.Printf("vault directory: %d files in %.1f s\n", o.vaults, time.Since(t0).Seconds())
	peerVault := &peerVaultLoop{dir: vaultDir, textDir: textDir}
	if err := peerVault.once(); err != nil {
		return false, err
	}

	var ports [6]int
	taken := map[int]bool{}
	for i := range ports {
		if ports[i], err = freePort(taken); err != nil {
			return false, err
		}
	}
	web, sshC, httpC, nodeP, mtailP, endP := ports[0], ports[1], ports[2], ports[3], ports[4], ports[5]
	addr := func(p int) string { return "127.0.0.1:" + strconv.Itoa(p) }

	var procs []*proc
	defer func() {
		for _, p := range procs {
			p.cmd.Process.Signal(syscall.SIGTERM)
		}
		for _, p := range procs {
			select {
			case <-p.exited:
			case <-time.After(5 * time.Second):
				p.cmd.Process.Kill()
				<-p.exited
			}
		}
	}()
	start := func(name, side, url string, bin string, args ...string) (*proc, error) {
		p, err := startProc(name, side, filepath.Join(tmp, name+".log"), bin, args...)
		if err != nil {
			return nil, err
		}
		p.url = url
		procs = append(procs, p)
		return p, nil
	}
	clavisArgs := append([]string{"--web.listen-address=" + addr(web),
		"--tarpit.ssh.listen-address=" + addr(sshC), "--tarpit.http.listen-address=" + addr(httpC),
		"--tarpit.interval=" + o.tarpitInterval.String(), "--tarpit.log.file=" + filepath.Join(tmp, "scanners.log"),
		"--accesslog.path=" + logPath, "--vault.data-dir=" + vaultDir}, o.clavisArgs...)
	clavis, err := start("clavis-telemetry", "clavis", "http://"+addr(web)+"/metrics", o.clavis, clavisArgs...)
	if err != nil {
		return false, err
	}
	node, err := start("node_exporter", "peer", "http://"+addr(nodeP)+"/metrics", o.node,
		"--web.listen-address="+addr(nodeP), "--collector.disable-defaults",
		"--collector.cpu", "--collector.meminfo", "--collector.loadavg", "--collector.filesystem",
		"--collector.diskstats", "--collector.netdev",
		"--collector.textfile", "--collector.textfile.directory="+textDir)
	if err != nil {
		return false, err
	}
	mtail, err := start("mtail", "peer", "http://"+addr(mtailP)+"/metrics", o.mtail,
		"--progs", progDir, "--logs", logPath, "--address", "127.0.0.1", "--port", strconv.Itoa(mtailP), "--logtostderr")
	if err != nil {
		return false, err
	}
	// endlessh binds the wildcard address: a port free on 127.0.0.1 may be
	// taken there by another process, so try a few.
	for attempt := 0; ; attempt++ {
		e, err := start("endlessh", "peer", "", o.endlessh,
			"-4", "-p", strconv.Itoa(endP), "-d", strconv.Itoa(int(o.tarpitInterval.Milliseconds())), "-m", "4096", "-v")
		if err != nil {
			return false, err
		}
		if err = waitTCP(e, addr(endP), 10*time.Second); err == nil {
			break
		}
		procs = procs[:len(procs)-1]
		if attempt == 4 {
			return false, err
		}
		if endP, err = freePort(taken); err != nil {
			return false, err
		}
	}
	for i, a := range []string{addr(web), addr(sshC), addr(httpC), addr(nodeP), addr(mtailP)} {
		if err := waitTCP([]*proc{clavis, clavis, clavis, node, mtail}[i], a, 30*time.Second); err != nil {
			return false, err
		}
	}
	for _, p := range []*proc{clavis, node, mtail} {
		if _, _, err := scrape(p.url); err != nil {
			return false, fmt.Errorf("%s: %w", p.name, err)
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	httpReq := []byte("GET /wp-login.php HTTP/1.1\r\nHost: pop.example.net\r\nUser-Agent: Mozilla/5.0 zgrab/0.x\r\n\r\n")
	var ourSSH, ourHTTP, peerTarpit holder
	ourSSH.hold(ctx, &wg, addr(sshC), o.ssh, nil, 0)
	ourHTTP.hold(ctx, &wg, addr(httpC), o.httpScanners, httpReq, o.ssh)
	peerTarpit.hold(ctx, &wg, addr(endP), o.ssh, nil, 0)
	peerTarpit.hold(ctx, &wg, addr(endP), o.httpScanners, httpReq, o.ssh)
	want := int64(o.ssh + o.httpScanners)
	for deadline := time.Now().Add(30 * time.Second); ourSSH.held.Load()+ourHTTP.held.Load() < want || peerTarpit.held.Load() < want; {
		if time.Now().After(deadline) {
			return false, fmt.Errorf("scanners held after 30 s: clavis %d+%d, endlessh %d, want %d each",
				ourSSH.held.Load(), ourHTTP.held.Load(), peerTarpit.held.Load(), want)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// The loaded phase.
	loadCtx, stopLoad := context.WithCancel(ctx)
	defer stopLoad()
	var lines atomic.Int64
	loadErr := make(chan error, 2)
	var loadWG sync.WaitGroup
	loadWG.Add(3)
	go func() { defer loadWG.Done(); loadErr <- writeLog(loadCtx, logPath, o.linesPerSec, &lines) }()
	go func() { defer loadWG.Done(); loadErr <- churnVaults(loadCtx, vaultDir, o.vaults, o.vaultOps) }()

	cpuOf := func() map[string]float64 {
		m := map[string]float64{}
		for _, p := range procs {
			ns, err := cpuNanos(p.pid())
			if err != nil {
				fmt.Fprintf(os.Stderr, "popload: CPU of %s: %v\n", p.name, err)
			}
			m[p.name] = float64(ns) / 1e9
		}
		return m
	}
	fmt.Printf("loaded phase: %s, %d lines/s, scrapes every %s, %d+%d scanners, %d vaults with %d ops/s, peer vault count every %s\n",
		o.duration, o.linesPerSec, o.scrapeEvery, o.ssh, o.httpScanners, o.vaults, o.vaultOps, o.peerVaultEvery)
	peerVault.counting.Store(true)
	cpu0, phaseStart := cpuOf(), time.Now()
	go func() { defer loadWG.Done(); peerVault.run(loadCtx, o.peerVaultEvery) }()
	var samples []sample
	takeSample := func() {
		s := sample{at: time.Since(phaseStart), procs: map[string]procSample{}, goroutines: map[string]float64{}}
		for _, p := range procs {
			s.procs[p.name] = sampleProc(p.pid())
			if p.url != "" {
				if v, ok := metricValue(p.body(), "go_goroutines"); ok {
					s.goroutines[p.name] = v
				}
			}
		}
		samples = append(samples, s)
	}
	scrapeT, sampleT := time.NewTicker(o.scrapeEvery), time.NewTicker(o.sampleEvery)
	end := time.After(o.duration)
	for _, p := range []*proc{clavis, node, mtail} {
		p.scrapeOnce(false)
	}
	takeSample()
loaded:
	for {
		select {
		case err := <-loadErr:
			if err != nil {
				return false, fmt.Errorf("load: %w", err)
			}
		case <-scrapeT.C:
			for _, p := range []*proc{clavis, node, mtail} {
				p.scrapeOnce(true)
			}
		case <-sampleT.C:
			takeSample()
		case <-end:
			break loaded
		}
	}
	scrapeT.Stop()
	sampleT.Stop()
	cpu1, phase := cpuOf(), time.Since(phaseStart)
	peerVault.counting.Store(false)
	stopLoad()
	loadWG.Wait()
	takeSample()

	// Let both sides catch up with the log and the directory, then compare
	// what they counted with what was done.
	time.Sleep(3 * time.Second)
	if err := peerVault.once(); err != nil {
		return false, err
	}
	onDisk, err := countVaultFiles(vaultDir)
	if err != nil {
		return false, err
	}

	// CPU per scrape, same processes, load stopped: idle baseline, then a
	// burst of back-to-back scrapes, alternating.
	base0, baseStart := cpuOf(), time.Now()
	time.Sleep(5 * time.Second)
	base1, baseWall := cpuOf(), time.Since(baseStart)
	burst0, burstStart := cpuOf(), time.Now()
	var burstLat = map[string][]time.Duration{}
	for range o.burst {
		for _, p := range []*proc{clavis, node} {
			_, took, err := scrape(p.url)
			if err != nil {
				return false, fmt.Errorf("burst: %w", err)
			}
			burstLat[p.name] = append(burstLat[p.name], took)
		}
	}
	burst1, burstWall := cpuOf(), time.Since(burstStart)
	perScrape := func(name string) float64 {
		idle := (base1[name] - base0[name]) / baseWall.Seconds() * burstWall.Seconds()
		return max(burst1[name]-burst0[name]-idle, 0) / float64(o.burst)
	}
	for _, p := range []*proc{clavis, node, mtail} {
		p.scrapeOnce(false)
	}
	cancel()
	wg.Wait()

	r := report{o: o, phase: phase, samples: samples, procs: procs, cpu: map[string]float64{}}
	for _, p := range procs {
		r.cpu[p.name] = cpu1[p.name] - cpu0[p.name]
	}
	r.findCPU = time.Duration(peerVault.cpu.Load()).Seconds()
	r.findRuns = peerVault.runs.Load()
	r.perScrape = map[string]float64{"clavis-telemetry": perScrape("clavis-telemetry"), "node_exporter": perScrape("node_exporter")}
	r.burstLat = burstLat
	r.nodeBody = node.body()
	r.idle = map[string]float64{}
	for _, p := range procs {
		r.idle[p.name] = (base1[p.name] - base0[p.name]) / baseWall.Seconds()
	}
	r.onDisk, r.peerVaults, r.lines = onDisk, peerVault.last.Load(), lines.Load()
	r.drops = [3]int64{ourSSH.drops.Load(), ourHTTP.drops.Load(), peerTarpit.drops.Load()}
	ok := r.print(os.Stdout)
	for _, p := range procs {
		if p.failures > 0 {
			fmt.Printf("%s: %d failed scrapes\n", p.name, p.failures)
			ok = false
		}
		if p.gone() {
			ok = false
			fmt.Printf("%s exited early: %v\n", p.name, p.cmd.ProcessState)
		}
	}
	if !ok {
		fmt.Println("RESULT: target(s) missed or run invalid (see above); logs in", tmp)
		if o.tmp == "" {
			return false, errors.New("rerun with -tmp DIR to keep the logs")
		}
	} else {
		fmt.Println("RESULT: all targets met")
	}
	return ok, nil
}
