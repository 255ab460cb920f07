package collector

import (
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// The system collectors send the same ~100 series on every scrape, only the
// values change. prometheus.MustNewConstMetric rebuilds and re-sorts the
// label pairs of a series every time (about ten allocations per sample, the
// largest cost of a collector once /proc is read cheaply). A series here
// builds its label pairs once, validated once, and each scrape sends a
// one-allocation sample that points at them. The pairs are never modified
// after creation: the registry and the privacy gate only read them, as they
// do the pairs a const metric shares with its dto.

// series is one labelled time series of a collector.
type series struct {
	desc   *prometheus.Desc
	labels []*dto.LabelPair
}

// newSeries validates the label values against desc (count, UTF-8) the way
// NewConstMetric does, and builds the sorted label pairs.
func newSeries(desc *prometheus.Desc, labelValues ...string) (*series, error) {
	if _, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, 0, labelValues...); err != nil {
		return nil, err
	}
	return &series{desc: desc, labels: prometheus.MakeLabelPairs(desc, labelValues)}, nil
}

// counter returns this scrape's sample of a counter series.
func (s *series) counter(v float64) prometheus.Metric {
	return &sample{series: s, value: v, isCounter: true}
}

// gauge returns this scrape's sample of a gauge series.
func (s *series) gauge(v float64) prometheus.Metric {
	return &sample{series: s, value: v}
}

// sample is one value of a series: a prometheus.Metric in one small
// allocation. Gatherer reads it directly into reused protobufs; Write is
// for everything else (a Registry in tests).
type sample struct {
	series    *series
	value     float64
	isCounter bool
}

func (m *sample) Desc() *prometheus.Desc { return m.series.desc }

func (m *sample) Write(out *dto.Metric) error {
	out.Label = m.series.labels
	if m.isCounter {
		out.Counter = &dto.Counter{Value: &m.value}
	} else {
		out.Gauge = &dto.Gauge{Value: &m.value}
	}
	return nil
}
