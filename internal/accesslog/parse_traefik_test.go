package accesslog

import (
	"strings"
	"testing"
)

// Traefik's access log, both formats, as its documentation lays them out:
// the common log format with request count, router, server URL and the
// duration in milliseconds ("37ms"), and JSON with its own field names
// (Duration in nanoseconds).
const (
	traefikCLF  = `198.51.100.7 - - [03/Dec/2026:09:00:00 +0000] "GET /api/v1/entry/42?full=1 HTTP/2.0" 404 19 "-" "curl/8.5.0" 4211 "vault@docker" "http://172.18.0.3:8080" 37ms`
	traefikJSON = `{"ClientAddr":"198.51.100.7:54321","ClientHost":"198.51.100.7","ClientPort":"54321","ClientUsername":"-",` +
		`"DownstreamContentSize":19,"DownstreamStatus":404,"Duration":1534210,"OriginContentSize":19,"OriginDuration":1210000,` +
		`"OriginStatus":404,"Overhead":324210,"RequestAddr":"pop.example","RequestContentSize":0,"RequestCount":4211,` +
		`"RequestHost":"pop.example","RequestMethod":"POST","RequestPath":"/api/v1/entry/42?full=1","RequestPort":"-",` +
		`"RequestProtocol":"HTTP/2.0","RequestScheme":"https","RetryAttempts":0,"RouterName":"vault@docker",` +
		`"ServiceAddr":"172.18.0.3:8080","ServiceName":"vault@docker","ServiceURL":"http://172.18.0.3:8080",` +
		`"StartLocal":"2026-12-03T10:00:00.123456789+01:00","StartUTC":"2026-12-03T09:00:00.123456789Z",` +
		`"entryPointName":"websecure","level":"info","msg":"","request_X-Forwarded-For":"203.0.113.5","time":"2026-12-03T10:00:00+01:00"}`
)

func TestParseTraefik(t *testing.T) {
	t.Parallel()
	var r Record
	if err := ParseCombined([]byte(traefikCLF), &r); err != nil {
		t.Fatal(err)
	}
	if r.Method != MethodGET || r.Status != 404 || r.Size != 19 || string(r.Path) != "/api/v1/entry/42" || string(r.Remote) != "198.51.100.7" {
		t.Errorf("CLF: %+v", r)
	}
	if !r.HasDuration || r.Duration != 0.037 {
		t.Errorf("CLF: duration %v/%v, want 0.037 (37ms)", r.Duration, r.HasDuration)
	}
	for _, tail := range []string{` 1.5ms`, ` 0ms`, ` 2000000000ms`, ` ms`, ` -3ms`, ` 12mss`} {
		line := strings.TrimSuffix(traefikCLF, ` 37ms`) + tail
		if err := ParseCombined([]byte(line), &r); err != nil {
			t.Fatal(err)
		}
		want := map[string]float64{` 1.5ms`: 0.0015, ` 0ms`: 0}
		if w, ok := want[tail]; ok != r.HasDuration || (ok && r.Duration != w) {
			t.Errorf("CLF ending %q: duration %v/%v", tail, r.Duration, r.HasDuration)
		}
	}

	if err := ParseJSON([]byte(traefikJSON), &r); err != nil {
		t.Fatal(err)
	}
	if r.Method != MethodPOST || r.Status != 404 || r.Size != 19 || string(r.Path) != "/api/v1/entry/42" ||
		string(r.Remote) != "198.51.100.7" || string(r.XFF) != "203.0.113.5" {
		t.Errorf("JSON: %+v", r)
	}
	if !r.HasDuration || r.Duration != 0.00153421 {
		t.Errorf("JSON: duration %v/%v, want 0.00153421 (1534210 ns)", r.Duration, r.HasDuration)
	}
	if ts, ok := parseTime(r.timeKind, r.Time); !ok || int64(ts) != 1796288400 {
		t.Errorf("JSON: time %v/%v from %q", ts, ok, r.Time)
	}

	// Both in one followed log, auto format.
	c := newTestCounter(t, Options{})
	if _, err := c.NewStream().Write([]byte(traefikCLF + "\n" + traefikJSON + "\n")); err != nil {
		t.Fatal(err)
	}
	s := c.Snapshot(testNow)
	if s.Lines["parsed"] != 2 || s.Lines["malformed"] != 0 {
		t.Errorf("auto: lines %v", s.Lines)
	}
	if n, _ := requestCount(s, "POST", "4xx", "other"); n != 1 {
		t.Errorf("auto: POST 4xx = %d", n)
	}
}

// TestParseTraefikNoStatus: Traefik writes "-" for a status it does not
// have (no downstream response: the client went away, a hijacked or
// failed connection), in its common format, and leaves DownstreamStatus
// out of its JSON. The lines were refused; they are requests, of code
// other, with their method, path, bytes and duration. A JSON line with no
// status and no Traefik request field is still none.
func TestParseTraefikNoStatus(t *testing.T) {
	t.Parallel()
	checkRealLines(t, []realLine{
		// crowdsecurity/hub .tests/traefik_clf/traefik_clf.log
		{`172.17.1.1 - - [28/Sep/2022:13:38:04 +0000] "GET /mobileadmin/home.cs HTTP/1.1" - - "-" "Mozilla/5.00 (Nikto/2.1.5) (Evasions:None) (Test:006607)" 45640 "-" "-" 0ms`,
			"GET", "other", "/mobileadmin/home.cs", 0, 0, "172.17.1.1"},
		// The same file, a status: unchanged.
		{`172.17.1.2 - - [24/Nov/2024:13:38:04 +0000] "GET /birthday HTTP/2" 200 352 "-" "Nikto" 244 "test@docker -> leaf@docker" "http://172.17.0.3:80" 42ms`,
			"GET", "2xx", "/birthday", 352, 0.042, "172.17.1.2"},
		// traefik/traefik pkg/middlewares/accesslog/logger_formatters_test.go ("DownstreamStatus &
		// DownstreamContentSize are nil").
		{`10.0.0.1 - Client [10/Nov/2009:23:00:00 +0000] "GET /foo http" - - "-" "-" 0 "-" "-" 123000ms`,
			"GET", "other", "/foo", 0, 123, "10.0.0.1"},
		// Traefik's JSON without DownstreamStatus (constructed: traefikJSON without it, and with
		// DownstreamStatus and DownstreamContentSize dropped by fields.names).
		{strings.Replace(traefikJSON, `"DownstreamStatus":404,`, ``, 1), "POST", "other", "/api/v1/entry/42", 19, 0.00153421, "198.51.100.7"},
		{`{"ClientHost":"198.51.100.7","Duration":1534210,"RequestMethod":"GET","RequestPath":"/x","StartUTC":"2026-12-03T09:00:00Z","level":"info","msg":""}`,
			"GET", "other", "/x", 0, 0.00153421, "198.51.100.7"},
		{`{"ClientHost":"198.51.100.7","RequestPath":"/x","level":"info"}`, "other", "other", "/x", 0, -1, "198.51.100.7"},
	})
	for _, line := range []string{
		// Traefik's own log in JSON, no access record.
		`{"level":"error","msg":"accept tcp [::]:443: use of closed network connection","entryPointName":"websecure","time":"2026-12-03T10:00:00+01:00"}`,
		`{"ClientHost":"198.51.100.7","level":"info"}`,
		`{"request_method":"GET","request_uri":"/x"}`, // nginx's names: no status, no request
		`{"level":"info","logger":"http.log.access","request":{"method":"GET","uri":"/x"}}`,
	} {
		var r Record
		if err := ParseJSON([]byte(line), &r); err == nil {
			t.Errorf("%s: a request: %+v", line, r)
		}
	}
}
