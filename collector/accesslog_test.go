package collector

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/clavitor/clavis-telemetry/privacy"
)

// newTestAccesslog builds the accesslog collector from command-line args.
func newTestAccesslog(t *testing.T, now time.Time, args ...string) (*accesslogCollector, error) {
	t.Helper()
	app := kingpin.New("test", "")
	factory := setupAccesslog(app)
	if _, err := app.Parse(args); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	c, err := factory(Env{Logger: slog.New(slog.DiscardHandler), Context: ctx, Now: func() time.Time { return now }})
	if err != nil {
		return nil, err
	}
	return c.(*accesslogCollector), nil
}

// directCollector exposes one collector to a registry without the scraper:
// these tests gather many times in a row, and the scraper may skip a run
// whose predecessor's goroutine has not quite finished (errStillRunning).
type directCollector struct{ c Collector }

func (d directCollector) Describe(chan<- *prometheus.Desc) {}

func (d directCollector) Collect(ch chan<- prometheus.Metric) {
	var b batch
	if err := updateInto(context.Background(), d.c, &b); err != nil {
		panic(err)
	}
	for _, m := range b.Metrics() {
		ch <- m
	}
}

func TestAccesslogCollectorFixture(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/accesslog/mixed.log")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 29, 2, 1, 0, 0, time.UTC)
	c, err := newTestAccesslog(t, now, "--accesslog.path="+path, "--accesslog.from-start",
		"--accesslog.route=vault=^/api/v1/vault/", "--accesslog.route=login=^/login$",
		"--accesslog.client-ip=x-forwarded-for", "--accesslog.trusted-proxies=10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(directCollector{c})
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := testutil.GatherAndCount(reg, "clavis_http_requests_total")
		if err != nil {
			t.Fatal(err)
		}
		if n == 4*6 { // (GET, vault), (POST, login), (PUT, vault), (GET, other)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d request series", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := `
# HELP clavis_accesslog_following Number of configured access logs (--accesslog.path) currently open.
# TYPE clavis_accesslog_following gauge
clavis_accesslog_following 1
# HELP clavis_accesslog_last_line_timestamp_seconds Time written in the last parsed access log line (when it was read, if the line has none), Unix seconds; 0 before the first line.
# TYPE clavis_accesslog_last_line_timestamp_seconds gauge
clavis_accesslog_last_line_timestamp_seconds 1.795917604e+09
# HELP clavis_accesslog_lines_total Access log lines read, by result: parsed, malformed (counted, never fatal), too_long (over 64 KiB, skipped).
# TYPE clavis_accesslog_lines_total counter
clavis_accesslog_lines_total{result="malformed"} 1
clavis_accesslog_lines_total{result="parsed"} 5
clavis_accesslog_lines_total{result="too_long"} 0
# HELP clavis_accesslog_rotations_total Access log rotations noticed: a file replaced under its path (rename or delete, then create) or truncated (copytruncate).
# TYPE clavis_accesslog_rotations_total counter
clavis_accesslog_rotations_total 0
# HELP clavis_http_request_duration_seconds Request time written in the access log (nginx $request_time, Caddy duration), by route class. Only lines that carry a request time count.
# TYPE clavis_http_request_duration_seconds histogram
clavis_http_request_duration_seconds_bucket{route="login",le="0.005"} 0
clavis_http_request_duration_seconds_bucket{route="login",le="0.01"} 1
clavis_http_request_duration_seconds_bucket{route="login",le="0.025"} 1
clavis_http_request_duration_seconds_bucket{route="login",le="0.05"} 1
clavis_http_request_duration_seconds_bucket{route="login",le="0.1"} 1
clavis_http_request_duration_seconds_bucket{route="login",le="0.25"} 1
clavis_http_request_duration_seconds_bucket{route="login",le="0.5"} 1
clavis_http_request_duration_seconds_bucket{route="login",le="1"} 1
clavis_http_request_duration_seconds_bucket{route="login",le="2.5"} 1
clavis_http_request_duration_seconds_bucket{route="login",le="5"} 1
clavis_http_request_duration_seconds_bucket{route="login",le="10"} 1
clavis_http_request_duration_seconds_bucket{route="login",le="+Inf"} 1
clavis_http_request_duration_seconds_sum{route="login"} 0.01
clavis_http_request_duration_seconds_count{route="login"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="0.005"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="0.01"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="0.025"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="0.05"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="0.1"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="0.25"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="0.5"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="1"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="2.5"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="5"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="10"} 1
clavis_http_request_duration_seconds_bucket{route="other",le="+Inf"} 1
clavis_http_request_duration_seconds_sum{route="other"} 0.001
clavis_http_request_duration_seconds_count{route="other"} 1
clavis_http_request_duration_seconds_bucket{route="vault",le="0.005"} 1
clavis_http_request_duration_seconds_bucket{route="vault",le="0.01"} 1
clavis_http_request_duration_seconds_bucket{route="vault",le="0.025"} 2
clavis_http_request_duration_seconds_bucket{route="vault",le="0.05"} 2
clavis_http_request_duration_seconds_bucket{route="vault",le="0.1"} 2
clavis_http_request_duration_seconds_bucket{route="vault",le="0.25"} 2
clavis_http_request_duration_seconds_bucket{route="vault",le="0.5"} 2
clavis_http_request_duration_seconds_bucket{route="vault",le="1"} 3
clavis_http_request_duration_seconds_bucket{route="vault",le="2.5"} 3
clavis_http_request_duration_seconds_bucket{route="vault",le="5"} 3
clavis_http_request_duration_seconds_bucket{route="vault",le="10"} 3
clavis_http_request_duration_seconds_bucket{route="vault",le="+Inf"} 3
clavis_http_request_duration_seconds_sum{route="vault"} 0.723
clavis_http_request_duration_seconds_count{route="vault"} 3
# HELP clavis_http_response_size_bytes_total Response body bytes written in the access log (nginx $body_bytes_sent, Caddy size).
# TYPE clavis_http_response_size_bytes_total counter
clavis_http_response_size_bytes_total 140
# HELP clavis_unique_ips_1h Estimated distinct client IP addresses over the last hour (HyperLogLog, relative error under 2%; no address is kept).
# TYPE clavis_unique_ips_1h gauge
clavis_unique_ips_1h 4
# HELP clavis_unique_ips_24h Estimated distinct client IP addresses over the last 24 hours (HyperLogLog, relative error under 2%; no address is kept).
# TYPE clavis_unique_ips_24h gauge
clavis_unique_ips_24h 4
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want),
		"clavis_accesslog_following", "clavis_accesslog_last_line_timestamp_seconds", "clavis_accesslog_lines_total",
		"clavis_accesslog_rotations_total", "clavis_http_request_duration_seconds", "clavis_http_response_size_bytes_total",
		"clavis_unique_ips_1h", "clavis_unique_ips_24h"); err != nil {
		t.Fatal(err)
	}
	for _, k := range []struct {
		labels string
		v      float64
	}{
		{`method="GET",code="2xx",route="vault"`, 1},
		{`method="GET",code="5xx",route="vault"`, 1},
		{`method="GET",code="4xx",route="vault"`, 0},
		{`method="PUT",code="2xx",route="vault"`, 1},
		{`method="POST",code="3xx",route="login"`, 1},
		{`method="GET",code="4xx",route="other"`, 1},
	} {
		if got := requestsValue(t, reg, k.labels); got != k.v {
			t.Errorf("requests{%s} = %v, want %v\n%s", k.labels, got, k.v, exposition(t, reg))
		}
	}
	// Every family and label is on the privacy allowlist, and no path,
	// address or user agent appears in the exposition.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		allowed, ok := privacy.AllowedLabels(mf.GetName())
		if !ok {
			t.Errorf("%s is not on the allowlist", mf.GetName())
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if !containsString(allowed, l.GetName()) {
					t.Errorf("%s: label %s not allowed", mf.GetName(), l.GetName())
				}
			}
		}
	}
	var text strings.Builder
	for _, mf := range mfs {
		text.WriteString(mf.String())
	}
	for _, secret := range []string{"8f3a9c2e", "0b1c", "192.0.2", "198.51.100", "2001:db8", "Mozilla", "zgrab", "wp-login", "clavitor/2", "since"} {
		if strings.Contains(text.String(), secret) {
			t.Errorf("exposition contains %q", secret)
		}
	}
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func requestsValue(t *testing.T, g prometheus.Gatherer, labels string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "clavis_http_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var parts []string
			for _, name := range []string{"method", "code", "route"} {
				for _, l := range m.GetLabel() {
					if l.GetName() == name {
						parts = append(parts, name+`="`+l.GetValue()+`"`)
					}
				}
			}
			if strings.Join(parts, ",") == labels {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

func TestAccesslogCollectorNoPaths(t *testing.T) {
	t.Parallel()
	c, err := newTestAccesslog(t, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(directCollector{c})
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP clavis_unique_ips_24h Estimated distinct client IP addresses over the last 24 hours (HyperLogLog, relative error under 2%; no address is kept).
# TYPE clavis_unique_ips_24h gauge
clavis_unique_ips_24h 0
# HELP clavis_accesslog_following Number of configured access logs (--accesslog.path) currently open.
# TYPE clavis_accesslog_following gauge
clavis_accesslog_following 0
`), "clavis_unique_ips_24h", "clavis_accesslog_following"); err != nil {
		t.Fatal(err)
	}
	if n, _ := testutil.GatherAndCount(reg, "clavis_http_requests_total"); n != 0 {
		t.Fatalf("%d request series with no log", n)
	}
}

func TestAccesslogFlagErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--accesslog.route=Bad=^/x"},
		{"--accesslog.route=x=("},
		{"--accesslog.route=other=^/x"},
		{"--accesslog.route=noequals"},
		{"--accesslog.format=xml"},
		{"--accesslog.client-ip=header"},
		{"--accesslog.caddy-duration-format=milliseconds"},
		{"--accesslog.caddy-duration-format=MS"},
		{"--accesslog.caddy-duration-format="},
		{"--accesslog.trusted-proxies=10.0.0.0/8,nonsense"},
		{"--accesslog.path="},
	} {
		if _, err := newTestAccesslog(t, time.Now(), args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestAccesslogCaddyDurationFormat: with --accesslog.caddy-duration-format
// (here Caddy's alias milli) a Caddy log written with duration_format ms
// gives request times in seconds, whole values (zap's 12) included; auto
// would read 12 as nanoseconds and 1.5 as seconds.
func TestAccesslogCaddyDurationFormat(t *testing.T) {
	t.Parallel()
	line := func(dur string) string {
		return `{"level":"info","ts":1795917600.5,"logger":"http.log.access.log0","msg":"handled request",` +
			`"request":{"remote_ip":"192.0.2.7","method":"GET","uri":"/x"},"duration":` + dur + `,"size":5,"status":200}` + "\n"
	}
	path := filepath.Join(t.TempDir(), "access.log")
	if err := os.WriteFile(path, []byte(line("12")+line("1.5")+line("250")), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		flag string
		sum  float64
	}{
		{"--accesslog.caddy-duration-format=milli", 0.012 + 0.0015 + 0.25},
		{"--accesslog.caddy-duration-format=auto", 12e-9 + 1.5 + 250e-9},
	} {
		c, err := newTestAccesslog(t, time.Now(), "--accesslog.path="+path, "--accesslog.from-start", "--accesslog.format=json", tc.flag)
		if err != nil {
			t.Fatal(err)
		}
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(directCollector{c})
		deadline := time.Now().Add(10 * time.Second)
		for {
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var h *dto.Histogram
			for _, mf := range mfs {
				if mf.GetName() == "clavis_http_request_duration_seconds" {
					h = mf.GetMetric()[0].GetHistogram()
				}
			}
			if h != nil && h.GetSampleCount() == 3 {
				if got := h.GetSampleSum(); got < tc.sum*(1-1e-9) || got > tc.sum*(1+1e-9) {
					t.Errorf("%s: sum %v, want %v", tc.flag, got, tc.sum)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: histogram %v", tc.flag, h)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
