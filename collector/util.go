package collector

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AsPrometheus wraps a single collector so tests can register it on a
// registry and use testutil.GatherAndCompare on its output alone. The
// scrape duration and success series are included.
func AsPrometheus(name string, c Collector) prometheus.Collector {
	return NewScraper([]Named{{Name: name, Collector: c}}, 5*time.Second, nil)
}
