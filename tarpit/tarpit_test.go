package tarpit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"golang.org/x/sys/unix"
)

// startTarpit runs a tarpit from cfg until the test ends. stop ends it
// early (closing every client and flushing the scanner log) and may be
// called more than once.
func startTarpit(t *testing.T, cfg Config) (tp *Tarpit, stop func()) {
	t.Helper()
	tp, err := New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		if err := tp.Run(ctx); err != nil {
			t.Errorf("Run: %v", err)
		}
		close(done)
	}()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return tp, stop
}

// testConfig is a tarpit with one SSH listener on loopback and a fast drip.
func testConfig(t *testing.T) Config {
	cfg := DefaultConfig()
	cfg.SSHListenAddresses = []string{"127.0.0.1:0"}
	cfg.Interval = 20 * time.Millisecond
	cfg.LogFile = filepath.Join(t.TempDir(), "tarpit.log")
	return cfg
}

// dialFrom connects to addr from the loopback source address src.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 2 * time.Second}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, src, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitFor polls cond until it holds or 5 s pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readClosed reports whether c was closed by the peer (EOF or reset)
// within the timeout, as opposed to being held.
func readClosed(c net.Conn, timeout time.Duration) bool {
	c.SetReadDeadline(time.Now().Add(timeout))
	var b [512]byte
	for {
		_, err := c.Read(b[:])
		if err == nil {
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return false
		}
		return true // io.EOF, ECONNRESET
	}
}

type logRecord struct {
	Time            string  `json:"time"`
	Event           string  `json:"event"`
	Protocol        string  `json:"protocol"`
	RemoteAddr      string  `json:"remote_addr"`
	RemotePort      uint16  `json:"remote_port"`
	LocalPort       uint16  `json:"local_port"`
	DurationSeconds float64 `json:"duration_seconds"`
	BytesSent       uint64  `json:"bytes_sent"`
	Method          string  `json:"method"`
	Path            string  `json:"path"`
}

func readLog(t *testing.T, path string) []logRecord {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []logRecord
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		var r logRecord
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("scanner log line %q is not JSON: %v", sc.Text(), err)
		}
		out = append(out, r)
	}
	return out
}

func fdCount(t *testing.T) int {
	t.Helper()
	des, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		skipUnlessCI(t, "no /proc/self/fd to count descriptors: %v", err)
	}
	return len(des)
}

func TestSSHDripsLinesAndLogsOpenAndClose(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	tp, stop := startTarpit(t, cfg)
	c := dialFrom(t, "127.0.0.7", tp.SSHAddrs()[0].String())
	r := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got int
	for i := 0; i < 5; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		if strings.HasPrefix(line, "SSH-") || !strings.HasSuffix(line, "\r\n") || len(line) > cfg.MaxLineLength {
			t.Fatalf("bad pre-banner line %q", line)
		}
		got += len(line)
	}
	// The scheduler adds its bytes to the aggregates once per turn.
	waitFor(t, "the aggregates to count the bytes read", func() bool { return tp.Snapshot().Protocols[ProtoSSH].BytesSent >= uint64(got) })
	s := tp.Snapshot().Protocols[ProtoSSH]
	if s.Connections != 1 || s.Active != 1 || s.TrappedSeconds <= 0 {
		t.Fatalf("snapshot %+v after %d bytes read", s, got)
	}
	c.Close()
	waitFor(t, "the closed client to be dropped", func() bool { return tp.Snapshot().Protocols[ProtoSSH].Active == 0 })
	stop()
	recs := readLog(t, cfg.LogFile)
	if len(recs) != 2 || recs[0].Event != "open" || recs[1].Event != "close" {
		t.Fatalf("want open and close records, got %+v", recs)
	}
	cl := recs[1]
	port := uint16(tp.SSHAddrs()[0].(*net.TCPAddr).Port)
	if cl.RemoteAddr != "127.0.0.7" || cl.RemotePort == 0 || cl.LocalPort != port || cl.Protocol != "ssh" ||
		cl.BytesSent < uint64(got) || cl.DurationSeconds <= 0 || cl.Method != "" {
		t.Fatalf("close record %+v", cl)
	}
	if _, err := time.Parse(time.RFC3339Nano, cl.Time); err != nil {
		t.Fatalf("time %q: %v", cl.Time, err)
	}
}

func TestIPv6(t *testing.T) {
	t.Parallel()
	if !requireIPv6Loopback(t) {
		return // ran in a network namespace with ::1
	}
	cfg := testConfig(t)
	cfg.SSHListenAddresses = []string{"[::1]:0"}
	tp, stop := startTarpit(t, cfg)
	c := dialFrom(t, "", tp.SSHAddrs()[0].String())
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	stop()
	recs := readLog(t, cfg.LogFile)
	if len(recs) == 0 || recs[0].RemoteAddr != "::1" {
		t.Fatalf("want a record from ::1, got %+v", recs)
	}
}

// TestSSHClientHeldWithoutBanner points the real OpenSSH client at the
// tarpit: it never sees a banner and gives up at its own ConnectTimeout.
//
// The interval must not divide the 2 s timeout. OpenSSH 9.2 subtracts each
// poll's elapsed time from the remaining banner timeout and stops polling
// once that reaches zero without having timed out, after which it blocks in
// read for good. The same happens when ssh, woken by a line shortly
// before the deadline, is scheduled late enough on a busy machine that the
// elapsed time it measures passes the deadline. With lines every 100 ms the
// 20th landed on the deadline itself; at 300 ms a line 200 ms before it was
// still hit at load average 18. At 700 ms the last line before the deadline
// comes at 1.4 s (ssh would have to run 600 ms late) and the next at 2.1 s,
// after ssh's poll has timed out.
func TestSSHClientHeldWithoutBanner(t *testing.T) {
	t.Parallel()
	ssh := requireBinary(t, "ssh")
	cfg := testConfig(t)
	cfg.Interval = 700 * time.Millisecond
	tp, stop := startTarpit(t, cfg)
	port := tp.SSHAddrs()[0].(*net.TCPAddr).Port
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	start := time.Now()
	out, err := commandOutput(ctx, ssh, "-v", "-o", "ConnectTimeout=2", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
		"-o", "UserKnownHostsFile=/dev/null", "-F", "/dev/null", "-p", itoa(port), "tarpit@127.0.0.1", "true")
	held := time.Since(start)
	if err == nil {
		t.Fatalf("ssh succeeded against the tarpit:\n%s", out)
	}
	if !strings.Contains(out, "banner exchange") {
		t.Fatalf("ssh did not fail in the banner exchange (after %s; %+v):\n%s", held, tp.Snapshot(), out)
	}
	stop()
	s := tp.Snapshot().Protocols[ProtoSSH]
	if s.Connections != 1 || s.BytesSent == 0 {
		t.Fatalf("snapshot %+v: want one connection and bytes sent", s)
	}
	recs := readLog(t, cfg.LogFile)
	var closed *logRecord
	for i := range recs {
		if recs[i].Event == "close" {
			closed = &recs[i]
		}
	}
	// The close record and the aggregates account for the same client: the
	// same bytes, and the same time held (the log keeps milliseconds).
	if closed == nil || closed.RemoteAddr != "127.0.0.1" || closed.BytesSent != s.BytesSent || closed.DurationSeconds <= 0 ||
		s.TrappedSeconds < closed.DurationSeconds || s.TrappedSeconds-closed.DurationSeconds >= 0.001 {
		t.Fatalf("want a close record matching the aggregates %+v; got %+v", s, recs)
	}
	t.Logf("ssh held %s, %d bytes of pre-banner lines", held.Round(time.Millisecond), closed.BytesSent)
}

func TestMaxClientsRefusesCleanlyAndFDsStayBounded(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MaxClients = 20
	cfg.MaxClientsPerSource = 1000
	tp, stop := startTarpit(t, cfg)
	addr := tp.SSHAddrs()[0].String()
	var held []net.Conn
	for i := 0; i < cfg.MaxClients; i++ {
		held = append(held, dialFrom(t, "127.0.0.8", addr))
	}
	waitFor(t, "max-clients trapped", func() bool { return tp.Snapshot().Protocols[ProtoSSH].Active == int64(cfg.MaxClients) })
	before := fdCount(t)
	const extra = 60
	for i := 0; i < extra; i++ {
		c := dialFrom(t, "127.0.0.8", addr)
		if !readClosed(c, 2*time.Second) {
			t.Fatalf("connection %d beyond max-clients was held, not closed", i)
		}
		c.Close()
	}
	// The refused ones hold no descriptor in the tarpit: what is open now is
	// what was open before, give or take the poller's and the runtime's.
	if after := fdCount(t); after > before+5 {
		t.Fatalf("fd count grew from %d to %d while refusing %d connections", before, after, extra)
	}
	snap := tp.Snapshot()
	if snap.Rejected[RejectMaxClients] != extra || snap.Protocols[ProtoSSH].Active != int64(cfg.MaxClients) {
		t.Fatalf("rejected %v, active %d; want %d max_clients rejections and %d active",
			snap.Rejected, snap.Protocols[ProtoSSH].Active, extra, cfg.MaxClients)
	}
	// Held clients keep getting lines.
	held[0].SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := bufio.NewReader(held[0]).ReadString('\n'); err != nil {
		t.Fatalf("held client gets no line: %v", err)
	}
	for _, c := range held {
		c.Close()
	}
	waitFor(t, "closed clients to be dropped", func() bool { return tp.Snapshot().Protocols[ProtoSSH].Active == 0 })
	stop()
}

func TestPerSourceCap(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.MaxClientsPerSource = 3
	tp, _ := startTarpit(t, cfg)
	addr := tp.SSHAddrs()[0].String()
	for i := 0; i < 3; i++ {
		dialFrom(t, "127.0.0.9", addr)
	}
	waitFor(t, "three trapped", func() bool { return tp.Snapshot().Protocols[ProtoSSH].Active == 3 })
	for i := 0; i < 2; i++ {
		if c := dialFrom(t, "127.0.0.9", addr); !readClosed(c, 2*time.Second) {
			t.Fatal("fourth connection from one source was held")
		}
	}
	other := dialFrom(t, "127.0.0.10", addr)
	if readClosed(other, 200*time.Millisecond) {
		t.Fatal("a connection from another source was refused")
	}
	snap := tp.Snapshot()
	if snap.Rejected[RejectPerSource] != 2 || snap.Protocols[ProtoSSH].Active != 4 {
		t.Fatalf("rejected %v active %d; want 2 per_source rejections and 4 active", snap.Rejected, snap.Protocols[ProtoSSH].Active)
	}
}

// TestStalledPeerDropped: a client that never reads fills its tiny buffers;
// once nothing could be written for the stall timeout it is dropped.
func TestStalledPeerDropped(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.Interval = 2 * time.Millisecond
	cfg.MaxLineLength = 255
	cfg.StallTimeout = 200 * time.Millisecond
	tp, _ := startTarpit(t, cfg)
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, 1) })
	}}
	c, err := d.Dial("tcp", tp.SSHAddrs()[0].String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	waitFor(t, "the stalled client to be dropped", func() bool {
		s := tp.Snapshot().Protocols[ProtoSSH]
		return s.Connections == 1 && s.Active == 0
	})
	if b := tp.Snapshot().Protocols[ProtoSSH].BytesSent; b == 0 || b > 1<<20 {
		t.Fatalf("bytes sent before the stall: %d", b)
	}
}

// TestConfigErrors: every duration and size flag has bounds, and each bad
// value is refused with the flag's name (main exits 2 on it), never
// replaced by a default.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--tarpit.interval=-1s"}, "--tarpit.interval"},
		{[]string{"--tarpit.interval=0s"}, "--tarpit.interval"},
		{[]string{"--tarpit.interval=2h"}, "--tarpit.interval"},
		{[]string{"--tarpit.max-line-length=2"}, "--tarpit.max-line-length"},
		{[]string{"--tarpit.max-line-length=256"}, "--tarpit.max-line-length"},
		{[]string{"--tarpit.stall-timeout=0s"}, "--tarpit.stall-timeout"},
		{[]string{"--tarpit.stall-timeout=48h"}, "--tarpit.stall-timeout"},
		{[]string{"--tarpit.max-clients=0"}, "--tarpit.max-clients"},
		{[]string{"--tarpit.max-clients=-1"}, "--tarpit.max-clients"},
		{[]string{"--tarpit.max-clients-per-source=2000000"}, "--tarpit.max-clients-per-source"},
		{[]string{"--tarpit.max-clients-per-source=-3"}, "--tarpit.max-clients-per-source"},
		{[]string{"--tarpit.proxy-header-timeout=0s"}, "--tarpit.proxy-header-timeout"},
		{[]string{"--tarpit.proxy-header-timeout=1h"}, "--tarpit.proxy-header-timeout"},
		{[]string{"--tarpit.log.max-size-mb=0"}, "--tarpit.log.max-size-mb"},
		{[]string{"--tarpit.log.max-size-mb=100000"}, "--tarpit.log.max-size-mb"},
		{[]string{"--tarpit.log.max-total-size-mb=99"}, "--tarpit.log.max-total-size-mb must be between 100 and"},
		{[]string{"--tarpit.log.max-size-mb=10", "--tarpit.log.max-total-size-mb=2000000"}, "--tarpit.log.max-total-size-mb"},
		{[]string{"--tarpit.log.retention=-1h"}, "--tarpit.log.retention"},
		{[]string{"--tarpit.log.retention=1m"}, "--tarpit.log.retention"},
		{[]string{"--tarpit.log.retention=9000h"}, "--tarpit.log.retention"},
		{[]string{"--tarpit.proxy-protocol"}, "--tarpit.proxy-protocol.trusted"},
		{[]string{"--tarpit.proxy-protocol", "--tarpit.proxy-protocol.trusted=10.0.0.0/33"}, "--tarpit.proxy-protocol.trusted"},
		{[]string{"--tarpit.proxy-protocol", "--tarpit.proxy-protocol.trusted=lb.example"}, "--tarpit.proxy-protocol.trusted"},
		{[]string{"--tarpit.proxy-protocol.trusted=10.0.0.1"}, "--tarpit.proxy-protocol"},
		{[]string{"--tarpit.ssh.listen-address=127.0.0.1:notaport"}, "--tarpit.ssh.listen-address"},
		{[]string{"--tarpit.http.listen-address=nocolon"}, `--tarpit.http.listen-address="nocolon": want host:port or :port`},
		{[]string{"--tarpit.ssh.listen-address=22"}, `--tarpit.ssh.listen-address="22": want host:port or :port (e.g. :22)`},
	} {
		app := kingpin.New("test", "")
		cfg := AddFlags(app)
		if _, err := app.Parse(tc.args); err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.flag) {
			t.Errorf("%v: Validate = %v, want an error naming %s", tc.args, err, tc.flag)
			continue
		}
		if _, nerr := New(*cfg, nil); nerr == nil {
			t.Errorf("%v: New accepted what Validate refused", tc.args)
		}
	}
	// The defaults and the bounds themselves pass.
	for _, args := range [][]string{
		nil,
		{"--tarpit.interval=1ms", "--tarpit.max-line-length=3", "--tarpit.stall-timeout=100ms", "--tarpit.log.retention=1h", "--tarpit.log.max-size-mb=1", "--tarpit.log.max-total-size-mb=1"},
		{"--tarpit.interval=1h", "--tarpit.max-line-length=255", "--tarpit.stall-timeout=24h", "--tarpit.max-clients=1", "--tarpit.max-clients-per-source=1"},
		{"--tarpit.proxy-protocol", "--tarpit.proxy-protocol.trusted=10.0.0.0/8", "--tarpit.proxy-protocol.trusted=2001:db8::1", "--tarpit.proxy-protocol.trusted=::ffff:192.0.2.0/120"},
		{"--tarpit.ssh.listen-address=:ssh", "--tarpit.http.listen-address=[::1]:8080"},
	} {
		app := kingpin.New("test", "")
		cfg := AddFlags(app)
		if _, err := app.Parse(args); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
	// A scanner log in a directory that cannot be made is a start-up error.
	cfg := DefaultConfig()
	cfg.LogFile = "/proc/self/nope/tarpit.log"
	if _, err := New(cfg, nil); err == nil {
		t.Error("New accepted a scanner log that cannot be made")
	}
}

func TestParseTrusted(t *testing.T) {
	t.Parallel()
	got, err := parseTrusted([]string{"10.1.2.3", "192.0.2.77/24", "::ffff:198.51.100.0/120", "2001:db8::5"})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.1.2.3/32", "192.0.2.0/24", "198.51.100.0/24", "2001:db8::5/128"}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("prefix %d = %s, want %s", i, got[i], want[i])
		}
	}
}

func TestSSHLine(t *testing.T) {
	t.Parallel()
	rng := newTestRand()
	var buf [256]byte
	for maxLen := 3; maxLen <= 255; maxLen++ {
		for range 200 {
			l := sshLine(buf[:], maxLen, rng)
			if len(l) < 3 || len(l) > maxLen || string(l[len(l)-2:]) != "\r\n" || strings.HasPrefix(string(l), "SSH-") {
				t.Fatalf("maxLen %d: bad line %q", maxLen, l)
			}
			for _, ch := range l[:len(l)-2] {
				if ch < 32 || ch > 126 {
					t.Fatalf("unprintable byte in %q", l)
				}
			}
		}
	}
}

// TestHTTPLine: after the status line every line is a header (so the
// client keeps waiting) within the line length: at most maxLen bytes, CRLF
// included, or minHTTPHeaderLine below that. The status line, whole, is
// the one exception.
func TestHTTPLine(t *testing.T) {
	t.Parallel()
	rng := newTestRand()
	var buf [256]byte
	for maxLen := minLineLength; maxLen <= maxLineLength; maxLen++ {
		if l := string(httpLine(buf[:], 0, maxLen, rng)); l != "HTTP/1.1 200 OK\r\n" {
			t.Fatalf("max %d: first line %q", maxLen, l)
		}
		if l := string(httpLine(buf[:], 1, maxLen, rng)); (l == httpContentType) != (maxLen >= len(httpContentType)) {
			t.Fatalf("max %d: second line %q", maxLen, l)
		}
		longest := 0
		for i := uint32(1); i < 300; i++ {
			l := string(httpLine(buf[:], i, maxLen, rng))
			longest = max(longest, len(l))
			name, value, ok := strings.Cut(strings.TrimSuffix(l, "\r\n"), ":")
			if !ok || !strings.HasSuffix(l, "\r\n") || len(l) > max(maxLen, minHTTPHeaderLine) || strings.ContainsAny(value, "\r\n:") {
				t.Fatalf("line %d (max %d) is not a header within the length: %q", i, maxLen, l)
			}
			if l == httpContentType {
				continue
			}
			if len(name) < 3 || !strings.HasPrefix(name, "X-") || strings.Trim(name[2:], letters) != "" ||
				strings.Trim(strings.TrimPrefix(value, " "), alnum) != "" ||
				(maxLen >= 8 && (len(value) < 2 || value[0] != ' ')) {
				t.Fatalf("line %d (max %d): %q", i, maxLen, l)
			}
		}
		// The whole length is used, not a fixed floor (lines are uniform
		// in length, so 300 reach the top eighth).
		if maxLen >= minHTTPHeaderLine && longest < maxLen-maxLen/8 {
			t.Errorf("max %d: longest of 300 lines is %d", maxLen, longest)
		}
	}
}
