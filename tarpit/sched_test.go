package tarpit

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSchedulerBatchesEarlyNeverLate checks the wake-up rule of maxBatch on
// the scheduler itself, with socket pairs for clients and a clock the test
// sets: clients due within a tenth of the interval of the first one due are
// served in one turn, before they are due; no turn is planned after the
// first due time, so no line is late.
func TestSchedulerBatchesEarlyNeverLate(t *testing.T) {
	s := newSchedulerWithInterval(t, time.Second) // batch window 100 ms
	if s.batch != int64(100*time.Millisecond) {
		t.Fatalf("batch window %v, want a tenth of the 1 s interval", time.Duration(s.batch))
	}
	if got := newSchedulerWithInterval(t, 30*time.Second).batch; got != int64(maxBatch) {
		t.Fatalf("batch window at 30 s: %v, want the %v cap", time.Duration(got), maxBatch)
	}

	// 20 clients due 10 ms apart, from 1 s on.
	peers := make([]int, 20)
	for i := range peers {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
		if err != nil {
			t.Fatal(err)
		}
		peers[i] = fds[1]
		defer unix.Close(fds[1])
		s.trap.push(client{fd: int32(fds[0]), proto: protoSSH, due: int64(time.Second) + int64(i)*int64(10*time.Millisecond)})
	}
	defer func() {
		for s.trap.n > 0 {
			c := s.trap.pop()
			unix.Close(int(c.fd))
		}
	}()
	got := func(i int) bool {
		var b [512]byte
		n, _ := unix.Read(peers[i], b[:])
		return n > 0
	}

	if w := s.untilNextTurn(0); w != time.Second {
		t.Fatalf("first turn planned in %v, want at the first due time (1s)", w)
	}
	// A turn woken before anyone is due (a new client) serves nobody.
	s.serveTrap(int64(990 * time.Millisecond))
	for i := range peers {
		if got(i) {
			t.Fatalf("client %d served at 0.99s, before the first due time", i)
		}
	}
	now := int64(time.Second)
	s.serveTrap(now)
	for i := range peers {
		// Due at 1.00 s .. 1.10 s: served now. Later ones wait.
		if want := i <= 10; got(i) != want {
			t.Fatalf("client %d (due %v) served at 1s: %v, want %v", i, time.Second+time.Duration(i)*10*time.Millisecond, !want, want)
		}
	}
	if w := s.untilNextTurn(now); w != 110*time.Millisecond {
		t.Fatalf("next turn planned in %v, want 110ms: when client 11 is due, not later", w)
	}
	now += int64(110 * time.Millisecond)
	s.serveTrap(now)
	for i := range peers {
		if want := i > 10; got(i) != want {
			t.Fatalf("client %d served at 1.11s: %v, want %v", i, !want, want)
		}
	}
	// The two batches stay two: the first is due again at 2 s, the second
	// at 2.11 s, outside the first's window.
	if w := s.untilNextTurn(now); w != 890*time.Millisecond {
		t.Fatalf("turn after the second batch in %v, want 890ms", w)
	}
	now = int64(2 * time.Second)
	s.serveTrap(now)
	for i := range peers {
		if want := i <= 10; got(i) != want {
			t.Fatalf("client %d served at 2s: %v, want %v", i, !want, want)
		}
	}
}

func newSchedulerWithInterval(t *testing.T, interval time.Duration) *scheduler {
	t.Helper()
	cfg := testConfig(t)
	cfg.Interval = interval
	cfg.LogFile = ""
	tp, err := New(cfg, discardLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(tp.closeListeners)
	return newScheduler(tp)
}
