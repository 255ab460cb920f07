package tarpit

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"
)

const halfRequest = "GET /wp-login.php HTTP/1.1\r\nHost: x\r\n" // no blank line: never complete

// expectStatus reads the status line of a trapped HTTP connection.
func expectStatus(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != httpStatusLine {
		t.Fatalf("%s: status line %q, %v; want it trapped", what, line, err)
	}
}

// TestDedicatedHTTPListenerPendingPerSource: one source sending half
// requests can hold only --tarpit.max-clients-per-source of the pending
// slots; past them its connections are refused at once as per_source, and
// another source is still trapped. (Before, the one cap was max-clients
// for the whole listener: 1,000 half requests from one address shut
// everyone else out.)
func TestDedicatedHTTPListenerPendingPerSource(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SSHListenAddresses = nil
	cfg.HTTPListenAddresses = []string{"127.0.0.1:0"}
	cfg.MaxClients = 8
	cfg.MaxClientsPerSource = 3
	tp, _ := startTarpit(t, cfg)
	addr := tp.HTTPAddrs()[0].String()
	var half []net.Conn
	for range cfg.MaxClientsPerSource {
		c := dialFrom(t, "127.0.0.41", addr)
		if _, err := io.WriteString(c, halfRequest); err != nil {
			t.Fatal(err)
		}
		half = append(half, c)
	}
	for i := range 5 {
		extra := dialFrom(t, "127.0.0.41", addr)
		io.WriteString(extra, halfRequest)
		if !readClosed(extra, 2*time.Second) {
			t.Fatalf("pending connection %d past the source's cap was held", cfg.MaxClientsPerSource+i+1)
		}
	}
	s := tp.Snapshot()
	if s.Rejected[RejectPerSource] != 5 || s.Rejected[RejectMaxClients] != 0 {
		t.Fatalf("rejections %v, want 5 per_source and no max_clients", s.Rejected)
	}
	for _, c := range half {
		if readClosed(c, 50*time.Millisecond) {
			t.Fatal("a pending connection within the source's cap was closed")
		}
	}
	// Another source is not shut out.
	other, _ := rawGet(t, "127.0.0.42", addr, "/.env")
	expectStatus(t, other, "another source")
	// A slot given back (the client went away) can be taken again.
	half[0].Close()
	waitFor(t, "the closed pending slot to be given back", func() bool {
		c := dialFrom(t, "127.0.0.41", addr)
		defer c.Close()
		io.WriteString(c, halfRequest)
		return !readClosed(c, 100*time.Millisecond)
	})
}

// TestHTTPProxyPendingPerSource: behind a trusted balancer the pending
// per-source cap counts the scanner named by the PROXY header, not the
// balancer, which carries everyone.
func TestHTTPProxyPendingPerSource(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SSHListenAddresses = nil
	cfg.HTTPListenAddresses = []string{"127.0.0.1:0"}
	cfg.ProxyProtocol = true
	cfg.ProxyTrusted = []string{"127.0.0.43"}
	cfg.MaxClients = 16
	cfg.MaxClientsPerSource = 2
	tp, _ := startTarpit(t, cfg)
	addr := tp.HTTPAddrs()[0].String()
	via := func(src, data string) net.Conn {
		c := dialFrom(t, "127.0.0.43", addr)
		h := formatted(t, 1, proxyproto.PROXY, src+":4000", "127.0.0.1:80")
		if _, err := c.Write(append(h, data...)); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// The header is read on each connection's own goroutine, so which of
	// them are refused is not known: how many is.
	const extra = 3
	var conns []net.Conn
	for range cfg.MaxClientsPerSource + extra {
		conns = append(conns, via("198.51.100.7", halfRequest))
	}
	waitFor(t, "the pending connections past the scanner's cap to be refused", func() bool {
		return tp.Snapshot().Rejected[RejectPerSource] >= extra
	})
	held := 0
	for _, c := range conns {
		// The rejection is counted before the close: give it time.
		if !readClosed(c, time.Second) {
			held++
		}
	}
	if n := tp.Snapshot().Rejected[RejectPerSource]; held != cfg.MaxClientsPerSource || n != extra {
		t.Fatalf("%d of %d pending connections from one scanner held and %d refused as per_source, want %d and %d",
			held, len(conns), n, cfg.MaxClientsPerSource, extra)
	}
	// The balancer itself is not capped: other scanners through it are trapped.
	for _, src := range []string{"198.51.100.8", "198.51.100.9", "198.51.100.10"} {
		expectStatus(t, via(src, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n"), src)
	}
}

// TestHTTPProxyHeaderFailuresCounted: on the dedicated HTTP listener a
// trusted balancer's connection with no PROXY header, a malformed one or
// one too slow is closed and counted as proxy_header, as on the SSH tarpit
// and as the README says. (Before, only the SSH path counted them.)
func TestHTTPProxyHeaderFailuresCounted(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SSHListenAddresses = nil
	cfg.HTTPListenAddresses = []string{"127.0.0.1:0"}
	cfg.ProxyProtocol = true
	cfg.ProxyTrusted = []string{"127.0.0.44"}
	cfg.ProxyHeaderTimeout = 200 * time.Millisecond
	tp, _ := startTarpit(t, cfg)
	addr := tp.HTTPAddrs()[0].String()
	req := "GET /wp-login.php HTTP/1.1\r\nHost: x\r\n\r\n"
	for i, tc := range []struct{ what, data string }{
		{"no header", req},
		{"malformed header", "PROXY TCP4 garbage\r\n" + req},
		{"no header within the timeout", ""},
		{"a truncated header", "PROXY TCP4 198.51.100.1 "},
	} {
		c := dialFrom(t, "127.0.0.44", addr)
		if _, err := io.WriteString(c, tc.data); err != nil {
			t.Fatal(err)
		}
		if !readClosed(c, 3*time.Second) {
			t.Fatalf("%s: held", tc.what)
		}
		s := tp.Snapshot()
		if n := s.Rejected[RejectProxyHeader]; n != uint64(i+1) {
			t.Fatalf("%s: proxy_header rejections = %d, want %d", tc.what, n, i+1)
		}
		if s.Protocols[ProtoHTTP].Connections != 0 {
			t.Fatalf("%s: trapped: %+v", tc.what, s.Protocols[ProtoHTTP])
		}
	}
	// A good header is trapped and counts nothing.
	c := dialFrom(t, "127.0.0.44", addr)
	c.Write(append(formatted(t, 2, proxyproto.PROXY, "192.0.2.44:1", "127.0.0.1:80"), req...))
	expectStatus(t, c, "a valid header")
	// Nor does an untrusted source without a header: it needs none.
	u, _ := rawGet(t, "127.0.0.45", addr, "/")
	expectStatus(t, u, "an untrusted source")
	if n := tp.Snapshot().Rejected[RejectProxyHeader]; n != 4 {
		t.Fatalf("proxy_header rejections = %d after a valid header and an untrusted source, want 4", n)
	}
}

// TestHTTPLinesKeepMaxLineLength: over the wire, every line the HTTP
// tarpit drips after the status line is within --tarpit.max-line-length.
// (Before, the second line was a 40-byte Content-Type header whatever the
// flag: longer than the default 32.)
func TestHTTPLinesKeepMaxLineLength(t *testing.T) {
	t.Parallel()
	for _, maxLen := range []int{32, 8} {
		cfg := testConfig(t)
		cfg.SSHListenAddresses = nil
		cfg.LogFile = ""
		cfg.Interval = 2 * time.Millisecond
		cfg.MaxLineLength = maxLen
		tp, _ := startTarpit(t, cfg)
		c, r := rawGet(t, "127.0.0.46", serveMux(t, tp), "/.git/config")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		for i := range 40 {
			line, err := r.ReadString('\n')
			if err != nil {
				t.Fatalf("max %d, line %d: %v", maxLen, i, err)
			}
			if i == 0 {
				if line != httpStatusLine {
					t.Fatalf("max %d: status line %q", maxLen, line)
				}
				continue
			}
			if len(line) > maxLen || !strings.HasSuffix(line, "\r\n") || !strings.Contains(line, ":") {
				t.Fatalf("max %d, line %d: %q (%d bytes)", maxLen, i, line, len(line))
			}
		}
	}
}

// hijackFails is a ResponseWriter whose Hijack fails.
type hijackFails struct{ flushRecorder }

func (*hijackFails) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return nil, nil, errors.New("hijack failed")
}

// TestHijackFailureIsNotShutdown: a connection the HTTP server cannot hand
// over is not a rejection the tarpit made, and above all not "shutdown"
// (an alert on it would point at a restart); it is counted as a client
// dropped at its first write, and its slots are given back.
func TestHijackFailureIsNotShutdown(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SSHListenAddresses = nil
	cfg.MaxClients = 1
	cfg.MaxClientsPerSource = 1
	tp, _ := startTarpit(t, cfg)
	for range 3 { // the caps are 1: each one's slots must have been given back
		req, _ := http.NewRequestWithContext(context.Background(), "GET", "/.env", nil)
		req.RemoteAddr = "127.0.0.47:4242"
		req.RequestURI = "/.env"
		w := &hijackFails{flushRecorder{header: http.Header{}}}
		tp.ServeHTTP(w, req)
		if w.code != 0 || len(w.body) != 0 {
			t.Fatalf("wrote to a connection it could not take: %d %q", w.code, w.body)
		}
	}
	s := tp.Snapshot()
	for r, n := range s.Rejected {
		if n != 0 {
			t.Errorf("rejected{reason=%q} = %d, want nothing rejected", r, n)
		}
	}
	if p := s.Protocols[ProtoHTTP]; p.Connections != 3 || p.Active != 0 || p.BytesSent != 0 {
		t.Errorf("http stats %+v, want 3 connections, none active", p)
	}
}
