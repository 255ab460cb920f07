package tarpit

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

const emfileChildEnv = "CLAVIS_TARPIT_EMFILE_CHILD"

// TestAcceptBacksOffOnEMFILE runs a tarpit in a child process whose fd limit
// allows only a few clients, floods it, and checks that accept errors are
// met with back-off (a handful of failed accepts in 1.5 s) rather than a
// loop spinning on EMFILE (thousands), and that the trapped ones stay.
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
	if _, err := fmt.Sscanf(line, "active=%d accept_error=%d", &active, &acceptErrors); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
	t.Logf("under the fd limit: %d trapped, %d failed accepts in 1.5 s", active, acceptErrors)
	if active < 1 || active >= 20 {
		t.Errorf("active = %d: want some but not all of 20 trapped under the fd limit", active)
	}
	if acceptErrors < 1 || acceptErrors > 50 {
		t.Errorf("%d failed accepts in 1.5 s: want a few (back-off), not none and not a spin", acceptErrors)
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
	ctx, cancel := context.WithCancel(context.Background())
	go tp.Run(ctx)
	time.Sleep(50 * time.Millisecond)
	des, _ := os.ReadDir("/proc/self/fd")
	lim := syscall.Rlimit{Cur: uint64(len(des) + 3), Max: uint64(len(des) + 3)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	fmt.Println("listening", tp.SSHAddrs()[0].String())
	time.Sleep(1500 * time.Millisecond)
	s := tp.Snapshot()
	fmt.Printf("active=%d accept_error=%d\n", s.Protocols[ProtoSSH].Active, s.Rejected[RejectAcceptError])
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
