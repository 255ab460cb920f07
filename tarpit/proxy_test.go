package tarpit

import (
	"bufio"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

// formatted builds a header with go-proxyproto, the reference encoder.
func formatted(t testing.TB, version byte, cmd proxyproto.ProtocolVersionAndCommand, src, dst string) []byte {
	t.Helper()
	h := proxyproto.HeaderProxyFromAddrs(version, net.TCPAddrFromAddrPort(netip.MustParseAddrPort(src)), net.TCPAddrFromAddrPort(netip.MustParseAddrPort(dst)))
	h.Command = cmd
	b, err := h.Format()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseProxyHeader(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		in   []byte
		src  string // "" = no source carried
	}{
		{"v1 tcp4", formatted(t, 1, proxyproto.PROXY, "192.0.2.7:51000", "127.0.0.1:22"), "192.0.2.7:51000"},
		{"v1 tcp6", formatted(t, 1, proxyproto.PROXY, "[2001:db8::7]:40000", "[::1]:22"), "[2001:db8::7]:40000"},
		{"v2 tcp4", formatted(t, 2, proxyproto.PROXY, "192.0.2.8:1234", "127.0.0.1:22"), "192.0.2.8:1234"},
		{"v2 tcp6", formatted(t, 2, proxyproto.PROXY, "[2001:db8::8]:4321", "[::1]:22"), "[2001:db8::8]:4321"},
		{"v2 local", formatted(t, 2, proxyproto.LOCAL, "192.0.2.8:1234", "127.0.0.1:22"), ""},
		{"v1 unknown", []byte("PROXY UNKNOWN\r\n"), ""},
	} {
		in := append(append([]byte{}, tc.in...), "SSH-2.0-client\r\n"...)
		n, src, err := parseProxyHeader(in)
		if err != nil || n != len(tc.in) {
			t.Errorf("%s: n=%d err=%v, want n=%d", tc.name, n, err, len(tc.in))
			continue
		}
		if got := ""; src.IsValid() {
			got = src.String()
			if got != tc.src {
				t.Errorf("%s: src %s, want %s", tc.name, got, tc.src)
			}
		} else if tc.src != "" {
			t.Errorf("%s: no src, want %s", tc.name, tc.src)
		}
		// Every proper prefix asks for more bytes.
		for i := 0; i < len(tc.in); i++ {
			if _, _, err := parseProxyHeader(tc.in[:i]); !errors.Is(err, errNeedMore) {
				t.Errorf("%s: prefix of %d bytes: %v, want errNeedMore", tc.name, i, err)
				break
			}
		}
	}
	for _, bad := range []string{
		"SSH-2.0-OpenSSH\r\n",
		"GET / HTTP/1.1\r\n",
		"PROXY TCP4 192.0.2.1 127.0.0.1 1 \r\n",
		"PROXY TCP4 2001:db8::1 127.0.0.1 1 2\r\n",
		"PROXY TCP4 192.0.2.1 127.0.0.1 65536 22\r\n",
		"PROXY TCP4 192.0.2.1 127.0.0.1 01 22\r\n",
		"PROXY TCP5 192.0.2.1 127.0.0.1 1 22\r\n",
		"PROXY TCP4 192.0.2.1  127.0.0.1 1 22\r\n",
		"PROXY " + string(make([]byte, 120)),
		"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + string(make([]byte, 12)), // version 3
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x04" + string(make([]byte, 4)),  // short address block
		"\r\n\r\n\x00\r\nQUIT\n\x21\x11\xff\xff",                            // too long
	} {
		if _, _, err := parseProxyHeader([]byte(bad)); err == nil || errors.Is(err, errNeedMore) {
			t.Errorf("%q: err %v, want a parse error", bad, err)
		}
	}
}

// TestSSHProxyProtocol: behind a load balancer the scanner's address, from
// the PROXY header, is what is trapped, capped and logged; a connection
// without a header is refused.
func TestSSHProxyProtocol(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.ProxyProtocol = true
	cfg.ProxyTrusted = []string{"127.0.0.14/32"}
	cfg.ProxyHeaderTimeout = 300 * time.Millisecond
	cfg.MaxClientsPerSource = 1
	tp, stop := startTarpit(t, cfg)
	addr := tp.SSHAddrs()[0].String()

	send := func(h []byte) net.Conn {
		c := dialFrom(t, "127.0.0.14", addr)
		if _, err := c.Write(h); err != nil {
			t.Fatal(err)
		}
		return c
	}
	v1 := send(append(formatted(t, 1, proxyproto.PROXY, "192.0.2.20:5555", "127.0.0.1:22"), "SSH-2.0-x\r\n"...))
	v2 := send(formatted(t, 2, proxyproto.PROXY, "[2001:db8::21]:6666", "[::1]:22"))
	for _, c := range []net.Conn{v1, v2} {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
			t.Fatalf("no line after a PROXY header: %v", err)
		}
	}
	// The per-source cap applies to the scanner, not to the balancer.
	again := send(formatted(t, 2, proxyproto.PROXY, "[2001:db8::21]:7777", "[::1]:22"))
	if !readClosed(again, 2*time.Second) {
		t.Fatal("second connection from one proxied source was held")
	}
	garbage := send([]byte("SSH-2.0-OpenSSH_9.2\r\n"))
	if !readClosed(garbage, 2*time.Second) {
		t.Fatal("a connection without a PROXY header was held")
	}
	silent := dialFrom(t, "127.0.0.14", addr)
	if !readClosed(silent, 3*time.Second) {
		t.Fatal("a connection that sent nothing outlived the header timeout")
	}
	snap := tp.Snapshot()
	if snap.Rejected[RejectProxyHeader] != 2 || snap.Rejected[RejectPerSource] != 1 || snap.Protocols[ProtoSSH].Active != 2 {
		t.Fatalf("snapshot %+v", snap)
	}
	stop()
	seen := map[string]bool{}
	for _, r := range readLog(t, cfg.LogFile) {
		seen[r.Event+" "+r.RemoteAddr] = true
		if r.RemoteAddr == "127.0.0.14" {
			t.Errorf("the balancer's address was logged: %+v", r)
		}
	}
	for _, want := range []string{"open 192.0.2.20", "close 192.0.2.20", "open 2001:db8::21", "close 2001:db8::21"} {
		if !seen[want] {
			t.Errorf("scanner log lacks %q: %v", want, seen)
		}
	}
}

// TestHTTPProxyProtocol: the dedicated HTTP tarpit listener behind a load
// balancer logs the scanner's address.
func TestHTTPProxyProtocol(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SSHListenAddresses = nil
	cfg.HTTPListenAddresses = []string{"127.0.0.1:0"}
	cfg.ProxyProtocol = true
	cfg.ProxyTrusted = []string{"127.0.0.15"}
	tp, stop := startTarpit(t, cfg)
	c := dialFrom(t, "127.0.0.15", tp.HTTPAddrs()[0].String())
	req := append(formatted(t, 1, proxyproto.PROXY, "192.0.2.30:1111", "127.0.0.1:80"), "POST /cgi-bin/luci HTTP/1.1\r\nHost: x\r\n\r\n"...)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	r := bufio.NewReader(c)
	for i := 0; i < 3; i++ {
		if _, err := r.ReadString('\n'); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
	}
	stop()
	recs := readLog(t, cfg.LogFile)
	if len(recs) != 2 || recs[0].RemoteAddr != "192.0.2.30" || recs[0].RemotePort != 1111 || recs[0].Method != "POST" || recs[0].Path != "/cgi-bin/luci" {
		t.Fatalf("records %+v", recs)
	}
}

// TestForgedProxyHeadersCannotEvadePerSourceCap: one host that is not a
// trusted balancer sends forged PROXY headers, each naming another source.
// They are not believed: the host is capped and logged by its own address,
// and the headers are counted.
func TestForgedProxyHeadersCannotEvadePerSourceCap(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.ProxyProtocol = true
	cfg.ProxyTrusted = []string{"127.0.0.250/32", "2001:db8::/32"}
	cfg.MaxClientsPerSource = 4
	tp, stop := startTarpit(t, cfg)
	addr := tp.SSHAddrs()[0].String()
	const attempts = 12
	var conns []net.Conn
	for i := range attempts {
		c := dialFrom(t, "127.0.0.16", addr)
		h := formatted(t, byte(1+i%2), proxyproto.PROXY, "198.51.100."+itoa(i+1)+":4000", "127.0.0.1:22")
		if _, err := c.Write(h); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	waitFor(t, "every forged connection to be decided", func() bool {
		s := tp.Snapshot()
		return s.Protocols[ProtoSSH].Active+int64(s.Rejected[RejectPerSource]) == attempts
	})
	// The held ones get lines (no PROXY wait), and each header they sent is
	// counted at the first turn.
	waitFor(t, "the held clients' headers to be counted", func() bool {
		return tp.Snapshot().UntrustedProxyHeaders == uint64(cfg.MaxClientsPerSource)
	})
	snap := tp.Snapshot()
	if snap.Protocols[ProtoSSH].Active != int64(cfg.MaxClientsPerSource) || snap.Rejected[RejectPerSource] != attempts-uint64(cfg.MaxClientsPerSource) || snap.Rejected[RejectProxyHeader] != 0 {
		t.Fatalf("forged headers from one untrusted host: snapshot %+v, want %d held and %d per_source rejections", snap, cfg.MaxClientsPerSource, attempts-cfg.MaxClientsPerSource)
	}
	var held int
	for _, c := range conns {
		if !readClosed(c, 100*time.Millisecond) {
			held++
		}
	}
	if held != cfg.MaxClientsPerSource {
		t.Fatalf("%d of %d forged connections held open, want %d", held, attempts, cfg.MaxClientsPerSource)
	}
	stop()
	for _, r := range readLog(t, cfg.LogFile) {
		if r.RemoteAddr != "127.0.0.16" {
			t.Errorf("scanner log took a forged address: %+v", r)
		}
	}
}

// TestHTTPForgedProxyHeader: on the dedicated HTTP listener a PROXY header
// from a source that is not trusted is stripped, not believed and counted;
// the request behind it is trapped under the peer's own address.
func TestHTTPForgedProxyHeader(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SSHListenAddresses = nil
	cfg.HTTPListenAddresses = []string{"127.0.0.1:0"}
	cfg.ProxyProtocol = true
	cfg.ProxyTrusted = []string{"127.0.0.250"}
	tp, stop := startTarpit(t, cfg)
	httpAddr := tp.HTTPAddrs()[0].String()
	forged := dialFrom(t, "127.0.0.17", httpAddr)
	req := append(formatted(t, 2, proxyproto.PROXY, "198.51.100.9:1111", "127.0.0.1:80"), "GET /forged HTTP/1.1\r\nHost: x\r\n\r\n"...)
	plain := dialFrom(t, "127.0.0.18", httpAddr)
	for c, b := range map[net.Conn][]byte{forged: req, plain: []byte("GET /plain HTTP/1.1\r\nHost: x\r\n\r\n")} {
		if _, err := c.Write(b); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
			t.Fatalf("status line %q, %v", line, err)
		}
	}
	if n := tp.Snapshot().UntrustedProxyHeaders; n != 1 {
		t.Fatalf("untrusted PROXY headers counted: %d, want 1", n)
	}
	stop()
	got := map[string]string{}
	for _, r := range readLog(t, cfg.LogFile) {
		got[r.Path] = r.RemoteAddr
	}
	if got["/forged"] != "127.0.0.17" || got["/plain"] != "127.0.0.18" {
		t.Fatalf("scanner log addresses by path %v, want the peers' own", got)
	}
}
