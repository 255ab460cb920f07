package accesslog

import "testing"

// TestParseCombinedIntegerIsNoRequestTime: nginx writes $request_time and
// $upstream_response_time with a decimal point, always ("0.004"). A bare
// integer after the user agent is something else: Apache's %D
// (microseconds), %T (whole seconds) or %{ms}T, or nginx's
// $request_length, $connection, $bytes_sent. Read as seconds it would put
// a 120 ms Apache request (%D 120000) at 33 hours; it is no request time,
// and a decimal time after it still is.
func TestParseCombinedIntegerIsNoRequestTime(t *testing.T) {
	t.Parallel()
	const head = `203.0.113.9 - - [02/Dec/2026:10:00:00 +0000] "GET /x HTTP/1.1" 200 5 "-" "Mozilla/5.0"`
	const vhead = `pop.example:443 203.0.113.9 - - [02/Dec/2026:10:00:00 +0100] "GET /x HTTP/1.1" 200 5 "-" "Mozilla/5.0"`
	for line, want := range map[string]float64{
		head + ` 120000`:           -1, // Apache %D
		vhead + ` 120000`:          -1, // vhost_combined %D
		head + ` 2`:                -1, // Apache %T
		head + ` 0`:                -1,
		head + ` 1234 0.004`:       0.004, // $connection $request_time
		head + ` 512 0.004`:        0.004, // $request_length $request_time
		head + ` 512 0.001, 0.002`: -1,
		head + ` 512 0.002 0.004`:  0.004,
		head + ` 0.004 512`:        0.004,
		head + ` rt=2`:             2, // labeled: seconds as written
		head + ` request_time=0`:   0,
		head + ` 0.000`:            0,
	} {
		var r Record
		if err := ParseCombined([]byte(line), &r); err != nil {
			t.Errorf("%q: %v", line, err)
			continue
		}
		if want < 0 {
			if r.HasDuration {
				t.Errorf("%q: duration %v, want none", line[len(head)-14:], r.Duration)
			}
			continue
		}
		if !r.HasDuration || r.Duration != want {
			t.Errorf("%q: duration %v/%v, want %v", line[len(head)-14:], r.Duration, r.HasDuration, want)
		}
	}
}

// caddyLine is an access log line as Caddy v2 writes it, with dur as the
// value of "duration".
func caddyLine(ts, dur string) string {
	return `{"level":"info","ts":` + ts + `,"logger":"http.log.access.log0","msg":"handled request",` +
		`"request":{"remote_ip":"127.0.0.1","remote_port":"41342","client_ip":"198.51.100.4","proto":"HTTP/2.0","method":"GET",` +
		`"host":"pop.example","uri":"/api/v1/entry/42?full=1","headers":{"User-Agent":["curl/8.5"],"Accept":["*/*"]},` +
		`"tls":{"resumed":false,"version":772,"cipher_suite":4865,"proto":"h2","server_name":"pop.example"}},` +
		`"bytes_read":0,"user_id":"","duration":` + dur + `,"size":10900,"status":200,"resp_headers":{"Server":["Caddy"]}}`
}

// TestParseJSONCaddyDurationFormats: Caddy's duration_format writes
// "duration" as float seconds (the default, "seconds"), integer
// nanoseconds ("ns"), or a Go duration string ("string"). Integer
// nanoseconds read as seconds put a 1 ms request at 11 days. (Whole
// seconds as a float, "1", would need a duration of exactly 1 s to the
// nanosecond.) Times of a million seconds or more, or negative ones, are
// none: 1e300 would make the histogram's sum +Inf for good.
func TestParseJSONCaddyDurationFormats(t *testing.T) {
	t.Parallel()
	for dur, want := range map[string]float64{
		`0.000929675`:             0.000929675,
		`0.5`:                     0.5,
		`929675`:                  0.000929675, // ns
		`1500000000`:              1.5,
		`0`:                       0,
		`"929.675µs"`:             0.000929675,
		`"929.675μs"`:             0.000929675, // Greek mu
		`"929.675us"`:             0.000929675,
		`"929.675\u00b5s"`:        0.000929675,
		`"1.5s"`:                  1.5,
		`"2m3.5s"`:                123.5,
		`"1h0m0s"`:                3600,
		`"0s"`:                    0,
		`"120ns"`:                 120e-9,
		`"250ms"`:                 0.25,
		`"0.250"`:                 0.25, // a number written as a string: seconds
		`1.2e-05`:                 1.2e-05,
		`1e300`:                   -1,
		`1e6`:                     -1,
		`1000000000000000`:        -1, // 1e15 ns: 11.6 days
		`-0.5`:                    -1,
		`"-1.5s"`:                 -1,
		`"5x"`:                    -1,
		`"s"`:                     -1,
		`"1.5"`:                   1.5,
		`null`:                    -1,
		`"1.5s2"`:                 -1,
		`"9999999999999h"`:        -1,
		`99999999999999999999999`: -1,
	} {
		line := caddyLine(`1764669600.5`, dur)
		var r Record
		if err := ParseJSON([]byte(line), &r); err != nil {
			t.Errorf("duration %s: %v", dur, err)
			continue
		}
		if r.Status != 200 || r.Method != MethodGET || string(r.Path) != "/api/v1/entry/42" || r.Size != 10900 {
			t.Errorf("duration %s: %+v", dur, r)
		}
		if want < 0 {
			if r.HasDuration {
				t.Errorf("duration %s: %v, want none", dur, r.Duration)
			}
			continue
		}
		if !r.HasDuration || r.Duration < want*(1-1e-12) || r.Duration > want*(1+1e-12) {
			t.Errorf("duration %s: %v/%v, want %v", dur, r.Duration, r.HasDuration, want)
		}
	}
	for _, line := range []string{`{"status":200,"request_time":1e300}`, `{"status":200,"request_time":"1e7"}`} {
		var r Record
		if err := ParseJSON([]byte(line), &r); err != nil || r.HasDuration {
			t.Errorf("%s: duration %v/%v (%v), want none", line, r.Duration, r.HasDuration, err)
		}
	}
}

// TestCaddyTimeFormats: the last-line timestamp is right in every Caddy
// time_format that writes a zone (UTC by default) or a Unix time, not
// only in the default float seconds: unix_milli_float and unix_nano read
// as seconds put the gauge tens of thousands of years ahead, and an
// iso8601 string was not read at all. "wall" formats have no zone: the
// read time stands in, as for a line without a time.
func TestCaddyTimeFormats(t *testing.T) {
	t.Parallel()
	const want = 1796205600.5 // 2026-12-02T10:00:00.5Z
	for ts, want := range map[string]float64{
		`1796205600.5`:                   want, // unix_seconds_float
		`1796205600500`:                  want, // unix_milli_float, whole
		`1796205600500.0`:                want,
		`1796205600500000000`:            want, // unix_nano
		`"2026-12-02T10:00:00.500Z"`:     want, // iso8601 (zap: .000Z0700)
		`"2026-12-02T11:00:00.500+0100"`: want, // iso8601, time_local
		`"2026-12-02T10:00:00Z"`:         want - 0.5,
		`"2026-12-02T10:00:00.5+00:00"`:  want,       // rfc3339_nano
		`"02/Dec/2026:10:00:00 +0000"`:   want - 0.5, // common_log
		`"02/Dec/2026:11:00:00 +0100"`:   want - 0.5,
		`"1796205600.5"`:                 want,
		`"2026/12/02 10:00:00"`:          -1, // wall: no zone
		`"2026-12-02T10:00:00"`:          -1,
		`"yesterday"`:                    -1,
		`"2026-12-02T10:00:00.500+01"`:   -1,
		`99999999999999999999`:           -1,
	} {
		c := newTestCounter(t, Options{Format: FormatJSON})
		st := c.NewStream()
		st.Write([]byte(caddyLine(ts, `0.001`) + "\n"))
		got := c.Snapshot(testNow).LastLineTimestamp
		if want < 0 {
			want = float64(testNow.UnixNano()) / 1e9
		}
		if got < want-1e-3 || got > want+1e-3 {
			t.Errorf("ts %s: last line timestamp %f, want %f", ts, got, want)
		}
	}
	// nginx's $msec and $time_iso8601 are unchanged.
	for line, want := range map[string]float64{
		`{"msec":1796205600.500,"status":200}`:                      want,
		`{"time_iso8601":"2026-12-02T10:00:00+00:00","status":200}`: want - 0.5,
		`{"time_local":"02/Dec/2026:10:00:00 +0000","status":200}`:  want - 0.5,
	} {
		c := newTestCounter(t, Options{Format: FormatJSON})
		c.NewStream().Write([]byte(line + "\n"))
		if got := c.Snapshot(testNow).LastLineTimestamp; got != want {
			t.Errorf("%s: last line timestamp %f, want %f", line, got, want)
		}
	}
}

// TestParseJSONKeyOrder: nginx escape=json layouts put "request",
// "request_uri" and "request_method" in any order; the record must not
// depend on it. An explicit request_method and request_uri win over what
// "request" says, and a null value leaves what another key gave.
func TestParseJSONKeyOrder(t *testing.T) {
	t.Parallel()
	for line, want := range map[string]struct {
		m    Method
		path string
	}{
		`{"request":"GET /x?a HTTP/1.1","request_uri":"/y?b","status":200}`:                               {MethodGET, "/y"},
		`{"request_uri":"/y?b","request":"GET /x?a HTTP/1.1","status":200}`:                               {MethodGET, "/y"},
		`{"request_uri":"/y","request":"DELETE /x HTTP/1.1","request_method":"PUT","status":200}`:         {MethodPUT, "/y"},
		`{"request_method":"PUT","request_uri":"/y","request":"DELETE /x HTTP/1.1","status":200}`:         {MethodPUT, "/y"},
		`{"request":"POST /x HTTP/1.1","request_uri":null,"status":200}`:                                  {MethodPOST, "/x"},
		`{"request_uri":"/y","request":null,"status":200}`:                                                {MethodOther, "/y"},
		`{"request_uri":"/y","request":"\\x16\\x03\\x01","status":400}`:                                   {MethodOther, "/y"},
		`{"request_method":"GET","request":"-","status":400}`:                                             {MethodGET, ""},
		`{"status":200,"request":{"method":"HEAD","uri":"/z"},"request_uri":null}`:                        {MethodHEAD, "/z"},
		`{"uri":"/u","request":{"remote_ip":"192.0.2.1","proto":"HTTP/1.1"},"method":"GET","status":200}`: {MethodGET, "/u"},
	} {
		var r Record
		if err := ParseJSON([]byte(line), &r); err != nil {
			t.Errorf("%s: %v", line, err)
			continue
		}
		if r.Method != want.m || string(r.Path) != want.path {
			t.Errorf("%s: method %v path %q, want %v %q", line, r.Method, r.Path, want.m, want.path)
		}
	}
}

// TestAbsoluteFormTarget: a request target in absolute form ("GET
// https://pop.example/api/v1/x HTTP/1.1", which servers must accept, RFC
// 9112 3.2.2; proxy scanners send it all day, and Caddy's uri keeps it)
// is routed by its path, as nginx and Caddy serve it: the route regexes
// are anchored at "/". Other forms are left as they are.
func TestAbsoluteFormTarget(t *testing.T) {
	t.Parallel()
	for target, want := range map[string]string{
		"https://pop.example/api/v1/entry/42?full=1": "/api/v1/entry/42",
		"http://pop.example:8080/x#frag":             "/x",
		"HTTP://pop.example/x":                       "/x",
		"http://[2001:db8::1]:443/v?x":               "/v",
		"http://pop.example":                         "/",
		"http://pop.example?x=1":                     "/",
		"https://":                                   "/",
		"/api/v1/x?http://y/z":                       "/api/v1/x",
		"pop.example:443":                            "pop.example:443", // CONNECT
		"*":                                          "*",               // OPTIONS *
		"ftp://pop.example/x":                        "ftp://pop.example/x",
		"http:/x":                                    "http:/x",
	} {
		line := `203.0.113.9 - - [02/Dec/2026:10:00:00 +0000] "GET ` + target + ` HTTP/1.1" 200 5 "-" "ua" 0.004`
		var r Record
		if err := ParseCombined([]byte(line), &r); err != nil || string(r.Path) != want {
			t.Errorf("combined %q: path %q (%v), want %q", target, r.Path, err, want)
		}
		js := `{"request":{"method":"GET","uri":"` + target + `"},"status":200}`
		if err := ParseJSON([]byte(js), &r); err != nil || string(r.Path) != want {
			t.Errorf("json %q: path %q (%v), want %q", target, r.Path, err, want)
		}
	}
}

// TestParseJSONCaddyOtherLoggers: a file with more of Caddy's log than its
// access log (the default logger to a file, docker logs) holds entries of
// other loggers that carry a request and a status too: http.log.error
// writes one for every failed request that the access log also has, and
// reverse_proxy's "upstream roundtrip" debug entries one per proxied
// request. Counted, every 5xx counted twice. Only http.log.access entries
// (and lines without a logger, as nginx writes them) are requests; the
// others count as malformed, as Caddy's entries without a status already
// did.
func TestParseJSONCaddyOtherLoggers(t *testing.T) {
	t.Parallel()
	req := `"request":{"remote_ip":"127.0.0.1","client_ip":"198.51.100.4","proto":"HTTP/2.0","method":"GET","host":"pop.example","uri":"/api/v1/x"}`
	for line, request := range map[string]bool{
		`{"level":"info","ts":1796205600.5,"logger":"http.log.access.log0","msg":"handled request",` + req + `,"duration":0.0018,"size":0,"status":502}`:        true,
		`{"level":"info","ts":1796205600.5,"logger":"http.log.access.pop_example","msg":"handled request",` + req + `,"duration":0.0018,"size":0,"status":502}`: true,
		`{"level":"info","ts":1796205600.5,"logger":"http.log.access","msg":"handled request",` + req + `,"duration":0.0018,"size":0,"status":502}`:             true,
		`{"level":"info",` + req + `,"duration":0.0018,"size":0,"status":502,"logger":"http.log.access.log0"}`:                                                  true,
		`{"remote_addr":"192.0.2.1","request":"GET / HTTP/1.1","status":200,"logger":"nginx"}`:                                                                  true,
		`{"remote_addr":"192.0.2.1","request":"GET / HTTP/1.1","status":200}`:                                                                                   true,
		`{"remote_addr":"192.0.2.1","request":"GET / HTTP/1.1","status":200,"logger":"httpd"}`:                                                                  true,
		`{"remote_addr":"192.0.2.1","request":"GET / HTTP/1.1","status":200,"logger":null}`:                                                                     true,
		`{"level":"info","logger":"http","msg":"x","status":200}`:                                                                                               false,
		`{"level":"error","ts":1796205600.5,"logger":"http.log.error","msg":"dial tcp 127.0.0.1:42996: connect: connection refused",` + req + `,"duration":0.0018,"status":502,"err_id":"6pue15j76","err_trace":"reverseproxy.statusError (reverseproxy.go:1626)"}`: false,
		`{"level":"error","ts":1796205600.5,"logger":"http.log.error.log0","msg":"x",` + req + `,"duration":0.0018,"status":502}`:                                                                                                                                   false,
		`{"level":"debug","ts":1796205600.5,"logger":"http.handlers.reverse_proxy","msg":"upstream roundtrip","upstream":"127.0.0.1:8080","duration":0.0012,` + req + `,"headers":{"Content-Type":["text/html"]},"status":200}`:                                     false,
		`{"level":"info",` + req + `,"status":502,"logger":"http.log.error"}`:         false,
		`{"level":"info","ts":1796205600.5,"logger":"http.log.accessx","status":200}`: false,
	} {
		var r Record
		err := ParseJSON([]byte(line), &r)
		if (err == nil) != request {
			t.Errorf("%.90s: err %v, want a request %v", line, err, request)
		}
	}
}

// realLine is a line of another project's fixtures and the request it is.
type realLine struct {
	line         string
	method, code string  // labels of clavis_http_requests_total
	path         string  // "": none (route other under any route)
	size         int64   // response bytes
	dur          float64 // request time in seconds; -1: none
	client       string  // the address counted as the client; "": none
}

// checkRealLines counts each line alone (format auto, a route "any" that
// matches every non-empty path) and checks the record it parses to and
// what is counted of it: one request, its bytes, its client.
func checkRealLines(t *testing.T, cases []realLine) {
	t.Helper()
	for _, c := range cases {
		cnt := newTestCounter(t, Options{Routes: mustRoutes(t, "any=.")})
		var r Record
		if err := cnt.parse([]byte(c.line), &r); err != nil {
			t.Errorf("%.100s: %v", c.line, err)
			continue
		}
		checkRecord(t, []byte(c.line), &r)
		client := ""
		if a, ok := cnt.clientAddr(&r); ok {
			client = a.String()
		}
		if r.Method.String() != c.method || codeOf(r.Status).String() != c.code || string(r.Path) != c.path || r.Size != c.size ||
			r.HasDuration != (c.dur >= 0) || (r.HasDuration && r.Duration != c.dur) || client != c.client {
			t.Errorf("%.100s: method %v code %v path %q size %d duration %v/%v client %q, want %s %s %q %d %v %q",
				c.line, r.Method, codeOf(r.Status), r.Path, r.Size, r.Duration, r.HasDuration, client,
				c.method, c.code, c.path, c.size, c.dur, c.client)
		}
		cnt.NewStream().Write([]byte(c.line + "\n"))
		s := cnt.Snapshot(testNow)
		route := "any"
		if c.path == "" {
			route = "other"
		}
		unique := uint64(0)
		if c.client != "" {
			unique = 1
		}
		if n, _ := requestCount(s, c.method, c.code, route); n != 1 || s.Lines["parsed"] != 1 || s.ResponseBytes != uint64(c.size) || s.UniqueIPs24h != unique {
			t.Errorf("%.100s: %d requests %s %s %s, lines %v, %d bytes, %d unique IPs", c.line, n, c.method, c.code, route, s.Lines, s.ResponseBytes, s.UniqueIPs24h)
		}
	}
}

// TestRealWorldLines: lines of other projects' test fixtures that were
// refused, or counted wrong, by the parsers.
//
// A status "-" (Apache's %>s for a status <= 0) refused the line: it is a
// request, of code other, as nginx's 000. Caddy's status 0 (no handler
// wrote a response; Go sent 200) is 2xx. Bytes of another protocol with
// a space among them (TLS, RDP, a trojan's beacon) are no request line:
// they had what followed the space as their path, which an unanchored
// route matched. A vhost without a port before the client (Apache's
// "%v %h", nginx's "$host $remote_addr") made the vhost the client, so
// the line added nothing to the unique-IP sketch.
func TestRealWorldLines(t *testing.T) {
	t.Parallel()
	checkRealLines(t, []realLine{
		// logstash-plugins/logstash-patterns-core spec/patterns/httpd_spec.rb ("sample OPTIONS line"): %>s "-".
		{`83.149.9.216 - a.user [11/Jan/2020:23:05:27 +0100] "OPTIONS /remote.php/ HTTP/1.1" - 7908 "-" "monitoring-client (v2.2)"`,
			"OPTIONS", "other", "/remote.php/", 7908, -1, "83.149.9.216"},
		// Status and size both "-" (constructed, as Traefik writes them).
		{`83.149.9.216 - a.user [11/Jan/2020:23:05:27 +0100] "OPTIONS /remote.php/ HTTP/1.1" - -`,
			"OPTIONS", "other", "/remote.php/", 0, -1, "83.149.9.216"},
		// crowdsecurity/hub .tests/caddy-logs/caddy-logs.log: "status":0.
		{`{"level":"info","ts":1693840839.657635,"logger":"http.log.access","msg":"handled request","request":{"remote_ip":"172.17.0.1","remote_port":"42876","client_ip":"172.17.0.1","proto":"HTTP/1.1","method":"GET","host":"127.0.0.1:8080","uri":"/","headers":{"Accept":["*/*"],"User-Agent":["curl/7.74.0"]}},"bytes_read":0,"user_id":"","duration":0.000002689,"size":0,"status":0,"resp_headers":{"Server":["Caddy"]}}`,
			"GET", "2xx", "/", 0, 0.000002689, "172.17.0.1"},
		// The same entry in Caddy's console format (constructed: the fixture has none).
		{"2023/09/04 15:20:39.657\tINFO\thttp.log.access\thandled request\t" + `{"request": {"remote_ip": "172.17.0.1", "remote_port": "42876", "client_ip": "172.17.0.1", "proto": "HTTP/1.1", "method": "GET", "host": "127.0.0.1:8080", "uri": "/", "headers": {"Accept": ["*/*"], "User-Agent": ["curl/7.74.0"]}}, "bytes_read": 0, "user_id": "", "duration": 0.000002689, "size": 0, "status": 0, "resp_headers": {"Server": ["Caddy"]}}`,
			"GET", "2xx", "/", 0, 0.000002689, "172.17.0.1"},
		// nginx's 000 (constructed: escape=json and combined) stays of code other: no response at all.
		{`{"remote_addr":"172.17.0.1","request":"GET / HTTP/1.1","status":"000","body_bytes_sent":"0"}`, "GET", "other", "/", 0, -1, "172.17.0.1"},
		{`172.17.0.1 - - [04/Sep/2023:15:20:39 +0000] "GET / HTTP/1.1" 000 0 "-" "curl/7.74.0"`, "GET", "other", "/", 0, -1, "172.17.0.1"},
		// crowdsecurity/hub .tests/nginx-http-malformed/nginx_http-logs.log: a trojan's beacon, its first
		// word no token ('='); another whose first word is one ("145.ll|'|'|..."), and no target after it.
		{`1.2.3.4 - - [29/Jul/2023:10:26:06 -0700] "lv|'|'|VHJvamFuX0M0NkY2RTk=|'|'|MARK|'|'|user|'|'|2013-11-22|'|'||'|'|Win XP|'|'|No|'|'|0.6.4|'|'|..|'|'||'|'|[endof]" 400 157 "-" "-"`,
			"other", "4xx", "", 157, -1, "1.2.3.4"},
		{`1.2.3.4 - - [29/Jul/2023:10:26:06 -0700] "145.ll|'|'|SGFjS2VkX0Q0OTkwNjI3|'|'|WIN-JNAPIER0859|'|'|JNapier|'|'|19-02-01|'|'||'|'|Win 7 Professional SP1 x64|'|'|No|'|'|0.7d|'|'|..|'|'|AA==|'|'|112.inf|'|'|SGFjS2VkDQoxOTIuMTY4LjkyLjIyMjo1NTUyDQpEZXNrdG9wDQpjbGllbnRhLmV4ZQ0KRmFsc2UNCkZhbHNlDQpUcnVlDQpGYWxzZQ==12.act|'|'|AA==" 400 157 "-" "-"`,
			"other", "4xx", "", 157, -1, "1.2.3.4"},
		{`1.2.3.4 - - [29/Jul/2023:10:26:07 -0700] "A\x00\x00\x00\x03fH\xBBd~\x8E\xFC\x94g\xD2\xDB\xFC\xEE\x8D\xFF\x98 \xB1\xBET\xA4\x9AZ\x9A\xA0?\x90\xE0\xF2t0\x5C\xED\xAE\xACX\x98\xDEJ\xEC\xF2\xC8\x9Cl\xD0\x9C\xC0\xE0\x98\x12\x8F\xE7\xCB\x8F\xA1\xA3\x16\xF1J\xA9<\xBD\xDA` + "`" + `" 400 157 "-" "-"`,
			"other", "4xx", "", 157, -1, "1.2.3.4"},
		{`1.2.3.4 - - [29/Jul/2023:10:26:07 -0700] "batman" 400 157 "-" "-"`, "other", "4xx", "", 157, -1, "1.2.3.4"},
		// The red team's TLS and RDP request fields (nginx escapes the bytes), in that file's line.
		{`1.2.3.4 - - [29/Jul/2023:10:26:07 -0700] "\x16\x03\x01\x01 \x02" 400 157 "-" "-"`, "other", "4xx", "", 157, -1, "1.2.3.4"},
		{`1.2.3.4 - - [29/Jul/2023:10:26:07 -0700] "\x03\x00\x00/*\xE0\x00\x00\x00\x00\x00Cookie: mstshash=Administr" 400 157 "-" "-"`,
			"other", "4xx", "", 157, -1, "1.2.3.4"},
		// Unknown methods with a request target keep their path (constructed).
		{`1.2.3.4 - - [29/Jul/2023:10:26:07 -0700] "PROPFIND /dav/ HTTP/1.1" 207 5 "-" "-"`, "other", "2xx", "/dav/", 5, -1, "1.2.3.4"},
		{`1.2.3.4 - - [29/Jul/2023:10:26:07 -0700] "CONNECT pop.example:443 HTTP/1.1" 405 5 "-" "-"`, "other", "4xx", "pop.example:443", 5, -1, "1.2.3.4"},
		{`1.2.3.4 - - [29/Jul/2023:10:26:07 -0700] "PRI * HTTP/2.0" 400 5 "-" "-"`, "other", "4xx", "*", 5, -1, "1.2.3.4"},
		{`1.2.3.4 - - [29/Jul/2023:10:26:07 -0700] "SEARCH https://pop.example/x?q HTTP/1.1" 405 5 "-" "-"`, "other", "4xx", "/x", 5, -1, "1.2.3.4"},
		// elastic/beats filebeat/module/apache/access/test/test.log: Apache "%v %h %l %u ...".
		{`vhost1.domaine.fr 123.123.123.123 - - [04/Jul/2019:09:20:46 +0200] "GET / HTTP/1.1" 200 32953 "-" "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/75.0.3770.100 Safari/537.36"`,
			"GET", "2xx", "/", 32953, -1, "123.123.123.123"},
		// The same file, HostnameLookups On: %h is a name, no address to count.
		{`monitoring-server - - [29/May/2017:19:02:48 +0000] "GET /status HTTP/1.1" 200 612 "-" "Mozilla/5.0 (Windows NT 6.1; rv:15.0) Gecko/20120716 Firefox/15.0a2" "-"`,
			"GET", "2xx", "/status", 612, -1, ""},
		// elastic/beats filebeat/module/nginx/access/test/test-with-host.log: nginx "$host $remote_addr - ...",
		// also with a port and a unix socket's peer.
		{`example.com 172.17.0.1 - - [29/May/2017:19:02:48 +0000] "GET /stringpatch HTTP/1.1" 404 612 "-" "Mozilla/5.0 (Windows NT 6.1; rv:15.0) Gecko/20120716 Firefox/15.0a2" "-"`,
			"GET", "4xx", "/stringpatch", 612, -1, "172.17.0.1"},
		{`example.com:80 81.2.69.143 - - [07/Dec/2016:11:05:07 +0100] "GET /ocelot HTTP/1.1" 200 571 "-" "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_14_0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/70.0.3538.102 Safari/537.36"`,
			"GET", "2xx", "/ocelot", 571, -1, "81.2.69.143"},
		{`1.128.3.4:80 127.0.0.1 - - [12/Apr/2018:09:48:40 +0200] "" 400 0 "-" "-"`, "other", "4xx", "", 0, -1, "127.0.0.1"},
		{`example.com:80 unix: - - [26/Feb/2019:15:39:42 +0100] "hello" 400 173 "-" "-"`, "other", "4xx", "", 173, -1, ""},
	})
}
