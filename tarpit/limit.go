package tarpit

import (
	"net"
	"net/netip"
	"sync"
)

// pendingLimit bounds the connections a dedicated HTTP tarpit listener
// holds before their request is read and they are handed to the scheduler
// (each has a goroutine of the HTTP server and its buffers until then):
// --tarpit.max-clients of them in all, counted as a max_clients rejection
// past it, and --tarpit.max-clients-per-source from one source, counted as
// per_source. Without the per-source bound one host sending half requests
// took every pending slot, and everyone else was refused.
//
// The pending counts are the listener's own, apart from the trapped ones:
// a connection is pending until ServeHTTP has handed it over, and counted
// in both for that moment.
type pendingLimit struct {
	net.Listener
	t *Tarpit

	mu      sync.Mutex
	pending int
	perSrc  map[netip.Addr]int // by sourceKey; an entry is deleted at zero
}

func newPendingLimit(l net.Listener, t *Tarpit) *pendingLimit {
	return &pendingLimit{Listener: l, t: t, perSrc: map[netip.Addr]int{}}
}

func (l *pendingLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		peer := addrOf(c.RemoteAddr())
		// A trusted balancer's connections carry many sources: theirs is
		// known, and charged (trustedConn), once the PROXY header is read.
		var src netip.Addr
		if !(l.t.cfg.ProxyProtocol && l.t.trustedProxy(peer)) {
			src = sourceKey(peer)
		}
		pc := &pendingConn{Conn: c, l: l}
		if reason := l.take(pc, src); reason != "" {
			// Counted before the close, so whoever sees the close
			// (a client, a test) also sees the rejection. Refused
			// here, on the accept goroutine, it costs no goroutine.
			l.t.reject(reason)
			c.Close()
			continue
		}
		return pc, nil
	}
}

// take gives c a pending slot, and one of src's when src is valid; else
// it returns the rejection reason and c holds nothing.
func (l *pendingLimit) take(c *pendingConn, src netip.Addr) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.pending >= l.t.cfg.MaxClients {
		return RejectMaxClients
	}
	if src.IsValid() && l.perSrc[src] >= l.t.cfg.MaxClientsPerSource {
		return RejectPerSource
	}
	l.pending++
	if src.IsValid() {
		l.perSrc[src]++
		c.src = src
	}
	return ""
}

// takeSource charges a slot of src to c, which holds only a global slot
// (a trusted balancer's connection whose PROXY header has been read).
func (l *pendingLimit) takeSource(c *pendingConn, src netip.Addr) bool {
	src = sourceKey(src)
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.released || c.src.IsValid() {
		return true // closed meanwhile, or charged already
	}
	if l.perSrc[src] >= l.t.cfg.MaxClientsPerSource {
		return false
	}
	l.perSrc[src]++
	c.src = src
	return true
}

func (l *pendingLimit) release(c *pendingConn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.released {
		return
	}
	c.released = true
	l.pending--
	if c.src.IsValid() {
		if n := l.perSrc[c.src]; n <= 1 {
			delete(l.perSrc, c.src)
		} else {
			l.perSrc[c.src] = n - 1
		}
	}
}

// pendingConn gives its slots back when closed: by the HTTP server, or by
// ServeHTTP once the socket has been handed to the scheduler.
type pendingConn struct {
	net.Conn
	l *pendingLimit
	// Guarded by l.mu.
	src      netip.Addr // the source slot held; invalid while none is
	released bool
}

func (c *pendingConn) Close() error {
	c.l.release(c)
	return c.Conn.Close()
}

// NetConn returns the wrapped connection (the name crypto/tls uses).
func (c *pendingConn) NetConn() net.Conn { return c.Conn }
