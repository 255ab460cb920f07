package tarpit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const emfileChildEnv = "CLAVIS_TARPIT_EMFILE_CHILD"

// TestAcceptBacksOffOnEMFILE runs a tarpit in a child process whose fd limit
// allows only a few clients, floods it, and checks that every failed accept
// (EMFILE) is followed by a pause doubling from the minimum, rather than a
// loop spinning on EMFILE, and that the trapped ones stay. The child sees
// the pauses through a hook and stops the loop at the sixth: no clock is
// read by the assertions.
func TestAcceptBacksOffOnEMFILE(t *testing.T) {
	if os.Getenv(emfileChildEnv) == "1" {
		emfileChild()
		return
	}
	t.Parallel()
	cmd := exec.Command(os.Args[0], "-test.run=^TestAcceptBacksOffOnEMFILE$")
	cmd.Env = append(os.Environ(), emfileChildEnv+"=1")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe() // closed when the test ends: the child then exits
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if !ok {
		t.Fatalf("child said %q", line)
	}
	for i := 0; i < 20; i++ {
		dialFrom(t, "", addr) // the kernel completes them; the child accepts what it can
	}
	line, err = r.ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	var active, acceptErrors int
	var pauses string
	if _, err := fmt.Sscanf(line, "active=%d accept_error=%d pauses=%s", &active, &acceptErrors, &pauses); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
	t.Logf("under the fd limit: %d trapped, %d failed accepts, pauses %s", active, acceptErrors, pauses)
	if active < 1 || active >= 20 {
		t.Errorf("active = %d: want some but not all of 20 trapped under the fd limit", active)
	}
	var want []string
	for d := time.Duration(0); len(want) < emfilePauses; {
		d = nextAcceptBackoff(d)
		want = append(want, d.String())
	}
	if acceptErrors != emfilePauses || pauses != strings.Join(want, ",") {
		t.Errorf("%d failed accepts with pauses %s; want %d, each followed by a doubling pause %s", acceptErrors, pauses, emfilePauses, strings.Join(want, ","))
	}
}

// emfilePauses is how many failed accepts the child lets happen.
const emfilePauses = 6

func TestNextAcceptBackoff(t *testing.T) {
	t.Parallel()
	d, steps := time.Duration(0), 0
	for d < acceptBackoffMax {
		next := nextAcceptBackoff(d)
		if next <= d || (d > 0 && next > 2*d) || next < acceptBackoffMin {
			t.Fatalf("after %v: %v", d, next)
		}
		d = next
		steps++
	}
	if d != acceptBackoffMax || nextAcceptBackoff(d) != acceptBackoffMax || steps > 10 {
		t.Fatalf("back-off reached %v in %d steps, then %v", d, steps, nextAcceptBackoff(d))
	}
}

func emfileChild() {
	cfg := DefaultConfig()
	cfg.SSHListenAddresses = []string{"127.0.0.1:0"}
	cfg.Interval = 50 * time.Millisecond
	cfg.MaxClientsPerSource = 100
	tp, err := New(cfg, nil)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	var mu sync.Mutex
	var pauses []string
	reached := make(chan struct{})
	tp.pauseHook = func(ctx context.Context, d time.Duration) bool {
		mu.Lock()
		pauses = append(pauses, d.String())
		n := len(pauses)
		mu.Unlock()
		if n < emfilePauses {
			return true // no wait: the next accept fails at once, as EMFILE does
		}
		close(reached)
		<-ctx.Done() // hold the loop: no more failed accepts
		return false
	}
	// Every descriptor the tarpit needs (listener, poller) exists once New
	// returns; allow three more, for three clients.
	des, _ := os.ReadDir("/proc/self/fd")
	lim := syscall.Rlimit{Cur: uint64(len(des) + 3), Max: uint64(len(des) + 3)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go tp.Run(ctx)
	fmt.Println("listening", tp.SSHAddrs()[0].String())
	select {
	case <-reached:
	case <-time.After(30 * time.Second): // a guard, not a measurement
	}
	// The accepted clients reach the scheduler's queue (and the trapped
	// count) on its next turn.
	for guard := time.Now().Add(30 * time.Second); time.Now().Before(guard); time.Sleep(5 * time.Millisecond) {
		tp.mu.Lock()
		admitted := tp.active
		tp.mu.Unlock()
		if tp.Snapshot().Protocols[ProtoSSH].Active == int64(admitted) {
			break
		}
	}
	s := tp.Snapshot()
	mu.Lock()
	fmt.Printf("active=%d accept_error=%d pauses=%s\n", s.Protocols[ProtoSSH].Active, s.Rejected[RejectAcceptError], strings.Join(pauses, ","))
	mu.Unlock()
	// Keep the listener open while the parent still dials.
	io.Copy(io.Discard, os.Stdin)
	cancel()
	os.Exit(0)
}

func TestSourceKey(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"192.0.2.1":            "192.0.2.1",
		"::ffff:192.0.2.1":     "192.0.2.1",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::",
		"2001:db8:1:2::9%eth0": "2001:db8:1:2::",
		"2001:db8:1:3:ffff::1": "2001:db8:1:3::",
	} {
		if got := sourceKey(netip.MustParseAddr(in)); got.String() != want {
			t.Errorf("sourceKey(%s) = %s, want %s", in, got, want)
		}
	}
}
