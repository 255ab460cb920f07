package tarpit

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

func requireBinary(t *testing.T, name string) string { return e2eutil.RequireBinary(t, name) }

func itoa(i int) string { return strconv.Itoa(i) }

func newTestRand() *rand.Rand { return rand.New(rand.NewPCG(1, 2)) }

// commandOutput runs a program and returns its combined output.
func commandOutput(ctx context.Context, name string, args ...string) (string, error) {
	b, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(b), err
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// atomicTime is a settable clock for the scanner log's sweep.
type atomicTime struct{ v atomic.Int64 }

func (a *atomicTime) set(t time.Time) { a.v.Store(t.UnixNano()) }
func (a *atomicTime) now() time.Time  { return time.Unix(0, a.v.Load()) }

func readFile(path string) (string, error) {
	b, err := os.ReadFile(path)
	return string(b), err
}

// skipUnlessCI skips the test for a missing environment feature, except in
// CI (CI set), where the feature is expected and its absence fails the test
// with the reason.
func skipUnlessCI(t *testing.T, format string, args ...any) {
	t.Helper()
	if e2eutil.InCI() {
		t.Fatalf("CI is set, so not skipping: "+format, args...)
	}
	t.Skipf(format, args...)
}

// netnsChildEnv marks a test process re-run inside its own network namespace.
const netnsChildEnv = "CLAVIS_TARPIT_NETNS_CHILD"

// forceNetnsEnv makes requireIPv6Loopback take the namespace path even when
// ::1 works, to test that path where IPv6 loopback exists.
const forceNetnsEnv = "CLAVIS_TARPIT_FORCE_NETNS"

// requireIPv6Loopback returns true when the calling test may go on in this
// process with ::1 usable. Without ::1 (a container started without IPv6)
// and as root, it re-runs the test in a new network namespace with lo up,
// where the kernel gives ::1, reports that run's result and returns false.
// Otherwise the test is skipped, or fails in CI.
func requireIPv6Loopback(t *testing.T) bool {
	t.Helper()
	l, err := net.Listen("tcp", "[::1]:0")
	if err == nil {
		l.Close()
		if os.Getenv(forceNetnsEnv) == "" || os.Getenv(netnsChildEnv) != "" {
			return true
		}
		err = errors.New("forced by " + forceNetnsEnv)
	}
	if os.Getenv(netnsChildEnv) != "" {
		t.Fatalf("no IPv6 loopback even in a network namespace of its own: %v", err)
	}
	unshare, uerr := exec.LookPath("unshare")
	ip, ierr := exec.LookPath("ip")
	if os.Geteuid() != 0 || uerr != nil || ierr != nil {
		skipUnlessCI(t, "no IPv6 loopback (%v), and a network namespace with one needs root, unshare and ip", err)
	}
	cmd := exec.Command(unshare, "--net", "--", "sh", "-c", ip+` link set lo up && exec "$@"`, "sh",
		os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), netnsChildEnv+"=1")
	out, rerr := cmd.CombinedOutput()
	if rerr != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Fatalf("%s in a network namespace of its own (no IPv6 loopback here: %v): %v\n%s", t.Name(), err, rerr, out)
	}
	t.Logf("no IPv6 loopback here (%v): ran in a network namespace of its own:\n%s", err, out)
	return false
}
