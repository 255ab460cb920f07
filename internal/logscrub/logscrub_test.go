package logscrub

import (
	"bytes"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"strings"
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
