package collector

import (
	"fmt"
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// The exporter's own metrics (go_*, process_*, promhttp_*) stay outside the
// privacy gate, on a registry of their own, as the issue asks. A
// prometheus.Registry gathering them cost more than the metrics themselves:
// per scrape two 1,000-slot channels, a goroutine per collector, a hash of
// every series, fresh protobufs. SelfRegistry keeps the Registerer side of a
// Registry (promhttp.InstrumentMetricHandler registers into it) and gathers
// through a Gatherer, with its reused protobufs and the same checks.

// SelfRegistry is a prometheus.Registerer and TransactionalGatherer for the
// exporter's own collectors.
type SelfRegistry struct {
	*Gatherer

	mu         sync.RWMutex
	collectors []prometheus.Collector
}

// NewSelfRegistry returns an empty SelfRegistry.
func NewSelfRegistry() *SelfRegistry {
	r := &SelfRegistry{}
	r.Gatherer = &Gatherer{collect: r.collectAll, metas: map[*prometheus.Desc]*familyMeta{}}
	return r
}

// Register adds c. Like a Registry it refuses a collector already
// registered (prometheus.AlreadyRegisteredError, which promhttp's
// instrumentation handles); unlike one, it leaves the checks of names,
// help texts and types to each gather, where a clash is an error for the
// clashing series, not for the scrape.
func (r *SelfRegistry) Register(c prometheus.Collector) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if slices.Contains(r.collectors, c) {
		return prometheus.AlreadyRegisteredError{ExistingCollector: c, NewCollector: c}
	}
	r.collectors = append(r.collectors, c)
	return nil
}

// MustRegister registers cs and panics on the first error, as a Registry
// does; it is for start-up wiring.
func (r *SelfRegistry) MustRegister(cs ...prometheus.Collector) {
	for _, c := range cs {
		if err := r.Register(c); err != nil {
			panic(err)
		}
	}
}

// Unregister removes c and reports whether it was registered.
func (r *SelfRegistry) Unregister(c prometheus.Collector) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.Index(r.collectors, c)
	if i < 0 {
		return false
	}
	r.collectors = slices.Delete(r.collectors, i, i+1)
	return true
}

// panicDesc describes the error a panicking collector leaves in a gather.
var panicDesc = prometheus.NewDesc("clavis_self_collector_panic", "A collector of the exporter's own metrics panicked.", nil, nil)

// collectAll runs the collectors one after the other, each on a goroutine
// of its own that sends into a small channel, which the gathering goroutine
// drains: Collect's API is a channel. A panic is recovered and reported as
// an error of the gather; the other collectors still run.
func (r *SelfRegistry) collectAll(emit func(prometheus.Metric)) {
	r.mu.RLock()
	cs := slices.Clone(r.collectors)
	r.mu.RUnlock()
	for _, c := range cs {
		ch := make(chan prometheus.Metric, 16)
		go func() {
			defer close(ch)
			defer func() {
				if p := recover(); p != nil {
					ch <- prometheus.NewInvalidMetric(panicDesc, fmt.Errorf("collector %T panicked: %v", c, p))
				}
			}()
			c.Collect(ch)
		}()
		for m := range ch {
			emit(m)
		}
	}
}

var _ prometheus.Registerer = (*SelfRegistry)(nil)
var _ prometheus.TransactionalGatherer = (*SelfRegistry)(nil)
