// Package sim is the fleet simulator's engine: a template taken from two real
// scrapes of clavis-telemetry, a deterministic model of how each simulated
// POP's values evolve over time, and the writers that serve one POP's
// exposition (text format, as the exporter serves it) or a fleet's history
// (OpenMetrics, for promtool's backfill).
//
// Nothing here lists metric names: families, series, labels and help text
// come from the captured exposition. The model keys its behaviour on the
// metric type (counter, gauge, histogram, summary), on the rate measured
// between the two scrapes, and on a few naming conventions every Prometheus
// exporter follows (_timestamp_seconds, _start_time_seconds, _bytes).
package sim

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Template is what a capture recorded: the exporter's families in the order
// it served them, each series with its value at the second scrape and its
// rate between the two.
type Template struct {
	Families []*Family
	// Captured is when the second scrape was taken, Interval the time
	// between the two scrapes.
	Captured time.Time
	Interval time.Duration
}

// Family is one metric family of the exposition.
type Family struct {
	Name string
	Help string
	Type dto.MetricType
	// Samples in exposition order. A histogram's buckets, _sum and _count
	// and a summary's quantiles, _sum and _count are samples of their own.
	Samples []*Sample
	// helpType is the family's "# HELP" and "# TYPE" lines, text format.
	helpType []byte
}

// SampleKind is how the model evolves a sample.
type SampleKind int

const (
	// KindConst keeps the captured value (info metrics, limits, flags).
	KindConst SampleKind = iota
	// KindCounter grows at the measured rate times the POP's scale.
	KindCounter
	// KindGauge moves around its captured value.
	KindGauge
	// KindGrowing is a gauge that only grows slowly (vault counts: a drop
	// is an alert, so the model never makes one).
	KindGrowing
	// KindTimestamp is a Unix time that keeps its captured age.
	KindTimestamp
	// KindAvail is free/available space of a file system: it fills.
	KindAvail
	// KindBucket is a histogram bucket: a fixed share of its _count.
	KindBucket
	// KindHistSum is a histogram's or summary's _sum: _count times the
	// captured mean.
	KindHistSum
)

// Sample is one series of the exposition.
type Sample struct {
	Name   string   // sample name: family name plus _bucket/_sum/_count/_total as served
	Labels []string // name, value, name, value ... in exposition order
	Value  float64  // at the second scrape
	Rate   float64  // per second between the two scrapes (counters; >= 0)
	Kind   SampleKind
	// Count is the index (in the family's Samples) of the _count sample a
	// bucket or _sum derives from; Share the bucket's share of it, Mean the
	// captured _sum/_count.
	Count int
	Share float64
	Mean  float64
	// SizeSample is the file system size of a KindAvail sample, nil if
	// none was served.
	SizeSample *Sample
	// Burst is set on the 5xx series of request counters: it takes the
	// POP's error bursts, at BurstRate: a quarter of the requests of its
	// siblings (same labels but code) during a burst.
	Burst     bool
	BurstRate float64
	// Integral is set on counters that count events (both scrapes whole
	// numbers): the model keeps them whole.
	Integral bool
	// prefix is `name{labels} `, text and OpenMetrics alike.
	prefix []byte
	seed   uint64
}

// ParseCapture reads a capture file: a header line, the first exposition, a
// separator line, the second exposition (see WriteCapture).
func ParseCapture(b []byte) (*Template, error) {
	header, rest, ok := bytes.Cut(b, []byte("\n"))
	if !ok || !bytes.HasPrefix(header, []byte(captureMagic)) {
		return nil, fmt.Errorf("not a fleet capture (first line must start with %q)", captureMagic)
	}
	var captured time.Time
	var interval time.Duration
	for _, f := range strings.Fields(string(header[len(captureMagic):])) {
		k, v, _ := strings.Cut(f, "=")
		var err error
		switch k {
		case "captured":
			captured, err = time.Parse(time.RFC3339Nano, v)
		case "interval":
			interval, err = time.ParseDuration(v)
		}
		if err != nil {
			return nil, fmt.Errorf("capture header: %s: %w", f, err)
		}
	}
	if captured.IsZero() || interval <= 0 {
		return nil, fmt.Errorf("capture header lacks captured= or interval=: %s", header)
	}
	first, second, ok := bytes.Cut(rest, []byte(captureSeparator+"\n"))
	if !ok {
		return nil, fmt.Errorf("capture has no second exposition (separator %q)", captureSeparator)
	}
	return NewTemplate(first, second, captured, interval)
}

const (
	captureMagic     = "# clavis-fleet-capture v1"
	captureSeparator = "# clavis-fleet-capture second scrape"
)

// WriteCapture is the inverse of ParseCapture.
func WriteCapture(first, second []byte, captured time.Time, interval time.Duration) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s captured=%s interval=%s\n", captureMagic, captured.UTC().Format(time.RFC3339Nano), interval)
	b.Write(first)
	if len(first) > 0 && first[len(first)-1] != '\n' {
		b.WriteByte('\n')
	}
	b.WriteString(captureSeparator + "\n")
	b.Write(second)
	return b.Bytes()
}

func parseText(b []byte) ([]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	m, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		return nil, err
	}
	// The parser returns a map; keep the exporter's order (first "# TYPE"
	// or sample line of each family).
	order := map[string]int{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name := ""
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name, _, _ = strings.Cut(rest, " ")
		} else if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name, _, _ = strings.Cut(rest, " ")
		}
		if _, seen := order[name]; name != "" && !seen {
			order[name] = len(order)
		}
	}
	out := make([]*dto.MetricFamily, 0, len(m))
	for _, f := range m {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool {
		oi, iok := order[out[i].GetName()]
		oj, jok := order[out[j].GetName()]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return out[i].GetName() < out[j].GetName()
	})
	return out, nil
}

// NewTemplate builds a template from two scrapes of the same exporter taken
// interval apart (the second at captured).
func NewTemplate(first, second []byte, captured time.Time, interval time.Duration) (*Template, error) {
	f1, err := parseText(first)
	if err != nil {
		return nil, fmt.Errorf("first scrape: %w", err)
	}
	f2, err := parseText(second)
	if err != nil {
		return nil, fmt.Errorf("second scrape: %w", err)
	}
	before := map[string]float64{}
	for _, f := range f1 {
		for _, s := range flatten(f) {
			before[s.key()] = s.Value
		}
	}
	t := &Template{Captured: captured, Interval: interval}
	for _, mf := range f2 {
		fam := &Family{Name: mf.GetName(), Help: mf.GetHelp(), Type: mf.GetType()}
		fam.Samples = flatten(mf)
		for _, s := range fam.Samples {
			v, ok := before[s.key()]
			if ok && s.Value > v {
				s.Rate = (s.Value - v) / interval.Seconds()
			}
			s.Integral = s.Value == math.Trunc(s.Value) && (!ok || v == math.Trunc(v))
		}
		classify(fam)
		burstRates(fam)
		var ht bytes.Buffer
		if fam.Help != "" {
			fmt.Fprintf(&ht, "# HELP %s %s\n", fam.Name, escapeHelp(fam.Help))
		}
		fmt.Fprintf(&ht, "# TYPE %s %s\n", fam.Name, strings.ToLower(fam.Type.String()))
		fam.helpType = ht.Bytes()
		t.Families = append(t.Families, fam)
	}
	if len(t.Families) == 0 {
		return nil, fmt.Errorf("second scrape has no metric family")
	}
	t.linkSizes()
	return t, nil
}

// linkSizes points every free/available-space gauge at the size gauge of
// the same file system (same labels, family name ending in _size_bytes), so
// that a filling disk stays within its size. Without one it keeps its own
// captured value as the ceiling.
func (t *Template) linkSizes() {
	type ref struct{ fam, idx int }
	sizes := map[string]ref{}
	for fi, f := range t.Families {
		if !strings.HasSuffix(f.Name, "_size_bytes") {
			continue
		}
		stem := strings.TrimSuffix(f.Name, "_size_bytes")
		for si, s := range f.Samples {
			sizes[string(appendPrefix([]byte(stem), "", s.Labels))] = ref{fi, si}
		}
	}
	for _, f := range t.Families {
		for _, s := range f.Samples {
			if s.Kind != KindAvail {
				continue
			}
			stem := strings.TrimSuffix(strings.TrimSuffix(f.Name, "_avail_bytes"), "_free_bytes")
			if r, ok := sizes[string(appendPrefix([]byte(stem), "", s.Labels))]; ok {
				size := t.Families[r.fam].Samples[r.idx]
				s.SizeSample = size
			}
		}
	}
}

func (s *Sample) key() string { return string(s.prefix) }

// flatten turns a family into its samples in the order the text format
// writes them.
func flatten(mf *dto.MetricFamily) []*Sample {
	var out []*Sample
	add := func(name string, labels []string, v float64) *Sample {
		s := &Sample{Name: name, Labels: labels, Value: v, Count: -1}
		s.prefix = appendPrefix(nil, name, labels)
		s.seed = hash64(string(s.prefix))
		out = append(out, s)
		return s
	}
	name := mf.GetName()
	for _, m := range mf.GetMetric() {
		var labels []string
		for _, lp := range m.GetLabel() {
			labels = append(labels, lp.GetName(), lp.GetValue())
		}
		with := func(k, v string) []string {
			return append(append([]string(nil), labels...), k, v)
		}
		switch mf.GetType() {
		case dto.MetricType_COUNTER:
			add(name, labels, m.GetCounter().GetValue())
		case dto.MetricType_GAUGE:
			add(name, labels, m.GetGauge().GetValue())
		case dto.MetricType_UNTYPED:
			add(name, labels, m.GetUntyped().GetValue())
		case dto.MetricType_HISTOGRAM:
			h := m.GetHistogram()
			hasInf := false
			for _, b := range h.GetBucket() {
				if math.IsInf(b.GetUpperBound(), 1) {
					hasInf = true
				}
				add(name+"_bucket", with("le", formatFloat(b.GetUpperBound())), float64(b.GetCumulativeCount()))
			}
			if !hasInf {
				add(name+"_bucket", with("le", "+Inf"), float64(h.GetSampleCount()))
			}
			add(name+"_sum", labels, h.GetSampleSum())
			add(name+"_count", labels, float64(h.GetSampleCount()))
		case dto.MetricType_SUMMARY:
			sm := m.GetSummary()
			for _, q := range sm.GetQuantile() {
				add(name, with("quantile", formatFloat(q.GetQuantile())), q.GetValue())
			}
			add(name+"_sum", labels, sm.GetSampleSum())
			add(name+"_count", labels, float64(sm.GetSampleCount()))
		}
	}
	return out
}

// classify sets each sample's Kind and the links between a histogram's
// samples.
func classify(f *Family) {
	switch f.Type {
	case dto.MetricType_COUNTER:
		for _, s := range f.Samples {
			s.Kind = KindCounter
			s.Burst = labelValue(s.Labels, "code") == "5xx"
		}
	case dto.MetricType_HISTOGRAM, dto.MetricType_SUMMARY:
		// Samples of one series are contiguous and end with _sum, _count.
		start := 0
		for i, s := range f.Samples {
			if !strings.HasSuffix(s.Name, "_count") {
				continue
			}
			count := s
			count.Kind = KindCounter
			sum := f.Samples[i-1]
			sum.Kind, sum.Count = KindHistSum, i
			if count.Value > 0 {
				sum.Mean = sum.Value / count.Value
			}
			for _, b := range f.Samples[start : i-1] {
				if f.Type == dto.MetricType_SUMMARY {
					b.Kind = KindGauge // a quantile moves like a gauge
					continue
				}
				b.Kind, b.Count, b.Share = KindBucket, i, 1
				if count.Value > 0 {
					b.Share = b.Value / count.Value
				}
			}
			start = i + 1
		}
	default:
		for _, s := range f.Samples {
			s.Kind = gaugeKind(f.Name, s)
		}
	}
}

// burstRates sets the rate of a 5xx series during a burst: a third of its
// siblings' rate, so that 5xx are a quarter of all requests.
func burstRates(f *Family) {
	siblings := map[string]float64{}
	key := func(s *Sample) string {
		var b strings.Builder
		b.WriteString(s.Name)
		for i := 0; i+1 < len(s.Labels); i += 2 {
			if s.Labels[i] != "code" {
				b.WriteString("\x00" + s.Labels[i] + "=" + s.Labels[i+1])
			}
		}
		return b.String()
	}
	for _, s := range f.Samples {
		if !s.Burst {
			siblings[key(s)] += s.Rate
		}
	}
	for _, s := range f.Samples {
		if s.Burst {
			s.BurstRate = siblings[key(s)] / 3
		}
	}
}

func gaugeKind(family string, s *Sample) SampleKind {
	switch {
	case strings.HasSuffix(family, "_start_time_seconds"), strings.HasSuffix(family, "_info"),
		strings.Contains(family, "_max_"), strings.HasSuffix(family, "_max"), strings.Contains(family, "limit"),
		strings.HasSuffix(family, "_size_bytes"), strings.HasSuffix(family, "_files"), strings.Contains(family, "_total_"):
		return KindConst
	case strings.HasSuffix(family, "_timestamp_seconds"), strings.HasSuffix(family, "_time_seconds"):
		return KindTimestamp
	case strings.HasSuffix(family, "_avail_bytes"), strings.HasSuffix(family, "_free_bytes"):
		return KindAvail
	case strings.Contains(family, "vault"):
		return KindGrowing
	case s.Value == 0 || s.Value == 1:
		// Flags (success, readonly, errors) and idle gauges stay put.
		return KindConst
	}
	return KindGauge
}

func labelValue(labels []string, name string) string {
	for i := 0; i+1 < len(labels); i += 2 {
		if labels[i] == name {
			return labels[i+1]
		}
	}
	return ""
}

// appendPrefix writes `name{l1="v1",...} `.
func appendPrefix(b []byte, name string, labels []string) []byte {
	b = append(b, name...)
	if len(labels) > 0 {
		b = append(b, '{')
		for i := 0; i+1 < len(labels); i += 2 {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, labels[i]...)
			b = append(b, '=')
			b = strconv.AppendQuote(b, labels[i+1])
		}
		b = append(b, '}')
	}
	return append(b, ' ')
}

func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

func formatFloat(f float64) string {
	switch {
	case math.IsInf(f, 1):
		return "+Inf"
	case math.IsInf(f, -1):
		return "-Inf"
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// SeriesCount is the number of samples (series) one POP serves.
func (t *Template) SeriesCount() int {
	n := 0
	for _, f := range t.Families {
		n += len(f.Samples)
	}
	return n
}

// hash64 is FNV-1a, then a splitmix64 finaliser for well spread bits.
func hash64(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix(h)
}

func mix(z uint64) uint64 {
	z ^= z >> 30
	z *= 0xbf58476d1ce4e5b9
	z ^= z >> 27
	z *= 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unit maps a seed to [0, 1).
func unit(seed uint64) float64 { return float64(seed>>11) / (1 << 53) }
