package tarpit

import (
	"context"
	"errors"
	"io"
	"log"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pires/go-proxyproto"
	"golang.org/x/sys/unix"
)

// maxLoggedPath is how much of a request target the scanner log keeps.
const maxLoggedPath = 256

// maxLoggedMethod bounds the method the scanner log keeps.
const maxLoggedMethod = 16

// fallbackLines bounds the fallback drip (TLS, HTTP/2, connections that
// cannot be handed to the scheduler): it holds the server's goroutine for
// the request, so it ends after this many lines instead of never.
const fallbackLines = 30

// ServeHTTP traps an HTTP request (any path the exporter does not serve).
//
// A plain HTTP/1.x connection is hijacked and its socket handed to the
// scheduler, which drips a 200 response's headers one per interval, forever;
// the handler returns at once. TLS and HTTP/2 connections cannot be dripped
// at the socket level, so they get a bounded fallback in the handler: a 200
// whose body is dripped for fallbackLines intervals.
func (t *Tarpit) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	remote := remoteAddrPort(r.RemoteAddr)
	req := &httpReq{method: loggable(r.Method, maxLoggedMethod), path: loggable(r.RequestURI, maxLoggedPath)}
	if ok, _ := t.admit(remote.Addr(), true); !ok {
		closeNow(w)
		return
	}
	c := client{
		fd:        -1,
		proto:     protoHTTP,
		localPort: localPort(r),
		remote:    remote,
		startUS:   t.micros(),
		req:       req,
	}
	if r.TLS == nil && r.ProtoMajor == 1 {
		if hj, ok := w.(http.Hijacker); ok {
			conn, _, err := hj.Hijack()
			if err != nil {
				// The server could not hand the connection over: net/http
				// fails only when it is hijacked already or reading the
				// byte pipelined after the request failed (the peer is
				// gone). The tarpit refused nothing, so no rejection
				// reason is true (shutdown, as it was counted, was not);
				// it is counted as the scheduler counts a client whose
				// first write fails: trapped, and dropped at once.
				now := t.now()
				t.trapped(&c, now)
				t.untrap(&c, now)
				return
			}
			fd, err := detachFD(conn)
			if err == nil {
				c.fd = int32(fd)
				if !t.enqueue(c) {
					unix.Close(fd)
					t.unadmit(remote.Addr(), true)
				}
				return
			}
			// Not a plain TCP socket (a wrapping listener): drip on the
			// conn itself, bounded.
			t.dripBlocking(r.Context(), &c, conn, func() error { return nil }, conn.SetWriteDeadline, true)
			conn.Close()
			return
		}
	}
	rc := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	t.dripBlocking(r.Context(), &c, w, rc.Flush, rc.SetWriteDeadline, false)
}

// dripBlocking is the bounded fallback: it writes one line per interval
// to w on the calling goroutine, for at most fallbackLines lines: response
// headers when w is the raw connection, random body text when the server
// has already sent them.
func (t *Tarpit) dripBlocking(ctx context.Context, c *client, w io.Writer, flush func() error, deadline func(time.Time) error, headers bool) {
	now := t.now()
	t.trapped(c, now)
	rng := rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))
	var buf [256]byte
	timer := time.NewTimer(0)
	defer timer.Stop()
	for c.line < fallbackLines {
		select {
		case <-ctx.Done():
		case <-t.stopping:
		case <-timer.C:
			_ = deadline(time.Now().Add(t.cfg.Interval))
			var p []byte
			if headers {
				p = httpLine(buf[:], c.line, t.cfg.MaxLineLength, rng)
			} else {
				p = sshLine(buf[:], t.cfg.MaxLineLength, rng)
			}
			n, err := w.Write(p)
			if err == nil {
				err = flush()
			}
			c.sent += uint64(n)
			t.mu.Lock()
			t.stats[c.proto].bytesSent += uint64(n)
			t.mu.Unlock()
			c.line++
			if err == nil {
				timer.Reset(t.cfg.Interval)
				continue
			}
		}
		break
	}
	t.untrap(c, t.now())
}

// detachFD takes the socket out of a hijacked connection: it duplicates the
// descriptor (sharing its non-blocking mode) and closes the Go side, which
// deregisters it from the poller. PROXY-protocol and pending-limit wrappers
// are looked through.
func detachFD(conn net.Conn) (int, error) {
	raw := conn
	for {
		if pc, ok := raw.(*proxyproto.Conn); ok {
			raw = pc.Raw()
			continue
		}
		if w, ok := raw.(interface{ NetConn() net.Conn }); ok {
			raw = w.NetConn()
			continue
		}
		break
	}
	sc, ok := raw.(syscall.Conn)
	if !ok {
		return -1, errors.New("not a socket")
	}
	if _, isTCP := raw.(*net.TCPConn); !isTCP {
		return -1, errors.New("not a TCP socket")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var derr error
	if err := rc.Control(func(fd uintptr) {
		nfd, derr = unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	if derr != nil {
		return -1, derr
	}
	_ = smallBuffers(nfd)
	conn.Close()
	return nfd, nil
}

// closeNow ends a refused request as cheaply as possible: the connection is
// closed without a response when it can be hijacked, else a bare 503.
func closeNow(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	w.Header().Set("Connection", "close")
	w.WriteHeader(http.StatusServiceUnavailable)
}

func remoteAddrPort(s string) netip.AddrPort {
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return netip.AddrPort{}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}

func localPort(r *http.Request) uint16 {
	if a, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			return ap.Port()
		}
	}
	return 0
}

// loggable is s as the scanner log keeps it: at most n bytes, cut at a
// character boundary, with every byte of a character that is not printable
// (C0 and C1 controls such as U+0085 and U+009B, format characters such as
// the bidi override U+202E and the isolates U+2066-2069, line and paragraph
// separators, spaces other than U+0020, private-use and unassigned code
// points) and every byte of invalid UTF-8 percent-encoded, as a URL would
// write it. A log viewer then shows what was sent, not what it does to
// the text around it. Anything else, '%' included, is kept as sent.
func loggable(s string, n int) string {
	clean := true
	for i := 0; i < len(s) && i < n; {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || !unicode.IsPrint(r) || i+size > n {
			clean = false
			break
		}
		i += size
	}
	if clean {
		return s[:min(len(s), n)]
	}
	const hex = "0123456789ABCDEF"
	b := make([]byte, 0, n)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r != utf8.RuneError || size > 1) && unicode.IsPrint(r) {
			if len(b)+size > n {
				break
			}
			b = append(b, s[i:i+size]...)
		} else {
			if len(b)+3*size > n {
				break
			}
			for _, c := range []byte(s[i : i+size]) {
				b = append(b, '%', hex[c>>4], hex[c&15])
			}
		}
		i += size
	}
	return string(b)
}

// serveHTTPListener runs a dedicated HTTP tarpit listener until ctx is done.
func (t *Tarpit) serveHTTPListener(ctx context.Context, l net.Listener) {
	l = newPendingLimit(l, t)
	if t.cfg.ProxyProtocol {
		// A trusted balancer must send a header; anyone else may, but it
		// is not believed (untrustedConn).
		l = &untrustedGuard{t: t, Listener: &proxyproto.Listener{
			Listener:          l,
			ReadHeaderTimeout: t.cfg.ProxyHeaderTimeout,
			ConnPolicy: func(o proxyproto.ConnPolicyOptions) (proxyproto.Policy, error) {
				if t.trustedProxy(addrOf(o.Upstream)) {
					return proxyproto.REQUIRE, nil
				}
				return proxyproto.USE, nil
			},
		}}
	}
	srv := &http.Server{
		Handler:           t,
		ReadHeaderTimeout: 10 * time.Second,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          log.New(io.Discard, "", 0), // scanners send garbage; it is not worth a log line
	}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) && ctx.Err() == nil {
		t.logger.Error("HTTP tarpit listener failed", "err", err)
	}
}

// untrustedGuard wraps the connections of a PROXY-protocol listener that do
// not come from a trusted balancer, so that their own address stands.
type untrustedGuard struct {
	net.Listener // a *proxyproto.Listener
	t            *Tarpit
}

func (g *untrustedGuard) Accept() (net.Conn, error) {
	c, err := g.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if pc, ok := c.(*proxyproto.Conn); ok {
		if !g.t.trustedProxy(addrOf(pc.Raw().RemoteAddr())) {
			return &untrustedConn{Conn: pc, t: g.t}, nil
		}
		return &trustedConn{Conn: pc, t: g.t}, nil
	}
	return c, nil
}

// trustedConn is a connection from a trusted balancer, which must start
// with a PROXY header (the REQUIRE policy). Once the header has been read
// (by the first RemoteAddr, which the HTTP server asks first on the
// connection's own goroutine, or the first Read), a connection whose header
// was missing, malformed or later than --tarpit.proxy-header-timeout is
// counted as a proxy_header rejection, as on the SSH tarpit, and one whose
// scanner is over its pending cap as per_source; either is closed, and its
// reads and writes fail from then on, so the request go-proxyproto may have
// buffered behind the header is never served.
type trustedConn struct {
	*proxyproto.Conn
	t       *Tarpit
	once    sync.Once
	refused error
}

var (
	errNoProxyHeader = errors.New("tarpit: no valid PROXY header from a trusted balancer")
	errSourcePending = errors.New("tarpit: source over its pending cap")
)

func (c *trustedConn) check() error {
	c.once.Do(func() {
		// Under REQUIRE the header is nil exactly when reading it failed.
		if c.Conn.ProxyHeader() == nil {
			c.refuse(RejectProxyHeader, errNoProxyHeader)
			return
		}
		pc, ok := c.Conn.Raw().(*pendingConn)
		if !ok {
			return
		}
		src := addrOf(c.Conn.RemoteAddr())
		if !src.IsValid() { // a LOCAL or non-TCP header: the balancer's own address stands
			src = addrOf(pc.RemoteAddr())
		}
		if !pc.l.takeSource(pc, src) {
			c.refuse(RejectPerSource, errSourcePending)
		}
	})
	return c.refused
}

// refuse counts the rejection before the close, so whoever sees the close
// also sees the count.
func (c *trustedConn) refuse(reason string, err error) {
	c.t.reject(reason)
	// A read error the HTTP server takes for the peer's: it closes the
	// connection without answering and without a log line.
	c.refused = &net.OpError{Op: "read", Net: "tcp", Err: err}
	c.Conn.Close()
}

func (c *trustedConn) RemoteAddr() net.Addr {
	_ = c.check()
	return c.Conn.RemoteAddr()
}

func (c *trustedConn) Read(b []byte) (int, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	return c.Conn.Read(b)
}

func (c *trustedConn) Write(b []byte) (int, error) {
	if err := c.check(); err != nil {
		return 0, err
	}
	return c.Conn.Write(b)
}

// NetConn returns the PROXY-protocol connection, for detachFD.
func (c *trustedConn) NetConn() net.Conn { return c.Conn }

// untrustedConn is a connection from a source that is not a trusted
// balancer. go-proxyproto reads (with the USE policy) a PROXY header it may
// have sent, so the request after it parses; the header is counted and its
// addresses are not used: RemoteAddr and LocalAddr are the socket's own.
// The HTTP server asks RemoteAddr on the connection's own goroutine, where
// waiting for the header (bounded by the header timeout) is fine.
type untrustedConn struct {
	*proxyproto.Conn
	t    *Tarpit
	once sync.Once
}

func (c *untrustedConn) RemoteAddr() net.Addr {
	c.once.Do(func() {
		if c.Conn.ProxyHeader() != nil {
			c.t.untrustedHeaders.Add(1)
		}
	})
	return c.Conn.Raw().RemoteAddr()
}

func (c *untrustedConn) LocalAddr() net.Addr { return c.Conn.Raw().LocalAddr() }

// NetConn returns the PROXY-protocol connection, for detachFD.
func (c *untrustedConn) NetConn() net.Conn { return c.Conn }

// addrOf is the IP address of a TCP net.Addr, unmapped; invalid otherwise.
func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	return netip.Addr{}
}
