package alertbridge

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

var t0 = time.Date(2026, 11, 29, 1, 0, 0, 0, time.UTC)

// mkAlert builds one webhook alert; fingerprint is derived from name and pop.
func mkAlert(name, pop, severity, status string, startsAt time.Time) Alert {
	a := Alert{
		Status:       status,
		Labels:       map[string]string{"alertname": name, "pop": pop, "severity": severity},
		Annotations:  map[string]string{"summary": name + " on " + pop, "runbook_url": "https://runbooks.example/" + name},
		StartsAt:     startsAt,
		GeneratorURL: "http://prometheus.example/graph?g0.expr=up",
		Fingerprint:  fmt.Sprintf("%016x", fnvString(name+"/"+pop)),
	}
	if status == "resolved" {
		a.EndsAt = startsAt.Add(time.Minute)
	}
	return a
}

func fnvString(s string) uint64 {
	var h uint64 = 14695981039346656037
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mkPayload builds a notification as Alertmanager does with group_by
// [alertname, pop]: the group labels are those two where all alerts share
// them, and the group key names them.
func mkPayload(alerts ...Alert) []byte {
	common := commonLabels(alerts)
	group := map[string]string{}
	for _, k := range []string{"alertname", "pop"} {
		if v, ok := common[k]; ok {
			group[k] = v
		}
	}
	if len(alerts) > 0 && len(group) == 0 {
		// No common alertname: a test grouping by nothing.
		group = map[string]string{}
	}
	p := Payload{Version: "4", GroupKey: `{}:` + fmt.Sprint(group), Status: "resolved", Receiver: "alertbridge",
		GroupLabels: group, CommonLabels: common, CommonAnnotations: map[string]string{},
		ExternalURL: "http://alertmanager.example:9093", Alerts: alerts}
	if len(group) == 0 {
		// Group key from the alerts so unrelated test payloads do not share a group.
		names := []string{}
		for _, a := range alerts {
			names = append(names, a.Labels["alertname"]+"/"+a.Labels["pop"])
		}
		sort.Strings(names)
		p.GroupKey = "{}:" + strings.Join(names, ",")
	}
	for _, a := range alerts {
		if a.Status == "firing" {
			p.Status = "firing"
		}
	}
	b, err := json.Marshal(p)
	if err != nil {
		panic(err)
	}
	return b
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// testBridge is a running in-process bridge behind an httptest server.
type testBridge struct {
	*Bridge
	srv  *httptest.Server
	reg  *prometheus.Registry
	log  *syncBuffer
	stop func()
}

// startBridge runs a bridge with fast retries; mod adjusts the config.
func startBridge(t *testing.T, spool string, mod func(*Config)) *testBridge {
	t.Helper()
	if spool == "" {
		spool = filepath.Join(t.TempDir(), "spool", "spool.db")
	}
	logs := &syncBuffer{}
	reg := prometheus.NewRegistry()
	cfg := Config{
		SpoolPath:  spool,
		Backoff:    Backoff{Min: 20 * time.Millisecond, Max: 300 * time.Millisecond, MaxRetryAfter: 2 * time.Second},
		Timeout:    2 * time.Second,
		Logger:     slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Registerer: reg,
	}
	if mod != nil {
		mod(&cfg)
	}
	if cfg.Ntfy != nil && cfg.Ntfy.PerMinute == 0 {
		// The storm guard is off unless a test is about it.
		cfg.Ntfy.PerMinute = 1 << 30
	}
	b, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	tb := &testBridge{Bridge: b, srv: httptest.NewServer(b), reg: reg, log: logs}
	var once sync.Once
	tb.stop = func() {
		once.Do(func() {
			tb.srv.Close()
			cancel()
			<-done
			b.Close()
		})
	}
	t.Cleanup(func() {
		tb.stop()
		if t.Failed() {
			t.Logf("bridge log:\n%s", tail(logs.String(), 6000))
		}
	})
	return tb
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func (tb *testBridge) post(t testing.TB, body []byte, hdr ...string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, tb.srv.URL, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json") // as Alertmanager sends; hdr may override
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (tb *testBridge) mustPost(t testing.TB, body []byte, hdr ...string) {
	t.Helper()
	if code, msg := tb.post(t, body, hdr...); code != 200 {
		t.Fatalf("webhook answered %d: %s", code, msg)
	}
}

func (tb *testBridge) counter(name string, labels ...string) float64 {
	mfs, err := tb.reg.Gather()
	if err != nil {
		panic(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue next
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return 0
}

// testToken is the ntfy token every bridge test publishes with: the fake
// runs with authentication on, as a deployed ntfy does.
const testToken = "tk_bridge"

// newNtfy returns a fake ntfy that only takes testToken (write on every
// topic) and the options given.
func newNtfy(opts fakenotify.NtfyOptions) *fakenotify.Ntfy {
	if opts.Tokens == nil {
		opts.Tokens = map[string]bool{testToken: true}
	}
	return fakenotify.NewNtfy(opts)
}

// ntfyTo is the bridge's ntfy config for topic alerts of the fake at s.
func ntfyTo(s *fakenotify.Server) *NtfyConfig {
	return &NtfyConfig{URL: s.URL() + "/alerts", Token: testToken}
}

// waitDrained waits until the bridge's ntfy queue is empty and its
// dispatcher idle: every page was answered, nothing more can arrive.
func (tb *testBridge) waitDrained(t testing.TB, timeout time.Duration) {
	t.Helper()
	waitFor(t, timeout, "ntfy queue drained", func() bool {
		return tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy") == 0 &&
			tb.counter("clavis_alertbridge_ntfy_idle") == 1
	})
}

// waitFor polls cond until it holds or the timeout ends.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", timeout, what)
}
