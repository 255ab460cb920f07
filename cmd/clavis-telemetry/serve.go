package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/alecthomas/kingpin/v2"

	"github.com/clavitor/clavis-telemetry/internal/connlimit"
	"github.com/clavitor/clavis-telemetry/internal/logscrub"
)

// isServedPath reports whether path is one of the exporter's own endpoints.
// Every other path belongs to the HTTP tarpit.
func isServedPath(path string) bool {
	switch path {
	case "/", "/metrics", "/-/healthy", "/-/ready":
		return true
	}
	return false
}

// tarpitFront hands every request for a path the exporter does not serve to
// the tarpit before inner sees it. inner may be exporter-toolkit's handler,
// which demands basic auth on every path: a scanner never has credentials,
// and without the front it would get a quick 401 instead of being held.
// Requests for the exporter's own paths are protected from eviction by the
// connection cap while they run; tarpit requests are not (they are
// scanners, and a TLS one is held in its handler for minutes).
func tarpitFront(inner, trap http.Handler, cap *connlimit.Listener) http.Handler {
	served := cap.Protect(inner)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isServedPath(r.URL.Path) {
			served.ServeHTTP(w, r)
			return
		}
		trap.ServeHTTP(w, r)
	})
}

// frontListener runs install at its first Accept. exporter-toolkit's Serve
// wraps server.Handler with its auth handler and only then starts accepting,
// on the same goroutine, before any request goroutine exists: installing the
// tarpit front there puts it around the auth check without a data race.
type frontListener struct {
	net.Listener
	once    sync.Once
	install func()
}

func (l *frontListener) Accept() (net.Conn, error) {
	l.once.Do(l.install)
	return l.Listener.Accept()
}

// shutdownTimeout bounds the graceful shutdown of the web listeners.
const shutdownTimeout = 5 * time.Second

// webLimits are the main listener's timeouts and connection cap. Without
// them (as before issue 13) 20,000 idle keep-alive connections used every
// file descriptor and /metrics stopped answering.
type webLimits struct {
	readHeaderTimeout time.Duration
	readTimeout       time.Duration
	writeTimeout      time.Duration
	idleTimeout       time.Duration
	maxConnections    int
	maxConnectionRate int // new connections per second and source
}

// boundedDuration is a duration flag's bounds, checked after parsing so
// the error names the flag (exit 2).
type boundedDuration struct {
	name     string
	v        *time.Duration
	min, max time.Duration
}

func (b boundedDuration) check() error {
	if *b.v < b.min || *b.v > b.max {
		return fmt.Errorf("--%s=%s: must be between %s and %s", b.name, *b.v, b.min, b.max)
	}
	return nil
}

// addWebLimitFlags registers the main listener's limits. They suit a
// Prometheus scrape: the request (a GET, no body) arrives at once after
// the connection, the answer is written within the scrape timeout (10 s by
// default in Prometheus, above --collector.timeout), and the connection is
// reused at the next scrape (15 s here, 1 m by Prometheus's default).
func addWebLimitFlags(app *kingpin.Application) (*webLimits, func() error) {
	l := &webLimits{}
	durations := []boundedDuration{
		{"web.read-header-timeout", &l.readHeaderTimeout, 100 * time.Millisecond, time.Minute},
		{"web.read-timeout", &l.readTimeout, time.Second, 10 * time.Minute},
		{"web.write-timeout", &l.writeTimeout, time.Second, 10 * time.Minute},
		{"web.idle-timeout", &l.idleTimeout, time.Second, time.Hour},
	}
	app.Flag(durations[0].name, "Time a client has to complete the TLS handshake and send its request headers on --web.listen-address (Go uses the smallest read or write timeout as the TLS handshake deadline).").
		Default("5s").DurationVar(&l.readHeaderTimeout)
	app.Flag(durations[1].name, "Time a client has to send its whole request on --web.listen-address.").
		Default("10s").DurationVar(&l.readTimeout)
	app.Flag(durations[2].name, "Time the exporter has to write a response on --web.listen-address; keep it above the scrape's duration (--collector.timeout).").
		Default("30s").DurationVar(&l.writeTimeout)
	app.Flag(durations[3].name, "Close a keep-alive connection on --web.listen-address idle for this long; above the scrape interval, Prometheus reuses its connection.").
		Default("2m").DurationVar(&l.idleTimeout)
	app.Flag("web.max-connections", "Open connections allowed on each --web.listen-address (8 to 65536). Beyond it a new connection closes the oldest idle or pre-request connection of the source holding the most, so a flood of idle connections cannot lock a scraper out.").
		Default("256").IntVar(&l.maxConnections)
	app.Flag("web.max-connection-rate", "New connections per second one source (IPv4 address, IPv6 /64) may open on each --web.listen-address, in bursts of four times as many (1 to 10000); beyond it a new connection is closed before its TLS handshake. A scraper opens one per scrape at most.").
		Default("10").IntVar(&l.maxConnectionRate)
	check := func() error {
		var errs []error
		for _, d := range durations {
			if err := d.check(); err != nil {
				errs = append(errs, err)
			}
		}
		if l.readTimeout < l.readHeaderTimeout {
			errs = append(errs, fmt.Errorf("--web.read-timeout=%s: must not be shorter than --web.read-header-timeout=%s", l.readTimeout, l.readHeaderTimeout))
		}
		if l.maxConnections < 8 || l.maxConnections > 65536 {
			errs = append(errs, fmt.Errorf("--web.max-connections=%d: must be between 8 and 65536", l.maxConnections))
		}
		if l.maxConnectionRate < 1 || l.maxConnectionRate > 10000 {
			errs = append(errs, fmt.Errorf("--web.max-connection-rate=%d: must be between 1 and 10000", l.maxConnectionRate))
		}
		return errors.Join(errs...)
	}
	return l, check
}

// checkListenAddresses refuses an empty address or port: net.Listen would
// take a random port on every interface, which nobody asks for on purpose.
// An explicit port 0 (tests) is allowed.
func checkListenAddresses(flag string, addresses []string) error {
	if len(addresses) == 0 {
		return fmt.Errorf("--%s: no address given", flag)
	}
	for _, a := range addresses {
		if a == "" {
			return fmt.Errorf("--%s is empty: give host:port or :port (e.g. %s)", flag, DefaultListenAddress)
		}
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			return fmt.Errorf("--%s=%q: want host:port or :port (e.g. %s)", flag, a, DefaultListenAddress)
		} else if _, err := net.LookupPort("tcp", port); err != nil {
			// Refused here, not by net.Listen once the collectors run.
			return fmt.Errorf("--%s=%q: %v", flag, a, err)
		}
	}
	return nil
}

// webServer serves the main listeners: the exporter's endpoints and the
// HTTP tarpit for every other path, hardened by webLimits.
type webServer struct {
	handler http.Handler // the mux
	trap    http.Handler
	limits  webLimits
	logger  *slog.Logger
}

// serveAll runs one http.Server per listener with serve (which may wrap the
// handler, as exporter-toolkit's auth does), until ctx is done or one of
// them fails; then it shuts them all down gracefully. One server per
// listener keeps each listener's handler and connection cap its own.
func (ws *webServer) serveAll(ctx context.Context, listeners []net.Listener, serve func(net.Listener, *http.Server) error) error {
	servers := make([]*http.Server, len(listeners))
	errc := make(chan error, len(listeners))
	for i, l := range listeners {
		capped := connlimit.NewListener(l, ws.limits.maxConnections, float64(ws.limits.maxConnectionRate), ws.logger.With("address", l.Addr().String()))
		srv := &http.Server{
			Handler:           ws.handler,
			ReadHeaderTimeout: ws.limits.readHeaderTimeout,
			ReadTimeout:       ws.limits.readTimeout,
			WriteTimeout:      ws.limits.writeTimeout,
			IdleTimeout:       ws.limits.idleTimeout,
			// Scrapers send a few hundred bytes of headers; scanners get no
			// more than this buffered before the tarpit takes them.
			MaxHeaderBytes: 8 << 10,
			ConnContext:    capped.ConnContext,
			ErrorLog:       logscrub.ServerErrorLog(ws.logger),
		}
		servers[i] = srv
		front := &frontListener{Listener: capped, install: func() { srv.Handler = tarpitFront(srv.Handler, ws.trap, capped) }}
		go func() { errc <- serve(front, srv) }()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, srv := range servers {
		_ = srv.Shutdown(shutdownCtx)
	}
	for _, l := range listeners {
		l.Close() // a listener whose Serve never started
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// listenTCP opens every address, closing what it opened if one fails.
// listenError is a failure to listen on one of the agent's own addresses
// (in use, not on this host). It is logged under listenAddressKey: the
// log scrubber leaves that one, and takes every address out of err.
type listenError struct {
	addr string
	err  error
}

func (e *listenError) Error() string { return "listen on " + e.addr + ": " + e.err.Error() }
func (e *listenError) Unwrap() error { return e.err }

func listenTCP(addresses []string) ([]net.Listener, error) {
	var ls []net.Listener
	for _, addr := range addresses {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, o := range ls {
				o.Close()
			}
			return nil, &listenError{addr: addr, err: err}
		}
		ls = append(ls, l)
	}
	return ls, nil
}
