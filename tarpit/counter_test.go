package tarpit

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"
)

// TestTrappedSecondsIgnoresWallClockSteps: trapped_seconds_total is a
// counter, and one that goes down is a reset to Prometheus (rate() jumps by
// its whole value). Stepping the wall clock, forward or back, while clients
// are held and while they close must neither lower it nor add the step.
func TestTrappedSecondsIgnoresWallClockSteps(t *testing.T) {
	t.Parallel()
	var clock atomicTime
	clock.set(time.Now())
	cfg := testConfig(t)
	cfg.LogFile = ""
	cfg.Interval = time.Second
	tp, err := newTarpit(cfg, nil, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { tp.Run(ctx); close(ran) }()
	defer func() { cancel(); <-ran }()
	start := time.Now()
	const n = 10
	var conns []net.Conn
	for range n {
		conns = append(conns, dialFrom(t, "127.0.0.31", tp.SSHAddrs()[0].String()))
	}
	waitFor(t, "10 trapped", func() bool { return tp.Snapshot().Protocols[ProtoSSH].Active == n })

	var prev float64
	check := func(what string) {
		t.Helper()
		v := tp.Snapshot().Protocols[ProtoSSH].TrappedSeconds
		if v < prev {
			t.Fatalf("%s: trapped seconds went down, %.6f -> %.6f", what, prev, v)
		}
		// At most n clients for the real time elapsed: a step is never
		// counted as time held.
		if limit := n * time.Since(start).Seconds(); v > limit {
			t.Fatalf("%s: trapped seconds %.3f, more than %d clients for %.3f s of real time", what, v, n, time.Since(start).Seconds())
		}
		prev = v
	}
	check("before any step")
	clock.set(clock.now().Add(30 * time.Second))
	check("wall clock 30 s forward")
	clock.set(clock.now().Add(-20 * time.Second))
	check("wall clock 20 s back")
	clock.set(clock.now().Add(-time.Hour))
	check("wall clock an hour back")
	// Closing moves the clients' time to the closed total, with the clock
	// still stepped back.
	for _, c := range conns {
		c.Close()
	}
	waitFor(t, "the clients to be dropped", func() bool {
		check("while clients close")
		return tp.Snapshot().Protocols[ProtoSSH].Active == 0
	})
	check("after the clients closed")
	if prev <= 0 {
		t.Fatalf("trapped seconds %.6f after %d clients were held", prev, n)
	}
}

// TestTrappedSecondsMonotonicUnderChurn samples Snapshot while clients come
// and go as fast as they can: no sample may be lower than the one before.
// (With the clock read before Snapshot's lock, a client admitted between
// the reading and the lock added a negative time: hundreds of dips a
// second.)
func TestTrappedSecondsMonotonicUnderChurn(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.LogFile = ""
	cfg.Interval = time.Millisecond
	cfg.MaxClientsPerSource = 1 << 20
	tp, _ := startTarpit(t, cfg)
	addr := tp.SSHAddrs()[0].String()
	end := time.Now().Add(2 * time.Second)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(end) {
				if c, err := net.Dial("tcp", addr); err == nil {
					c.Close()
				}
			}
		}()
	}
	var prev float64
	dips, samples := 0, 0
	for time.Now().Before(end) {
		v := tp.Snapshot().Protocols[ProtoSSH].TrappedSeconds
		samples++
		if v < prev {
			if dips < 3 {
				t.Errorf("trapped seconds went down: %.6f -> %.6f", prev, v)
			}
			dips++
		}
		prev = v
	}
	wg.Wait()
	if dips > 0 {
		t.Errorf("%d decreases in %d samples", dips, samples)
	}
	if s := tp.Snapshot().Protocols[ProtoSSH]; s.Connections == 0 || prev <= 0 {
		t.Fatalf("no churn happened: %+v", s)
	}
}
