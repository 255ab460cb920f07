package accesslog

import "testing"

// TestParseCombinedVhost: Apache's vhost_combined writes "%v:%p" before
// the client; the client is the second field, and lines that only look
// alike (an IPv6 remote, a user name with a space) keep their first. A
// vhost without a port (Apache's "%v %h %l %u", nginx's "$host
// $remote_addr - $remote_user") is taken for one when the field after it
// is an address and it is none; Apache's %h with HostnameLookups On (a
// host name, three fields before the time) stays the remote.
func TestParseCombinedVhost(t *testing.T) {
	t.Parallel()
	const rest = ` [02/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "ua"`
	for line, want := range map[string]string{
		`www.example.com:443 203.0.113.9 - -` + rest:        "203.0.113.9",
		`192.0.2.10:80 203.0.113.9 - -` + rest:              "203.0.113.9",
		`[2001:db8::10]:443 2001:db8::9 - -` + rest:         "2001:db8::9",
		`pop.example:8443 198.51.100.7 - John Doe` + rest:   "198.51.100.7",
		`www.example.com:443 client.example - alice` + rest: "client.example",
		// No port (or no valid one), an address after it:
		`www.example.com 203.0.113.9 - -` + rest:        "203.0.113.9",
		`www.example.com 2001:db8::9 - alice` + rest:    "2001:db8::9",
		`www.example.com 203.0.113.9 - John Doe` + rest: "203.0.113.9",
		`www.example.com unix: - -` + rest:              "unix:",
		`www.example.com:https 203.0.113.9 - -` + rest:  "203.0.113.9",
		`:443 203.0.113.9 - -` + rest:                   "203.0.113.9",
		`host:123456 203.0.113.9 - -` + rest:            "203.0.113.9",
		// not a vhost first:
		`203.0.113.9 - -` + rest:                          "203.0.113.9",
		`203.0.113.9 - alice` + rest:                      "203.0.113.9",
		`192.0.2.1 - John Doe` + rest:                     "192.0.2.1",
		`2001:db8::1 - John Doe` + rest:                   "2001:db8::1",
		`192.0.2.1:5555 - John Doe` + rest:                "192.0.2.1:5555",
		`www.example.com:https client.example - -` + rest: "www.example.com:https",
		`www.example.com:443 203.0.113.9 -` + rest:        "www.example.com:443",
		`:443 client.example - -` + rest:                  ":443",
		`host:123456 client.example - -` + rest:           "host:123456",
		`192.0.2.10 203.0.113.9 - -` + rest:               "192.0.2.10", // two addresses ($server_addr $remote_addr): the first stays
		`www.example.com 203.0.113.9 -` + rest:            "www.example.com",
		// HostnameLookups On: %h is a name.
		`client.example - -` + rest:               "client.example",
		`client.example - alice` + rest:           "client.example",
		`client.example - John Doe` + rest:        "client.example",
		`client.example 203.0.113.9 alice` + rest: "client.example", // an address as ident, no user: three fields
	} {
		var r Record
		if err := ParseCombined([]byte(line), &r); err != nil {
			t.Errorf("%s: %v", line, err)
			continue
		}
		if string(r.Remote) != want || r.Status != 200 || r.Size != 5 || string(r.Path) != "/" || r.Method != MethodGET {
			t.Errorf("%s: remote %q (want %q), %+v", line, r.Remote, want, r)
		}
	}
}

// TestParseCombinedUpstreamTimes: with $upstream_response_time next to
// $request_time, the request time is taken, never a value of the
// upstream's list.
func TestParseCombinedUpstreamTimes(t *testing.T) {
	t.Parallel()
	const head = `203.0.113.9 - - [02/Dec/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 5 "-" "ua"`
	for extras, want := range map[string]float64{
		` 3.500`:                             3.5, // $request_time only
		` - 3.500`:                           3.5, // no upstream
		` 0.004 3.500`:                       3.5,
		` 0.001, 0.002 3.500`:                3.5, // retries
		` 0.001 : 0.002 3.500`:               3.5, // an internal redirect
		` 0.001, 0.002 : 0.003 3.500`:        3.5,
		` 0.001, 0.002, 0.003 3.500`:         3.5,
		` -, 0.002 3.500`:                    3.5,
		` 3.500 0.004`:                       3.5, // $request_time $upstream_response_time
		` 3.500 -`:                           3.5,
		` 3.500 0.001, 0.002`:                3.5,
		` 3.500 0.001 : 0.002`:               3.5,
		` 3.500 0.004 .`:                     3.5,   // timed_combined, $pipe last
		` 0.004 512`:                         0.004, // $request_time $request_length: not a time
		` rt=0.5 0.9`:                        0.5,
		` 0.5 rt=0.9`:                        0.5,
		` "198.51.100.7" 0.001, 0.002 3.500`: 3.5,
		` 0.004 "x" 3.500`:                   0.004,
		` urt=0.004 3.500`:                   3.5,
		` 0.500 1764669600.123`:              0.5, // $request_time $msec
		` 1764669600.123 0.500`:              0.5, // $msec $request_time
	} {
		var r Record
		if err := ParseCombined([]byte(head+extras), &r); err != nil {
			t.Errorf("%q: %v", extras, err)
			continue
		}
		if !r.HasDuration || r.Duration != want {
			t.Errorf("%q: duration %v/%v, want %v", extras, r.Duration, r.HasDuration, want)
		}
	}
	for _, extras := range []string{``, ` -`, ` 0.001, 0.002`, ` 0.001 : 0.002`, ` - -`, ` :`, ` ,`} {
		var r Record
		if err := ParseCombined([]byte(head+extras), &r); err != nil || r.HasDuration {
			t.Errorf("%q: duration %v/%v (err %v), want none", extras, r.Duration, r.HasDuration, err)
		}
	}
}

const (
	benchCombined = `203.0.113.9 - - [02/Dec/2026:10:00:00 +0000] "GET /api/v1/vault/8f3a9c2e1b7d4f60?page=3 HTTP/1.1" 200 2326 "https://pop.example/" "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0" 0.123`
	benchVhost    = `www.example.com:443 203.0.113.9 - - [02/Dec/2026:10:00:00 +0000] "GET /api/v1/vault/8f3a9c2e1b7d4f60?page=3 HTTP/1.1" 200 2326 "https://pop.example/" "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0" 0.001, 0.002 0.123`
)

func BenchmarkParseCombined(b *testing.B) {
	line := []byte(benchCombined)
	var r Record
	for b.Loop() {
		ParseCombined(line, &r)
	}
}

func BenchmarkParseCombinedVhostUpstream(b *testing.B) {
	line := []byte(benchVhost)
	var r Record
	for b.Loop() {
		ParseCombined(line, &r)
	}
}
