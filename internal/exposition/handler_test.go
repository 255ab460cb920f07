package exposition

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// testRegistry holds what a POP serves (counters and gauges with labels,
// values that need escaping) and what only expfmt writes (a histogram, a
// summary, a UTF-8 name, the Go collector's families).
func testRegistry(t *testing.T) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "clavis_requests_total", Help: "Requests \\ by \"route\".\nSecond line."}, []string{"route", "code"})
	c.WithLabelValues("vault", "2xx").Add(41)
	c.WithLabelValues("entry\nx", `5"xx\`).Add(1)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "clavis_load1", Help: "Load."})
	g.Set(0.25)
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "clavis_request_duration_seconds", Help: "Latency.", Buckets: []float64{0.1, 1}})
	h.Observe(0.3)
	s := prometheus.NewSummary(prometheus.SummaryOpts{Name: "clavis_summary_seconds", Help: "A summary."})
	s.Observe(2)
	utf := prometheus.NewGauge(prometheus.GaugeOpts{Name: "clavis.utf8.name", Help: "Only UTF-8 names allow dots."})
	utf.Set(3)
	reg.MustRegister(c, g, h, s, utf, collectors.NewGoCollector())
	return reg
}

// frozenGatherer serves one gather of testRegistry again and again.
func frozenGatherer(t *testing.T) prometheus.TransactionalGatherer {
	mfs, err := testRegistry(t).Gather()
	if err != nil {
		t.Fatal(err)
	}
	return prometheus.ToTransactionalGatherer(prometheus.GathererFunc(func() ([]*dto.MetricFamily, error) { return mfs, nil }))
}

// serve runs one request through h.
func serve(h http.Handler, method, accept, encoding, query string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "/metrics"+query, nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if encoding != "" {
		req.Header.Set("Accept-Encoding", encoding)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

const prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

// TestHandlerServesWhatPromhttpServes: for every kind of request, Handler
// answers with promhttp's status, headers and body. The Go collector's
// values move between two gathers, so the registry is frozen first.
func TestHandlerServesWhatPromhttpServes(t *testing.T) {
	frozen := frozenGatherer(t)
	for _, compression := range []bool{false, true} {
		opts := promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError, DisableCompression: !compression, MaxRequestsInFlight: 3}
		ours := Handler(frozen, opts)
		theirs := promhttp.HandlerForTransactional(frozen, opts)
		for _, req := range []struct{ accept, encoding, query string }{
			{prometheusAccept, "", ""},
			{prometheusAccept, "gzip", ""},
			{"text/plain;version=0.0.4", "", ""},
			{"text/plain;version=0.0.4;escaping=allow-utf-8", "", ""},
			{"application/openmetrics-text;version=1.0.0;escaping=values", "", ""},
			{"", "", ""},
			{"*/*", "identity", ""},
			{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", "", ""},
			{"text/plain", "", "?name[]=clavis_load1"},
			{"application/openmetrics-text;version=2.0.0", "", ""},
			{prometheusAccept, "", ""}, // the remembered negotiation, after others
		} {
			name := fmt.Sprintf("compression=%v accept=%q encoding=%q query=%q", compression, req.accept, req.encoding, req.query)
			got := serve(ours, http.MethodGet, req.accept, req.encoding, req.query)
			want := serve(theirs, http.MethodGet, req.accept, req.encoding, req.query)
			if got.Code != want.Code {
				t.Errorf("%s: status %d, promhttp %d", name, got.Code, want.Code)
			}
			for _, hdr := range []string{"Content-Type", "Content-Encoding"} {
				if g, w := got.Header().Get(hdr), want.Header().Get(hdr); g != w {
					t.Errorf("%s: %s %q, promhttp %q", name, hdr, g, w)
				}
			}
			if g, w := got.Header().Values("Vary"), want.Header().Values("Vary"); fmt.Sprint(g) != fmt.Sprint(w) {
				t.Errorf("%s: Vary %q, promhttp %q", name, g, w)
			}
			if g, w := body(t, got), body(t, want); !bytes.Equal(g, w) {
				t.Errorf("%s: body differs from promhttp's\n got: %.300q\nwant: %.300q", name, g, w)
			}
		}
	}
}

// TestHandlerFastPathSendsOneBody: the common request gets a Content-Length
// (one write, no chunking); what promhttp serves keeps its own framing.
func TestHandlerFastPathSendsOneBody(t *testing.T) {
	h := Handler(frozenGatherer(t), promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError})
	rec := serve(h, http.MethodGet, prometheusAccept, "", "")
	if rec.Code != http.StatusOK {
		t.Fatalf("status %d", rec.Code)
	}
	if cl := rec.Header().Get("Content-Length"); cl != fmt.Sprint(rec.Body.Len()) {
		t.Errorf("Content-Length %q for a %d-byte body", cl, rec.Body.Len())
	}
	if !strings.HasSuffix(rec.Body.String(), "# EOF\n") {
		t.Errorf("OpenMetrics body does not end with # EOF: %.100q", rec.Body.String()[max(0, rec.Body.Len()-100):])
	}
	head := serve(h, http.MethodHead, prometheusAccept, "", "")
	if head.Code != http.StatusOK || head.Body.Len() != 0 || head.Header().Get("Content-Length") != rec.Header().Get("Content-Length") {
		t.Errorf("HEAD: status %d, %d body bytes, Content-Length %q", head.Code, head.Body.Len(), head.Header().Get("Content-Length"))
	}
}

func body(t *testing.T, rec *httptest.ResponseRecorder) []byte {
	t.Helper()
	if rec.Header().Get("Content-Encoding") != "gzip" {
		return rec.Body.Bytes()
	}
	zr, err := gzip.NewReader(bytes.NewReader(rec.Body.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// logRecorder is a promhttp.Logger.
type logRecorder struct {
	mu    sync.Mutex
	lines []string
}

func (l *logRecorder) Println(v ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, fmt.Sprintln(v...))
}

func (l *logRecorder) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "")
}

// TestHandlerGatherErrors: with ContinueOnError, what was gathered is
// served and the error logged; with nothing gathered, the error is the
// answer (500), as promhttp answers.
func TestHandlerGatherErrors(t *testing.T) {
	mfs, err := testRegistry(t).Gather()
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("collector boom")
	for _, tc := range []struct {
		name     string
		mfs      []*dto.MetricFamily
		wantCode int
	}{{"partial", mfs[:2], http.StatusOK}, {"nothing", nil, http.StatusInternalServerError}} {
		t.Run(tc.name, func(t *testing.T) {
			done := 0
			g := gathererFunc(func() ([]*dto.MetricFamily, func(), error) { return tc.mfs, func() { done++ }, boom })
			var logs, promLogs logRecorder
			ours := serve(Handler(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ErrorLog: &logs}), http.MethodGet, "text/plain", "", "")
			theirs := serve(promhttp.HandlerForTransactional(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, ErrorLog: &promLogs}), http.MethodGet, "text/plain", "", "")
			if ours.Code != tc.wantCode || theirs.Code != tc.wantCode {
				t.Errorf("status %d, promhttp %d, want %d", ours.Code, theirs.Code, tc.wantCode)
			}
			if ours.Body.String() != theirs.Body.String() {
				t.Errorf("body %q, promhttp %q", ours.Body.String(), theirs.Body.String())
			}
			if !strings.Contains(logs.String(), "collector boom") || logs.String() != promLogs.String() {
				t.Errorf("log %q, promhttp logged %q", logs.String(), promLogs.String())
			}
			if done != 2 {
				t.Errorf("done called %d times over two requests, want 2: the gatherer's buffers would never be reused", done)
			}
		})
	}
}

type gathererFunc func() ([]*dto.MetricFamily, func(), error)

func (f gathererFunc) Gather() ([]*dto.MetricFamily, func(), error) { return f() }

// TestHandlerInFlightLimit: the limit holds across both paths; the request
// over it gets promhttp's 503.
func TestHandlerInFlightLimit(t *testing.T) {
	mfs, err := testRegistry(t).Gather()
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	g := gathererFunc(func() ([]*dto.MetricFamily, func(), error) {
		entered <- struct{}{}
		<-release
		return mfs, func() {}, nil
	})
	h := Handler(g, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError, MaxRequestsInFlight: 2, EnableOpenMetrics: true})
	var wg sync.WaitGroup
	codes := make(chan int, 2)
	// One request on each path holds a slot.
	for _, accept := range []string{"text/plain", "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- serve(h, http.MethodGet, accept, "", "").Code
		}()
		select {
		case <-entered:
		case <-time.After(10 * time.Second):
			t.Fatal("request never reached the gatherer")
		}
	}
	over := serve(h, http.MethodGet, "text/plain", "", "")
	if over.Code != http.StatusServiceUnavailable || !strings.Contains(over.Body.String(), "Limit of concurrent requests reached (2)") {
		t.Errorf("third request: %d %q, want 503 and promhttp's message", over.Code, over.Body.String())
	}
	close(release)
	wg.Wait()
	close(codes)
	for c := range codes {
		if c != http.StatusOK {
			t.Errorf("a request within the limit got %d", c)
		}
	}
}

// BenchmarkHandler compares Handler and promhttp on one request for the
// POP-shaped part of testRegistry.
func BenchmarkHandler(b *testing.B) {
	reg := prometheus.NewRegistry()
	for i := range 30 {
		g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: fmt.Sprintf("clavis_family_%d_bytes", i), Help: "A help text of the length the POP's help texts have, give or take."}, []string{"device"})
		for _, d := range []string{"sda", "sdb", "nvme0n1"} {
			g.WithLabelValues(d).Set(float64(i) * 1.37)
		}
		reg.MustRegister(g)
	}
	g := prometheus.ToTransactionalGatherer(reg)
	opts := promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError}
	for name, h := range map[string]http.Handler{"exposition": Handler(g, opts), "promhttp": promhttp.HandlerForTransactional(g, opts)} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if rec := serve(h, http.MethodGet, prometheusAccept, "", ""); rec.Code != http.StatusOK {
					b.Fatal(rec.Code)
				}
			}
		})
	}
}
