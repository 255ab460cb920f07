package collector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	metricshttp "github.com/clavitor/clavis-telemetry/internal/exposition"
)

// hostCollectors builds the six system collectors over this machine's /proc
// with their default filters and the real statfs.
func hostCollectors(b *testing.B) []Named {
	cfg := defaultFilesystemConfig(b, "/proc", statfs)
	cfg.rootfs = "/"
	return []Named{
		{"cpu", newCPUCollector("/proc", nil)},
		{"memory", newMemoryCollector("/proc")},
		{"loadavg", newLoadavgCollector("/proc")},
		{"filesystem", newFilesystemCollector(cfg)},
		{"diskstats", newDiskstatsCollector("/proc", deviceFilter{exclude: mustRegexpFlag(b, defaultDiskstatsExclude)})},
		{"netdev", newNetdevCollector("/proc", deviceFilter{exclude: mustRegexpFlag(b, "^lo$")})},
	}
}

// BenchmarkSystemCollectors measures each collector's Update on this host.
func BenchmarkSystemCollectors(b *testing.B) {
	for _, c := range hostCollectors(b) {
		b.Run(c.Name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := collectAll(c.Collector); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSystemScrape is one whole /metrics request the way the exporter
// serves it: scraper, Gatherer, privacy gate, promhttp with Prometheus'
// Accept header. bench/exporter.sh measures the same against node_exporter.
// The variants show where the time goes:
//
//	openmetrics  what the exporter serves Prometheus (internal/exposition)
//	text         the text format 0.0.4 instead (curl, older scrapers)
//	gzip         openmetrics compressed (--web.compression), by promhttp
//	registry     the path before Gatherer and internal/exposition: a
//	             prometheus.Registry holding the Scraper, behind the
//	             non-transactional gate, encoded by promhttp
//	sequential   registry, with the collectors called one after the other on
//	             the registry's goroutine: no isolation, no timeout
//	shipped      openmetrics plus the exporter's own go_*, process_* and
//	             promhttp_* metrics, as the exporter serves them by default
//	             (SelfRegistry, our process collector)
//	shipped-registry  the same through a prometheus.Registry with
//	             client_golang's process collector, as before
func BenchmarkSystemScrape(b *testing.B) {
	const prometheusAccept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
	for _, v := range []struct {
		name, accept, encoding string
		handler                func(b *testing.B) http.Handler
	}{
		{"openmetrics", prometheusAccept, "identity", gathererHandler},
		{"text", "text/plain", "identity", gathererHandler},
		{"gzip", prometheusAccept, "gzip", gzipHandler},
		{"registry", prometheusAccept, "identity", func(b *testing.B) http.Handler {
			reg := prometheus.NewRegistry()
			reg.MustRegister(NewScraper(hostCollectors(b), 4*time.Second, nil))
			return promhttp.HandlerFor(NewPrivacyGate(reg, nil), promhttp.HandlerOpts{EnableOpenMetrics: true})
		}},
		{"sequential", prometheusAccept, "identity", func(b *testing.B) http.Handler {
			reg := prometheus.NewRegistry()
			reg.MustRegister(sequentialCollectors(hostCollectors(b)))
			return promhttp.HandlerFor(NewPrivacyGate(reg, nil), promhttp.HandlerOpts{EnableOpenMetrics: true})
		}},
		{"shipped", prometheusAccept, "identity", func(b *testing.B) http.Handler {
			process, err := NewProcessCollector("/proc", nil)
			if err != nil {
				b.Fatal(err)
			}
			self := NewSelfRegistry()
			self.MustRegister(process, collectors.NewGoCollector())
			return shippedHandler(b, self, self)
		}},
		{"shipped-registry", prometheusAccept, "identity", func(b *testing.B) http.Handler {
			self := prometheus.NewRegistry()
			self.MustRegister(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), collectors.NewGoCollector())
			return shippedHandler(b, self, prometheus.ToTransactionalGatherer(self))
		}},
	} {
		b.Run(v.name, func(b *testing.B) {
			h := v.handler(b)
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept", v.accept)
			req.Header.Set("Accept-Encoding", v.encoding)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatal(w.Code)
				}
			}
		})
	}
}

// gathererHandler is /metrics as the exporter mounts it.
func gathererHandler(b *testing.B) http.Handler {
	g := NewTransactionalPrivacyGate(NewGatherer(NewScraper(hostCollectors(b), 4*time.Second, nil)), nil)
	return metricshttp.Handler(g, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError, DisableCompression: true})
}

// shippedHandler is /metrics as the exporter mounts it with its own metrics
// on: the POP's gatherer and self, merged, instrumented into reg.
func shippedHandler(b *testing.B, reg prometheus.Registerer, self prometheus.TransactionalGatherer) http.Handler {
	g := prometheus.NewMultiTRegistry(NewTransactionalPrivacyGate(NewGatherer(NewScraper(hostCollectors(b), 4*time.Second, nil)), nil), self)
	h := metricshttp.Handler(g, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError, DisableCompression: true})
	return promhttp.InstrumentMetricHandler(reg, h)
}

// gzipHandler is /metrics with --web.compression.
func gzipHandler(b *testing.B) http.Handler {
	g := NewTransactionalPrivacyGate(NewGatherer(NewScraper(hostCollectors(b), 4*time.Second, nil)), nil)
	return metricshttp.Handler(g, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError, DisableCompression: false})
}

// sequentialCollectors runs collectors one after the other, with no timeout
// or goroutine of their own: the floor the Scraper's isolation costs above.
type sequentialCollectors []Named

func (s sequentialCollectors) Describe(chan<- *prometheus.Desc) {}

func (s sequentialCollectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s {
		var b Batch
		_ = c.Collector.Update(context.Background(), &b)
		for _, m := range b.Metrics() {
			ch <- m
		}
	}
}

// BenchmarkPrivacyGatePass is the gate's share of a scrape: one pass over
// this host's system families.
func BenchmarkPrivacyGatePass(b *testing.B) {
	g := NewGatherer(NewScraper(hostCollectors(b), 4*time.Second, nil))
	mfs, done, err := g.Gather()
	if err != nil {
		b.Fatal(err)
	}
	defer done()
	gate := newPrivacyGate(nil)
	b.ReportAllocs()
	for b.Loop() {
		if out, _ := gate.pass(mfs, nil); len(out) != len(mfs)+1 {
			b.Fatalf("%d families out of %d", len(out), len(mfs))
		}
	}
}

// BenchmarkGatherer is the Gatherer's share of a scrape on top of the
// collectors: gathering this host's system families.
func BenchmarkGatherer(b *testing.B) {
	g := NewGatherer(NewScraper(hostCollectors(b), 4*time.Second, nil))
	b.ReportAllocs()
	for b.Loop() {
		_, done, err := g.Gather()
		if err != nil {
			b.Fatal(err)
		}
		done()
	}
}
