package collector

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
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
// serves it: scraper, privacy gate, promhttp with Prometheus' Accept header.
// bench/exporter.sh measures the same against node_exporter. The variants
// show where the time goes, for choices outside the collectors:
//
//	gzip        as Prometheus asks (Accept-Encoding: gzip)
//	identity    the same without compression
//	sequential  identity, with the collectors called one after the other
//	            on the registry's goroutine instead of through the Scraper
func BenchmarkSystemScrape(b *testing.B) {
	for _, v := range []struct {
		name, encoding string
		sequential     bool
	}{{"gzip", "gzip", false}, {"identity", "identity", false}, {"sequential", "identity", true}} {
		b.Run(v.name, func(b *testing.B) {
			reg := prometheus.NewRegistry()
			if v.sequential {
				reg.MustRegister(sequentialCollectors(hostCollectors(b)))
			} else {
				reg.MustRegister(NewScraper(hostCollectors(b), 4*time.Second, nil))
			}
			h := promhttp.HandlerFor(NewPrivacyGate(reg, nil), promhttp.HandlerOpts{EnableOpenMetrics: true})
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.Header.Set("Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
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

// sequentialCollectors runs collectors one after the other, with no timeout
// or goroutine of their own: the floor the Scraper's isolation costs above.
type sequentialCollectors []Named

func (s sequentialCollectors) Describe(chan<- *prometheus.Desc) {}

func (s sequentialCollectors) Collect(ch chan<- prometheus.Metric) {
	for _, c := range s {
		_ = c.Collector.Update(context.Background(), ch)
	}
}
