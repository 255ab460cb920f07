package tarpit

import (
	"context"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// TestAcceptLoopEndsOnStopUnderFlood: with a backlog of connections that
// a flood would keep full, the accept loop stops accepting once ctx is
// done instead of draining the backlog (closing the listener waits for
// the loop, so a drain stalled shutdown). Counted, not timed: stop comes
// at the first accept, and no accept may follow it.
func TestAcceptLoopEndsOnStopUnderFlood(t *testing.T) {
	t.Parallel()
	const backlog = 64
	cfg := DefaultConfig()
	cfg.SSHListenAddresses = []string{"127.0.0.1:0"}
	tp, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	l := tp.sshListeners[0]
	closed := false
	t.Cleanup(func() {
		if !closed {
			l.f.Close()
		}
		for _, c := range tp.incoming {
			unix.Close(int(c.fd))
		}
	})
	// Each dial returns once the kernel has queued the connection.
	for range backlog {
		c, err := net.Dial("tcp", l.addr.String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	accepted := 0
	drained := make(chan struct{})
	l.acceptHook = func() {
		accepted++
		if accepted == 1 {
			cancel() // stop, as Run's ctx ends, with the backlog still full
		}
		if accepted == backlog {
			close(drained)
		}
	}
	loopDone := make(chan struct{})
	go func() { tp.acceptLoop(ctx, l); close(loopDone) }()
	select {
	case <-loopDone:
	case <-drained:
		// The loop drained the whole backlog after stop and now waits
		// for more: only closing the listener ends it.
		l.f.Close()
		closed = true
		<-loopDone
	}
	if accepted != 1 {
		t.Fatalf("%d connections accepted, %d of them after stop; want none after stop", accepted, accepted-1)
	}
}
