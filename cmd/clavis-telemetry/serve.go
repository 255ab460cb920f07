package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"sync"
	"time"
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
func tarpitFront(inner, trap http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isServedPath(r.URL.Path) {
			inner.ServeHTTP(w, r)
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

// serveAll runs one http.Server per listener (made by newServer) with serve,
// until ctx is done or one of them fails; then it shuts them all down
// gracefully. One server per listener keeps each listener's handler its own.
func serveAll(ctx context.Context, listeners []net.Listener, newServer func() *http.Server,
	serve func(net.Listener, *http.Server) error) error {
	servers := make([]*http.Server, len(listeners))
	errc := make(chan error, len(listeners))
	for i, l := range listeners {
		srv := newServer()
		servers[i] = srv
		go func() { errc <- serve(l, srv) }()
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
func listenTCP(addresses []string) ([]net.Listener, error) {
	var ls []net.Listener
	for _, addr := range addresses {
		l, err := net.Listen("tcp", addr)
		if err != nil {
			for _, o := range ls {
				o.Close()
			}
			return nil, err
		}
		ls = append(ls, l)
	}
	return ls, nil
}
