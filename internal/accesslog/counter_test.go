package accesslog

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 11, 29, 2, 0, 0, 0, time.UTC)

func fixedNow() time.Time { return testNow }

func mustRoutes(t testing.TB, specs ...string) []Route {
	t.Helper()
	var out []Route
	for _, s := range specs {
		r, err := ParseRoute(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

func newTestCounter(t testing.TB, opts Options) *Counter {
	t.Helper()
	if opts.Now == nil {
		opts.Now = fixedNow
	}
	c, err := NewCounter(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func requestCount(s Snapshot, method, code, route string) (uint64, bool) {
	for _, r := range s.Requests {
		if r.Method == method && r.Code == code && r.Route == route {
			return r.Count, true
		}
	}
	return 0, false
}

func TestCounterCounts(t *testing.T) {
	t.Parallel()
	c := newTestCounter(t, Options{Routes: mustRoutes(t, `vault=^/api/v1/vault/`, `health=^/(healthz|ping)$`, `static=^/static/.*`)})
	st := c.NewStream()
	log := strings.Join([]string{
		`192.0.2.1 - - [29/Nov/2026:02:00:00 +0000] "GET /api/v1/vault/abc HTTP/1.1" 200 100 "-" "ua" 0.003`,
		`192.0.2.2 - - [29/Nov/2026:02:00:01 +0000] "GET /api/v1/vault/def?x HTTP/1.1" 500 5 "-" "ua" 0.2`,
		`192.0.2.1 - - [29/Nov/2026:02:00:02 +0000] "GET /healthz HTTP/1.1" 200 2 "-" "ua" 0.001`,
		`192.0.2.3 - - [29/Nov/2026:02:00:03 +0000] "BREW /healthz HTTP/1.1" 418 0 "-" "ua" 20.000`,
		`{"remote_addr":"::ffff:192.0.2.3","request_method":"POST","request_uri":"/login","status":302,"body_bytes_sent":0}`,
		`garbage`,
		``,
		`{"status":`,
		`192.0.2.9 - - [29/Nov/2026:02:00:04 +0000] "GET /static/app.js HTTP/1.1" 304 0 "-" "ua"`,
		`192.0.2.9 - - [29/Nov/2026:02:00:05 +0000] "GET /api/v1/vaultx HTTP/1.1" 999 7 "-" "ua"`,
	}, "\r\n") + "\n"
	if _, err := st.Write([]byte(log)); err != nil {
		t.Fatal(err)
	}
	s := c.Snapshot(testNow)
	want := map[[3]string]uint64{
		{"GET", "2xx", "vault"}:    1,
		{"GET", "5xx", "vault"}:    1,
		{"GET", "2xx", "health"}:   1,
		{"other", "4xx", "health"}: 1,
		{"POST", "3xx", "other"}:   1,
		{"GET", "3xx", "static"}:   1,
		{"GET", "other", "other"}:  1,
		{"GET", "1xx", "vault"}:    0, // zero series of a seen (method, route)
	}
	for k, v := range want {
		got, ok := requestCount(s, k[0], k[1], k[2])
		if !ok || got != v {
			t.Errorf("requests%v = %d (present %v), want %d", k, got, ok, v)
		}
	}
	if _, ok := requestCount(s, "PUT", "2xx", "vault"); ok {
		t.Error("unseen (method, route) pair exported")
	}
	if len(s.Requests) != 6*6 { // six (method, route) pairs seen × six code classes
		t.Errorf("%d request series, want 36", len(s.Requests))
	}
	if s.Lines["parsed"] != 7 || s.Lines["malformed"] != 2 || s.Lines["too_long"] != 0 {
		t.Errorf("lines %v", s.Lines)
	}
	if s.ResponseBytes != 114 {
		t.Errorf("bytes %d, want 114", s.ResponseBytes)
	}
	if s.UniqueIPs24h != 4 || s.UniqueIPs1h != 4 {
		t.Errorf("unique IPs %d/%d, want 4 (192.0.2.3 and its v4-mapped form count once)", s.UniqueIPs24h, s.UniqueIPs1h)
	}
	if s.LastLineTimestamp != 1795917605 {
		t.Errorf("last line timestamp %v", s.LastLineTimestamp)
	}
	hist := map[string]Histogram{}
	for _, h := range s.Durations {
		hist[h.Route] = h
	}
	if h := hist["vault"]; h.Count != 2 || h.Sum != 0.203 || h.Cumulative[0] != 1 || h.Cumulative[5] != 2 {
		t.Errorf("vault histogram %+v", h)
	}
	if h := hist["health"]; h.Count != 2 || h.Cumulative[len(h.Cumulative)-1] != 1 {
		t.Errorf("health histogram %+v (20 s is above the last bound)", h)
	}
	if _, ok := hist["static"]; ok {
		t.Error("histogram for a route without request times")
	}
}

func TestStreamPartialAndLongLines(t *testing.T) {
	t.Parallel()
	c := newTestCounter(t, Options{})
	st := c.NewStream()
	line := `192.0.2.1 - - [29/Nov/2026:02:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"` + "\n"
	// A line split over writes counts once, when complete.
	st.Write([]byte(line[:20]))
	if s := c.Snapshot(testNow); s.Lines["parsed"] != 0 {
		t.Fatalf("partial line counted: %v", s.Lines)
	}
	st.Write([]byte(line[20:]))
	// A line over 64 KiB, in pieces, then a good line.
	long := bytes.Repeat([]byte("x"), MaxLineBytes+10)
	st.Write(long[:1000])
	st.Write(long[1000:])
	st.Write([]byte("tail of the long line\n"))
	st.Write([]byte(line))
	// Exactly at the limit is still a line (malformed here), one over is not.
	st.Write(append(bytes.Repeat([]byte("y"), MaxLineBytes), '\n'))
	st.Write(append(bytes.Repeat([]byte("z"), MaxLineBytes+1), '\n'))
	// Binary garbage and invalid UTF-8.
	st.Write([]byte("\x00\x01\xff\xfe\xc3\x28\n\xf0\x28\x8c\xbc garbage\n"))
	s := c.Snapshot(testNow)
	if s.Lines["parsed"] != 2 || s.Lines["too_long"] != 2 || s.Lines["malformed"] != 3 {
		t.Fatalf("lines %v, want parsed 2, too_long 2, malformed 3", s.Lines)
	}
	// An unfinished line at the end of a file that goes away is malformed.
	st.Write([]byte(line[:30]))
	st.Discard()
	if s := c.Snapshot(testNow); s.Lines["malformed"] != 4 {
		t.Fatalf("lines %v after Discard", s.Lines)
	}
}

func TestStreamClearsCountedBytes(t *testing.T) {
	t.Parallel()
	c := newTestCounter(t, Options{})
	st := c.NewStream()
	secret := "/api/v1/vault/SECRETVAULTID"
	st.Write([]byte(`198.51.100.77 - - [29/Nov/2026:02:00:00 +0000] "GET ` + secret + ` HTTP/1.1" 200 1 "-" "SecretAgent/1"` + "\n" + `198.51.100.78 - - [29/N`))
	if bytes.Contains(st.buf, []byte("SECRET")) || bytes.Contains(st.buf, []byte("198.51.100.77")) {
		t.Fatal("a counted line is still in the stream buffer")
	}
	if !bytes.HasPrefix(st.buf, []byte("198.51.100.78")) {
		t.Fatal("the partial line was not kept")
	}
}

func TestClientAddr(t *testing.T) {
	t.Parallel()
	trusted, err := ParseTrustedProxies("10.0.0.0/8, 2001:db8::/32,127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	xffTrusted := newTestCounter(t, Options{ClientIP: ClientXForwardedFor, TrustedProxies: trusted})
	xffAny := newTestCounter(t, Options{ClientIP: ClientXForwardedFor})
	noLoopback, err := ParseTrustedProxies("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	xffNoLoopback := newTestCounter(t, Options{ClientIP: ClientXForwardedFor, TrustedProxies: noLoopback})
	remote := newTestCounter(t, Options{ClientIP: ClientRemoteAddr, TrustedProxies: trusted})
	cases := []struct {
		c                     *Counter
		remote, xff, clientIP string
		want                  string
	}{
		{remote, "10.0.0.1", "198.51.100.1", "", "10.0.0.1"},
		{xffTrusted, "10.0.0.1", "198.51.100.1", "", "198.51.100.1"},
		{xffTrusted, "10.0.0.1", "203.0.113.5, 198.51.100.1, 10.0.0.7", "", "198.51.100.1"},
		{xffTrusted, "10.0.0.1", "10.1.1.1, 10.0.0.7", "", "10.1.1.1"},                 // all trusted: leftmost
		{xffTrusted, "192.0.2.99", "198.51.100.1", "", "192.0.2.99"},                   // untrusted peer: header not believed
		{xffTrusted, "10.0.0.1", "", "", "10.0.0.1"},                                   // no header
		{xffTrusted, "10.0.0.1", "203.0.113.5, bogus, 10.0.0.7", "", "10.0.0.7"},       // unparseable hop ends the walk
		{xffTrusted, "10.0.0.1", "[2001:db9::5]:1234, 2001:db8::1", "", "2001:db9::5"}, // v6 hops, bracketed with port
		{xffTrusted, "127.0.0.1", " ::ffff:198.51.100.1 ", "", "::ffff:198.51.100.1"},
		{xffAny, "192.0.2.99", "198.51.100.1, 203.0.113.9", "", "203.0.113.9"}, // no trusted list: peer is the proxy
		{xffAny, "127.0.0.1", "", "198.51.100.4", "198.51.100.4"},              // Caddy's client_ip
		// A unix-socket peer is local: trusted as loopback is (127.0.0.1 here).
		{xffTrusted, "unix:", "198.51.100.1", "", "198.51.100.1"},
		{xffTrusted, "unix:/run/nginx.sock", "203.0.113.5, 10.0.0.7", "", "203.0.113.5"},
		{xffAny, "unix:", "198.51.100.1", "", "198.51.100.1"},
	}
	// Loopback not trusted: neither is a unix-socket peer, so its header is
	// not believed, and the peer has no address to count.
	if got, ok := xffNoLoopback.clientAddr(&Record{Remote: []byte("unix:"), XFF: []byte("198.51.100.1")}); ok {
		t.Errorf("unix peer, loopback untrusted: counted %v", got)
	}
	for _, tc := range cases {
		r := Record{Remote: []byte(tc.remote), XFF: []byte(tc.xff), ClientIP: []byte(tc.clientIP)}
		got, ok := tc.c.clientAddr(&r)
		if !ok || got != netip.MustParseAddr(tc.want) {
			t.Errorf("remote %s xff %q: got %v %v, want %s", tc.remote, tc.xff, got, ok, tc.want)
		}
	}
	if _, err := ParseTrustedProxies("10.0.0.0/8,nonsense"); err == nil {
		t.Error("bad trusted proxy accepted")
	}
}

func TestRoutes(t *testing.T) {
	t.Parallel()
	routes := mustRoutes(t, `vault=^/api/v1/vault/`, `entry=^/api/v1/(entry|item)/[0-9]+$`, `static=^/static/.*`,
		`anywhere=\.php$`, `vault=^/v/`, `fold=(?i)^/ADMIN`)
	cl, err := newClassifier(routes)
	if err != nil {
		t.Fatal(err)
	}
	if !routes[0].prefixOnly || !routes[2].prefixOnly || routes[1].prefixOnly || !routes[1].anchored || routes[3].anchored {
		t.Errorf("analysis: %+v", routes)
	}
	// Which patterns skip the regexp engine (FuzzFastMatch checks they agree).
	for pattern, fast := range map[string]bool{
		`^/api/v1/(entry|item)/[0-9]+$`: true,
		`^/api/v1/vault/[^/]+/sync$`:    true,
		`^/(healthz|ping)$`:             true,
		`^/(a|ab)`:                      false, // an alternative is a prefix of another
		`^/x[a-z]*[a-z]`:                false, // greedy class followed by a byte it contains
		`^/[^/]{2}`:                     false,
		`\.php$`:                        false, // not anchored
		`(?i)^/admin`:                   false,
		`^/é`:                           false,
	} {
		if got := newFastMatcher(pattern) != nil; got != fast {
			t.Errorf("%s: fast matcher %v, want %v", pattern, got, fast)
		}
	}
	for path, want := range map[string]string{
		"/api/v1/vault/x":  "vault",
		"/api/v1/vault":    "other",
		"/api/v1/entry/12": "entry",
		"/api/v1/item/1":   "entry",
		"/api/v1/entry/1x": "other",
		"/static/a/b.css":  "static",
		"/wp-login.php":    "anywhere",
		"/v/1":             "vault", // duplicate name, same label
		"/admin/x":         "fold",
		"":                 "other",
		"/\xff\xfe":        "other",
	} {
		if got := cl.names[cl.classify([]byte(path))]; got != want {
			t.Errorf("%q: %s, want %s", path, got, want)
		}
	}
	if got := cl.names; strings.Join(got, ",") != "vault,entry,static,anywhere,fold,other" {
		t.Errorf("names %v", got)
	}
	for _, bad := range []string{"noequals", "=^/x", "Vault=^/x", "other=^/x", "a-b=^/x", "x=", "x=(", strings.Repeat("a", 33) + "=x"} {
		if _, err := ParseRoute(bad); err == nil {
			t.Errorf("route %q accepted", bad)
		}
	}
	many := make([]Route, MaxRoutes+1)
	for i := range many {
		many[i] = mustRoutes(t, fmt.Sprintf("r%d=^/%d", i, i))[0]
	}
	if _, err := newClassifier(many); err == nil {
		t.Error("too many routes accepted")
	}
}

func TestCountingDoesNotAllocate(t *testing.T) {
	c := newTestCounter(t, Options{Routes: mustRoutes(t, `vault=^/api/v1/vault/`, `entry=^/api/v1/(entry|item)/[0-9]+$`)})
	lines := []byte(`192.0.2.1 - - [29/Nov/2026:02:00:00 +0000] "GET /api/v1/entry/123 HTTP/1.1" 200 100 "-" "ua" 0.003` + "\n" +
		`2001:db8::7 - - [29/Nov/2026:02:00:00 +0000] "GET /api/v1/vault/x HTTP/1.1" 200 100 "-" "ua" 0.003` + "\n" +
		`{"remote_addr":"192.0.2.5","request_method":"POST","request_uri":"/sync","status":200,"body_bytes_sent":17,"request_time":0.25}` + "\n")
	if n := testing.AllocsPerRun(100, func() { c.countLines(lines, testNow) }); n != 0 {
		t.Fatalf("countLines allocates %.1f times per batch", n)
	}
}

func TestNewCounterRejects(t *testing.T) {
	t.Parallel()
	if _, err := NewCounter(Options{Routes: []Route{{Name: "x", Pattern: "^/"}}}); err == nil {
		t.Error("route not from ParseRoute accepted")
	}
	if _, err := NewCounter(Options{Format: 9}); err == nil {
		t.Error("bad format accepted")
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Error("format xml accepted")
	}
	if _, err := ParseClientIPSource("header"); err == nil {
		t.Error("client ip source accepted")
	}
}

// genCombined writes n combined lines with request time, from distinct
// addresses, for benchmarks.
func genCombined(n int) []byte {
	rng := rand.New(rand.NewPCG(1, 2))
	methods := []string{"GET", "GET", "GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS"}
	paths := []string{"/api/v1/vault/8f3a9c2e1b7d4f60", "/api/v1/entry/1234567", "/static/app.3f9c.js", "/healthz", "/login", "/wp-admin/setup-config.php"}
	codes := []int{200, 200, 200, 201, 204, 301, 304, 404, 403, 500, 502}
	var b bytes.Buffer
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "%d.%d.%d.%d - - [29/Nov/2026:02:%02d:%02d +0000] \"%s %s?page=%d HTTP/1.1\" %d %d \"https://pop.example/\" \"Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0\" %d.%03d\n",
			10+i%200, (i/200)%256, (i/51200)%256, rng.IntN(256), i/60%60, i%60,
			methods[rng.IntN(len(methods))], paths[rng.IntN(len(paths))], rng.IntN(100), codes[rng.IntN(len(codes))],
			rng.IntN(50000), rng.IntN(2), rng.IntN(1000))
	}
	return b.Bytes()
}

func BenchmarkCountCombined(b *testing.B) {
	data := genCombined(20000)
	c := newTestCounter(b, Options{Routes: mustRoutes(b, `vault=^/api/v1/vault/`, `entry=^/api/v1/(entry|item)/[0-9]+$`, `static=^/static/`, `health=^/healthz$`)})
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		c.countLines(data, testNow)
	}
	b.ReportMetric(float64(20000*b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkParseJSON(b *testing.B) {
	line := []byte(`{"time_iso8601":"2026-11-29T02:00:00+00:00","remote_addr":"192.0.2.5","request_method":"POST","request_uri":"/sync?since=3","status":503,"body_bytes_sent":17,"request_time":0.250,"http_x_forwarded_for":"","http_user_agent":"Mozilla/5.0"}`)
	var r Record
	for b.Loop() {
		ParseJSON(line, &r)
	}
}

// TestByteOrderMarkAndIndentedJSON: a log whose first line carries a UTF-8
// byte order mark, and JSON lines an encoder indented, are requests in
// every format that reads them, not malformed lines.
func TestByteOrderMarkAndIndentedJSON(t *testing.T) {
	t.Parallel()
	const bom = "\xEF\xBB\xBF"
	combined := `192.0.2.1 - - [29/Nov/2026:02:00:00 +0000] "GET / HTTP/1.1" 200 1 "-" "ua"`
	jsonLine := `{"remote_addr":"192.0.2.2","request_method":"GET","request_uri":"/","status":200,"body_bytes_sent":1}`
	for _, c := range []struct {
		format Format
		lines  []string
	}{
		{FormatAuto, []string{bom + combined, combined}},
		{FormatAuto, []string{bom + jsonLine, "  " + jsonLine, "\t" + jsonLine, bom + " " + jsonLine}},
		{FormatCombined, []string{bom + combined}},
		{FormatJSON, []string{bom + jsonLine, " " + jsonLine}},
	} {
		ctr := newTestCounter(t, Options{Format: c.format})
		if _, err := ctr.NewStream().Write([]byte(strings.Join(c.lines, "\n") + "\n")); err != nil {
			t.Fatal(err)
		}
		if l := ctr.Snapshot(testNow).Lines; l["parsed"] != uint64(len(c.lines)) || l["malformed"] != 0 {
			t.Errorf("format %d, %q: lines %v, want %d parsed", c.format, c.lines, l, len(c.lines))
		}
	}
}
