package collector

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// A prometheus.Registry in front of the scraper did, per scrape, what the
// POP does not need: a goroutine and two 1,000-slot channels per Gather,
// a hash of every series to find duplicates, fresh protobufs for every
// sample, then a second pass of the same in prometheus.Gatherers. That was
// most of a scrape's CPU once /proc was read cheaply (docs/benchmarks.md).
//
// Gatherer turns the scraper's metrics into metric families itself. The
// protobufs of one scrape are reused by the next (promhttp calls done
// when it has written them), family names and help texts are read once per
// Desc, and duplicates are found after the sort every exposition needs
// anyway. What it still guarantees, as a Registry would:
//
//   - families sorted by name, series sorted by label values;
//   - a family keeps one help text and one type; a metric that disagrees
//     with the first of its family is dropped, with an error;
//   - a series appears once; a duplicate is dropped, with an error;
//   - a metric whose Desc is invalid or whose Write fails is dropped, with
//     an error.
//
// Errors reach promhttp, which with ContinueOnError logs them and serves
// the rest. Label names and values are not checked here: the privacy gate
// behind it allows only known label names per family.

// Gatherer is a prometheus.TransactionalGatherer over a Scraper and a few
// constant metrics (build info), or over the exporter's own collectors
// (SelfRegistry).
type Gatherer struct {
	collect func(emit func(prometheus.Metric))
	extra   []prometheus.Metric

	mu    sync.RWMutex
	metas map[*prometheus.Desc]*familyMeta

	states sync.Pool // *gatherState
}

// maxCachedDescs bounds the Desc cache should a collector create a Desc
// per scrape (none does): the cache is then simply started afresh.
const maxCachedDescs = 4096

// familyMeta is what a Desc says about the family of its metrics.
type familyMeta struct {
	name, help string
	unit       *string
	err        error
}

// gatherState is one scrape's worth of protobufs, reused by a later scrape
// once promhttp has written it.
type gatherState struct {
	metrics  []*dto.Metric
	used     int
	counters []*dto.Counter
	usedC    int
	gauges   []*dto.Gauge
	usedG    int
	families []*dto.MetricFamily
	usedFam  int
	byName   map[string]*dto.MetricFamily
	out      []*dto.MetricFamily
	types    [5]dto.MetricType
	errs     prometheus.MultiError
}

// NewGatherer returns the gatherer of s's metrics plus the constant extra
// metrics.
func NewGatherer(s *Scraper, extra ...prometheus.Metric) *Gatherer {
	return &Gatherer{collect: s.collect, extra: extra, metas: map[*prometheus.Desc]*familyMeta{}}
}

// Gather implements prometheus.TransactionalGatherer.
func (g *Gatherer) Gather() ([]*dto.MetricFamily, func(), error) {
	st, _ := g.states.Get().(*gatherState)
	if st == nil {
		st = &gatherState{byName: map[string]*dto.MetricFamily{}}
		for i := range st.types {
			st.types[i] = dto.MetricType(i)
		}
	}
	st.reset()
	g.collect(func(m prometheus.Metric) { g.add(st, m) })
	for _, m := range g.extra {
		g.add(st, m)
	}
	for _, mf := range st.out {
		st.normalize(mf)
	}
	slices.SortFunc(st.out, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	done := func() { g.states.Put(st) }
	return st.out, done, st.errs.MaybeUnwrap()
}

func (st *gatherState) reset() {
	st.used, st.usedC, st.usedG, st.usedFam = 0, 0, 0, 0
	clear(st.byName)
	clear(st.out)
	st.out = st.out[:0]
	st.errs = st.errs[:0]
}

// take returns the next protobuf of one of a state's arenas, growing the
// arena the first time a scrape needs more than any before it.
func take[T any](arena *[]*T, used *int) *T {
	if *used == len(*arena) {
		*arena = append(*arena, new(T))
	}
	x := (*arena)[*used]
	*used++
	return x
}

func (st *gatherState) newMetric() *dto.Metric {
	m := take(&st.metrics, &st.used)
	m.Reset()
	return m
}

// write fills pb from a sample, the type every collector here sends,
// with the value protobufs of this state instead of new ones.
func (st *gatherState) write(s *sample, pb *dto.Metric) {
	pb.Label = s.series.labels
	if s.isCounter {
		c := take(&st.counters, &st.usedC)
		c.Reset()
		c.Value = &s.value
		pb.Counter = c
		return
	}
	g := take(&st.gauges, &st.usedG)
	g.Reset()
	g.Value = &s.value
	pb.Gauge = g
}

func (st *gatherState) family(meta *familyMeta, typ dto.MetricType) *dto.MetricFamily {
	mf := take(&st.families, &st.usedFam)
	clear(mf.Metric)
	mf.Metric = mf.Metric[:0]
	mf.Name, mf.Help, mf.Unit, mf.Type = &meta.name, &meta.help, meta.unit, &st.types[typ]
	st.byName[meta.name] = mf
	st.out = append(st.out, mf)
	return mf
}

// add writes m into its family.
func (g *Gatherer) add(st *gatherState, m prometheus.Metric) {
	meta := g.meta(m.Desc())
	if meta.err != nil {
		st.errs.Append(meta.err)
		return
	}
	pb := st.newMetric()
	if s, ok := m.(*sample); ok {
		st.write(s, pb)
	} else if err := m.Write(pb); err != nil {
		st.errs.Append(fmt.Errorf("error collecting metric %s: %w", meta.name, err))
		return
	}
	typ, ok := metricType(pb)
	if !ok {
		st.errs.Append(fmt.Errorf("metric %s has no value of a known type", meta.name))
		return
	}
	mf := st.byName[meta.name]
	switch {
	case mf == nil:
		mf = st.family(meta, typ)
	case mf.GetType() != typ:
		st.errs.Append(fmt.Errorf("metric of family %s has type %s, but the family has %s", meta.name, typ, mf.GetType()))
		return
	case mf.GetHelp() != meta.help:
		st.errs.Append(fmt.Errorf("metric of family %s has a help text different from the family's", meta.name))
		return
	}
	mf.Metric = append(mf.Metric, pb)
}

// normalize sorts a family's series by label values, as a Registry does,
// and drops duplicates, which sort next to each other.
func (st *gatherState) normalize(mf *dto.MetricFamily) {
	slices.SortFunc(mf.Metric, compareSeries)
	kept := mf.Metric[:0]
	for i, m := range mf.Metric {
		if i > 0 && compareSeries(mf.Metric[i-1], m) == 0 && sameLabelNames(mf.Metric[i-1], m) {
			st.errs.Append(fmt.Errorf("family %s: duplicate series %s", mf.GetName(), labelNames(m)))
			continue
		}
		kept = append(kept, m)
	}
	clear(mf.Metric[len(kept):])
	mf.Metric = kept
}

// compareSeries orders series the way client_golang's registry does: by
// label values in label-name order, then timestamp.
func compareSeries(a, b *dto.Metric) int {
	la, lb := a.GetLabel(), b.GetLabel()
	for i := range min(len(la), len(lb)) {
		if c := strings.Compare(la[i].GetValue(), lb[i].GetValue()); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(len(la), len(lb)); c != 0 {
		return c
	}
	return cmp.Compare(a.GetTimestampMs(), b.GetTimestampMs())
}

func sameLabelNames(a, b *dto.Metric) bool {
	for i, l := range a.GetLabel() {
		if l.GetName() != b.GetLabel()[i].GetName() {
			return false
		}
	}
	return true
}

// labelNames names a series' labels for an error message: the values may
// be anything, the names are code.
func labelNames(m *dto.Metric) string {
	names := make([]string, 0, len(m.GetLabel()))
	for _, l := range m.GetLabel() {
		names = append(names, l.GetName())
	}
	return "{" + strings.Join(names, ",") + "}"
}

func metricType(m *dto.Metric) (dto.MetricType, bool) {
	switch {
	case m.Gauge != nil:
		return dto.MetricType_GAUGE, true
	case m.Counter != nil:
		return dto.MetricType_COUNTER, true
	case m.Summary != nil:
		return dto.MetricType_SUMMARY, true
	case m.Untyped != nil:
		return dto.MetricType_UNTYPED, true
	case m.Histogram != nil:
		return dto.MetricType_HISTOGRAM, true
	}
	return 0, false
}

// meta returns what d says about its family, reading it once per Desc.
func (g *Gatherer) meta(d *prometheus.Desc) *familyMeta {
	g.mu.RLock()
	m := g.metas[d]
	g.mu.RUnlock()
	if m != nil {
		return m
	}
	m = parseDesc(d)
	g.mu.Lock()
	if len(g.metas) >= maxCachedDescs {
		clear(g.metas)
	}
	g.metas[d] = m
	g.mu.Unlock()
	return m
}

// parseDesc reads a Desc's name, help and unit. client_golang keeps them
// unexported; the one public view is String(), which prints them first, Go
// quoted, in a format unchanged since 2015 (and tested here, so an upgrade
// that changes it fails the tests instead of the scrape).
func parseDesc(d *prometheus.Desc) *familyMeta {
	if err := d.Err(); err != nil {
		return &familyMeta{err: fmt.Errorf("invalid metric description: %w", err)}
	}
	s := d.String()
	var fields [3]string
	for i, key := range [...]string{"Desc{fqName: ", ", help: ", ", unit: "} {
		rest, ok := strings.CutPrefix(s, key)
		if !ok && !(i == 2 && strings.HasPrefix(s, ", constLabels: ")) {
			return &familyMeta{err: errDescFormat}
		}
		if !ok {
			break // a client_golang without units
		}
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return &familyMeta{err: errDescFormat}
		}
		if fields[i], err = strconv.Unquote(q); err != nil {
			return &familyMeta{err: errDescFormat}
		}
		s = rest[len(q):]
	}
	m := &familyMeta{name: fields[0], help: fields[1]}
	if fields[2] != "" {
		m.unit = &fields[2]
	}
	return m
}

var errDescFormat = errors.New("metric description in an unknown format (client_golang changed Desc.String)")
