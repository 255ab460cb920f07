package tarpit

import (
	"net"
	"sync"
	"sync/atomic"
)

// pendingLimit bounds the connections a dedicated HTTP tarpit listener
// holds before their request is read and they are handed to the scheduler
// (each has a goroutine of the HTTP server until then). Past
// --tarpit.max-clients of them a new connection is closed at once and
// counted as a max_clients rejection, like a full tarpit.
type pendingLimit struct {
	net.Listener
	t       *Tarpit
	pending atomic.Int64
}

func (l *pendingLimit) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.pending.Add(1) > int64(l.t.cfg.MaxClients) {
			l.pending.Add(-1)
			// Counted before the close, so whoever sees the close
			// (a client, a test) also sees the rejection.
			l.t.reject(RejectMaxClients)
			c.Close()
			continue
		}
		return &pendingConn{Conn: c, l: l}, nil
	}
}

// pendingConn gives its slot back when closed: by the HTTP server, or by
// ServeHTTP once the socket has been handed to the scheduler.
type pendingConn struct {
	net.Conn
	l    *pendingLimit
	once sync.Once
}

func (c *pendingConn) Close() error {
	c.once.Do(func() { c.l.pending.Add(-1) })
	return c.Conn.Close()
}

// NetConn returns the wrapped connection (the name crypto/tls uses).
func (c *pendingConn) NetConn() net.Conn { return c.Conn }
