package collector

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/clavitor/clavis-telemetry/privacy"
)

// hostCollectors builds the six system collectors over this machine's /proc
// with their default filters and the real statfs.
func hostCollectors(b *testing.B) []Named {
	return systemCollectorsAt(b, "/proc", "/sys", statfs)
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
// serves it: the scraper in a prometheus.Registry, the privacy gate,
// promhttp with Prometheus' Accept header. Variants:
//
//	openmetrics  POP collectors only (--web.disable-exporter-metrics)
//	text         the same in the text format 0.0.4 (curl, older scrapers)
//	shipped      openmetrics plus the exporter's own go_*, process_* and
//	             promhttp_* metrics, the default
func BenchmarkSystemScrape(b *testing.B) {
	const prometheusAccept = "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"
	for _, v := range []struct {
		name, accept string
		self         bool
	}{
		{"openmetrics", prometheusAccept, false},
		{"text", "text/plain", false},
		{"shipped", prometheusAccept, true},
	} {
		b.Run(v.name, func(b *testing.B) {
			h := scrapeHandler(b, v.self)
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept", v.accept)
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

// scrapeHandler is /metrics as cmd/clavis-telemetry mounts it.
func scrapeHandler(b *testing.B, withSelf bool) http.Handler {
	pop := prometheus.NewRegistry()
	pop.MustRegister(NewScraper(hostCollectors(b), 4*time.Second, nil))
	gatherers := prometheus.Gatherers{privacy.NewGate(pop, nil)}
	opts := promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError, DisableCompression: true}
	if !withSelf {
		return promhttp.HandlerFor(gatherers, opts)
	}
	self := prometheus.NewRegistry()
	self.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	opts.Registry = self
	return promhttp.InstrumentMetricHandler(self, promhttp.HandlerFor(append(gatherers, self), opts))
}
