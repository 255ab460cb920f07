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
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

func mkPayload(alerts ...Alert) []byte {
	p := Payload{Version: "4", GroupKey: `{}:{alertname="x"}`, Status: "firing", Receiver: "alertbridge",
		GroupLabels: map[string]string{}, CommonLabels: map[string]string{}, CommonAnnotations: map[string]string{},
		ExternalURL: "http://alertmanager.example:9093", Alerts: alerts}
	for _, a := range alerts {
		if a.Status == "resolved" {
			p.Status = "resolved"
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
