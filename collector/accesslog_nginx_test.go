package collector

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
	"github.com/clavitor/clavis-telemetry/privacy"
)

// nginxConf runs nginx unprivileged-friendly in dir: pid, temp paths and
// logs in dir, in the foreground, one worker. It writes the same requests
// to a combined-with-request-time log and to an escape=json log.
const nginxConf = `
daemon off;
worker_processes 1;
%[1]s
pid %[2]s/nginx.pid;
error_log %[2]s/error.log info;
events { worker_connections 128; }
http {
	client_body_temp_path %[2]s/body;
	proxy_temp_path %[2]s/proxy;
	fastcgi_temp_path %[2]s/fastcgi;
	uwsgi_temp_path %[2]s/uwsgi;
	scgi_temp_path %[2]s/scgi;
	log_format combined_rt '$remote_addr - $remote_user [$time_local] "$request" '
		'$status $body_bytes_sent "$http_referer" "$http_user_agent" $request_time';
	log_format clavis_json escape=json '{"time_iso8601":"$time_iso8601","remote_addr":"$remote_addr",'
		'"request_method":"$request_method","request_uri":"$request_uri","status":$status,'
		'"body_bytes_sent":$body_bytes_sent,"request_time":$request_time,'
		'"http_x_forwarded_for":"$http_x_forwarded_for","http_user_agent":"$http_user_agent"}';
	access_log %[2]s/access.log combined_rt;
	access_log %[2]s/access.json clavis_json;
	server {
		listen %[3]s;
		root %[2]s/html;
		location = /r/ok { return 200 "hello"; }
		location = /r/created { return 201 "created!"; }
		location = /r/empty { return 204; }
		location = /r/moved { return 301 /r/ok; }
		location = /r/missing { return 404; }
		location = /r/broken { return 503; }
		location /api/v1/vault/ { return 200 "vault-data"; }
	}
}
`

type nginxExpect struct {
	requests map[[3]string]float64 // method, code, route
	bytes    float64
	lines    float64
}

func (e *nginxExpect) add(method, code, route string, body int) {
	e.requests[[3]string{method, code, route}]++
	e.bytes += float64(body)
	e.lines++
}

func codeClass(status int) string {
	if status < 100 || status > 599 {
		return "other"
	}
	return fmt.Sprintf("%dxx", status/100)
}

func methodLabel(m string) string {
	switch m {
	case "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS":
		return m
	}
	return "other"
}

func routeOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/api/v1/vault/"):
		return "vault"
	case strings.HasPrefix(path, "/r/"):
		return "r"
	}
	return "other"
}

// TestAccesslogAgainstNginx drives a known mix of requests from several
// loopback source addresses through a real nginx, rotates its logs midway
// with mv + nginx -s reopen, and checks that the collector following the
// combined log and the one following the JSON log both export exactly what
// was sent.
func TestAccesslogAgainstNginx(t *testing.T) {
	nginx := e2eutil.RequireBinary(t, "nginx")
	t.Parallel()
	dir := t.TempDir()
	// The collectors start before nginx: the logs do not exist yet, so they
	// are read from their start when they appear.
	now := time.Now()
	rig := startNginxRig(t, nginx, dir, "/r/ok", nil)
	addr, conf, combinedLog, jsonLog := rig.addr, rig.conf, rig.combinedLog, rig.jsonLog
	fromCombined, fromJSON, regCombined, regJSON := rig.fromCombined, rig.fromJSON, rig.regCombined, rig.regJSON

	want := &nginxExpect{requests: map[[3]string]float64{}}
	want.add("GET", "2xx", "r", len("hello")) // the readiness probe above

	sources := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
	clients := make([]*http.Client, len(sources))
	for i, src := range sources {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		clients[i] = &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
	}
	type req struct{ method, path string }
	mix := []req{
		{"GET", "/r/ok"}, {"GET", "/r/ok?token=secret"}, {"HEAD", "/r/ok"}, {"POST", "/r/created"},
		{"PUT", "/r/created"}, {"PATCH", "/r/ok"}, {"DELETE", "/r/empty"}, {"OPTIONS", "/r/ok"},
		{"GET", "/r/moved"}, {"GET", "/r/missing"}, {"GET", "/r/broken"}, {"BREW", "/r/ok"},
		{"GET", "/api/v1/vault/8f3a9c2e1b7d4f60"}, {"POST", "/api/v1/vault/0b1c2d3e/entries"},
		{"GET", "/nowhere.php"}, {"GET", "/"},
	}
	send := func(round int) {
		for i, c := range clients {
			for j, r := range mix {
				if (i+j+round)%3 == 0 && r.method == "GET" && r.path == "/" {
					continue // a different count per source
				}
				hr, err := http.NewRequest(r.method, "http://"+addr+r.path, strings.NewReader(""))
				if err != nil {
					t.Fatal(err)
				}
				hr.Header.Set("User-Agent", "SecretAgent/1.0 (from 203.0.113.77)")
				resp, err := c.Do(hr)
				if err != nil {
					t.Fatal(err)
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				want.add(methodLabel(r.method), codeClass(resp.StatusCode), routeOf(r.path), len(body))
			}
		}
		// A request nginx cannot parse: logged as 400 with the raw bytes.
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(sources[1])}, Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		conn.Write([]byte("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 \"quoted\"\r\n\r\n"))
		raw, _ := io.ReadAll(conn)
		conn.Close()
		status, body := 0, 0
		if k := bytes.Index(raw, []byte("\r\n\r\n")); k >= 0 {
			fmt.Sscanf(string(raw), "HTTP/1.1 %d", &status)
			body = len(raw) - k - 4
		}
		if status != 400 {
			t.Fatalf("nginx answered the garbage request with %q", raw)
		}
		want.add("other", "4xx", "other", body)
	}

	send(0)
	waitLines(t, regCombined, want.lines)
	waitLines(t, regJSON, want.lines)

	// Rotate: mv, then tell nginx to reopen its logs.
	for _, p := range []string{combinedLog, jsonLog} {
		if err := os.Rename(p, p+".1"); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command(nginx, "-p", dir, "-c", conf, "-s", "reopen").CombinedOutput(); err != nil {
		t.Fatalf("nginx -s reopen: %v\n%s", err, out)
	}
	send(1)
	send(2)

	t.Logf("sent %v requests (%d method/code/route combinations, %v body bytes) from %d sources",
		want.lines, len(want.requests), want.bytes, len(sources))
	type followed struct {
		reg  prometheus.Gatherer
		c    *accesslogCollector
		path string
	}
	for name, f := range map[string]followed{"combined": {regCombined, fromCombined, combinedLog}, "json": {regJSON, fromJSON, jsonLog}} {
		reg := f.reg
		waitLines(t, reg, want.lines)
		// Nothing more arrives: nginx has written all it will (every line is
		// counted), and the follower has read every byte of both files.
		waitBytesRead(t, f.c, f.path, f.path+".1")
		got := gatherMap(t, reg)
		for k, v := range want.requests {
			key := fmt.Sprintf(`clavis_http_requests_total{method=%q,code=%q,route=%q}`, k[0], k[1], k[2])
			if got[key] != v {
				t.Errorf("%s: %s = %v, want %v", name, key, got[key], v)
			}
		}
		var total float64
		for k, v := range got {
			if strings.HasPrefix(k, "clavis_http_requests_total{") {
				total += v
			}
		}
		checks := map[string]float64{
			"clavis_http_requests_total (sum)":                           want.lines,
			`clavis_accesslog_lines_total{result="parsed"}`:              want.lines,
			`clavis_accesslog_lines_total{result="malformed"}`:           0,
			`clavis_accesslog_lines_total{result="too_long"}`:            0,
			"clavis_http_response_size_bytes_total":                      want.bytes,
			"clavis_accesslog_rotations_total":                           1,
			"clavis_accesslog_following":                                 1,
			"clavis_unique_ips_1h":                                       float64(len(sources)),
			"clavis_unique_ips_24h":                                      float64(len(sources)),
			"clavis_http_request_duration_seconds_count (sum of routes)": want.lines,
		}
		got["clavis_http_requests_total (sum)"] = total
		for k, v := range got {
			if strings.HasPrefix(k, "clavis_http_request_duration_seconds_count{") {
				got["clavis_http_request_duration_seconds_count (sum of routes)"] += v
			}
		}
		for k, v := range checks {
			if got[k] != v {
				t.Errorf("%s: %s = %v, want %v", name, k, got[k], v)
			}
		}
		if ts := got["clavis_accesslog_last_line_timestamp_seconds"]; ts < float64(now.Add(-time.Minute).Unix()) || ts > float64(time.Now().Add(time.Minute).Unix()) {
			t.Errorf("%s: last line timestamp %v, not now", name, ts)
		}
		text := exposition(t, reg)
		for _, secret := range []string{"127.0.0", "203.0.113", "SecretAgent", "8f3a9c2e", "0b1c2d3e", "token", "nowhere", "BREW", "/r/"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s: exposition contains %q", name, secret)
			}
		}
		promtool := e2eutil.RequireBinary(t, "promtool")
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s: promtool check metrics: %v\n%s", name, err, out)
		}
	}
}

// waitBytesRead waits until c's follower has read as many bytes as the
// files hold, and checks that it reads no more.
func waitBytesRead(t *testing.T, c *accesslogCollector, paths ...string) {
	t.Helper()
	var size uint64
	for _, p := range paths {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		size += uint64(info.Size())
	}
	deadline := time.Now().Add(15 * time.Second)
	for c.follower.BytesRead() < size {
		if time.Now().After(deadline) {
			t.Fatalf("the follower read %d of the %d bytes in %v", c.follower.BytesRead(), size, paths)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Two more poll passes (each reads every open file, rotated ones
	// included, to its end): nothing is read again or late.
	p := c.follower.Polls()
	for c.follower.Polls() < p+2 {
		if time.Now().After(deadline) {
			t.Fatal("the follower stopped polling")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := c.follower.BytesRead(); got != size {
		t.Fatalf("the follower read %d bytes, more than the %d in %v", got, size, paths)
	}
}

// nginxRig is a real nginx in a directory of its own writing a combined
// and a JSON access log (nginxConf), each followed by a collector of its
// own with the routes the tests expect.
type nginxRig struct {
	addr, conf, combinedLog, jsonLog string
	fromCombined, fromJSON           *accesslogCollector
	regCombined, regJSON             *prometheus.Registry
}

// startNginxRig starts the collectors, then nginx (so the logs are read
// from their start when they appear), and waits until nginx answers
// readyPath. before, if not nil, runs once the nginx configuration is
// written and before anything starts.
func startNginxRig(t *testing.T, nginx, dir, readyPath string, before func()) *nginxRig {
	t.Helper()
	for _, d := range []string{"html", "body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	user := ""
	if os.Geteuid() == 0 {
		user = "user root;" // workers stay able to reach the temp dir
	}
	r := &nginxRig{addr: e2eutil.FreeAddr(t, "127.0.0.1"), conf: filepath.Join(dir, "nginx.conf"),
		combinedLog: filepath.Join(dir, "access.log"), jsonLog: filepath.Join(dir, "access.json")}
	if err := os.WriteFile(r.conf, []byte(fmt.Sprintf(nginxConf, user, dir, r.addr)), 0o644); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before()
	}
	now := time.Now()
	routes := []string{"--accesslog.route=vault=^/api/v1/vault/", "--accesslog.route=r=^/r/"}
	var err error
	if r.fromCombined, err = newTestAccesslog(t, now, append(routes, "--accesslog.path="+r.combinedLog, "--accesslog.format=combined")...); err != nil {
		t.Fatal(err)
	}
	if r.fromJSON, err = newTestAccesslog(t, now, append(routes, "--accesslog.path="+r.jsonLog, "--accesslog.format=json")...); err != nil {
		t.Fatal(err)
	}
	r.regCombined, r.regJSON = prometheus.NewPedanticRegistry(), prometheus.NewPedanticRegistry()
	r.regCombined.MustRegister(directCollector{r.fromCombined})
	r.regJSON.MustRegister(directCollector{r.fromJSON})
	e2eutil.StartProcess(t, nginx, "-p", dir, "-c", r.conf)
	e2eutil.WaitHTTP(t, nil, "http://"+r.addr+readyPath, 200, 10*time.Second)
	return r
}

func waitLines(t *testing.T, g prometheus.Gatherer, n float64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := gatherMap(t, g)[`clavis_accesslog_lines_total{result="parsed"}`]
		if got == n {
			return
		}
		if got > n || time.Now().After(deadline) {
			t.Fatalf("parsed lines %v, want %v", got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// gatherMap flattens a gather into "name{labels}" → value (counters,
// gauges, histogram counts).
func gatherMap(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			// Labels in the order the metric declares them.
			labels := ""
			if len(ls) > 0 {
				labels = "{" + strings.Join(orderLabels(mf.GetName(), m.GetLabel()), ",") + "}"
			}
			switch mf.GetType() {
			case dto.MetricType_COUNTER:
				out[mf.GetName()+labels] = m.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[mf.GetName()+labels] = m.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[mf.GetName()+"_count"+labels] = float64(m.GetHistogram().GetSampleCount())
			}
		}
	}
	return out
}

func orderLabels(family string, labels []*dto.LabelPair) []string {
	order, _ := privacy.AllowedLabels(family)
	var out []string
	for _, name := range order {
		for _, l := range labels {
			if l.GetName() == name {
				out = append(out, fmt.Sprintf("%s=%q", name, l.GetValue()))
			}
		}
	}
	for _, l := range labels {
		if !containsString(order, l.GetName()) {
			out = append(out, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
		}
	}
	return out
}

func exposition(t *testing.T, g prometheus.Gatherer) string {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	return b.String()
}
