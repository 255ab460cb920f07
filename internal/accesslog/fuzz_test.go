package accesslog

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// checkRecord holds for every record a parser accepts, whatever the input.
func checkRecord(t *testing.T, line []byte, r *Record) {
	t.Helper()
	if r.Method >= numMethods {
		t.Fatalf("method %d out of range", r.Method)
	}
	if r.Status < 0 || r.Status > 999 {
		t.Fatalf("status %d", r.Status)
	}
	if r.Size < 0 {
		t.Fatalf("size %d", r.Size)
	}
	if r.HasDuration && (r.Duration < 0 || math.IsNaN(r.Duration) || math.IsInf(r.Duration, 0)) {
		t.Fatalf("duration %v", r.Duration)
	}
	for _, f := range [][]byte{r.Path, r.Remote, r.ClientIP, r.XFF, r.Time} {
		if len(f) > 0 && !bytes.Contains(line, f) {
			t.Fatalf("field %q is not part of the line", f)
		}
	}
}

func FuzzParseCombined(f *testing.F) {
	f.Add([]byte(`203.0.113.9 - - [10/Oct/2026:13:55:36 +0000] "GET /api/v1/vault/abc?x=1 HTTP/1.1" 200 2326 "https://ref/" "Mozilla/5.0" 0.004`))
	f.Add([]byte(`10.0.0.2 - - [10/Oct/2026:13:55:36 +0000] "DELETE /x HTTP/1.1" 204 - "-" "ua \"q\"" "198.51.100.7, 10.0.0.1" rt=1.5`))
	f.Add([]byte(`::1 - - [t] "\x16\x03" 400 0`))
	f.Add([]byte(`www.example.com:443 203.0.113.9 - - [02/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "ua"`))
	f.Add([]byte(`192.0.2.10:80 203.0.113.9 - alice [02/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "ua" 0.001, 0.002 3.500`))
	f.Add([]byte(`203.0.113.9 - - [02/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "ua" 0.001 : 0.002 - 3.500`))
	f.Fuzz(func(t *testing.T, line []byte) {
		var r Record
		if err := ParseCombined(line, &r); err != nil {
			return
		}
		checkRecord(t, line, &r)
		if _, ok := parseTime(r.timeKind, r.Time); ok && r.timeKind != timeCLF {
			t.Fatal("time kind")
		}
		// The same line as vhost_combined writes it, or with a vhost
		// without a port: the rest parses the same, and the remote is
		// either the vhost (not recognised) or the line's first field.
		// (A '[' in that field would be taken for the time's.)
		first := line[:bytes.IndexByte(line, ' ')]
		if bytes.IndexByte(first, '[') >= 0 {
			return
		}
		for _, vhost := range []string{"vh.example:443", "vh.example"} {
			vline := append([]byte(vhost+" "), line...)
			var v Record
			if err := ParseCombined(vline, &v); err != nil {
				t.Fatalf("%q parses, %q does not: %v", line, vline, err)
			}
			if v.Method != r.Method || v.Status != r.Status || v.Size != r.Size || v.HasDuration != r.HasDuration || v.Duration != r.Duration ||
				!bytes.Equal(v.Path, r.Path) || !bytes.Equal(v.XFF, r.XFF) || !bytes.Equal(v.Time, r.Time) {
				t.Fatalf("vhost prefix %q changed the record: %+v, was %+v", vhost, v, r)
			}
			if string(v.Remote) != vhost && !bytes.Equal(v.Remote, first) {
				t.Fatalf("vhost line's remote %q, the line's first field %q", v.Remote, first)
			}
		}
	})
}

func FuzzParseJSON(f *testing.F) {
	f.Add([]byte(`{"ts":1.5,"request":{"remote_ip":"127.0.0.1","client_ip":"::1","method":"GET","uri":"/a?b","headers":{"X":["y"]}},"duration":0.1,"size":3,"status":200}`))
	f.Add([]byte(`{"time_iso8601":"2026-11-29T02:00:00+00:00","remote_addr":"192.0.2.5","request_method":"POST","request_uri":"/s","status":"503","body_bytes_sent":"17","request_time":"0.250"}`))
	f.Add([]byte(`{"a":[1,{"b":[true,false,null]}],"status":1e2,"request":"GET / HTTP/1.1"}`))
	// Caddy's console format (ParseCaddyConsole): a tab-separated head,
	// then the same JSON, spaced.
	f.Add([]byte("2026/12/02 10:00:00.500\t\x1b[34mINFO\x1b[0m\thttp.log.access.log0\thandled request\t" + consoleFields("200", "0.000929675")))
	f.Add([]byte("1.7962056005e+09\tERROR\thttp.log.access\tcaddyhttp/server.go:789\tNOP\t{\"request\": {\"remote_ip\": \"::1\", \"method\": \"GET\", \"uri\": \"/\"}, \"duration\": \"1.5s\", \"status\": 502}"))
	f.Add([]byte("2026/12/02 10:00:00.500\tERROR\thttp.log.error\tx\t{\"request\": {\"headers\": {\"X\": [\"a] \", \" 200 5 \"]}}, \"status\": 503}"))
	f.Add([]byte("http.log.access.x\t{\"ts\": \"2026-12-02T10:00:00Z\", \"status\": 200}\t{\"status\": 201}"))
	// Caddy's duration_format ms (whole, as zap writes 12.0, and not), ns,
	// a Go duration string; each read in every unit below.
	f.Add([]byte(`{"logger":"http.log.access","duration":12,"size":3,"status":200}`))
	f.Add([]byte(`{"logger":"http.log.access","duration":0.929675,"status":200}`))
	f.Add([]byte(`{"duration":"12","status":200}`))
	f.Add([]byte(`{"duration":929675,"status":200}`))
	f.Add([]byte(`{"duration":999999999.5,"status":200}`))
	f.Add([]byte(`{"duration":"929.675\u00b5s","status":200}`))
	f.Add([]byte("2026/12/02 10:00:00.500\tINFO\thttp.log.access.log0\thandled request\t" + consoleFields("200", "12")))
	f.Fuzz(func(t *testing.T, line []byte) {
		// The unit of Caddy's "duration" changes the request time only.
		var auto Record
		aerr := parseJSON(line, &auto, DurationAuto)
		for unit := DurationSeconds; unit <= DurationString; unit++ {
			var u Record
			err := parseJSON(line, &u, unit)
			if err != aerr {
				t.Fatalf("unit %d: %v, auto: %v", unit, err, aerr)
			}
			if err != nil {
				continue
			}
			checkRecord(t, line, &u)
			u.Duration, u.HasDuration = auto.Duration, auto.HasDuration
			if !sameRecord(&u, &auto) {
				t.Fatalf("unit %d record %+v, auto %+v", unit, u, auto)
			}
		}
		var r Record
		if err := ParseCaddyConsole(line, &r); err == nil {
			checkRecord(t, line, &r)
			parseTime(r.timeKind, r.Time)
		}
		if err := ParseJSON(line, &r); err != nil {
			return
		}
		checkRecord(t, line, &r)
		parseTime(r.timeKind, r.Time) // must not panic
		if line[0] != '{' {
			return
		}
		// The same entry in Caddy's console format is the same record
		// (its time from the head when the JSON has none).
		head := "2026-12-02T10:00:00.500Z\tINFO\thttp.log.access.log0\thandled request\t"
		cline := append([]byte(head), line...)
		var c Record
		if err := ParseCaddyConsole(cline, &c); err != nil {
			t.Fatalf("%q parses as JSON, %q not as console: %v", line, cline, err)
		}
		if r.Time == nil {
			if string(c.Time) != head[:24] || c.timeKind != timeText {
				t.Fatalf("console time %q (%d), want the head's", c.Time, c.timeKind)
			}
			c.Time, c.timeKind = nil, r.timeKind
		}
		if c.Method != r.Method || c.Status != r.Status || c.Size != r.Size || c.HasDuration != r.HasDuration || c.Duration != r.Duration ||
			!bytes.Equal(c.Path, r.Path) || !bytes.Equal(c.Remote, r.Remote) || !bytes.Equal(c.ClientIP, r.ClientIP) ||
			!bytes.Equal(c.XFF, r.XFF) || !bytes.Equal(c.Time, r.Time) || c.timeKind != r.timeKind {
			t.Fatalf("console record %+v, JSON record %+v", c, r)
		}
	})
}

// sameRecord says whether two records have the same fields.
func sameRecord(a, b *Record) bool {
	return a.Method == b.Method && a.methodSet == b.methodSet && a.Status == b.Status && a.Size == b.Size &&
		a.HasDuration == b.HasDuration && a.Duration == b.Duration && a.otherLogger == b.otherLogger &&
		bytes.Equal(a.Path, b.Path) && bytes.Equal(a.Remote, b.Remote) && bytes.Equal(a.ClientIP, b.ClientIP) &&
		bytes.Equal(a.XFF, b.XFF) && bytes.Equal(a.Time, b.Time) && a.timeKind == b.timeKind
}

// FuzzParseAddr checks the allocation-free address parser against netip.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"1.2.3.4", "::ffff:1.2.3.4", "2001:db8::1", "fe80::1%eth0", "1::", "[::1]:80", "1.2.3.4:5", "01.2.3.4", "::1.2.3.4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := ParseAddr([]byte(s))
		if strings.ContainsAny(s, "[]") || strings.Count(s, ":") == 1 || len(s) > 64 {
			// Bracket and port forms: netip.ParseAddr does not take them.
			// Over 64 bytes (a long zone): no log writes one; we refuse it.
			return
		}
		want, err := netip.ParseAddr(s)
		if err == nil && !ok {
			t.Fatalf("%q: netip parses %v, we do not", s, want)
		}
		if ok && err != nil {
			t.Fatalf("%q: we parse %v, netip says %v", s, got, err)
		}
		if ok && got != want.WithZone("") {
			t.Fatalf("%q: %v, netip %v", s, got, want)
		}
	})
}

// FuzzStream feeds arbitrary bytes in arbitrary pieces: every complete
// non-blank line is counted exactly once as some result, nothing panics.
//
// Lines near and over MaxLineBytes are made by the harness, not stored:
// pad bytes 'x' (at most 2*MaxLineBytes+2) are put into data at padAt.
// Seeds of 70 kB held the fuzzer at a few inputs a second (it spent its
// time mutating them); now every input is small and the long ones are
// one number away.
func FuzzStream(f *testing.F) {
	f.Add([]byte(logLine(1)+"garbage\n{\"status\":200}\n\xff\x00\n"), uint8(7), uint16(0), uint32(0))
	f.Add([]byte{}, uint8(200), uint16(0), uint32(70000))
	f.Add([]byte("www.example.com:443 203.0.113.9 - - [02/Dec/2026:10:00:00 +0000] \"GET / HTTP/1.1\" 200 5 \"-\" \"ua\" 0.001, 0.002 : 0.003 3.500\n"), uint8(11), uint16(0), uint32(0))
	f.Add([]byte("\n\r\n"+logLine(2)+"\r\n\r\r\n\r\nz"), uint8(3), uint16(len(logLine(2))+6), uint32(MaxLineBytes+5))
	f.Add([]byte("\n"+logLine(3)), uint8(255), uint16(0), uint32(MaxLineBytes)) // exactly the limit: counted
	f.Add([]byte("\r\n"+logLine(4)), uint8(254), uint16(0), uint32(MaxLineBytes-1))
	f.Add([]byte("\n"+logLine(5)), uint8(1), uint16(0), uint32(MaxLineBytes+1))
	f.Add([]byte("2026/12/02 10:00:00.500\t\x1b[34mINFO\x1b[0m\thttp.log.access.log0\thandled request\t"+consoleFields("200", "0.001")+"\n"+
		"2026/12/02 10:00:00.500\t\x1b[31mERROR\x1b[0m\thttp.log.error.log0\tx\t{\"status\": 502}\r\n"+logLine(6)), uint8(9), uint16(0), uint32(0))
	// One counter for all inputs, compared before and after each: a new
	// counter per input (its unique-IP windows are 2 MiB to clear) and a
	// Snapshot (which merges them) cost more than most inputs.
	c := newTestCounter(f, Options{})
	f.Fuzz(func(t *testing.T, data []byte, piece uint8, padAt uint16, pad uint32) {
		if pad > 0 {
			pad %= 2*MaxLineBytes + 3
			at := int(padAt) % (len(data) + 1)
			data = slices.Concat(data[:at], bytes.Repeat([]byte("x"), int(pad)), data[at:])
		}
		lines0, reqs0 := c.totals()
		st := c.NewStream()
		step := int(piece) + 1
		for i := 0; i < len(data); i += step {
			st.Write(data[i:min(i+step, len(data))])
		}
		lines, reqs := c.totals()
		for i := range lines {
			lines[i] -= lines0[i]
		}
		counted := lines[ResultParsed] + lines[ResultMalformed] + lines[ResultTooLong]
		if want := countableLines(data); counted != want {
			t.Fatalf("%d lines counted (%v), want %d: every complete non-blank line once", counted, lines, want)
		}
		if reqs-reqs0 != lines[ResultParsed] {
			t.Fatalf("%d requests for %d parsed lines", reqs-reqs0, lines[ResultParsed])
		}
	})
}

// totals returns the line counts by result and the sum of all request
// counts, without the cost of a Snapshot.
func (c *Counter) totals() (lines [numResults]uint64, reqs uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.requests {
		reqs += n
	}
	return c.lines, reqs
}

// countableLines is the reference for FuzzStream: the complete lines of
// data (ending in a newline) that are not blank once a CR before the newline
// is dropped, plus an unfinished last line already longer than MaxLineBytes
// (counted too_long as soon as it is that long).
func countableLines(data []byte) uint64 {
	var n uint64
	for {
		nl := bytes.IndexByte(data, '\n')
		if nl < 0 {
			break
		}
		line := bytes.TrimSuffix(data[:nl], []byte("\r"))
		if len(line) > 0 {
			n++
		}
		data = data[nl+1:]
	}
	if len(data) > MaxLineBytes {
		n++
	}
	return n
}

func TestCountableLines(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]uint64{
		"":                                  0,
		"a":                                 0,
		"a\n":                               1,
		"\n\r\n\n":                          0,
		"a\r\n\r\nb\nc":                     2,
		"\r\r\n":                            1,
		strings.Repeat("x", MaxLineBytes+1): 1,
	} {
		if got := countableLines([]byte(in)); got != want {
			t.Errorf("countableLines(%.20q) = %d, want %d", in, got, want)
		}
	}
}

// TestCombinedRoundTrip: a line written the way nginx writes one parses back
// to what went in.
func TestCombinedRoundTrip(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		method := rapid.SampledFrom([]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND", "get"}).Draw(t, "method")
		path := "/" + rapid.StringMatching(`[a-zA-Z0-9/._~%-]{0,40}`).Draw(t, "path")
		query := rapid.StringMatching(`(\?[a-z0-9=&]{0,20})?`).Draw(t, "query")
		status := rapid.IntRange(100, 599).Draw(t, "status")
		size := rapid.Int64Range(0, 1<<40).Draw(t, "size")
		ms := rapid.IntRange(0, 600000).Draw(t, "ms")
		ua := rapid.StringMatching(`[ -!#-\[\]-~]{0,60}`).Draw(t, "ua")
		ip := netip.AddrFrom4([4]byte{byte(rapid.IntRange(1, 254).Draw(t, "a")), 2, 3, 4})
		line := fmt.Sprintf(`%s - - [29/Nov/2026:02:00:00 +0000] "%s %s%s HTTP/1.1" %d %d "-" "%s" %d.%03d`,
			ip, method, path, query, status, size, ua, ms/1000, ms%1000)
		var r Record
		if err := ParseCombined([]byte(line), &r); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		wantMethod := parseMethod([]byte(method))
		if r.Method != wantMethod || string(r.Path) != path || r.Status != status || r.Size != size ||
			!r.HasDuration || math.Abs(r.Duration-float64(ms)/1000) > 1e-9 || string(r.Remote) != ip.String() {
			t.Fatalf("%q: got %+v", line, r)
		}
	})
}

// FuzzFastMatch: wherever the fast route matcher applies, it agrees with
// regexp on every path.
func FuzzFastMatch(f *testing.F) {
	for _, p := range []string{`^/api/v1/(entry|item)/[0-9]+$`, `^/(healthz|ping)$`, `^/api/v1/vault/[^/]+/sync$`,
		`^/static/[a-z0-9._-]+\.(js|css)$`, `^/x.*y`, `^/a?b`, `^/[a-f0-9]+/?$`, `^/v(1|2)/`, `^/(a|ab)`, `^/[^/]*/x`} {
		for _, path := range []string{"/api/v1/entry/12", "/healthz", "/api/v1/vault/ab\xffc/sync", "/static/app.js", "/x\xe2\x82\xacy", "/b", "/0af/", "/v2/x", "/ab", "/\xc3\xa9/x"} {
			f.Add(p, path)
		}
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		re, err := regexp.Compile(pattern)
		if err != nil {
			return
		}
		fm := newFastMatcher(pattern)
		if fm == nil {
			return
		}
		if got, want := fm.match([]byte(path)), re.MatchString(path); got != want {
			t.Fatalf("pattern %q path %q: fast %v, regexp %v", pattern, path, got, want)
		}
	})
}
