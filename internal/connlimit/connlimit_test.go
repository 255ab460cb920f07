package connlimit

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

// serve runs an http.Server on a capped loopback listener: /ok answers at
// once, /hold is protected and blocks until release is closed.
func serve(t *testing.T, max int) (*Listener, string, chan struct{}, chan struct{}) {
	return serveRate(t, max, 0)
}

func serveRate(t *testing.T, max int, rate float64) (*Listener, string, chan struct{}, chan struct{}) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(raw, max, rate, nil)
	release := make(chan struct{})
	held := make(chan struct{}, 64)
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("/hold", func(w http.ResponseWriter, _ *http.Request) {
		held <- struct{}{}
		<-release
		io.WriteString(w, "held\n")
	})
	srv := &http.Server{Handler: l.Protect(mux), ConnContext: l.ConnContext}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l, raw.Addr().String(), release, held
}

// dialFrom connects from a given loopback source address.
func dialFrom(t *testing.T, src, addr string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer waits (a liveness bound, not a timing check) for the
// server to close c.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || err != nil && !isTimeout(err)
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// get sends one request on c and reads the status line.
func get(t *testing.T, c net.Conn, path string) (string, error) {
	t.Helper()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.Status + " " + string(b), err
}

// waitOpen waits until the listener counts n connections (accepting is
// asynchronous to the client's dial).
func waitOpen(t *testing.T, l *Listener, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for l.Open() != n {
		if time.Now().After(deadline) {
			t.Fatalf("listener counts %d open connections, want %d", l.Open(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCapEvictsOldestIdle(t *testing.T) {
	l, addr, _, _ := serve(t, 4)
	var conns []net.Conn
	for i := 0; i < 10; i++ {
		conns = append(conns, dialFrom(t, "127.0.0.2", addr))
		waitOpen(t, l, min(i+1, 4))
	}
	for i, c := range conns[:6] {
		if !closedByServer(c) {
			t.Errorf("connection %d of 10 (cap 4) still open: the oldest should have been evicted", i)
		}
	}
	for i, c := range conns[6:] {
		if s, err := get(t, c, "/ok"); err != nil || !strings.HasPrefix(s, "200") {
			t.Errorf("connection %d (among the 4 newest) does not serve: %q %v", 6+i, s, err)
		}
	}
	if n := l.Open(); n > 4 {
		t.Errorf("%d connections open, cap 4", n)
	}
}

// A scraper's keep-alive connection outlives a flood from another source.
func TestFloodEvictsItsOwnSourceFirst(t *testing.T) {
	l, addr, _, _ := serve(t, 8)
	scraper := dialFrom(t, "127.0.0.1", addr)
	if s, err := get(t, scraper, "/ok"); err != nil || !strings.HasPrefix(s, "200") {
		t.Fatalf("scrape: %q %v", s, err)
	}
	var flood []net.Conn
	for i := 0; i < 200; i++ {
		flood = append(flood, dialFrom(t, "127.0.0."+string(rune('2'+i%3)), addr))
	}
	waitOpen(t, l, 8)
	// The flood's oldest connections were evicted, not the scraper's.
	if !closedByServer(flood[0]) {
		t.Error("the flood's oldest connection is still open")
	}
	if s, err := get(t, scraper, "/ok"); err != nil || !strings.HasPrefix(s, "200") {
		t.Errorf("scraper's idle keep-alive connection was evicted by the flood: %q %v", s, err)
	}
	// A new scraper connection is served too.
	if s, err := get(t, dialFrom(t, "127.0.0.9", addr), "/ok"); err != nil || !strings.HasPrefix(s, "200") {
		t.Errorf("new scraper connection during the flood: %q %v", s, err)
	}
}

// A request inside a protected handler keeps its connection; when every
// connection is protected, a new one is refused rather than cutting one.
func TestProtectedRequestIsNotEvicted(t *testing.T) {
	l, addr, release, held := serve(t, 2)
	type result struct {
		s   string
		err error
	}
	results := make(chan result, 2)
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		c := dialFrom(t, "127.0.0.2", addr)
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := get(t, c, "/hold")
			results <- result{s, err}
		}()
		<-held
	}
	extra := dialFrom(t, "127.0.0.2", addr)
	if !closedByServer(extra) {
		t.Error("a connection beyond the cap was kept although every counted one is in a protected request")
	}
	if n := l.Open(); n != 2 {
		t.Errorf("%d open, want the 2 protected ones", n)
	}
	close(release)
	wg.Wait()
	for i := 0; i < 2; i++ {
		if r := <-results; r.err != nil || !strings.HasPrefix(r.s, "200") {
			t.Errorf("protected request cut: %q %v", r.s, r.err)
		}
	}
}

// Closing frees the place; a server shutdown leaves nothing counted.
func TestCloseFreesPlace(t *testing.T) {
	l, addr, _, _ := serve(t, 3)
	a := dialFrom(t, "127.0.0.2", addr)
	b := dialFrom(t, "127.0.0.3", addr)
	waitOpen(t, l, 2)
	a.Close()
	waitOpen(t, l, 1)
	b.Close()
	waitOpen(t, l, 0)
	if len(l.sources) != 0 || len(l.byIdle) != 0 {
		t.Errorf("sources left after every connection closed: %d, heap %d", len(l.sources), len(l.byIdle))
	}
}

func TestIPv6SourcesGroupedBy64(t *testing.T) {
	a := sourceKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:aaaa::1")})
	b := sourceKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:2:bbbb::9")})
	c := sourceKey(&net.TCPAddr{IP: net.ParseIP("2001:db8:1:3::1")})
	if a != b || a == c {
		t.Errorf("IPv6 keys: %v %v %v; want one /64 per key", a, b, c)
	}
	if k := sourceKey(&net.TCPAddr{IP: net.ParseIP("::ffff:192.0.2.1")}); !k.Is4() {
		t.Errorf("v4-mapped key %v not unmapped", k)
	}
}

// A source over its connection rate has new connections closed at once;
// another source is not affected; the bucket refills with time.
func TestSourceRate(t *testing.T) {
	l, addr, _, _ := serveRate(t, 100, 1) // 1/s, bursts of 4
	clock := time.Unix(1000, 0)
	var mu sync.Mutex
	l.mu.Lock()
	l.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	l.mu.Unlock()
	var kept []net.Conn
	for i := 0; i < 4; i++ {
		kept = append(kept, dialFrom(t, "127.0.0.2", addr))
	}
	waitOpen(t, l, 4)
	if !closedByServer(dialFrom(t, "127.0.0.2", addr)) {
		t.Error("a fifth connection within the same instant was kept (burst 4)")
	}
	other := dialFrom(t, "127.0.0.3", addr)
	if s, err := get(t, other, "/ok"); err != nil || !strings.HasPrefix(s, "200") {
		t.Errorf("another source was limited too: %q %v", s, err)
	}
	mu.Lock()
	clock = clock.Add(2 * time.Second)
	mu.Unlock()
	if s, err := get(t, dialFrom(t, "127.0.0.2", addr), "/ok"); err != nil || !strings.HasPrefix(s, "200") {
		t.Errorf("the bucket did not refill: %q %v", s, err)
	}
	for _, c := range kept {
		if s, err := get(t, c, "/ok"); err != nil || !strings.HasPrefix(s, "200") {
			t.Errorf("an admitted connection was cut: %q %v", s, err)
		}
	}
}

func TestBucketsBounded(t *testing.T) {
	l := NewListener(nil, 10, 1, nil)
	now := time.Unix(0, 0)
	l.now = func() time.Time { return now }
	for i := 0; i < 3*maxBuckets; i++ {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		now = now.Add(time.Millisecond)
	}
	if len(l.buckets) > maxBuckets {
		t.Errorf("%d buckets kept, want at most %d", len(l.buckets), maxBuckets)
	}
}
