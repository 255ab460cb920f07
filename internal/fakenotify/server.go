package fakenotify

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Server serves a handler on a loopback address and can be taken down
// (the listener is closed, so clients get "connection refused") and brought
// back up on the same address.
type Server struct {
	handler http.Handler
	addr    string

	mu  sync.Mutex
	srv *http.Server
}

// StartServer listens on addr ("127.0.0.1:0" for any free port) and serves h.
func StartServer(h http.Handler, addr string) (*Server, error) {
	s := &Server{handler: h, addr: addr}
	if err := s.Up(); err != nil {
		return nil, err
	}
	return s, nil
}

// Addr is the "host:port" the server listens on.
func (s *Server) Addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// URL is "http://" + Addr().
func (s *Server) URL() string { return "http://" + s.Addr() }

// Up starts listening again (no-op when already up). It retries briefly if
// the port is still held by the closed listener.
func (s *Server) Up() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		return nil
	}
	var l net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if l, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		return err
	}
	s.addr = l.Addr().String()
	s.srv = &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(l)
	return nil
}

// Down closes the listener and every open connection: new connections are
// refused until Up.
func (s *Server) Down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	}
}

// Close is Down.
func (s *Server) Close() { s.Down() }

// Mux routes /api/push/ to kuma and everything else to ntfy (either may be
// nil), and adds control endpoints for scripts:
//
//	GET  /-/fake/ntfy/messages          accepted ntfy messages (JSON array)
//	GET  /-/fake/kuma/pushes            accepted Kuma pushes (JSON array)
//	POST /-/fake/ntfy/mode?mode=M       M = up, unavailable (503), hang
//	POST /-/fake/kuma/mode?mode=M       M = up, unavailable (503)
//	POST /-/fake/ntfy/force429?n=N      the next N publishes answer 429
func Mux(ntfy *Ntfy, kuma *Kuma) http.Handler {
	mux := http.NewServeMux()
	writeJSON := func(w http.ResponseWriter, v any) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /-/fake/ntfy/messages", func(w http.ResponseWriter, r *http.Request) {
		msgs := []Message{}
		if ntfy != nil {
			msgs = append(msgs, ntfy.Messages()...)
		}
		writeJSON(w, msgs)
	})
	mux.HandleFunc("GET /-/fake/kuma/pushes", func(w http.ResponseWriter, r *http.Request) {
		ps := []Push{}
		if kuma != nil {
			ps = append(ps, kuma.Pushes()...)
		}
		writeJSON(w, ps)
	})
	parseMode := func(w http.ResponseWriter, r *http.Request) (Mode, bool) {
		switch r.URL.Query().Get("mode") {
		case "up":
			return Up, true
		case "unavailable":
			return Unavailable, true
		case "hang":
			return Hang, true
		}
		http.Error(w, "mode must be up, unavailable or hang", http.StatusBadRequest)
		return Up, false
	}
	mux.HandleFunc("POST /-/fake/ntfy/mode", func(w http.ResponseWriter, r *http.Request) {
		if m, ok := parseMode(w, r); ok && ntfy != nil {
			ntfy.SetMode(m)
		}
	})
	mux.HandleFunc("POST /-/fake/kuma/mode", func(w http.ResponseWriter, r *http.Request) {
		if m, ok := parseMode(w, r); ok && kuma != nil {
			kuma.SetMode(m)
		}
	})
	mux.HandleFunc("POST /-/fake/ntfy/force429", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("n"))
		if err != nil || n < 0 {
			http.Error(w, "n must be a non-negative integer", http.StatusBadRequest)
			return
		}
		if ntfy != nil {
			ntfy.Force429(n)
		}
	})
	if kuma != nil {
		mux.Handle("/api/push/", kuma)
	}
	if ntfy != nil {
		mux.Handle("/", ntfy)
	}
	return mux
}

// Serve runs a fake ntfy and a fake Kuma on one loopback address until ctx
// ends, printing every accepted message and push as one JSON line to out.
// addr must be a loopback address.
func Serve(ctx context.Context, addr string, ntfy *Ntfy, kuma *Kuma, out io.Writer) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("fakenotify: refusing to listen on non-loopback address %q", addr)
	}
	var mu sync.Mutex
	print := func(kind string, v any) {
		b, _ := json.Marshal(v)
		mu.Lock()
		fmt.Fprintf(out, "%s %s\n", kind, strings.TrimSpace(string(b)))
		mu.Unlock()
	}
	if ntfy != nil {
		ntfy.OnMessage(func(m Message) { print("ntfy", m) })
	}
	if kuma != nil {
		kuma.OnPush(func(p Push) { print("kuma", p) })
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: Mux(ntfy, kuma), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
