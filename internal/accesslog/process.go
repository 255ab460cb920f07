package accesslog

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/sketch"
)

// Format selects the line parser.
type Format uint8

// The formats of --accesslog.format.
const (
	FormatAuto     Format = iota // per line: '{' (after spaces and tabs) starts JSON, anything else combined, else Caddy console
	FormatCombined               // NCSA common/combined, optional extras
	FormatJSON                   // JSON lines (Caddy, nginx escape=json, Traefik), and Caddy's console lines
)

// ParseFormat reads auto, combined or json.
func ParseFormat(s string) (Format, error) {
	switch s {
	case "auto":
		return FormatAuto, nil
	case "combined":
		return FormatCombined, nil
	case "json":
		return FormatJSON, nil
	}
	return 0, fmt.Errorf("access log format %q: want auto, combined or json", s)
}

// ClientIPSource says which address of a line is the client's.
type ClientIPSource uint8

// The sources of --accesslog.client-ip.
const (
	// ClientRemoteAddr counts the direct peer of the front ($remote_addr,
	// Caddy's request.remote_ip).
	ClientRemoteAddr ClientIPSource = iota
	// ClientXForwardedFor counts the rightmost X-Forwarded-For hop that is
	// not a trusted proxy (Caddy: request.client_ip, which Caddy resolves
	// with its own trusted_proxies). See clientAddr.
	ClientXForwardedFor
)

// ParseClientIPSource reads remote_addr or x-forwarded-for.
func ParseClientIPSource(s string) (ClientIPSource, error) {
	switch s {
	case "remote_addr":
		return ClientRemoteAddr, nil
	case "x-forwarded-for":
		return ClientXForwardedFor, nil
	}
	return 0, fmt.Errorf("client IP source %q: want remote_addr or x-forwarded-for", s)
}

// ParseTrustedProxies reads a comma-separated list of CIDR prefixes (a bare
// address is a /32 or /128).
func ParseTrustedProxies(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil {
			return nil, fmt.Errorf("trusted proxy %q: not a CIDR prefix or an address", f)
		}
		a = a.Unmap().WithZone("")
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

// MaxLineBytes is the longest line counted; longer ones are skipped whole
// and counted as too_long.
const MaxLineBytes = 64 << 10

// Result is what became of a line.
type Result uint8

// The results of clavis_accesslog_lines_total.
const (
	ResultParsed Result = iota
	ResultMalformed
	ResultTooLong
	numResults
)

var resultNames = [numResults]string{"parsed", "malformed", "too_long"}

func (r Result) String() string { return resultNames[r] }

// durationBuckets are the upper bounds of the request time histogram, in
// seconds (Prometheus' defaults: they cover a static file to a slow vault
// sync). Read only; Snapshot hands out copies.
var durationBuckets = [...]float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// Options configure the counting of lines.
type Options struct {
	Format         Format
	Routes         []Route
	ClientIP       ClientIPSource
	TrustedProxies []netip.Prefix
	// CaddyDuration is how Caddy's "duration" is written (its
	// duration_format); the zero value, DurationAuto, guesses.
	CaddyDuration DurationUnit
	// Now is the clock of the unique-IP windows; nil means time.Now.
	Now func() time.Time
}

// Counter turns lines into aggregates. It is safe for concurrent use: one
// lock is taken per batch of lines, not per line.
type Counter struct {
	format   Format
	caddyDur DurationUnit
	classify *classifier
	clientIP ClientIPSource
	trusted  []netip.Prefix
	// unixTrusted: a peer on a unix socket (nginx logs "unix:") is a
	// process on this host, trusted as a proxy when loopback is.
	unixTrusted bool
	now         func() time.Time

	unique24h *sketch.Window
	unique1h  *sketch.Window

	mu        sync.Mutex
	requests  []uint64 // [route][method][code]
	durations []routeHistogram
	respBytes uint64
	lines     [numResults]uint64
	lastTime  float64
	hashes    []uint64 // client hashes of the batch in progress, cleared after it
}

type routeHistogram struct {
	buckets []uint64 // per bucket, not cumulative; last is +Inf
	count   uint64
	sum     float64
}

// NewCounter validates opts and returns an empty counter.
func NewCounter(opts Options) (*Counter, error) {
	cl, err := newClassifier(opts.Routes)
	if err != nil {
		return nil, err
	}
	for _, p := range opts.TrustedProxies {
		if !p.IsValid() {
			return nil, errors.New("invalid trusted proxy prefix")
		}
	}
	if opts.Format > FormatJSON {
		return nil, fmt.Errorf("unknown format %d", opts.Format)
	}
	if opts.CaddyDuration > DurationString {
		return nil, fmt.Errorf("unknown duration format %d", opts.CaddyDuration)
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	c := &Counter{
		format:    opts.Format,
		caddyDur:  opts.CaddyDuration,
		classify:  cl,
		clientIP:  opts.ClientIP,
		trusted:   opts.TrustedProxies,
		now:       now,
		unique24h: sketch.NewWindow(24*time.Hour, 24),
		unique1h:  sketch.NewWindow(time.Hour, 12),
		requests:  make([]uint64, len(cl.names)*int(numMethods)*int(numCodes)),
		durations: make([]routeHistogram, len(cl.names)),
		hashes:    make([]uint64, 0, 1024),
	}
	c.unixTrusted = c.isTrusted(netip.AddrFrom4([4]byte{127, 0, 0, 1})) || c.isTrusted(netip.IPv6Loopback())
	for i := range c.durations {
		c.durations[i].buckets = make([]uint64, len(durationBuckets)+1)
	}
	return c, nil
}

// parse dispatches on the configured format. A UTF-8 byte order mark
// (a log begun by a Windows editor or tool, or a JSON encoder that writes
// one) is not part of the line.
func (c *Counter) parse(line []byte, r *Record) error {
	if len(line) >= 3 && line[0] == 0xEF && line[1] == 0xBB && line[2] == 0xBF {
		line = line[3:]
	}
	switch c.format {
	case FormatCombined:
		return ParseCombined(line, r)
	case FormatJSON:
		err := parseJSON(line, r, c.caddyDur)
		if err == errNotJSON {
			return parseCaddyConsole(line, r, c.caddyDur)
		}
		return err
	}
	// JSON may be indented by its encoder: the first byte that is not a
	// space or tab decides (no combined line starts with either).
	i := 0
	for i < len(line) && (line[i] == ' ' || line[i] == '\t') {
		i++
	}
	if i < len(line) && line[i] == '{' {
		return parseJSON(line, r, c.caddyDur)
	}
	// Caddy's console lines start with a time, as combined lines start
	// with an address: they are tried only when the line is not combined,
	// so combined lines pay (next to) nothing for them. ParseCombined
	// refuses their first field as an address.
	err := ParseCombined(line, r)
	if err != nil {
		if cerr := parseCaddyConsole(line, r, c.caddyDur); cerr != errNotConsole {
			return cerr
		}
	}
	return err
}

// countLines counts every complete line in buf (each ending in '\n'); the
// caller holds no lock. It returns how many bytes it consumed: up to and
// including the last newline.
func (c *Counter) countLines(buf []byte, now time.Time) int {
	var (
		r        Record
		lastTime []byte // time field of the last parsed line, parsed once per batch
		lastKind timeKind
		haveLast bool
		consumed int
	)
	c.mu.Lock()
	for {
		nl := bytes.IndexByte(buf[consumed:], '\n')
		if nl < 0 {
			break
		}
		line := buf[consumed : consumed+nl]
		consumed += nl + 1
		if len(line) > 0 && line[len(line)-1] == '\r' {
			line = line[:len(line)-1]
		}
		if len(line) == 0 {
			continue // blank lines are neither requests nor malformed
		}
		if len(line) > MaxLineBytes {
			c.lines[ResultTooLong]++
			continue
		}
		if err := c.parse(line, &r); err != nil {
			c.lines[ResultMalformed]++
			continue
		}
		c.lines[ResultParsed]++
		c.countRecord(&r, now)
		lastTime, lastKind, haveLast = r.Time, r.timeKind, true
	}
	c.flushHashes(now)
	if haveLast {
		ts, ok := parseTime(lastKind, lastTime)
		if !ok {
			ts = float64(now.UnixNano()) / 1e9
		}
		c.lastTime = ts
	}
	c.mu.Unlock()
	return consumed
}

// countRecord adds one parsed record; c.mu is held.
func (c *Counter) countRecord(r *Record, now time.Time) {
	route := c.classify.classify(r.Path)
	method := r.Method
	if method >= numMethods {
		method = MethodOther
	}
	code := codeOf(r.Status)
	c.requests[(route*int(numMethods)+int(method))*int(numCodes)+int(code)]++
	if r.Size > 0 {
		c.respBytes += uint64(r.Size)
	}
	if r.HasDuration && r.Duration >= 0 && !math.IsInf(r.Duration, 0) {
		h := &c.durations[route]
		b := len(durationBuckets)
		for i, ub := range durationBuckets {
			if r.Duration <= ub {
				b = i
				break
			}
		}
		h.buckets[b]++
		h.count++
		h.sum += r.Duration
	}
	if ip, ok := c.clientAddr(r); ok {
		c.hashes = append(c.hashes, sketch.HashIP(ip))
		if len(c.hashes) == cap(c.hashes) {
			c.flushHashes(now)
		}
	}
}

// flushHashes adds the batch of client hashes to both windows, one lock
// each per batch, and forgets them; c.mu is held.
func (c *Counter) flushHashes(now time.Time) {
	c.unique24h.AddHashes(now, c.hashes)
	c.unique1h.AddHashes(now, c.hashes)
	clear(c.hashes)
	c.hashes = c.hashes[:0]
}

// clientAddr picks the client's address of a record.
//
// With ClientXForwardedFor the direct peer is the proxy. When trusted
// proxies are configured the peer must be one of them, or the header is not
// believed (anyone can send X-Forwarded-For) and the peer counts. The client
// is the rightmost hop that is not a trusted proxy; if every hop is trusted,
// the leftmost. A hop that does not parse ends the walk there: what lies left
// of it cannot be trusted either, so the last good hop counts. A peer on a
// unix socket ("unix:", nginx's $remote_addr there) is a local process: it
// is trusted when loopback is, as a proxy on 127.0.0.1 would be.
func (c *Counter) clientAddr(r *Record) (netip.Addr, bool) {
	peer, peerOK := ParseAddr(r.Remote)
	if c.clientIP == ClientRemoteAddr {
		return peer, peerOK
	}
	if len(r.ClientIP) > 0 { // Caddy resolved it with its trusted_proxies
		if a, ok := ParseAddr(r.ClientIP); ok {
			return a, true
		}
	}
	peerTrusted := peerOK && c.isTrusted(peer) || !peerOK && c.unixTrusted && bytes.HasPrefix(r.Remote, []byte("unix:"))
	if len(r.XFF) == 0 || (len(c.trusted) > 0 && !peerTrusted) {
		return peer, peerOK
	}
	best, bestOK := peer, peerOK
	xff := r.XFF
	for len(xff) > 0 {
		k := bytes.LastIndexByte(xff, ',')
		hop := bytes.TrimSpace(xff[k+1:])
		if k < 0 {
			xff = nil
		} else {
			xff = xff[:k]
		}
		a, ok := ParseAddr(hop)
		if !ok {
			break
		}
		best, bestOK = a, true
		if !c.isTrusted(a) {
			break
		}
	}
	return best, bestOK
}

func (c *Counter) isTrusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range c.trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// countPartial counts a line that ended without a newline when its file
// went away (rotated and drained).
func (c *Counter) countPartial(tooLong bool) {
	c.mu.Lock()
	if tooLong {
		c.lines[ResultTooLong]++
	} else {
		c.lines[ResultMalformed]++
	}
	c.mu.Unlock()
}

func (c *Counter) countTooLong() {
	c.mu.Lock()
	c.lines[ResultTooLong]++
	c.mu.Unlock()
}

// Stream splits one file's bytes into lines for a Counter. It holds the
// partial last line between reads, at most MaxLineBytes of it.
type Stream struct {
	c        *Counter
	buf      []byte
	n        int  // bytes of buf holding an incomplete line
	skipping bool // inside a line already counted too_long
}

// readSize is how much one read asks for: big enough that the lock and the
// clock are paid per thousands of lines.
const readSize = 256 << 10

// NewStream returns a line splitter feeding c.
func (c *Counter) NewStream() *Stream {
	return &Stream{c: c, buf: make([]byte, MaxLineBytes+1+readSize)}
}

// ReadFrom reads r to EOF (or error), counting every complete line; an
// incomplete last line waits for the next call. It returns the bytes read.
func (s *Stream) ReadFrom(r io.Reader) (int64, error) {
	var total int64
	for {
		m, err := r.Read(s.buf[s.n:])
		if m > 0 {
			total += int64(m)
			s.feed(m)
			// A backlog (a file read from its start after rotation) is
			// counted one 256 kB read at a time; between two, let a scrape
			// run on the agent's one P, as the vault scan does (see
			// vaultindex.yieldEvery for the measured stall). One Gosched
			// per ~1,300 lines; not measured on its own here.
			runtime.Gosched()
		}
		if err == io.EOF || (err == nil && m == 0) {
			return total, nil
		}
		if err != nil {
			return total, err
		}
	}
}

// Write counts the complete lines of p (io.Writer, for tests and tools).
func (s *Stream) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		m := copy(s.buf[s.n:], p[done:])
		done += m
		s.feed(m)
	}
	return done, nil
}

// feed handles m new bytes at buf[s.n:].
func (s *Stream) feed(m int) {
	data := s.buf[:s.n+m]
	if !s.skipping && len(data) <= MaxLineBytes && bytes.IndexByte(data[s.n:], '\n') < 0 {
		// More of a line in progress: nothing to count, and the bytes
		// held before need no second look (a line fed in small pieces
		// would otherwise cost its length squared).
		s.n = len(data)
		return
	}
	start := 0
	if s.skipping {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			clear(data)
			s.n = 0
			return
		}
		s.skipping = false
		start = nl + 1
	}
	consumed := start + s.c.countLines(data[start:], s.c.now())
	rest := len(data) - consumed
	if rest > MaxLineBytes {
		// The line in progress is already too long: count it once and drop
		// it up to its newline.
		s.c.countTooLong()
		s.skipping = true
		clear(data)
		s.n = 0
		return
	}
	copy(s.buf, data[consumed:])
	// Nothing of a counted line stays in memory.
	clear(s.buf[rest:len(data)])
	s.n = rest
}

// Discard drops an incomplete last line, counting it, when its file is gone
// for good: a line that never ended is malformed.
func (s *Stream) Discard() {
	if s.n > 0 {
		s.c.countPartial(false)
	}
	clear(s.buf[:s.n])
	s.n = 0
	s.skipping = false
}

// Reset drops an incomplete line without counting it (the file was
// truncated under it: copytruncate; it continues in the rotated copy).
func (s *Stream) Reset() {
	clear(s.buf[:s.n])
	s.n = 0
	s.skipping = false
}
