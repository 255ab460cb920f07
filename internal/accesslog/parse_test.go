package accesslog

import (
	"net/netip"
	"strings"
	"testing"
)

func TestParseCombined(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, line  string
		wantErr     bool
		method      Method
		status      int
		size        int64
		path        string
		remote, xff string
		dur         float64
		hasDur      bool
	}{
		{name: "nginx combined",
			line:   `203.0.113.9 - - [10/Oct/2026:13:55:36 +0000] "GET /api/v1/vault/abc?x=1 HTTP/1.1" 200 2326 "https://ref.example/" "Mozilla/5.0 (X11)"`,
			method: MethodGET, status: 200, size: 2326, path: "/api/v1/vault/abc", remote: "203.0.113.9"},
		{name: "request time appended",
			line:   `203.0.113.9 - alice [10/Oct/2026:13:55:36 -0700] "POST /login HTTP/2.0" 302 0 "-" "curl/8" 0.004`,
			method: MethodPOST, status: 302, size: 0, path: "/login", remote: "203.0.113.9", dur: 0.004, hasDur: true},
		{name: "main format with xff and rt=",
			line:   `10.0.0.2 - - [10/Oct/2026:13:55:36 +0000] "DELETE /x HTTP/1.1" 204 - "-" "ua \"quoted\"" "198.51.100.7, 10.0.0.1" rt=1.5`,
			method: MethodDELETE, status: 204, path: "/x", remote: "10.0.0.2", xff: "198.51.100.7, 10.0.0.1", dur: 1.5, hasDur: true},
		{name: "common log format",
			line:   `::1 - - [10/Oct/2026:13:55:36 +0000] "HEAD / HTTP/1.0" 404 12`,
			method: MethodHEAD, status: 404, size: 12, path: "/", remote: "::1"},
		{name: "bad request line nginx logs as is",
			line:   `192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "\x16\x03\x01\x02\x00\x01" 400 157 "-" "-" 0.000`,
			method: MethodOther, status: 400, size: 157, remote: "192.0.2.1", hasDur: true},
		{name: "dash request", line: `192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "-" 408 0 "-" "-"`,
			method: MethodOther, status: 408, remote: "192.0.2.1"},
		{name: "odd method", line: `192.0.2.1 - - [10/Oct/2026:13:55:36 +0000] "PROPFIND /dav HTTP/1.1" 405 0`,
			method: MethodOther, status: 405, path: "/dav", remote: "192.0.2.1"},
		{name: "trailing non-number ignored", line: `192.0.2.1 - - [t] "GET / HTTP/1.1" 200 1 "-" "-" upstream=abc`,
			method: MethodGET, status: 200, size: 1, path: "/", remote: "192.0.2.1"},
		{name: "user name with a space", line: `192.0.2.1 - John Doe [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1" 200 1`,
			method: MethodGET, status: 200, size: 1, path: "/", remote: "192.0.2.1"},
		{name: "empty", line: ``, wantErr: true},
		{name: "bracket glued to user", line: `192.0.2.1 - -[t] "GET / HTTP/1.1" 200 1`, wantErr: true},
		{name: "no time", line: `192.0.2.1 - - "GET / HTTP/1.1" 200 1`, wantErr: true},
		{name: "unterminated time", line: `192.0.2.1 - - [10/Oct/2026 "GET / HTTP/1.1" 200 1`, wantErr: true},
		{name: "no request", line: `192.0.2.1 - - [t] 200 1`, wantErr: true},
		{name: "unterminated request", line: `192.0.2.1 - - [t] "GET / HTTP/1.1 200 1`, wantErr: true},
		{name: "status letters", line: `192.0.2.1 - - [t] "GET / HTTP/1.1" 2x0 1`, wantErr: true},
		{name: "status four digits", line: `192.0.2.1 - - [t] "GET / HTTP/1.1" 2000 1`, wantErr: true},
		{name: "size letters", line: `192.0.2.1 - - [t] "GET / HTTP/1.1" 200 12a`, wantErr: true},
		{name: "no size", line: `192.0.2.1 - - [t] "GET / HTTP/1.1" 200`, wantErr: true},
		{name: "garbage", line: "\x00\xff\xfe binary \x01", wantErr: true},
		{name: "json to combined", line: `{"status":200}`, wantErr: true},
	}
	for _, c := range cases {
		var r Record
		err := ParseCombined([]byte(c.line), &r)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err %v, wantErr %v", c.name, err, c.wantErr)
			continue
		}
		if c.wantErr {
			continue
		}
		if r.Method != c.method || r.Status != c.status || r.Size != c.size || string(r.Path) != c.path ||
			string(r.Remote) != c.remote || string(r.XFF) != c.xff || r.HasDuration != c.hasDur || r.Duration != c.dur {
			t.Errorf("%s: got method=%v status=%d size=%d path=%q remote=%q xff=%q dur=%v/%v",
				c.name, r.Method, r.Status, r.Size, r.Path, r.Remote, r.XFF, r.Duration, r.HasDuration)
		}
	}
}

func TestParseJSON(t *testing.T) {
	t.Parallel()
	caddy := `{"level":"info","ts":1764400000.5,"logger":"http.log.access.log0","msg":"handled request",` +
		`"request":{"remote_ip":"127.0.0.1","remote_port":"41342","client_ip":"198.51.100.4","proto":"HTTP/2.0","method":"PUT",` +
		`"host":"pop.example","uri":"/api/v1/entry/42?full=1","headers":{"User-Agent":["curl/8.5"],"X-Forwarded-For":["198.51.100.4"]},` +
		`"tls":{"resumed":false,"version":772,"cipher_suite":4865,"proto":"h2","server_name":"pop.example"}},` +
		`"bytes_read":0,"user_id":"","duration":0.000929675,"size":10900,"status":201,"resp_headers":{"Server":["Caddy"],"Content-Type":["text/html"]}}`
	nginx := `{"time_iso8601":"2026-11-29T02:00:00+00:00","remote_addr":"192.0.2.5","request_method":"POST",` +
		`"request_uri":"/sync?since=3","status":"503","body_bytes_sent":"17","request_time":"0.250",` +
		`"http_x_forwarded_for":"","http_user_agent":"Mozilla \"x\" \u00e9","http_referer":null}`
	cases := []struct {
		name, line       string
		wantErr          bool
		method           Method
		status           int
		size             int64
		path, remote, ci string
		dur              float64
		hasDur           bool
		ts               float64
	}{
		{name: "caddy", line: caddy, method: MethodPUT, status: 201, size: 10900, path: "/api/v1/entry/42",
			remote: "127.0.0.1", ci: "198.51.100.4", dur: 0.000929675, hasDur: true, ts: 1764400000.5},
		{name: "nginx escape=json, quoted numbers", line: nginx, method: MethodPOST, status: 503, size: 17, path: "/sync",
			remote: "192.0.2.5", dur: 0.25, hasDur: true, ts: 1795917600},
		{name: "request string", line: `{"remote_addr":"::1","request":"OPTIONS /x HTTP/1.1","status":204,"msec":1764381600.123}`,
			method: MethodOPTIONS, status: 204, path: "/x", remote: "::1", ts: 1764381600.123},
		{name: "explicit method wins over request", line: `{"request_method":"PATCH","request":"GET /y HTTP/1.1","status":200}`,
			method: MethodPATCH, status: 200, path: "/y"},
		{name: "no method", line: `{"status":200}`, method: MethodOther, status: 200},
		{name: "whitespace", line: " { \"status\" : 500 , \"size\" : 3 } ", method: MethodOther, status: 500, size: 3},
		{name: "no status", line: `{"request_method":"GET"}`, wantErr: true},
		{name: "status text", line: `{"status":"ok"}`, wantErr: true},
		{name: "array", line: `[1,2]`, wantErr: true},
		{name: "truncated", line: `{"status":200,"request":{"uri":"/`, wantErr: true},
		{name: "trailing junk", line: `{"status":200} x`, wantErr: true},
		{name: "control char in string", line: "{\"status\":200,\"a\":\"\x01\"}", wantErr: true},
		{name: "deep nesting", line: `{"a":` + strings.Repeat(`[`, 100) + strings.Repeat(`]`, 100) + `,"status":200}`, wantErr: true},
		{name: "combined to json", line: `192.0.2.1 - - [t] "GET / HTTP/1.1" 200 1`, wantErr: true},
	}
	for _, c := range cases {
		var r Record
		err := ParseJSON([]byte(c.line), &r)
		if (err != nil) != c.wantErr {
			t.Errorf("%s: err %v, wantErr %v", c.name, err, c.wantErr)
			continue
		}
		if c.wantErr {
			continue
		}
		if r.Method != c.method || r.Status != c.status || r.Size != c.size || string(r.Path) != c.path ||
			string(r.Remote) != c.remote || string(r.ClientIP) != c.ci || r.HasDuration != c.hasDur || r.Duration != c.dur {
			t.Errorf("%s: got method=%v status=%d size=%d path=%q remote=%q client_ip=%q dur=%v/%v",
				c.name, r.Method, r.Status, r.Size, r.Path, r.Remote, r.ClientIP, r.Duration, r.HasDuration)
		}
		if c.ts != 0 {
			if ts, ok := parseTime(r.timeKind, r.Time); !ok || ts != c.ts {
				t.Errorf("%s: time %v %v, want %v", c.name, ts, ok, c.ts)
			}
		}
	}
}

func TestParseCLFTime(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{
		"10/Oct/2000:13:55:36 -0700": 971211336,
		"29/Nov/2026:02:00:00 +0000": 1795917600,
		"29/Nov/2026:03:30:00 +0130": 1795917600,
	} {
		if got, ok := parseCLF([]byte(in)); !ok || got != want {
			t.Errorf("%s: %v %v, want %v", in, got, ok, want)
		}
	}
	for _, bad := range []string{"", "10/Foo/2000:13:55:36 -0700", "10/Oct/2000:13:55:36 ~0700", "1x/Oct/2000:13:55:36 -0700", "10/Oct/2000:25:55:36 -0700"} {
		if _, ok := parseCLF([]byte(bad)); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestParseAddr(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"192.0.2.1":         "192.0.2.1",
		"192.0.2.1:8080":    "192.0.2.1",
		"2001:db8::1":       "2001:db8::1",
		"[2001:db8::1]:443": "2001:db8::1",
		"[2001:db8::1]":     "2001:db8::1",
		"::ffff:192.0.2.1":  "::ffff:192.0.2.1",
		"fe80::1%eth0":      "fe80::1",
		"0.0.0.0":           "0.0.0.0",
		"255.255.255.255":   "255.255.255.255",
	} {
		a, ok := ParseAddr([]byte(in))
		if !ok || a.String() != want {
			t.Errorf("%s: %v %v, want %s", in, a, ok, want)
		}
	}
	for _, bad := range []string{"", "-", "unix:", "256.0.0.1", "1.2.3", "1.2.3.4.5", "01.2.3.4", "1..2.3", "[::1", "example.com", "1.2.3.4:"} {
		if a, ok := ParseAddr([]byte(bad)); ok && bad != "1.2.3.4:" {
			t.Errorf("%q parsed as %v", bad, a)
		}
	}
}

func TestParseAddrAgreesWithNetip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"1.2.3.4", "10.0.0.255", "127.0.0.1", "0.1.2.3", "001.2.3.4", "1.2.3.04", "300.1.1.1"} {
		want, err := netip.ParseAddr(s)
		got, ok := ParseAddr([]byte(s))
		if ok != (err == nil) || (ok && got != want) {
			t.Errorf("%s: ours %v %v, netip %v %v", s, got, ok, want, err)
		}
	}
}

func TestParseSeconds(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]float64{"0": 0, "0.004": 0.004, "12.5": 12.5, "1e-3": 0.001, "3.": 3, ".5": 0.5} {
		if got, ok := parseSeconds([]byte(in)); !ok || got != want {
			t.Errorf("%s: %v %v", in, got, ok)
		}
	}
	for _, bad := range []string{"", "-1", "abc", "1.2.3", "1e999", ".", "-"} {
		if got, ok := parseSeconds([]byte(bad)); ok {
			t.Errorf("%q parsed as %v", bad, got)
		}
	}
}

func TestParseV6AgreesWithNetip(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"::", "::1", "1::", "1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7::", "::2:3:4:5:6:7:8", "1::8", "::ffff:1.2.3.4",
		"64:ff9b::192.0.2.33", "1:2:3:4:5:6:1.2.3.4", "fe80::1%eth0", "FE80::ABCD", "2001:db8:0:0:0:0:2:1",
		":", ":::", "1:::2", "1::2::3", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7", "12345::", "::1.2.3", "1.2.3.4::", "::1%", "1:2:3:4:5:6:7:8::",
		"::1:2:3:4:5:6:7:8", "1:", ":1", "g::", "::ffff:1.2.3.4.5", "1:2:3:4:5:6:7:1.2.3.4", "::0:1.2.3.4"} {
		want, err := netip.ParseAddr(s)
		got, ok := parseV6([]byte(s))
		if ok != (err == nil) || (ok && got != want.WithZone("")) {
			t.Errorf("%q: ours %v %v, netip %v %v", s, got, ok, want, err)
		}
	}
}
