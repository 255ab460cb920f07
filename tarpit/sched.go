package tarpit

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// client is one trapped (or PROXY-header-awaiting) connection. It lives by
// value in the scheduler's queue: about 100 bytes per trapped scanner, and
// no goroutine.
type client struct {
	fd    int32
	proto uint8 // protoSSH or protoHTTP
	phase uint8 // phaseTrap or phaseProxy
	// forged: PROXY is on but the peer is not a trusted balancer. A header
	// it sends is not believed; the first turns peek whether it sent one,
	// to count it.
	forged    bool
	localPort uint16
	line      uint32 // lines sent so far (HTTP: which header comes next)
	remote    netip.AddrPort
	startUS   int64 // stats clock (Tarpit.micros, monotonic) at accept
	due       int64 // scheduler clock (ns since its start) of the next turn
	progress  int64 // scheduler clock of the last byte taken; in phaseProxy, the header deadline
	sent      uint64
	req       *httpReq // HTTP only
}

const (
	phaseTrap  uint8 = 0
	phaseProxy uint8 = 1
)

// httpReq is what the scanner log keeps of an HTTP request.
type httpReq struct {
	method, path string
}

// proxyPoll is how often a connection awaiting its PROXY header is looked
// at. Load balancers send the header with the first packet, so the first
// look nearly always finds it.
const proxyPoll = 20 * time.Millisecond

// maxProxyHeader bounds what is peeked for a PROXY header: v1 is at most 107
// bytes; a v2 header with more TLVs than this is refused.
const maxProxyHeader = 536

// Clients due within the batch window after the first one due are served
// in the same turn of the scheduler, early: a line a little early only costs a
// few bytes, a line late could let a scanner with a timeout go, so no line
// is sent late. The window is a tenth of the interval, at most maxBatch.
//
// Target: the CPU of held scanners on an idle POP, where nothing else wakes
// the process. Each wake-up of a Go process costs tens of microseconds
// (timer, netpoll, scheduler, sysmon leaving its sleep); endlessh, in C,
// pays a few. With 320 scanners at the 10 s interval, a 25 ms window gave
// about 20 wake-ups a second and 1.01 ms of CPU a second, against
// endlessh's 0.00 (bench/pop.sh, "load stopped"); a 1 s window gives one
// to two. With 9,000 clients at 1 s the window is 100 ms: ten wake-ups a
// second instead of one per client. Clients served together are due
// together from then on, so the batches keep.
const maxBatch = time.Second

// fifo is a ring buffer of clients. Every client in it waits the same
// interval, and the scheduler's clock never goes back, so appending keeps it
// ordered by due time: a FIFO is the timer queue.
type fifo struct {
	buf  []client
	head int
	n    int
}

func (q *fifo) push(c client) {
	if q.n == len(q.buf) {
		q.resize(max(16, 2*len(q.buf)))
	}
	q.buf[(q.head+q.n)%len(q.buf)] = c
	q.n++
}

func (q *fifo) front() *client { return &q.buf[q.head] }

func (q *fifo) pop() client {
	c := q.buf[q.head]
	q.buf[q.head] = client{} // drop the *httpReq reference
	q.head = (q.head + 1) % len(q.buf)
	q.n--
	// Give memory back after a flood has drained.
	if len(q.buf) > 1024 && q.n < len(q.buf)/4 {
		q.resize(len(q.buf) / 2)
	}
	return c
}

func (q *fifo) resize(size int) {
	nb := make([]client, size)
	for i := 0; i < q.n; i++ {
		nb[i] = q.buf[(q.head+i)%len(q.buf)]
	}
	q.buf, q.head = nb, 0
}

// scheduler is the one goroutine that writes to trapped clients.
type scheduler struct {
	t        *Tarpit
	base     time.Time
	interval int64
	stall    int64
	batch    int64 // see maxBatch
	trap     fifo  // trapped, ordered by due
	proxy    fifo  // awaiting a PROXY header, ordered by due
	spare    []client
	rng      *rand.Rand
	line     [256]byte
	peek     [maxProxyHeader]byte
	// Per-batch aggregates, flushed under the Tarpit's lock once per turn.
	bytes [2]uint64
}

func newScheduler(t *Tarpit) *scheduler {
	return &scheduler{
		t:        t,
		base:     time.Now(),
		interval: int64(t.cfg.Interval),
		stall:    int64(t.cfg.StallTimeout),
		batch:    int64(min(t.cfg.Interval/10, maxBatch)),
		rng:      rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64())),
	}
}

func (s *scheduler) clock() int64 { return int64(time.Since(s.base)) }

// run serves until ctx is done, then closes every client it holds.
func (s *scheduler) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		now := s.clock()
		s.takeIncoming(now)
		s.serveProxy(now)
		s.serveTrap(now)
		s.flush()

		timer.Reset(s.untilNextTurn(now))
		select {
		case <-ctx.Done():
			s.shutdown()
			return
		case <-s.t.wake:
		case <-timer.C:
		}
	}
}

// untilNextTurn is how long the scheduler may sleep after a turn at now:
// until the first client is due, never later (see maxBatch).
func (s *scheduler) untilNextTurn(now int64) time.Duration {
	wait := time.Hour
	if s.trap.n > 0 {
		wait = time.Duration(s.trap.front().due - now)
	}
	if s.proxy.n > 0 {
		wait = min(wait, time.Duration(s.proxy.front().due-now))
	}
	return max(wait, 0)
}

// takeIncoming moves admitted clients into the queues. A new HTTP client
// gets its status line at once; SSH clients wait their first interval, as
// with endlessh.
func (s *scheduler) takeIncoming(now int64) {
	t := s.t
	t.mu.Lock()
	in := t.incoming
	t.incoming = s.spare[:0]
	t.mu.Unlock()
	wall := t.now()
	for i := range in {
		c := in[i]
		in[i] = client{}
		c.progress = now
		if c.phase == phaseProxy {
			c.progress = now + int64(t.cfg.ProxyHeaderTimeout)
			if !s.tryProxy(&c, now, wall) {
				continue
			}
			if c.phase == phaseProxy {
				c.due = now + int64(proxyPoll)
				s.proxy.push(c)
				continue
			}
		} else {
			t.trapped(&c, wall)
		}
		if c.proto == protoHTTP {
			if !s.write(&c, now) {
				continue
			}
		}
		c.due = now + s.interval
		s.trap.push(c)
	}
	s.spare = in[:0]
}

// serveProxy looks again at the connections whose PROXY header is due.
func (s *scheduler) serveProxy(now int64) {
	wall := s.t.now()
	for s.proxy.n > 0 && s.proxy.front().due <= now {
		c := s.proxy.pop()
		if !s.tryProxy(&c, now, wall) {
			continue
		}
		if c.phase == phaseProxy {
			c.due = now + int64(proxyPoll)
			s.proxy.push(c)
			continue
		}
		c.due = now + s.interval
		s.trap.push(c)
	}
}

// tryProxy peeks at c's PROXY header. It returns false when c was dropped;
// when the header is complete c leaves phaseProxy, trapped under the
// scanner's address.
func (s *scheduler) tryProxy(c *client, now int64, wall time.Time) bool {
	n, _, err := unix.Recvfrom(int(c.fd), s.peek[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	if err == unix.EAGAIN || err == unix.EINTR {
		if now >= c.progress {
			s.dropUnsourced(c)
			return false
		}
		return true
	}
	if err != nil || n == 0 { // error or EOF before a header
		s.dropUnsourced(c)
		return false
	}
	hlen, src, perr := parseProxyHeader(s.peek[:n])
	if errors.Is(perr, errNeedMore) {
		if now >= c.progress || n == len(s.peek) {
			s.dropUnsourced(c)
			return false
		}
		return true
	}
	if perr != nil {
		s.dropUnsourced(c)
		return false
	}
	// Consume exactly the header; whatever follows stays in the kernel's
	// (tiny) receive buffer and is never read.
	if _, err := unix.Read(int(c.fd), s.peek[:hlen]); err != nil {
		s.dropUnsourced(c)
		return false
	}
	if src.IsValid() {
		c.remote = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	}
	if !s.t.admitSource(c.remote.Addr()) {
		unix.Close(int(c.fd))
		return false
	}
	c.phase = phaseTrap
	c.progress = now
	s.t.trapped(c, wall)
	return true
}

// forgedChecks is how many turns an untrusted client is peeked at for a
// PROXY header before it is left alone: a forger sends it with its first
// packet, so it is there at the first turn; a silent client costs a few
// peeks, not one a turn forever.
const forgedChecks = 3

// checkForged peeks at what an untrusted client of a PROXY-protocol
// listener has sent and counts a PROXY header in it. The header is not
// believed and nothing is read: the client stays trapped, capped and logged
// under its own address.
func (s *scheduler) checkForged(c *client) {
	n, _, err := unix.Recvfrom(int(c.fd), s.peek[:proxyV2Fixed], unix.MSG_PEEK|unix.MSG_DONTWAIT)
	switch {
	case err == nil && n > 0:
		if hasProxySignature(s.peek[:n]) {
			s.t.untrustedHeaders.Add(1)
		}
		c.forged = false
	case err == unix.EAGAIN || err == unix.EINTR:
		c.forged = c.line+1 < forgedChecks
	default: // EOF or an error: the write that follows finds out
		c.forged = false
	}
}

// dropUnsourced refuses a client whose PROXY header did not come. It is
// counted before the socket closes, so whoever sees the close sees the count.
func (s *scheduler) dropUnsourced(c *client) {
	s.t.releaseUnsourced(RejectProxyHeader)
	unix.Close(int(c.fd))
}

// serveTrap writes one line to every trapped client that is due, once the
// first is: with it, those due within the batch window after it. The
// window is anchored at the first due time, not at now, so a turn woken
// early (a new client) serves nobody early.
func (s *scheduler) serveTrap(now int64) {
	if s.trap.n == 0 || s.trap.front().due > now {
		return
	}
	limit := s.trap.front().due + s.batch
	for s.trap.n > 0 && s.trap.front().due <= limit {
		c := s.trap.pop()
		if c.forged {
			s.checkForged(&c)
		}
		if !s.write(&c, now) {
			continue
		}
		c.due = now + s.interval
		s.trap.push(c)
	}
}

// write sends c its next line without blocking. It returns false when c
// was dropped: a write error (the peer is gone) or nothing taken for the
// stall timeout.
func (s *scheduler) write(c *client, now int64) bool {
	var p []byte
	if c.proto == protoHTTP {
		p = httpLine(s.line[:], c.line, s.t.cfg.MaxLineLength, s.rng)
	} else {
		p = sshLine(s.line[:], s.t.cfg.MaxLineLength, s.rng)
	}
	n, err := sendNoWait(int(c.fd), p)
	switch {
	case n > 0:
		c.sent += uint64(n)
		s.bytes[c.proto] += uint64(n)
		c.line++
		c.progress = now
	case err == unix.EAGAIN || err == unix.EINTR:
		if now-c.progress >= s.stall {
			s.drop(c, true)
			return false
		}
	default:
		s.drop(c, false)
		return false
	}
	return true
}

// drop closes a trapped client. A stalled one is reset rather than closed
// politely, so the kernel frees its unsent bytes at once.
func (s *scheduler) drop(c *client, reset bool) {
	if reset {
		_ = unix.SetsockoptLinger(int(c.fd), unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
	}
	s.flush()
	s.t.untrap(c, s.t.now())
	unix.Close(int(c.fd))
}

func (s *scheduler) flush() {
	if s.bytes[0] == 0 && s.bytes[1] == 0 {
		return
	}
	s.t.mu.Lock()
	for i := range s.bytes {
		s.t.stats[i].bytesSent += s.bytes[i]
	}
	s.t.mu.Unlock()
	s.bytes = [2]uint64{}
}

// shutdown refuses new clients and closes every one held.
func (s *scheduler) shutdown() {
	t := s.t
	t.mu.Lock()
	t.stopped = true
	in := t.incoming
	t.incoming = nil
	t.mu.Unlock()
	close(t.stopping)
	wall := t.now()
	for i := range in {
		c := in[i]
		unix.Close(int(c.fd))
		if c.phase == phaseProxy {
			t.releaseUnsourced(RejectShutdown)
			continue
		}
		// Admitted but never trapped: give its slots back without a log line.
		t.unadmit(c.remote.Addr(), true)
	}
	for s.proxy.n > 0 {
		c := s.proxy.pop()
		unix.Close(int(c.fd))
		t.releaseUnsourced(RejectShutdown)
	}
	s.flush()
	for s.trap.n > 0 {
		c := s.trap.pop()
		unix.Close(int(c.fd))
		t.untrap(&c, wall)
	}
}

// sshLine fills buf with one endlessh pre-banner line: 3 to max bytes of
// random printable ASCII ending in CRLF, never starting with "SSH-" (a
// client would take that for the banner).
func sshLine(buf []byte, maxLen int, rng *rand.Rand) []byte {
	n := 3 + rng.IntN(maxLen-2)
	for i := 0; i < n-2; i++ {
		buf[i] = byte(32 + rng.IntN(95))
	}
	buf[n-2], buf[n-1] = '\r', '\n'
	if n >= 6 && string(buf[:4]) == "SSH-" {
		buf[0] = 'X'
	}
	return buf[:n]
}

const letters = "abcdefghijklmnopqrstuvwxyz"
const alnum = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// httpStatusLine is the first line of every HTTP drip. It is the one line
// that may be longer than --tarpit.max-line-length (when that is below 17):
// a status line cannot be shorter, and a client that got anything else
// first would give up at once.
const httpStatusLine = "HTTP/1.1 200 OK\r\n"

// httpContentType is the second line when it fits the line length (the
// default 32 does); below that the random headers start at once.
const httpContentType = "Content-Type: text/html\r\n"

// minHTTPHeaderLine is the shortest random header line: "X-a:" and CRLF,
// an empty value. A line of --tarpit.max-line-length 3 to 5 cannot be a
// header, and anything that is not one ends the client's wait.
const minHTTPHeaderLine = 6

// httpLine fills buf with line number i of an endless 200 response: the
// status line, then header after header that never ends in a blank line.
// Every line after the status line is at most maxLen bytes, CRLF included
// (at least minHTTPHeaderLine).
func httpLine(buf []byte, i uint32, maxLen int, rng *rand.Rand) []byte {
	switch {
	case i == 0:
		return append(buf[:0], httpStatusLine...)
	case i == 1 && maxLen >= len(httpContentType):
		return append(buf[:0], httpContentType...)
	}
	// "X-" name ": " value CRLF, n bytes in all, at least 8; only a
	// max-line-length of 6 or 7 gets "X-" name ":" CRLF, an empty value.
	maxLen = max(maxLen, minHTTPHeaderLine)
	lo := min(maxLen, len("X-a: b\r\n"))
	n := lo + rng.IntN(maxLen-lo+1)
	room := n - len("X-:\r\n") // the name, and the value with its space
	nameLen := room
	if room >= 3 {
		nameLen = 1 + rng.IntN(min(8, room-2))
	}
	b := append(buf[:0], 'X', '-')
	for range nameLen {
		b = append(b, letters[rng.IntN(len(letters))])
	}
	b = append(b, ':')
	if rest := room - nameLen; rest > 0 {
		b = append(b, ' ')
		for range rest - 1 {
			b = append(b, alnum[rng.IntN(len(alnum))])
		}
	}
	return append(b, '\r', '\n')
}

// sendNoWait is send(2) with MSG_DONTWAIT and MSG_NOSIGNAL: it cannot block
// (the socket buffer is full: EAGAIN) and a gone peer is EPIPE, not a
// signal. Since it never blocks it is made as a raw syscall, without the
// scheduler hand-off of a blocking one: the tarpit makes thousands of these
// a second, and that hand-off would be most of their cost.
func sendNoWait(fd int, p []byte) (int, error) {
	r, _, errno := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)),
		unix.MSG_NOSIGNAL|unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
