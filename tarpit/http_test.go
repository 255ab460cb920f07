package tarpit

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// serveMux runs an http.Server shaped like the exporter's: /-/healthy
// answers, every other path goes to the tarpit.
func serveMux(t *testing.T, tp *Tarpit) string {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "Healthy\n") })
	mux.Handle("/", tp)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// rawGet sends a request on a fresh connection from src and returns it
// with a reader on its response.
func rawGet(t *testing.T, src, addr, target string) (net.Conn, *bufio.Reader) {
	t.Helper()
	c := dialFrom(t, src, addr)
	if _, err := io.WriteString(c, "GET "+target+" HTTP/1.1\r\nHost: pop\r\nUser-Agent: scanner\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return c, bufio.NewReader(c)
}

func TestHTTPTarpitDripsHeadersEndlessly(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SSHListenAddresses = nil
	tp, stop := startTarpit(t, cfg)
	addr := serveMux(t, tp)
	long := "/wp-login.php?" + strings.Repeat("a", 400)
	c, r := rawGet(t, "127.0.0.11", addr, long)
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	status, err := r.ReadString('\n')
	if err != nil || status != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("status line %q, %v", status, err)
	}
	for i := 0; i < 10; i++ {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("header %d: %v", i, err)
		}
		if line == "\r\n" || !strings.Contains(line, ": ") {
			t.Fatalf("header %d: %q (the headers must never end)", i, line)
		}
	}
	if a := tp.Snapshot().Protocols[ProtoHTTP].Active; a != 1 {
		t.Fatalf("active http = %d, want 1", a)
	}
	stop()
	recs := readLog(t, cfg.LogFile)
	if len(recs) != 2 {
		t.Fatalf("want open and close records, got %+v", recs)
	}
	for _, rec := range recs {
		if rec.Protocol != "http" || rec.Method != "GET" || rec.RemoteAddr != "127.0.0.11" || len(rec.Path) != maxLoggedPath ||
			!strings.HasPrefix(rec.Path, "/wp-login.php?aaa") || rec.LocalPort == 0 {
			t.Fatalf("record %+v: want GET, truncated path, source 127.0.0.11", rec)
		}
	}
}

// TestRealEndpointsAnswerWhileTarpitFull fills the tarpit to max-clients
// through the HTTP path; the server's own endpoint still answers, and the
// next tarpit request is refused at once.
func TestRealEndpointsAnswerWhileTarpitFull(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SSHListenAddresses = nil
	cfg.MaxClients = 40
	cfg.MaxClientsPerSource = 1000
	tp, _ := startTarpit(t, cfg)
	addr := serveMux(t, tp)
	for i := 0; i < cfg.MaxClients; i++ {
		c, r := rawGet(t, "127.0.0.12", addr, "/.env")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := r.ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
			t.Fatalf("client %d: %q %v", i, line, err)
		}
	}
	if a := tp.Snapshot().Protocols[ProtoHTTP].Active; a != int64(cfg.MaxClients) {
		t.Fatalf("active = %d, want %d", a, cfg.MaxClients)
	}
	client := &http.Client{Timeout: 5 * time.Second}
	for i := 0; i < 5; i++ {
		resp, err := client.Get("http://" + addr + "/-/healthy")
		if err != nil {
			t.Fatalf("/-/healthy with the tarpit full: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || string(b) != "Healthy\n" {
			t.Fatalf("/-/healthy: %s %q", resp.Status, b)
		}
	}
	c, _ := rawGet(t, "127.0.0.12", addr, "/admin")
	if !readClosed(c, 2*time.Second) {
		t.Fatal("a request beyond max-clients was held")
	}
	if n := tp.Snapshot().Rejected[RejectMaxClients]; n != 1 {
		t.Fatalf("max_clients rejections = %d, want 1", n)
	}
}

// TestHTTPFallbackForNonHijackable: a ResponseWriter that cannot be
// hijacked (HTTP/2, TLS, middleware) gets a bounded drip in the handler.
func TestHTTPFallbackForNonHijackable(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SSHListenAddresses = nil
	cfg.Interval = time.Millisecond
	tp, _ := startTarpit(t, cfg)
	rec := &flushRecorder{header: http.Header{}}
	req, _ := http.NewRequestWithContext(context.Background(), "GET", "/phpmyadmin/", nil)
	req.RemoteAddr = "127.0.0.13:4242"
	req.RequestURI = "/phpmyadmin/"
	done := make(chan struct{})
	go func() { tp.ServeHTTP(rec, req); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("fallback drip did not end: it must be bounded")
	}
	if rec.code != http.StatusOK || rec.flushes < fallbackLines || len(rec.body) == 0 {
		t.Fatalf("fallback: code %d, %d flushes, %d bytes", rec.code, rec.flushes, len(rec.body))
	}
	s := tp.Snapshot().Protocols[ProtoHTTP]
	if s.Connections != 1 || s.Active != 0 || s.BytesSent != uint64(len(rec.body)) {
		t.Fatalf("snapshot %+v after %d bytes", s, len(rec.body))
	}
}

type flushRecorder struct {
	header  http.Header
	code    int
	body    []byte
	flushes int
}

func (f *flushRecorder) Header() http.Header { return f.header }
func (f *flushRecorder) WriteHeader(c int)   { f.code = c }
func (f *flushRecorder) Write(b []byte) (int, error) {
	if f.code == 0 {
		f.code = 200
	}
	f.body = append(f.body, b...)
	return len(b), nil
}
func (f *flushRecorder) FlushError() error { f.flushes++; return nil }

// TestDedicatedHTTPListenerBoundsPending: on a dedicated HTTP tarpit
// listener, connections that have not sent their request yet are capped too
// (each holds an HTTP server goroutine), and a connection handed to the
// scheduler gives its pending slot back.
func TestDedicatedHTTPListenerBoundsPending(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SSHListenAddresses = nil
	cfg.HTTPListenAddresses = []string{"127.0.0.1:0"}
	cfg.MaxClients = 4
	cfg.MaxClientsPerSource = 100
	tp, _ := startTarpit(t, cfg)
	addr := tp.HTTPAddrs()[0].String()
	var idle []net.Conn
	for i := 0; i < cfg.MaxClients; i++ {
		idle = append(idle, dialFrom(t, "127.0.0.17", addr)) // sends nothing
	}
	extra := dialFrom(t, "127.0.0.17", addr)
	if !readClosed(extra, 2*time.Second) {
		t.Fatal("a connection past the pending cap was held")
	}
	if n := tp.Snapshot().Rejected[RejectMaxClients]; n != 1 {
		t.Fatalf("max_clients rejections = %d, want 1", n)
	}
	// The idle ones now ask for something: they are trapped and their
	// pending slots are free again.
	for i, c := range idle {
		if _, err := io.WriteString(c, "GET /.git/config HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "HTTP/1.1 200 OK\r\n" {
			t.Fatalf("client %d: %q %v", i, line, err)
		}
	}
	if a := tp.Snapshot().Protocols[ProtoHTTP].Active; a != int64(cfg.MaxClients) {
		t.Fatalf("active = %d, want %d", a, cfg.MaxClients)
	}
	// Full now by trapped clients: a new request is refused by ServeHTTP.
	c, _ := rawGet(t, "127.0.0.17", addr, "/wp-admin/")
	if !readClosed(c, 2*time.Second) {
		t.Fatal("a request past max-clients was held")
	}
	if n := tp.Snapshot().Rejected[RejectMaxClients]; n != 2 {
		t.Fatalf("max_clients rejections = %d, want 2", n)
	}
}
