package accesslog

import (
	"strings"
	"testing"
)

// consoleFields is the JSON part of a Caddy access log entry as zap's
// console encoder writes it (spaced, request first: the access logger
// carries it), with status st and duration dur.
func consoleFields(st, dur string) string {
	return `{"request": {"remote_ip": "203.0.113.9", "remote_port": "41342", "client_ip": "198.51.100.4", "proto": "HTTP/2.0", ` +
		`"method": "PUT", "host": "pop.example", "uri": "/api/v1/entry/42?full=1", ` +
		`"headers": {"User-Agent": ["curl/8.5.0"], "Accept": ["*/*"]}, ` +
		`"tls": {"resumed": false, "version": 772, "cipher_suite": 4865, "proto": "h2", "server_name": "pop.example"}}, ` +
		`"bytes_read": 0, "user_id": "", "duration": ` + dur + `, "size": 10900, "status": ` + st + `, ` +
		`"resp_headers": {"Server": ["Caddy"], "Content-Type": ["application/json"]}}`
}

// consoleLine is a line of Caddy's "log { format console }": time, level,
// logger, message, fields, separated by tabs. The line of
// zapcore.NewConsoleEncoder with Caddy's defaults for console
// (time_format wall_milli, level_format color) is
//
//	2026/12/02 10:00:00.500\t\x1b[34mINFO\x1b[0m\thttp.log.access.log0\thandled request\t{"request": {...}, ...}
func consoleLine(head ...string) string {
	return strings.Join(head, "\t") + "\t" + consoleFields("201", "0.000929675")
}

const (
	blueINFO  = "\x1b[34mINFO\x1b[0m" // zapcore.CapitalColorLevelEncoder
	redERROR  = "\x1b[31mERROR\x1b[0m"
	magDEBUG  = "\x1b[35mDEBUG\x1b[0m"
	accessLog = "http.log.access.log0"
	handled   = "handled request"
)

// TestParseCaddyConsole: the entries of Caddy's access log in its console
// format are requests, read like its JSON ones, in every time and level
// format and with the caller, in each format that reads Caddy's log.
func TestParseCaddyConsole(t *testing.T) {
	t.Parallel()
	for _, line := range []string{
		consoleLine("2026/12/02 10:00:00.500", blueINFO, accessLog, handled), // Caddy's defaults
		consoleLine("2026/12/02 10:00:00.500", "INFO", accessLog, handled),   // level_format upper
		consoleLine("2026-12-02T10:00:00.500Z", "info", accessLog, handled),  // iso8601, lower
		consoleLine("1.7962056005e+09", blueINFO, "http.log.access", handled),
		consoleLine("1796205600500000000", redERROR, "http.log.access.pop_example", handled),               // unix_nano; 5xx are logged at error
		consoleLine("02/Dec/2026:10:00:00 +0000", blueINFO, accessLog, "caddyhttp/server.go:789", handled), // common_log, with_caller
		consoleLine("2026/12/02 10:00:00.500", blueINFO, accessLog, "NOP"),                                 // the message of an unhandled request
		consoleLine(blueINFO, accessLog, handled),                                                          // time_key ""
		consoleLine(accessLog, handled),
	} {
		var r Record
		if err := ParseCaddyConsole([]byte(line), &r); err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		checkRecord(t, []byte(line), &r)
		if r.Method != MethodPUT || r.Status != 201 || r.Size != 10900 || string(r.Path) != "/api/v1/entry/42" ||
			!r.HasDuration || r.Duration != 0.000929675 || string(r.Remote) != "203.0.113.9" || string(r.ClientIP) != "198.51.100.4" {
			t.Errorf("%q: %+v", line, r)
		}
		for _, f := range []Format{FormatAuto, FormatJSON} {
			c := newTestCounter(t, Options{Format: f})
			c.NewStream().Write([]byte(line + "\n"))
			s := c.Snapshot(testNow)
			if n, _ := requestCount(s, "PUT", "2xx", "other"); n != 1 || s.Lines["parsed"] != 1 || s.ResponseBytes != 10900 {
				t.Errorf("format %d, %q: %d requests, lines %v", f, line, n, s.Lines)
			}
		}
		// Not combined, in any time format: the first field is no address.
		if err := ParseCombined([]byte(line), &r); err == nil {
			t.Errorf("%q parses as combined: %+v", line, r)
		}
	}
}

// TestParseCaddyConsoleOtherLoggers: as in Caddy's JSON log, entries of
// other loggers with a request and a status (http.log.error for every
// failed request, reverse_proxy's debug entry per proxied request) are no
// requests, nor is anything else Caddy writes in its console format to a
// shared file (start-up, TLS), or a line whose logger cannot be told.
func TestParseCaddyConsoleOtherLoggers(t *testing.T) {
	t.Parallel()
	for _, line := range []string{
		"2026/12/02 10:00:00.500\t" + redERROR + "\thttp.log.error.log0\tdial tcp 127.0.0.1:8080: connect: connection refused\t" +
			`{"request": {"remote_ip": "203.0.113.9", "method": "GET", "uri": "/api/v1/x"}, "duration": 0.0018, "status": 502, "err_id": "6pue15j76", "err_trace": "reverseproxy.statusError (reverseproxy.go:1626)"}`,
		"2026/12/02 10:00:00.500\t" + magDEBUG + "\thttp.handlers.reverse_proxy\tupstream roundtrip\t" +
			`{"upstream": "127.0.0.1:8080", "duration": 0.0012, "request": {"remote_ip": "203.0.113.9", "method": "GET", "uri": "/"}, "headers": {"Content-Type": ["text/html"]}, "status": 200}`,
		"2026/12/02 10:00:00.500\t" + blueINFO + "\tusing adjacent Caddyfile",
		"2026/12/02 10:00:00.500\t" + blueINFO + "\ttls.cache.maintenance\tstarted background certificate maintenance\t" + `{"cache": "0xc0004f2a80"}`,
		"2026/12/02 10:00:00.500\t" + blueINFO + "\thttp.log.accessx\thandled request\t" + consoleFields("200", "0.001"),
		"2026/12/02 10:00:00.500\t" + blueINFO + "\thttp.log\thandled request\t" + consoleFields("200", "0.001"),
		"2026/12/02 10:00:00.500\t" + blueINFO + "\thandled request\t" + consoleFields("200", "0.001"), // name_key ""
		"2026/12/02 10:00:00.500\t" + blueINFO + "\t" + handled + " " + accessLog + "\t" + consoleFields("200", "0.001"),
		"2026/12/02 10:00:00.500\t" + blueINFO + "\t" + accessLog + "\t" + handled + "\t" + `{"request": {"method": "GET"}}`, // no status
		"2026/12/02 10:00:00.500\t" + blueINFO + "\t" + accessLog + "\t" + handled + "\t" + `{"status": 200`,
	} {
		var r Record
		if err := ParseCaddyConsole([]byte(line), &r); err == nil {
			t.Errorf("%q: a request: %+v", line, r)
		}
		c := newTestCounter(t, Options{})
		c.NewStream().Write([]byte(line + "\n"))
		if l := c.Snapshot(testNow).Lines; l["parsed"] != 0 || l["malformed"] != 1 {
			t.Errorf("%q: lines %v, want one malformed", line, l)
		}
	}
}

// TestCaddyConsoleTimeFormats: the last-line timestamp comes from the
// console line's leading time in every time_format that writes a zone or
// a Unix time (zap writes the float ones as Go prints a float64: with an
// exponent), and from a "ts" among the fields if there is one. Zoneless
// ("wall", Caddy's default for console, in UTC or time_local) leaves the
// read time, as in the JSON format.
func TestCaddyConsoleTimeFormats(t *testing.T) {
	t.Parallel()
	const want = 1796205600.5 // 2026-12-02T10:00:00.5Z
	now := float64(testNow.UnixNano()) / 1e9
	for head, want := range map[string]float64{
		"1.7962056005e+09":              want, // unix_seconds_float
		"1.7962056005e+12":              want, // unix_milli_float
		"1796205600500000000":           want, // unix_nano
		"2026-12-02T10:00:00.500Z":      want, // iso8601
		"2026-12-02T11:00:00.500+0100":  want, // iso8601, time_local
		"2026-12-02T10:00:00Z":          want - 0.5,
		"2026-12-02T10:00:00.5Z":        want, // rfc3339_nano
		"02/Dec/2026:10:00:00 +0000":    want - 0.5,
		"2026/12/02 10:00:00.500":       now, // wall_milli
		"2026/12/02 10:00:00":           now,
		"2026/12/02 10:00:00.500000000": now,
		blueINFO:                        now, // time_key ""
		"12:00PM":                       now, // a time_format layout of one's own
	} {
		c := newTestCounter(t, Options{})
		c.NewStream().Write([]byte(consoleLine(head, blueINFO, accessLog, handled) + "\n"))
		s := c.Snapshot(testNow)
		if s.Lines["parsed"] != 1 {
			t.Errorf("%q: lines %v", head, s.Lines)
			continue
		}
		if got := s.LastLineTimestamp; got < want-1e-3 || got > want+1e-3 {
			t.Errorf("%q: last line timestamp %f, want %f", head, got, want)
		}
	}
	// A "ts" among the fields wins over the leading field.
	line := "2026/12/02 10:00:00.500\t" + blueINFO + "\t" + accessLog + "\t" + handled + "\t" +
		`{"ts": 1796205600.5, ` + consoleFields("200", "0.001")[1:]
	c := newTestCounter(t, Options{})
	c.NewStream().Write([]byte(line + "\n"))
	if got := c.Snapshot(testNow).LastLineTimestamp; got != want {
		t.Errorf("ts among the fields: last line timestamp %f, want %f", got, want)
	}
}

// TestCaddyConsoleNotCombined: a console line can be made to look like a
// combined one after its first field: a header with the values "a] " and
// " 200 5 " makes `["a] ", " 200 5 "]` a [time], a "request", a status and
// a size. Read as combined, an http.log.error entry (no request) counted
// as a 2xx and an access entry with its status wrong. The first field, a
// time (or a level and logger, tab-separated), is no address: the line is
// no combined line, in any time format: also a time_format layout of
// one's own with a space ("Jan _2 15:04:05", "3:04:05.000 PM"), whose
// first field was taken for an address ("Dec", "10:00:00.500"), and an
// error entry for a 2xx request again; the tab after it tells.
func TestCaddyConsoleNotCombined(t *testing.T) {
	t.Parallel()
	fields := `{"request": {"remote_ip": "203.0.113.9", "method": "GET", "uri": "/", "headers": {"X": ["a] ", " 200 5 "]}}, "duration": 0.001, "size": 7, "status": 503}`
	for _, head := range []string{"2026/12/02 10:00:00.500", "02/Dec/2026:10:00:00 +0000", "2026-12-02T10:00:00.500Z", "1.7962056005e+09", "",
		"Dec  2 10:00:00", "10:00:00.500 PM", "2026-12-02 10:00:00.500"} {
		for logger, request := range map[string]bool{"http.log.error.log0": false, accessLog: true} {
			line := logger + "\tx\t" + fields
			if head != "" {
				line = head + "\tERROR\t" + line
			}
			var r Record
			if err := ParseCombined([]byte(line), &r); err == nil {
				t.Errorf("%q parses as combined: %+v", line, r)
			}
			c := newTestCounter(t, Options{})
			c.NewStream().Write([]byte(line + "\n"))
			s := c.Snapshot(testNow)
			n, _ := requestCount(s, "GET", "5xx", "other")
			if request && (n != 1 || s.Lines["parsed"] != 1) || !request && s.Lines["malformed"] != 1 {
				t.Errorf("%q: %d GET 5xx, lines %v, want a request %v", line, n, s.Lines, request)
			}
		}
	}
}

// TestCombinedTabAfterAddress: a log_format with a tab after the address
// ("$remote_addr\t- $remote_user [$time_local] ...") was refused once its
// address was longer than 15 bytes (IPv6 clients, "203.0.113.100\t-")
// and read with the tab and what follows as the address otherwise. The
// tab ends the address; a first field that is no address before a tab
// (a Caddy console line's time, level or logger) is still refused.
func TestCombinedTabAfterAddress(t *testing.T) {
	t.Parallel()
	const rest = `- - [02/Dec/2026:10:00:00 +0000] "GET /api/v1/entry/1 HTTP/1.1" 200 5 "-" "ua" 0.004`
	for _, remote := range []string{"192.0.2.1", "203.0.113.100", "2001:db8:85a3::8a2e:370:7334", "::ffff:198.51.100.7", "[2001:db8::1]:443", "unix:"} {
		line := remote + "\t" + rest
		var r Record
		if err := ParseCombined([]byte(line), &r); err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		checkRecord(t, []byte(line), &r)
		if string(r.Remote) != remote || r.Status != 200 || string(r.Path) != "/api/v1/entry/1" || r.Duration != 0.004 {
			t.Errorf("%q: %+v", line, r)
		}
		// The same in vhost_combined (FuzzParseCombined's property; a
		// '[' in the client field is taken for the time's).
		vline := "vh.example:443 " + line
		if err := ParseCombined([]byte(vline), &r); remote[0] != '[' && (err != nil || r.Status != 200) {
			t.Errorf("%q: %v %+v", vline, err, r)
		}
	}
	for _, first := range []string{"2026-12-02T10:00:00.500Z", "1.7962056005e+09", "INFO", "http.log.error", "example.com", "10:00:00"} {
		line := first + "\t" + rest
		var r Record
		if err := ParseCombined([]byte(line), &r); err == nil {
			t.Errorf("%q parses: %+v", line, r)
		}
	}
}

// TestMixedLogAuto: one file with nginx combined, JSON and Caddy console
// lines (a front switched over, or logs collected into one) is read line by
// line in the auto format.
func TestMixedLogAuto(t *testing.T) {
	t.Parallel()
	lines := []string{
		`203.0.113.9 - - [02/Dec/2026:10:00:00 +0000] "GET /api/v1/entry/1 HTTP/1.1" 200 5 "-" "ua" 0.004`,
		`2001:db8::17 - - [02/Dec/2026:10:00:00 +0000] "GET /api/v1/entry/1 HTTP/1.1" 200 5 "-" "ua" 0.004`,
		`unix: - - [02/Dec/2026:10:00:00 +0000] "GET /api/v1/entry/1 HTTP/1.1" 200 5 "-" "ua" 0.004`,
		caddyLine(`1796205600.5`, `0.001`),
		consoleLine("2026/12/02 10:00:00.500", blueINFO, accessLog, handled),
		consoleLine("2026-12-02T10:00:00.500Z", blueINFO, accessLog, handled),
	}
	c := newTestCounter(t, Options{})
	c.NewStream().Write([]byte(strings.Join(lines, "\n") + "\n"))
	s := c.Snapshot(testNow)
	if s.Lines["parsed"] != uint64(len(lines)) || s.Lines["malformed"] != 0 {
		t.Fatalf("lines %v, want %d parsed", s.Lines, len(lines))
	}
	if n, _ := requestCount(s, "PUT", "2xx", "other"); n != 2 {
		t.Errorf("%d console requests, want 2", n)
	}
}

// BenchmarkCountCaddyConsole: Caddy's access log lines through the auto
// format, in its console format (which auto tries after combined) and,
// for comparison, its JSON one.
func BenchmarkCountCaddyConsole(b *testing.B) {
	for _, format := range []string{"console", "json"} {
		b.Run(format, func(b *testing.B) {
			var sb strings.Builder
			for i := range 20000 {
				fields := strings.Replace(consoleFields("200", "0.001"), "203.0.113.9", "203.0.113."+string(rune('0'+i%10)), 1)
				if format == "json" {
					sb.WriteString(`{"level": "info", "ts": 1796205600.5, "logger": "http.log.access.log0", "msg": "handled request", ` + fields[1:])
				} else {
					sb.WriteString("2026/12/02 10:00:00.500\t" + blueINFO + "\t" + accessLog + "\t" + handled + "\t" + fields)
				}
				sb.WriteByte('\n')
			}
			data := []byte(sb.String())
			c := newTestCounter(b, Options{})
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if c.countLines(data, testNow) != len(data) {
					b.Fatal("short")
				}
			}
			if l := c.Snapshot(testNow).Lines; l["malformed"] != 0 {
				b.Fatalf("lines %v", l)
			}
			b.ReportMetric(float64(20000*b.N)/b.Elapsed().Seconds(), "lines/s")
		})
	}
}
