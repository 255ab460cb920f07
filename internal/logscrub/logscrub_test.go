package logscrub

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
)

// lines net/http, net and the tarpit really print, with the addresses in
// them.
var goLines = []struct{ line, addr string }{
	{"http: TLS handshake error from 127.0.0.1:44766: EOF", "127.0.0.1"},
	{"http: TLS handshake error from [::1]:5555: tls: first record does not look like a TLS handshake", "::1"},
	{"http2: server: error reading preface from client 10.0.0.7:46036: bogus greeting", "10.0.0.7"},
	{"read tcp 127.0.0.1:9745->203.0.113.9:40000: read: connection reset by peer", "203.0.113.9"},
	{"write tcp [2001:db8::1]:9745->[2001:db8:0:1::42]:51234: write: broken pipe", "2001:db8:0:1::42"},
	{"http: panic serving [fe80::1%eth0]:4000: boom", "fe80::1"},
	{"accept from ::ffff:198.51.100.7 refused", "198.51.100.7"},
	{"mount source nfs10.0.0.5:/export on /mnt", "10.0.0.5"},
	{"peer 2001:db8:1:2:3:4:5:6 gone", "2001:db8:1:2:3:4:5:6"},
}

func TestAddressesScrubsGoFormats(t *testing.T) {
	for _, c := range goLines {
		got := Addresses(c.line)
		if strings.Contains(got, c.addr) || !strings.Contains(got, Redacted) {
			t.Errorf("Addresses(%q) = %q: %s not replaced", c.line, got, c.addr)
		}
	}
	// Things that look like addresses to a careless eye stay.
	for _, keep := range []string{
		"time=2026-12-01T21:09:01.150Z level=INFO msg=x",
		"go1.26.8 linux/amd64 version=1.2.3",
		"collector cpu took 0.004s",
		"err: dial: context deadline exceeded",
	} {
		if got := Addresses(keep); got != keep {
			t.Errorf("Addresses(%q) = %q, want it unchanged", keep, got)
		}
	}
}

func TestAddressesOnRealErrors(t *testing.T) {
	// A real net error, as a collector or the tarpit would log it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	_, err = net.Dial("tcp", addr)
	if err == nil {
		t.Skip("port reused")
	}
	if got := Addresses(err.Error()); strings.Contains(got, "127.0.0.1") {
		t.Errorf("Addresses(%q) = %q", err, got)
	}
}

func TestHandlerScrubsEverything(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(NewHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), Addresses))
	logger = logger.With("peer", "10.1.2.3:80").WithGroup("g").With("inner", "[::1]:9")
	logger.Warn("from 192.0.2.1:5",
		"err", errors.New("dial tcp 192.0.2.2:443: refused"),
		"stringer", stringer("at 192.0.2.3"),
		"any", []string{"192.0.2.4"},
		slog.Group("grp", "deep", "192.0.2.5"),
		"n", 42, "ok", true)
	out := buf.String()
	for _, a := range []string{"10.1.2.3", "::1", "192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5"} {
		if strings.Contains(out, a) {
			t.Errorf("address %s reached the log: %s", a, out)
		}
	}
	for _, want := range []string{"n=42", "ok=true", "g.grp.deep=" + Redacted} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}
	if !logger.Enabled(nil, slog.LevelDebug) || slog.New(NewHandler(slog.NewTextHandler(&buf, nil), Addresses)).Enabled(nil, slog.LevelDebug) {
		t.Error("Enabled does not follow the inner handler")
	}
}

type stringer string

func (s stringer) String() string { return string(s) }

func TestHandlerKeepsListenAddresses(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(NewHandler(slog.NewTextHandler(&buf, nil), Addresses, "address"))
	logger.Info("Listening on 127.0.0.9:1", "address", "127.0.0.1:9745", "peer", "127.0.0.2:5")
	out := buf.String()
	if !strings.Contains(out, "address=127.0.0.1:9745") || strings.Contains(out, "127.0.0.2") || strings.Contains(out, "127.0.0.9") {
		t.Errorf("want only the kept attribute verbatim: %s", out)
	}
}

func TestServerErrorLog(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(NewHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), Addresses))
	el := ServerErrorLog(logger)
	el.Printf("http2: server: error reading preface from client %s: bogus greeting %q", "127.0.0.1:46036", "GARBAGE\" 10.9.9.9 <script>")
	el.Printf("http: TLS handshake error from %s: EOF", "127.0.0.1:44766")
	el.Printf("http: Accept error: %v; retrying in 5ms", "accept tcp [::]:9745: too many open files")
	el.Printf("half %q", "x")
	el.Print(`unterminated "GARBAGE`)
	out := buf.String()
	for _, bad := range []string{"127.0.0.1", "GARBAGE", "script", "10.9.9.9"} {
		if strings.Contains(out, bad) {
			t.Errorf("%q reached the log:\n%s", bad, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 5 lines, got:\n%s", out)
	}
	for i, want := range []string{"level=DEBUG", "level=DEBUG", "level=WARN", "level=WARN", "level=WARN"} {
		if !strings.Contains(lines[i], want) {
			t.Errorf("line %d: want %s: %s", i, want, lines[i])
		}
	}
	if !strings.Contains(lines[0], "bogus greeting") || !strings.Contains(lines[2], "too many open files") {
		t.Errorf("the error itself was lost:\n%s", out)
	}
}

func TestStripClientBytes(t *testing.T) {
	for in, want := range map[string]string{
		`a "b" c "d\"e" f`: `a "[client bytes removed]" c "[client bytes removed]" f`,
		`no quotes`:        `no quotes`,
		`open "x`:          `open "[client bytes removed]"`,
	} {
		if got := StripClientBytes(in); got != want {
			t.Errorf("StripClientBytes(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzAddresses embeds an IPv4 or IPv6 address, with or without a port,
// between arbitrary text and checks it does not survive.
func FuzzAddresses(f *testing.F) {
	f.Add("http: TLS handshake error from ", ": EOF", []byte{127, 0, 0, 1}, uint16(44766))
	f.Add("peer [", "]", []byte{0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(0))
	f.Add("ip", "x", []byte{10, 0, 0, 21}, uint16(0))
	f.Fuzz(func(t *testing.T, prefix, suffix string, ip []byte, port uint16) {
		a, ok := netip.AddrFromSlice(ip)
		if !ok {
			return
		}
		addr := a.String()
		if port != 0 {
			addr = netip.AddrPortFrom(a, port).String()
		}
		got := Addresses(prefix + addr + suffix)
		if strings.Contains(got, a.String()) && !strings.Contains(prefix+suffix, a.String()) {
			t.Errorf("Addresses(%q) = %q: %s survived", prefix+addr+suffix, got, a)
		}
		if again := Addresses(got); again != got {
			t.Errorf("not idempotent: %q -> %q", got, again)
		}
	})
}

// TestAddressesAfterText: an address glued after text and a colon (Go's
// "peer:%v", a key:value log field) was left whole, because the candidate
// started at the colon and did not parse.
func TestAddressesAfterText(t *testing.T) {
	for _, in := range []string{
		"peer:2001:db8::1 gone", "x:2001:db8::1", "dst :2001:db8::1", "addr:2001:db8:1:2:3:4:5:6",
		"x::2001:db8::1", "0:1:2:3:4:5:6:7:8", "[::1]:8080", "from fe80::1%eth0:",
	} {
		got := Addresses(in)
		if !strings.Contains(got, Redacted) || strings.Contains(got, "db8") || strings.Contains(got, "fe80") ||
			strings.Contains(got, "::1") || strings.Contains(got, "3:4:5:6:7") {
			t.Errorf("Addresses(%q) = %q", in, got)
		}
	}
	for _, keep := range []string{"12:30:45", "a:b:c", "2026-12-02T13:33:36Z"} {
		if got := Addresses(keep); got != keep {
			t.Errorf("Addresses(%q) = %q, want it unchanged", keep, got)
		}
	}
}

// TestHandlerScrubsKeysAndGroups: keys and group names are scrubbed, and
// the kept key is kept at the top level only: in a group it is a client's.
func TestHandlerScrubsKeysAndGroups(t *testing.T) {
	var buf bytes.Buffer
	base := slog.New(NewHandler(slog.NewTextHandler(&buf, nil), Addresses, "address"))
	base.WithGroup("10.0.0.1").Info("a", "k", "v")
	base.Info("b", "192.0.2.10", "v", slog.Group("192.0.2.11", "k", "v"))
	base.Info("c", slog.Group("client", "address", "192.0.2.12:5"))
	base.WithGroup("peer").With("address", "192.0.2.13:5").Info("d")
	base.WithGroup("peer").Info("e", "address", "192.0.2.14:5")
	base.Info("f", slog.Group("", "address", "192.0.2.15:5"))
	base.WithGroup("").Info("g", "address", "127.0.0.1:9745")
	base.With("address", "127.0.0.2:9745").Info("h")
	out := buf.String()
	for _, a := range []string{"10.0.0.1", "192.0.2.1"} {
		if strings.Contains(out, a) {
			t.Errorf("%s reached the log:\n%s", a, out)
		}
	}
	for _, want := range []string{"address=127.0.0.1:9745", "address=127.0.0.2:9745", Redacted + ".k=v"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
}

// TestServerErrorLogClientNoise: every message a client can make Go's
// HTTP/2 server print goes to debug, and a line quoting what the client
// offered is cut to a bound, after white space, marked. A handler's panic
// is not the client's doing: it stays at error, with its stack.
func TestServerErrorLogClientNoise(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(NewHandler(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}), Addresses))
	el := ServerErrorLog(logger)
	el.Printf("timeout waiting for SETTINGS frames from %v", "192.0.2.1:4000")
	el.Printf("http2: server closing client connection: %v", "read: connection reset by peer")
	el.Printf("http2: panic serving %v: %v\n%s", "192.0.2.2:4000", "boom", "goroutine 1 [running]:")
	el.Printf("timeout waiting for PING response")
	suites := make([]uint16, 32768)
	for i := range suites {
		suites[i] = uint16(i)
	}
	el.Printf("http: TLS handshake error from %s: tls: no cipher suite supported by both client and server; client offered: %x",
		"192.0.2.3:4000", suites)
	el.Printf("10.0.0.%s", strings.Repeat("9", 600)) // no white space: nothing of it is left
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 6 { // the panic's newline is quoted by the handler
		t.Fatalf("want 6 lines, got %d:\n%.3000s", len(lines), buf.String())
	}
	for i, l := range lines {
		if i == 2 { // the panic: a bug of ours, at error whatever the protocol, with its stack
			if !strings.Contains(l, "level=ERROR") || !strings.Contains(l, "goroutine 1 [running]") {
				t.Errorf("panic line not at error with its stack: %.300s", l)
			}
			continue
		}
		if !strings.Contains(l, "level=DEBUG") && i < 5 {
			t.Errorf("line %d not at debug: %.300s", i, l)
		}
		if len(l) > MaxErrorLine+200 {
			t.Errorf("line %d is %d bytes long", i, len(l))
		}
	}
	out := buf.String()
	if !strings.Contains(out, "bytes cut]") || strings.Contains(out, "10.0.0") || strings.Contains(out, "192.0.2") {
		t.Errorf("long lines not cut or addresses left:\n%.2000s", out)
	}
}

func TestAddressesScrubsEmails(t *testing.T) {
	for _, in := range []string{"from alice@example.com", "to <bob.smith@mail.example.org>", "u=andré@bücher.de;"} {
		if got := Addresses(in); !strings.Contains(got, Redacted) || strings.Contains(got, "example") || strings.Contains(got, "bücher") {
			t.Errorf("Addresses(%q) = %q", in, got)
		}
	}
	// An address literal for a domain takes the local part with it.
	for in, want := range map[string]string{
		"from alice@[10.0.0.1] now":        "from " + Redacted + " now",
		"to <alice@[IPv6:2001:db8::1]>":    "to <" + Redacted + ">",
		"rcpt alice@[ipv6:fe80::1%eth0].":  "rcpt " + Redacted + ".",
		"not an address: alice@[12:30:45]": "not an address: alice@[12:30:45]",
	} {
		if got := Addresses(in); got != want {
			t.Errorf("Addresses(%q) = %q, want %q", in, got, want)
		}
	}
	for _, keep := range []string{"pool/ds@snap", "user@localhost", "@ 1.2.3", "a@b"} {
		if got := Addresses(keep); got != keep {
			t.Errorf("Addresses(%q) = %q, want it unchanged", keep, got)
		}
	}
}

// TestServerErrorLogPanicsAtErrorEitherProtocol: the client picks HTTP/1
// or HTTP/2; it must not pick whether a panic of ours is seen.
func TestServerErrorLogPanicsAtErrorEitherProtocol(t *testing.T) {
	var buf bytes.Buffer
	el := ServerErrorLog(slog.New(NewHandler(slog.NewTextHandler(&buf, nil), Addresses)))
	stack := strings.Repeat("main.handler(...)\n\t/src/x.go:1 +0x1\n", 100) // 3 kB: more than MaxErrorLine
	el.Printf("http: panic serving %v: %v\n%s", "192.0.2.2:4000", "boom", stack)
	el.Printf("http2: panic serving %v: %v\n%s", "[2001:db8::2]:4000", "boom", stack)
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want 2 lines, got %d:\n%.2000s", len(lines), buf.String())
	}
	for _, l := range lines {
		if !strings.Contains(l, "level=ERROR") || strings.Count(l, "x.go:1") != 100 || strings.Contains(l, "192.0.2") || strings.Contains(l, "2001:db8") {
			t.Errorf("panic not at error with its whole stack, scrubbed: %.300s", l)
		}
	}
}

func TestScrapeErrorLogLevels(t *testing.T) {
	for _, c := range []struct {
		err   error
		level string
	}{
		{&net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}, "DEBUG"},
		{fmt.Errorf("gzip: %w", syscall.ECONNRESET), "DEBUG"},
		{os.ErrDeadlineExceeded, "DEBUG"},
		{errors.New("client disconnected"), "DEBUG"}, // net/http's HTTP/2 server
		{errors.New("http2: stream closed"), "DEBUG"},
		{errors.New("expected counter in metric foo"), "ERROR"},
		{&net.OpError{Op: "dial", Net: "unix", Err: syscall.ENOENT}, "ERROR"}, // not the client's
	} {
		var buf bytes.Buffer
		ScrapeErrorLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))).
			Println("error encoding and sending metric family:", c.err)
		if !strings.Contains(buf.String(), "level="+c.level) {
			t.Errorf("%v: want level %s, logged %q", c.err, c.level, buf.String())
		}
	}
	var buf bytes.Buffer
	ScrapeErrorLog(slog.New(slog.NewTextHandler(&buf, nil))).Println("error gathering metrics:", errors.New(strings.Repeat("x ", 4000)))
	if buf.Len() > 2*MaxErrorLine {
		t.Errorf("a gather error was not bounded: %d bytes", buf.Len())
	}
}
