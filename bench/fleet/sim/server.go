package sim

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Server serves every POP of a fleet on its own loopback address, and
// closes a POP's listener (and the connections it holds) while the POP is
// down, so Prometheus sees what it sees of a dead POP: connection refused.
type Server struct {
	fleet *Fleet
	srv   *http.Server
	byIP  map[[4]byte]*POP

	syncMu    sync.Mutex // one sync at a time (ticker and control API)
	mu        sync.Mutex
	listeners map[int]net.Listener
	conns     map[int]map[net.Conn]struct{}
	errs      chan error
	scrapes   atomic.Int64
}

// Scrapes is the number of /metrics answers served.
func (s *Server) Scrapes() int64 { return s.scrapes.Load() }

type popKey struct{}

// NewServer prepares the fleet's listeners; Run opens them.
func NewServer(f *Fleet) *Server {
	s := &Server{fleet: f, byIP: map[[4]byte]*POP{}, listeners: map[int]net.Listener{},
		conns: map[int]map[net.Conn]struct{}{}, errs: make(chan error, 1)}
	for _, p := range f.POPs {
		s.byIP[p.Addr.Addr().As4()] = p
	}
	s.srv = &http.Server{
		Handler:           s,
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			if a, ok := c.LocalAddr().(*net.TCPAddr); ok {
				if p := s.byIP[[4]byte(a.IP.To4())]; p != nil {
					return context.WithValue(ctx, popKey{}, p)
				}
			}
			return ctx
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			a, ok := c.LocalAddr().(*net.TCPAddr)
			if !ok {
				return
			}
			p := s.byIP[[4]byte(a.IP.To4())]
			if p == nil {
				return
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			switch st {
			case http.StateNew:
				if s.conns[p.Index] == nil {
					s.conns[p.Index] = map[net.Conn]struct{}{}
				}
				s.conns[p.Index][c] = struct{}{}
			case http.StateClosed, http.StateHijacked:
				delete(s.conns[p.Index], c)
			}
		},
	}
	return s
}

// ServeHTTP answers /metrics for the POP whose address the connection
// reached.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, _ := r.Context().Value(popKey{}).(*POP)
	if p == nil {
		http.Error(w, "no POP on this address", http.StatusNotFound)
		return
	}
	switch r.URL.Path {
	case "/metrics":
	case "/-/healthy", "/-/ready":
		w.Write([]byte("OK\n"))
		return
	default:
		http.NotFound(w, r)
		return
	}
	now := time.Now()
	if s.fleet.Down(p, now) {
		// Between the schedule turning and the next sync: drop the
		// connection as a dead host would.
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				c.Close()
				return
			}
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	bp := bufPool.Get().(*[]byte)
	b := s.fleet.AppendText((*bp)[:0], p, now)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.Write(b)
	*bp = b
	bufPool.Put(bp)
	s.scrapes.Add(1)
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// Run opens every POP's listener that is up, keeps the listeners in step
// with the POPs' schedules once a second, and returns when ctx ends.
func (s *Server) Run(ctx context.Context) error {
	if err := s.sync(); err != nil {
		s.closeAll()
		return err
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			s.closeAll()
			sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			s.srv.Shutdown(sctx)
			return nil
		case err := <-s.errs:
			s.closeAll()
			return err
		case <-tick.C:
			if err := s.sync(); err != nil {
				s.closeAll()
				return err
			}
		}
	}
}

// Sync applies the POPs' state now (after SetForcedDown, without waiting
// for the next tick).
func (s *Server) Sync() error { return s.sync() }

func (s *Server) sync() error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	now := time.Now()
	for _, p := range s.fleet.POPs {
		down := s.fleet.Down(p, now)
		s.mu.Lock()
		l := s.listeners[p.Index]
		s.mu.Unlock()
		switch {
		case down && l != nil:
			l.Close()
			s.mu.Lock()
			delete(s.listeners, p.Index)
			for c := range s.conns[p.Index] {
				c.Close()
			}
			s.mu.Unlock()
		case !down && l == nil:
			nl, err := net.Listen("tcp", p.Addr.String())
			if err != nil {
				return fmt.Errorf("POP %s: %w", p.Name, err)
			}
			s.mu.Lock()
			s.listeners[p.Index] = nl
			s.mu.Unlock()
			go func() {
				if err := s.srv.Serve(nl); err != nil && !errors.Is(err, net.ErrClosed) && !errors.Is(err, http.ErrServerClosed) {
					select {
					case s.errs <- err:
					default:
					}
				}
			}()
		}
	}
	return nil
}

func (s *Server) closeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, l := range s.listeners {
		l.Close()
		delete(s.listeners, i)
	}
}

// ControlHandler is the simulator's control API, on its own address:
//
//	GET  /targets                      file_sd YAML of every POP
//	GET  /state                        JSON: POPs up and down now
//	POST /down?region=R&count=N        force N POPs of region R down (all if count is 0)
//	POST /up                           end every forced outage
func (s *Server) ControlHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /targets", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/yaml")
		w.Write(s.fleet.Targets())
	})
	mux.HandleFunc("GET /state", func(w http.ResponseWriter, r *http.Request) {
		now := time.Now()
		var st struct {
			Up, Down int
			DownPOPs []string `json:"down_pops"`
		}
		for _, p := range s.fleet.POPs {
			if s.fleet.Down(p, now) {
				st.Down++
				st.DownPOPs = append(st.DownPOPs, p.Name)
			} else {
				st.Up++
			}
		}
		json.NewEncoder(w).Encode(st)
	})
	mux.HandleFunc("POST /down", func(w http.ResponseWriter, r *http.Request) {
		region := r.URL.Query().Get("region")
		count, _ := strconv.Atoi(r.URL.Query().Get("count"))
		var names []string
		for _, p := range s.fleet.POPs {
			if region != "" && p.Region != region {
				continue
			}
			if count > 0 && len(names) >= count {
				break
			}
			p.SetForcedDown(true)
			names = append(names, p.Name)
		}
		if len(names) == 0 {
			http.Error(w, "no POP in region "+strconv.Quote(region), http.StatusBadRequest)
			return
		}
		if err := s.sync(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"at": time.Now().UTC().Format(time.RFC3339Nano), "down": names})
	})
	mux.HandleFunc("POST /up", func(w http.ResponseWriter, r *http.Request) {
		for _, p := range s.fleet.POPs {
			p.SetForcedDown(false)
		}
		if err := s.sync(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(map[string]any{"at": time.Now().UTC().Format(time.RFC3339Nano)})
	})
	return mux
}
