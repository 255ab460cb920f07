// Package tarpit traps scanners: an endlessh-style SSH banner tarpit and a
// slow, endless HTTP response for paths nobody legitimate asks for. Scanner
// addresses go only to the local scanner log; what leaves the package as
// Snapshot is aggregate counts.
//
// The design is endlessh's: no goroutine is parked per trapped client. Each
// listener has one accept goroutine that takes sockets with accept4 as raw,
// non-blocking file descriptors (they are never registered with Go's network
// poller), and one scheduler goroutine keeps every trapped client in a queue
// ordered by the time of its next write. A trapped client costs one small
// struct in that queue and the kernel's socket, whose buffers are shrunk to
// the minimum. A write that would block is not retried until the next turn;
// a peer that errors is dropped at once and one that has taken nothing for
// --tarpit.stall-timeout is dropped too.
//
// This package never imports the Prometheus client: it is linked into the
// community edition, whose binary must hold no telemetry code.
package tarpit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// Protocol names, the only values of the protocol label downstream.
const (
	ProtoSSH  = "ssh"
	ProtoHTTP = "http"
)

// Rejection reasons, the only values of the reason label downstream.
const (
	RejectMaxClients  = "max_clients"  // --tarpit.max-clients reached
	RejectPerSource   = "per_source"   // --tarpit.max-clients-per-source reached
	RejectAcceptError = "accept_error" // accept failed (EMFILE, ENFILE, ENOBUFS, ...)
	RejectProxyHeader = "proxy_header" // PROXY header missing, malformed or too slow
	RejectShutdown    = "shutdown"     // arrived while the tarpit was stopping
)

var protocols = []string{ProtoSSH, ProtoHTTP}

var rejectReasons = []string{RejectMaxClients, RejectPerSource, RejectAcceptError, RejectProxyHeader, RejectShutdown}

// Config is the tarpit's command-line configuration.
type Config struct {
	SSHListenAddresses  []string
	HTTPListenAddresses []string
	ProxyProtocol       bool
	// ProxyTrusted are the addresses (CIDR prefixes or single addresses) of
	// the load balancers whose PROXY headers are believed. Required when
	// ProxyProtocol is on; a connection from anywhere else is taken by its
	// real peer address, and a header it sends is ignored and counted.
	ProxyTrusted       []string
	ProxyHeaderTimeout time.Duration

	Interval      time.Duration // between two lines sent to one client
	MaxLineLength int           // of one SSH pre-banner line or HTTP header line, CRLF included (see httpLine for HTTP's floor)
	StallTimeout  time.Duration // a client that took nothing for this long is dropped

	MaxClients          int
	MaxClientsPerSource int

	LogFile      string // scanner log; empty = none
	LogMaxSizeMB int
	// LogMaxTotalMB bounds the current and rotated files together: a
	// flood of scanners churning connections writes about 200 bytes a
	// line, two lines a connection, and could fill the disk long before
	// LogRetention deletes anything.
	LogMaxTotalMB int
	LogRetention  time.Duration
	// LogSweepInterval bounds the time between two sweeps for files that
	// hold lines past LogRetention, besides at start-up and on rotation
	// (a sweep is due sooner when the next file falls due sooner).
	LogSweepInterval time.Duration
}

// ConfigError is a start-up failure that a flag's value caused (a scanner
// log path that is unsafe or not a file): the operator must change the
// flag, and restarting will not help.
type ConfigError struct {
	Flag string
	Err  error
}

func (e *ConfigError) Error() string { return "--" + e.Flag + ": " + e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// ListenError is a tarpit listener that could not be opened (the port in
// use, the address not on this host). Addr is the agent's own address: the
// caller logs it under the key its log scrubber leaves, which takes every
// address out of the error text.
type ListenError struct {
	Flag string
	Addr string
	Err  error
}

func (e *ListenError) Error() string { return "--" + e.Flag + " " + e.Addr + ": " + e.Err.Error() }
func (e *ListenError) Unwrap() error { return e.Err }

// IsConfigError reports whether err, from New, is a ConfigError.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

// DefaultConfig returns the flag defaults.
func DefaultConfig() Config {
	return Config{
		ProxyHeaderTimeout:  5 * time.Second,
		Interval:            10 * time.Second,
		MaxLineLength:       32,
		StallTimeout:        5 * time.Minute,
		MaxClients:          4096,
		MaxClientsPerSource: 32,
		LogMaxSizeMB:        100,
		LogMaxTotalMB:       1024,
		LogRetention:        720 * time.Hour,
		LogSweepInterval:    time.Hour,
	}
}

// Bounds of the duration and size flags. Outside them a value is a typo or
// a misunderstanding (an interval of -1s, a line too short to hold CRLF, a
// retention of a minute), and it is refused at start-up rather than
// silently replaced.
const (
	minInterval, maxInterval         = time.Millisecond, time.Hour
	minLineLength, maxLineLength     = 3, 255 // CRLF and one byte; the scheduler's line buffer
	minStall, maxStall               = 100 * time.Millisecond, 24 * time.Hour
	minProxyTimeout, maxProxyTimeout = 10 * time.Millisecond, time.Minute
	maxMaxClients                    = 1 << 20 // one descriptor each
	minLogSizeMB, maxLogSizeMB       = 1, 10 << 10
	maxLogTotalMB                    = 1 << 20
	minLogRetention, maxLogRetention = time.Hour, 366 * 24 * time.Hour
)

// AddFlags declares the --tarpit.* flags on app.
func AddFlags(app *kingpin.Application) *Config {
	c := &Config{}
	d := DefaultConfig()
	app.Flag("tarpit.ssh.listen-address", "Address to run the SSH banner tarpit on (repeatable; none = off), e.g. :22 or [::]:2222.").StringsVar(&c.SSHListenAddresses)
	app.Flag("tarpit.http.listen-address", "Dedicated address for the HTTP tarpit (repeatable; none = only unknown paths of --web.listen-address are trapped).").StringsVar(&c.HTTPListenAddresses)
	app.Flag("tarpit.proxy-protocol", "Expect a PROXY protocol v1 or v2 header on the tarpit listeners from the --tarpit.proxy-protocol.trusted load balancers, so the scanner's address is logged. Their connections without one are rejected.").Default("false").BoolVar(&c.ProxyProtocol)
	app.Flag("tarpit.proxy-protocol.trusted", "Load balancer (CIDR prefix or address) whose PROXY headers are believed (repeatable; required with --tarpit.proxy-protocol). Connections from elsewhere are taken by their own address; a PROXY header they send is ignored and counted.").StringsVar(&c.ProxyTrusted)
	app.Flag("tarpit.proxy-header-timeout", "How long a connection may take to send its PROXY header ("+minProxyTimeout.String()+" to "+maxProxyTimeout.String()+").").Default(d.ProxyHeaderTimeout.String()).DurationVar(&c.ProxyHeaderTimeout)
	app.Flag("tarpit.interval", "Time between two lines sent to a trapped client ("+minInterval.String()+" to "+maxInterval.String()+").").Default(d.Interval.String()).DurationVar(&c.Interval)
	app.Flag("tarpit.max-line-length", "Maximum length of one tarpit line, CRLF included ("+strconv.Itoa(minLineLength)+" to "+strconv.Itoa(maxLineLength)+"). HTTP cannot go as low: its status line, "+strconv.Itoa(len(httpStatusLine))+" bytes, is always sent whole, and its header lines are at least "+strconv.Itoa(minHTTPHeaderLine)+" bytes.").Default(strconv.Itoa(d.MaxLineLength)).IntVar(&c.MaxLineLength)
	app.Flag("tarpit.stall-timeout", "Drop a trapped client that has taken no byte for this long, its buffers full ("+minStall.String()+" to "+maxStall.String()+").").Default(d.StallTimeout.String()).DurationVar(&c.StallTimeout)
	app.Flag("tarpit.max-clients", "Maximum number of clients trapped at once, all protocols together; beyond it new connections are closed at once (1 to "+strconv.Itoa(maxMaxClients)+").").Default(strconv.Itoa(d.MaxClients)).IntVar(&c.MaxClients)
	app.Flag("tarpit.max-clients-per-source", "Maximum number of clients trapped at once from one source (an IPv4 address or an IPv6 /64); beyond it new connections from it are closed at once (1 to "+strconv.Itoa(maxMaxClients)+").").Default(strconv.Itoa(d.MaxClientsPerSource)).IntVar(&c.MaxClientsPerSource)
	app.Flag("tarpit.log.file", "Scanner log: one JSON line per trapped connection's open and close, with the scanner's address. Mode 0600; its directory must not be writable by others. Empty = no scanner log.").StringVar(&c.LogFile)
	app.Flag("tarpit.log.max-size-mb", "Rotate the scanner log when it reaches this size in MB ("+strconv.Itoa(minLogSizeMB)+" to "+strconv.Itoa(maxLogSizeMB)+").").Default(strconv.Itoa(d.LogMaxSizeMB)).IntVar(&c.LogMaxSizeMB)
	app.Flag("tarpit.log.max-total-size-mb", "Delete the oldest rotated scanner logs while the current and rotated files together exceed this size in MB (--tarpit.log.max-size-mb to "+strconv.Itoa(maxLogTotalMB)+").").Default(strconv.Itoa(d.LogMaxTotalMB)).IntVar(&c.LogMaxTotalMB)
	app.Flag("tarpit.log.retention", "Keep each scanner log line at most this long, and at least 29/30 of it: the log rotates when its first line is 1/30 of this old ("+minLogRetention.String()+" to "+maxLogRetention.String()+").").Default(d.LogRetention.String()).DurationVar(&c.LogRetention)
	c.LogSweepInterval = d.LogSweepInterval
	return c
}

// Validate checks every value against its bounds. Each error names its
// flag; the caller exits 2 on any.
func (c *Config) Validate() error {
	var errs []error
	dur := func(flag string, v, lo, hi time.Duration) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("--%s must be between %s and %s, got %s", flag, lo, hi, v))
		}
	}
	num := func(flag string, v, lo, hi int) {
		if v < lo || v > hi {
			errs = append(errs, fmt.Errorf("--%s must be between %d and %d, got %d", flag, lo, hi, v))
		}
	}
	dur("tarpit.interval", c.Interval, minInterval, maxInterval)
	num("tarpit.max-line-length", c.MaxLineLength, minLineLength, maxLineLength)
	dur("tarpit.stall-timeout", c.StallTimeout, minStall, maxStall)
	num("tarpit.max-clients", c.MaxClients, 1, maxMaxClients)
	num("tarpit.max-clients-per-source", c.MaxClientsPerSource, 1, maxMaxClients)
	dur("tarpit.proxy-header-timeout", c.ProxyHeaderTimeout, minProxyTimeout, maxProxyTimeout)
	num("tarpit.log.max-size-mb", c.LogMaxSizeMB, minLogSizeMB, maxLogSizeMB)
	num("tarpit.log.max-total-size-mb", c.LogMaxTotalMB, max(c.LogMaxSizeMB, minLogSizeMB), maxLogTotalMB)
	dur("tarpit.log.retention", c.LogRetention, minLogRetention, maxLogRetention)
	trusted, err := parseTrusted(c.ProxyTrusted)
	if err != nil {
		errs = append(errs, err)
	}
	if c.ProxyProtocol && len(trusted) == 0 && err == nil {
		errs = append(errs, errors.New("--tarpit.proxy-protocol needs at least one --tarpit.proxy-protocol.trusted load balancer: PROXY headers from anywhere else would let any client choose the address it is capped and logged by"))
	}
	if !c.ProxyProtocol && len(c.ProxyTrusted) > 0 {
		errs = append(errs, errors.New("--tarpit.proxy-protocol.trusted is set but --tarpit.proxy-protocol is off"))
	}
	listen := func(flag, example string, addrs []string) {
		for _, a := range addrs {
			_, port, err := net.SplitHostPort(a)
			if err != nil {
				// "address 22: missing port in address" does not say what to give.
				errs = append(errs, fmt.Errorf("--%s=%q: want host:port or :port (e.g. %s)", flag, a, example))
				continue
			}
			if port == "" {
				// net.Listen would take a random port on every interface.
				err = errors.New("no port: give host:port or :port")
			} else {
				_, err = net.LookupPort("tcp", port)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("--%s %q: %w", flag, a, err))
			}
		}
	}
	listen("tarpit.ssh.listen-address", ":22", c.SSHListenAddresses)
	listen("tarpit.http.listen-address", ":8080", c.HTTPListenAddresses)
	return errors.Join(errs...)
}

// parseTrusted parses --tarpit.proxy-protocol.trusted: CIDR prefixes, or
// single addresses taken as /32 or /128. IPv4-mapped IPv6 forms are unmapped,
// as peer addresses are.
func parseTrusted(in []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range in {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return nil, fmt.Errorf("--tarpit.proxy-protocol.trusted %q: not a CIDR prefix or an address", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// ProtocolStats are the aggregates of one protocol ("ssh" or "http").
type ProtocolStats struct {
	Connections    uint64  // accepted and trapped, ever
	Active         int64   // trapped right now
	TrappedSeconds float64 // summed over closed and open connections
	BytesSent      uint64
}

// Snapshot is a consistent copy of the tarpit's aggregates. It never holds
// an address.
type Snapshot struct {
	Protocols        map[string]ProtocolStats // every protocol, zeros included
	Rejected         map[string]uint64        // by reason, every reason included
	UniqueSources24h uint64                   // 0 in the community edition, which has no sketch
	LogDropped       uint64                   // scanner-log lines dropped because the writer fell behind
	// UntrustedProxyHeaders counts PROXY headers sent by trapped clients
	// that are not a --tarpit.proxy-protocol.trusted balancer: ignored,
	// the client was taken by its own address.
	UntrustedProxyHeaders uint64
}

// Tarpit runs the configured traps.
type Tarpit struct {
	cfg    Config
	logger *slog.Logger
	log    *scanLog         // nil when there is no scanner log
	now    func() time.Time // wall clock: scanner log times and the 24 h sketch

	// base is the origin of the stats clock (micros). It is taken with
	// time.Now, so it carries Go's monotonic reading and the clock counts
	// elapsed time whatever the wall clock does (NTP steps, a VM resumed,
	// an operator's date -s).
	base time.Time

	trusted []netip.Prefix // load balancers whose PROXY headers are believed

	sshListeners  []*rawListener
	httpListeners []net.Listener

	sources sourceEstimate // 24 h unique sources; a no-op in the community edition

	// mu guards the admission state and the aggregates. The scheduler takes
	// it once per batch of writes, accept paths once per connection.
	mu       sync.Mutex
	stopped  bool
	active   int
	perSrc   map[netip.Addr]int
	stats    [2]protoCounters
	rejected map[string]uint64
	incoming []client // admitted, not yet in the scheduler's queue

	wake     chan struct{} // cap 1: something is in incoming
	stopping chan struct{} // closed when the scheduler starts shutting down
	done     chan struct{} // closed when Run has finished closing everything

	untrustedHeaders atomic.Uint64 // see Snapshot.UntrustedProxyHeaders

	// pauseHook, when set (by tests, before Run), replaces the wait after a
	// failed accept.
	pauseHook func(ctx context.Context, d time.Duration) bool

	runOnce sync.Once
}

type protoCounters struct {
	connections   uint64
	active        int64
	bytesSent     uint64
	closedMicros  int64 // trapped time of closed connections
	activeStartUS int64 // sum of the start times (Tarpit.micros) of active ones
}

// New validates cfg, opens the scanner log (deleting files past retention)
// and binds the tarpit listeners. Run serves them.
func New(cfg Config, logger *slog.Logger) (*Tarpit, error) {
	return newTarpit(cfg, logger, time.Now)
}

func newTarpit(cfg Config, logger *slog.Logger, now func() time.Time) (*Tarpit, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if cfg.LogSweepInterval <= 0 {
		cfg.LogSweepInterval = time.Hour
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	trusted, _ := parseTrusted(cfg.ProxyTrusted) // checked by Validate
	t := &Tarpit{
		cfg:      cfg,
		trusted:  trusted,
		logger:   logger,
		now:      now,
		base:     time.Now(),
		sources:  newSourceEstimate(),
		perSrc:   map[netip.Addr]int{},
		rejected: map[string]uint64{},
		wake:     make(chan struct{}, 1),
		stopping: make(chan struct{}),
		done:     make(chan struct{}),
	}
	if cfg.LogFile != "" {
		l, err := openScanLog(scanLogOptions{
			path: cfg.LogFile, maxSizeMB: cfg.LogMaxSizeMB, maxTotalMB: cfg.LogMaxTotalMB,
			retention: cfg.LogRetention, sweepEvery: cfg.LogSweepInterval,
		}, now, logger)
		if err != nil {
			return nil, &ConfigError{Flag: "tarpit.log.file", Err: err}
		}
		t.log = l
	}
	fail := func(err error) (*Tarpit, error) {
		t.closeListeners()
		if t.log != nil {
			t.log.close()
		}
		return nil, err
	}
	for _, addr := range cfg.SSHListenAddresses {
		l, err := listenRaw(addr)
		if err != nil {
			return fail(&ListenError{Flag: "tarpit.ssh.listen-address", Addr: addr, Err: err})
		}
		t.sshListeners = append(t.sshListeners, l)
	}
	for _, addr := range cfg.HTTPListenAddresses {
		l, err := listenTCP(addr)
		if err != nil {
			return fail(&ListenError{Flag: "tarpit.http.listen-address", Addr: addr, Err: err})
		}
		t.httpListeners = append(t.httpListeners, l)
	}
	return t, nil
}

// SSHAddrs returns the addresses the SSH tarpit listens on.
func (t *Tarpit) SSHAddrs() []net.Addr {
	var out []net.Addr
	for _, l := range t.sshListeners {
		out = append(out, l.addr)
	}
	return out
}

// HTTPAddrs returns the addresses of the dedicated HTTP tarpit listeners.
func (t *Tarpit) HTTPAddrs() []net.Addr {
	var out []net.Addr
	for _, l := range t.httpListeners {
		out = append(out, l.Addr())
	}
	return out
}

func (t *Tarpit) closeListeners() {
	for _, l := range t.sshListeners {
		l.f.Close()
	}
	for _, l := range t.httpListeners {
		l.Close()
	}
}

// Run serves the tarpit listeners and drips lines to trapped clients until
// ctx is done; then it closes every listener, every trapped connection and
// the scanner log. It may be called once; later calls return an error.
func (t *Tarpit) Run(ctx context.Context) error {
	first := false
	t.runOnce.Do(func() { first = true })
	if !first {
		return errors.New("tarpit: Run called twice")
	}
	var wg sync.WaitGroup
	for _, l := range t.sshListeners {
		wg.Add(1)
		go func() { defer wg.Done(); t.acceptLoop(ctx, l) }()
		t.logger.Info("SSH tarpit listening", "address", l.addr.String(), "proxy_protocol", t.cfg.ProxyProtocol)
	}
	for _, l := range t.httpListeners {
		wg.Add(1)
		go func() { defer wg.Done(); t.serveHTTPListener(ctx, l) }()
		t.logger.Info("HTTP tarpit listening", "address", l.Addr().String(), "proxy_protocol", t.cfg.ProxyProtocol)
	}
	if t.log != nil {
		go t.log.run() // stopped by t.log.close below
	}
	s := newScheduler(t)
	s.run(ctx) // returns once ctx is done and every client is closed
	t.closeListeners()
	wg.Wait()
	if t.log != nil {
		t.log.close()
	}
	close(t.done)
	return nil
}

// Done is closed once Run has closed every listener, every trapped
// connection and the scanner log.
func (t *Tarpit) Done() <-chan struct{} { return t.done }

// Snapshot returns the current aggregates.
//
// TrappedSeconds is a Prometheus counter, and a counter that goes down is
// read as a reset (rate() jumps by its whole value). It never does: every
// term is on the monotonic stats clock, and that clock is read under the
// lock, so no client can be counted (trapped) or moved to the closed total
// (untrap) between the reading and the sum. Read before the lock, a client
// started after the reading but counted before the sum would add a
// negative time.
func (t *Tarpit) Snapshot() Snapshot {
	now := t.now()
	s := Snapshot{Protocols: make(map[string]ProtocolStats, len(protocols)), Rejected: make(map[string]uint64, len(rejectReasons))}
	t.mu.Lock()
	nowUS := t.micros()
	for i, p := range protocols {
		c := t.stats[i]
		trapped := c.closedMicros + c.active*nowUS - c.activeStartUS
		s.Protocols[p] = ProtocolStats{
			Connections:    c.connections,
			Active:         c.active,
			TrappedSeconds: float64(trapped) / 1e6,
			BytesSent:      c.bytesSent,
		}
	}
	for _, r := range rejectReasons {
		s.Rejected[r] = t.rejected[r]
	}
	t.mu.Unlock()
	s.UniqueSources24h = t.sources.estimate(now)
	s.UntrustedProxyHeaders = t.untrustedHeaders.Load()
	if t.log != nil {
		s.LogDropped = t.log.dropped.Load()
	}
	return s
}

// micros is the stats clock: microseconds since t.base on Go's monotonic
// clock, which never goes back (the wall clock can: see Snapshot). The
// aggregates keep a sum of the start times of all active clients, and
// active·now less that sum is the time the active ones have been held.
// With a million clients the sum passes the int64 range after about 100
// days; Go's signed arithmetic wraps, so the result is still exact as long
// as the trapped total itself fits (290,000 years).
func (t *Tarpit) micros() int64 { return int64(time.Since(t.base) / time.Microsecond) }

// protoIndex maps a protocol to its slot in stats.
func protoIndex(p uint8) int { return int(p) }

const (
	protoSSH  uint8 = 0
	protoHTTP uint8 = 1
)

// admit decides whether a new client from src may be trapped and, if so,
// counts it as active. countSource is false while the real source is not
// yet known (a PROXY header is awaited); admitSource then completes it.
func (t *Tarpit) admit(src netip.Addr, countSource bool) (ok bool, reason string) {
	src = sourceKey(src)
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.stopped:
		reason = RejectShutdown
	case t.active >= t.cfg.MaxClients:
		reason = RejectMaxClients
	case countSource && t.perSrc[src] >= t.cfg.MaxClientsPerSource:
		reason = RejectPerSource
	default:
		t.active++
		if countSource {
			t.perSrc[src]++
		}
		return true, ""
	}
	t.rejected[reason]++
	return false, reason
}

// sourceKey is what the per-source cap counts: an IPv4 address, or the /64
// an IPv6 address is in (one host usually has a whole /64 to pick from).
func sourceKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.Addr()
	}
	return a
}

// admitSource applies the per-source cap to a client admitted with
// countSource false, once its source is known. On false the client's
// global slot has been released.
func (t *Tarpit) admitSource(src netip.Addr) bool {
	src = sourceKey(src)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.perSrc[src] >= t.cfg.MaxClientsPerSource {
		t.active--
		t.rejected[RejectPerSource]++
		return false
	}
	t.perSrc[src]++
	return true
}

// reject counts a rejection that happened before admission.
func (t *Tarpit) reject(reason string) {
	t.mu.Lock()
	t.rejected[reason]++
	t.mu.Unlock()
}

// release gives back the global slot of a client that never became trapped
// (no PROXY header); its source was not counted.
func (t *Tarpit) releaseUnsourced(reason string) {
	t.mu.Lock()
	t.active--
	t.rejected[reason]++
	t.mu.Unlock()
}

// enqueue hands an admitted client to the scheduler. It never blocks.
func (t *Tarpit) enqueue(c client) bool {
	t.mu.Lock()
	if t.stopped {
		t.mu.Unlock()
		return false
	}
	t.incoming = append(t.incoming, c)
	t.mu.Unlock()
	select {
	case t.wake <- struct{}{}:
	default:
	}
	return true
}

// trapped records that c is now trapped: counted, logged, its source
// added to the 24 h sketch.
func (t *Tarpit) trapped(c *client, now time.Time) {
	t.mu.Lock()
	st := &t.stats[protoIndex(c.proto)]
	st.connections++
	st.active++
	st.activeStartUS += c.startUS
	t.mu.Unlock()
	t.sources.add(now, c.remote.Addr())
	t.logEvent(c, "open", now)
}

// untrap releases a trapped client's slots and moves its time to the
// closed total; the caller closes the socket.
func (t *Tarpit) untrap(c *client, now time.Time) {
	t.mu.Lock()
	st := &t.stats[protoIndex(c.proto)]
	st.active--
	st.activeStartUS -= c.startUS
	// The clock is read under the lock, as Snapshot reads it: a Snapshot
	// between a reading taken before the lock and this update would
	// already have counted more than this adds.
	st.closedMicros += t.micros() - c.startUS
	t.active--
	src := sourceKey(c.remote.Addr())
	if n := t.perSrc[src]; n <= 1 {
		delete(t.perSrc, src)
	} else {
		t.perSrc[src] = n - 1
	}
	t.mu.Unlock()
	t.logEvent(c, "close", now)
}

func (t *Tarpit) logEvent(c *client, event string, now time.Time) {
	if t.log == nil {
		return
	}
	e := logEntry{
		Time:      now,
		Event:     event,
		Protocol:  protocols[c.proto],
		Remote:    c.remote,
		LocalPort: c.localPort,
		// The client keeps only its monotonic start; its wall start is
		// now less the time it has been held, so the logged duration is
		// the elapsed time even if the wall clock was stepped meanwhile.
		Start:     now.Add(-time.Duration(t.micros()-c.startUS) * time.Microsecond),
		BytesSent: c.sent,
	}
	if c.req != nil {
		e.Method, e.Path = c.req.method, c.req.path
	}
	t.log.send(e)
}
