// Package connlimit caps the open connections of an HTTP listener without
// letting a flood of idle connections lock out a legitimate scraper.
//
// A plain cap (netutil.LimitListener) stops accepting at the limit: 20,000
// idle connections from an attacker then keep Prometheus out for as long as
// they stay open. Here the listener keeps accepting, and a connection beyond
// the cap closes an evictable one instead: a connection that is not inside
// a protected handler right now (just accepted, in its TLS handshake,
// sending its request headers, or idle between keep-alive requests). The
// victim is the least recently used connection of the source that holds the
// most evictable ones, so a flood evicts itself and a scraper's single
// connection, from its own address, is the last to go. Only when every
// connection is inside a protected handler is the new one closed.
//
// Each source may also open only so many connections per second (a token
// bucket): beyond that a new connection is closed at once, before any TLS
// handshake or request parsing. A flood that reconnects whatever is closed
// then costs an accept and a close per attempt, and the listen backlog
// keeps draining, so a scraper's new connection still gets in.
//
// Source addresses are kept in memory only, to pick the victim; they are
// never logged or exported.
package connlimit

import (
	"container/heap"
	"container/list"
	"context"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"
)

// Listener is a net.Listener whose open connections are capped as the
// package describes. Wire ConnContext into the http.Server and wrap the
// handlers of real endpoints with Protect.
type Listener struct {
	net.Listener
	max    int
	rate   float64 // new connections per second and source; 0 = no limit
	burst  float64
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	open    int
	sources map[netip.Addr]*source
	byIdle  sourceHeap // the source with the most evictable connections on top
	buckets map[netip.Addr]*bucket
	// evicted, rejected and limited count since the last log line; logged
	// at most once per logEvery so a flood cannot flood the log too.
	evicted, rejected, limited uint64
	lastLog                    time.Time
}

// bucket is a source's token bucket for new connections.
type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the rate state: past it, buckets that have refilled
// (which carry no state) are dropped, and if that is not enough, all.
const maxBuckets = 4096

// logEvery bounds how often the cap is reported in the log under a flood.
const logEvery = time.Minute

// NewListener caps l at max open connections (max >= 1) and each source at
// rate new connections per second, in bursts of up to 4*rate (0 = no rate
// limit). Cap events are logged (without addresses, with the counts since
// the last line) at most once a minute to logger.
func NewListener(l net.Listener, max int, rate float64, logger *slog.Logger) *Listener {
	if max < 1 {
		max = 1
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Listener{Listener: l, max: max, rate: rate, burst: math.Max(4*rate, 1), logger: logger, now: time.Now,
		sources: map[netip.Addr]*source{}, buckets: map[netip.Addr]*bucket{}}
}

// allow takes a token from key's bucket; l.mu is held.
func (l *Listener) allow(key netip.Addr) bool {
	if l.rate <= 0 {
		return true
	}
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.sweepBuckets(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

func (l *Listener) sweepBuckets(now time.Time) {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	if len(l.buckets) >= maxBuckets {
		clear(l.buckets)
	}
}

type source struct {
	key   netip.Addr
	idle  list.List // evictable *Conn, least recently used first
	total int
	index int // in byIdle
}

// Conn is a connection accepted by a Listener. It implements NetConn, so
// code that needs the socket itself (the tarpit) can look through it.
type Conn struct {
	net.Conn
	l    *Listener
	src  *source
	elem *list.Element // in src.idle while evictable
	busy int           // protected requests in flight (HTTP/2 may run several)
	gone bool          // closed or evicted: no longer counted
	once sync.Once
}

// NetConn returns the connection this one wraps.
func (c *Conn) NetConn() net.Conn { return c.Conn }

// Close closes the connection and frees its place under the cap.
func (c *Conn) Close() error {
	c.l.mu.Lock()
	c.l.forget(c)
	c.l.mu.Unlock()
	var err error
	c.once.Do(func() { err = c.Conn.Close() })
	return err
}

// Accept returns the next connection, making room for it under the cap
// first. A connection that cannot be given room is closed at once and
// Accept waits for the next one.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		raw, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c, victim := l.admit(raw)
		if victim != nil {
			victim.once.Do(func() { victim.Conn.Close() })
		}
		if c != nil {
			return c, nil
		}
		raw.Close()
	}
}

// Open reports how many connections are counted under the cap now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

func (l *Listener) admit(raw net.Conn) (c *Conn, victim *Conn) {
	key := sourceKey(raw.RemoteAddr())
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.allow(key) {
		l.limited++
		l.report()
		return nil, nil
	}
	if l.open >= l.max {
		if len(l.byIdle) == 0 || l.byIdle[0].idle.Len() == 0 {
			l.rejected++
			l.report()
			return nil, nil
		}
		victim = l.byIdle[0].idle.Front().Value.(*Conn)
		l.forget(victim)
		l.evicted++
		l.report()
	}
	s := l.sources[key]
	if s == nil {
		s = &source{key: key}
		l.sources[key] = s
		heap.Push(&l.byIdle, s)
	}
	c = &Conn{Conn: raw, l: l, src: s}
	s.total++
	l.open++
	c.elem = s.idle.PushBack(c)
	heap.Fix(&l.byIdle, s.index)
	return c, victim
}

// forget takes c out of the count; l.mu is held.
func (l *Listener) forget(c *Conn) {
	if c.gone {
		return
	}
	c.gone = true
	s := c.src
	if c.elem != nil {
		s.idle.Remove(c.elem)
		c.elem = nil
	}
	s.total--
	l.open--
	if s.total == 0 {
		heap.Remove(&l.byIdle, s.index)
		delete(l.sources, s.key)
		return
	}
	heap.Fix(&l.byIdle, s.index)
}

// report logs the cap's work since the last report, at most once per
// logEvery; l.mu is held.
func (l *Listener) report() {
	now := l.now()
	if !l.lastLog.IsZero() && now.Sub(l.lastLog) < logEvery {
		return
	}
	l.logger.Warn("web listener at its limits: closing idle and pre-request connections of the busiest source first (--web.max-connections), and new connections of a source beyond its rate (--web.max-connection-rate)",
		"max_connections", l.max, "evicted", l.evicted, "refused_at_cap", l.rejected, "refused_over_rate", l.limited)
	l.lastLog = now
	l.evicted, l.rejected, l.limited = 0, 0, 0
}

func (l *Listener) enter(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c.gone {
		return
	}
	c.busy++
	if c.elem != nil {
		c.src.idle.Remove(c.elem)
		c.elem = nil
		heap.Fix(&l.byIdle, c.src.index)
	}
}

func (l *Listener) leave(c *Conn) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c.busy--
	if c.gone || c.busy > 0 {
		return
	}
	c.elem = c.src.idle.PushBack(c) // now the most recently used
	heap.Fix(&l.byIdle, c.src.index)
}

type connKey struct{}

// ConnContext is for http.Server.ConnContext: it lets Protect find the
// connection a request came on.
func (l *Listener) ConnContext(ctx context.Context, nc net.Conn) context.Context {
	for {
		if c, ok := nc.(*Conn); ok {
			if c.l == l {
				return context.WithValue(ctx, connKey{}, c)
			}
			return ctx
		}
		w, ok := nc.(interface{ NetConn() net.Conn })
		if !ok {
			return ctx
		}
		nc = w.NetConn() // *tls.Conn
	}
}

// Protect makes the connection of every request h serves non-evictable
// until h returns, so a scrape in progress is never cut. Use it only on
// handlers that return promptly (the exporter's own endpoints), never on
// the tarpit.
func (l *Listener) Protect(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(*Conn); ok && c.l == l {
			l.enter(c)
			defer l.leave(c)
		}
		h.ServeHTTP(w, r)
	})
}

// sourceKey is the remote IPv4 address, or the /64 of an IPv6 one (what one
// host can easily spread over), as the tarpit's per-source cap counts.
func sourceKey(a net.Addr) netip.Addr {
	var ip netip.Addr
	switch t := a.(type) {
	case *net.TCPAddr:
		ip, _ = netip.AddrFromSlice(t.IP)
	default:
		if ap, err := netip.ParseAddrPort(a.String()); err == nil {
			ip = ap.Addr()
		}
	}
	ip = ip.Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.Addr()
		}
	}
	return ip
}

// sourceHeap is a max-heap of sources by evictable connections.
type sourceHeap []*source

func (h sourceHeap) Len() int           { return len(h) }
func (h sourceHeap) Less(i, j int) bool { return h[i].idle.Len() > h[j].idle.Len() }
func (h sourceHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}
func (h *sourceHeap) Push(x any) {
	s := x.(*source)
	s.index = len(*h)
	*h = append(*h, s)
}
func (h *sourceHeap) Pop() any {
	old := *h
	s := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	s.index = -1
	return s
}
