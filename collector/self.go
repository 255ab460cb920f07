package collector

import (
	"fmt"
	"reflect"
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

	mu      sync.RWMutex
	entries []selfEntry
}

// selfEntry is a registered collector, what its Describe sends as sorted
// Desc strings (a collector's identity, as a Registry sees it), and the
// sorted family names of those.
type selfEntry struct {
	collector prometheus.Collector
	descs     []string
	names     []string
}

// NewSelfRegistry returns an empty SelfRegistry.
func NewSelfRegistry() *SelfRegistry {
	r := &SelfRegistry{}
	r.Gatherer = &Gatherer{collect: r.collectAll, metas: map[*prometheus.Desc]*familyMeta{}}
	return r
}

func describe(c prometheus.Collector) selfEntry {
	ch := make(chan *prometheus.Desc)
	go func() {
		c.Describe(ch)
		close(ch)
	}()
	e := selfEntry{collector: c}
	for d := range ch {
		e.descs = append(e.descs, d.String())
		e.names = append(e.names, parseDesc(d).name)
	}
	slices.Sort(e.descs)
	slices.Sort(e.names)
	return e
}

// Register adds c. As a Registry does, it answers
// prometheus.AlreadyRegisteredError for a collector with the same
// descriptions as one registered (promhttp's instrumentation relies on
// that), refuses one that describes a family another collector describes,
// and accepts any number of collectors that describe nothing (unchecked).
// What collectors send is checked again on each gather (help texts, types,
// duplicate series), where a clash costs the clashing series and an error,
// not the scrape.
func (r *SelfRegistry) Register(c prometheus.Collector) error {
	n := describe(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.entries {
		if len(n.descs) == 0 {
			break
		}
		if slices.Equal(e.descs, n.descs) {
			return prometheus.AlreadyRegisteredError{ExistingCollector: e.collector, NewCollector: c}
		}
		for _, name := range n.names {
			if _, found := slices.BinarySearch(e.names, name); found {
				return fmt.Errorf("another collector already describes the family %s", name)
			}
		}
	}
	r.entries = append(r.entries, n)
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

// Unregister removes the collector with c's descriptions (c itself, for
// one that describes nothing) and reports whether there was one.
func (r *SelfRegistry) Unregister(c prometheus.Collector) bool {
	n := describe(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	i := slices.IndexFunc(r.entries, func(e selfEntry) bool {
		if len(n.descs) == 0 {
			return len(e.descs) == 0 && sameCollector(e.collector, c)
		}
		return slices.Equal(e.descs, n.descs)
	})
	if i < 0 {
		return false
	}
	r.entries = slices.Delete(r.entries, i, i+1)
	return true
}

// sameCollector compares two collectors without panicking on dynamic
// types that cannot be compared.
func sameCollector(a, b prometheus.Collector) bool {
	if reflect.TypeOf(a) != reflect.TypeOf(b) || !reflect.TypeOf(a).Comparable() {
		return false
	}
	return a == b
}

// panicDesc describes the error a panicking collector leaves in a gather.
var panicDesc = prometheus.NewDesc("clavis_self_collector_panic", "A collector of the exporter's own metrics panicked.", nil, nil)

// collectAll runs the collectors one after the other, each on a goroutine
// of its own that sends into a small channel, which the gathering goroutine
// drains: Collect's API is a channel. A panic is recovered and reported as
// an error of the gather; the other collectors still run.
func (r *SelfRegistry) collectAll(emit func(prometheus.Metric)) {
	r.mu.RLock()
	entries := slices.Clone(r.entries)
	r.mu.RUnlock()
	for _, e := range entries {
		c := e.collector
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
