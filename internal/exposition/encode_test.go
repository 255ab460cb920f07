package exposition

import (
	"bytes"
	"math"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"google.golang.org/protobuf/proto"
	"pgregory.net/rapid"
)

// formats are the two text formats AppendFamily writes, negotiated the way
// Handler negotiates them.
var formats = map[string]bool{
	"text/plain;version=0.0.4":                   false,
	"application/openmetrics-text;version=1.0.0": true,
}

func negotiate(accept string) expfmt.Format {
	h := http.Header{}
	h.Set("Accept", accept)
	return expfmt.NegotiateAccept(h, expfmt.DefaultOpenMetricsAcceptedFormats()...)
}

// expfmtEncode is the reference: what promhttp would write for mf.
func expfmtEncode(mf *dto.MetricFamily, format expfmt.Format) ([]byte, error) {
	var buf bytes.Buffer
	err := expfmt.NewEncoder(&buf, format).Encode(mf)
	return buf.Bytes(), err
}

// genName draws metric and label names: mostly legacy-valid, sometimes
// ones only UTF-8 names allow, which AppendFamily must leave to expfmt.
func genName(t *rapid.T, label string) string {
	return rapid.OneOf(
		rapid.StringMatching(`[a-zA-Z_:][a-zA-Z0-9_:]{0,12}`),
		rapid.SampledFrom([]string{"clavis_cpu_seconds_total", "a_total", "_total", "x", "cpu", "le", "quantile", "__name__"}),
		rapid.StringMatching(`[a-z]{1,4}[.\-é ][a-z]{0,4}`),
		rapid.StringMatching(`[0-9][a-z]{0,3}`),
	).Draw(t, label)
}

func genFloat(t *rapid.T, label string) float64 {
	return rapid.OneOf(
		rapid.SampledFrom([]float64{0, 1, -1, math.NaN(), math.Inf(1), math.Inf(-1), 0.5, 1e21, 1e-7, 123456789, -0.0, math.MaxFloat64, math.SmallestNonzeroFloat64}),
		rapid.Float64(),
		rapid.Map(rapid.Int64Range(-1e15, 1e15), func(i int64) float64 { return float64(i) }),
	).Draw(t, label)
}

// genFamily draws a metric family with any of the value types, labels with
// values that need escaping, optional help, unit, timestamps and exemplars.
func genFamily(t *rapid.T) *dto.MetricFamily {
	typ := rapid.SampledFrom([]dto.MetricType{
		dto.MetricType_COUNTER, dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_GAUGE,
		dto.MetricType_UNTYPED, dto.MetricType_SUMMARY, dto.MetricType_HISTOGRAM,
	}).Draw(t, "type")
	mf := &dto.MetricFamily{Name: proto.String(genName(t, "name")), Type: typ.Enum()}
	if rapid.Bool().Draw(t, "hasHelp") {
		mf.Help = proto.String(rapid.StringMatching(`[ -~\n\\"é]{0,30}`).Draw(t, "help"))
	}
	if rapid.IntRange(0, 9).Draw(t, "unit") == 0 {
		mf.Unit = proto.String("seconds")
	}
	labelNames := rapid.SliceOfNDistinct(rapid.Custom(func(t *rapid.T) string { return genName(t, "label") }), 0, 3, rapid.ID[string]).Draw(t, "labels")
	n := rapid.IntRange(1, 4).Draw(t, "metrics")
	for range n {
		m := &dto.Metric{}
		for _, ln := range labelNames {
			m.Label = append(m.Label, &dto.LabelPair{
				Name:  proto.String(ln),
				Value: proto.String(rapid.StringMatching(`[ -~\n\\"é✓]{0,12}`).Draw(t, "value")),
			})
		}
		if rapid.IntRange(0, 4).Draw(t, "ts") == 0 {
			m.TimestampMs = proto.Int64(rapid.Int64Range(-1e13, 1e13).Draw(t, "timestamp"))
		}
		v := genFloat(t, "v")
		switch typ {
		case dto.MetricType_COUNTER:
			m.Counter = &dto.Counter{Value: proto.Float64(v)}
			if rapid.IntRange(0, 5).Draw(t, "exemplar") == 0 {
				m.Counter.Exemplar = &dto.Exemplar{Label: []*dto.LabelPair{{Name: proto.String("trace_id"), Value: proto.String("abc")}}, Value: proto.Float64(1)}
			}
		case dto.MetricType_GAUGE:
			m.Gauge = &dto.Gauge{Value: proto.Float64(v)}
		case dto.MetricType_UNTYPED:
			m.Untyped = &dto.Untyped{Value: proto.Float64(v)}
		case dto.MetricType_SUMMARY:
			m.Summary = &dto.Summary{SampleCount: proto.Uint64(3), SampleSum: proto.Float64(v),
				Quantile: []*dto.Quantile{{Quantile: proto.Float64(0.5), Value: proto.Float64(v)}}}
		case dto.MetricType_HISTOGRAM:
			m.Histogram = &dto.Histogram{SampleCount: proto.Uint64(3), SampleSum: proto.Float64(v),
				Bucket: []*dto.Bucket{{UpperBound: proto.Float64(1), CumulativeCount: proto.Uint64(2)}}}
		}
		mf.Metric = append(mf.Metric, m)
	}
	return mf
}

// fastClass is what AppendFamily promises to write itself.
func fastClass(mf *dto.MetricFamily, openMetrics bool) bool {
	if !legacyName(mf.GetName()) || mf.Unit != nil {
		return false
	}
	if openMetrics && mf.GetType() == dto.MetricType_COUNTER && mf.GetName() == "_total" {
		return false
	}
	switch mf.GetType() {
	case dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED:
	default:
		return false
	}
	for _, m := range mf.Metric {
		if openMetrics && m.GetCounter().GetExemplar() != nil {
			return false
		}
		for _, lp := range m.Label {
			if !legacyName(lp.GetName()) || lp.GetName() == "__name__" {
				return false
			}
		}
	}
	return true
}

// TestAppendFamilyMatchesExpfmt is the contract: for every family
// AppendFamily writes, it writes exactly what expfmt writes; it declines
// only what it does not promise to write, and declining leaves buf as it
// was.
func TestAppendFamilyMatchesExpfmt(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		mf := genFamily(t)
		for accept, om := range formats {
			want, err := expfmtEncode(mf, negotiate(accept))
			prefix := []byte("previous family\n")
			got, ok := AppendFamily(bytes.Clone(prefix), mf, om)
			if !bytes.HasPrefix(got, prefix) {
				t.Fatalf("%s: AppendFamily overwrote what was in the buffer", accept)
			}
			if !ok {
				if fastClass(mf, om) {
					t.Fatalf("%s: AppendFamily declined a family it promises to write:\n%v", accept, mf)
				}
				if !bytes.Equal(got, prefix) {
					t.Fatalf("%s: declined, but left %q behind", accept, got[len(prefix):])
				}
				continue
			}
			if err != nil {
				t.Fatalf("%s: AppendFamily wrote a family expfmt refuses (%v):\n%v", accept, err, mf)
			}
			if got := got[len(prefix):]; !bytes.Equal(got, want) {
				t.Fatalf("%s: output differs from expfmt for\n%v\n got: %q\nwant: %q", accept, mf, got, want)
			}
		}
	})
}

// TestAppendFamilyPOPShapes pins the exact output for the shapes a POP
// exports, as a reader of the code would check them by eye.
func TestAppendFamilyPOPShapes(t *testing.T) {
	mf := &dto.MetricFamily{
		Name: proto.String("clavis_cpu_seconds_total"),
		Help: proto.String(`Seconds the CPUs spent in each mode ("idle", \ and so on).`),
		Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{
			{Label: []*dto.LabelPair{{Name: proto.String("cpu"), Value: proto.String("0")}, {Name: proto.String("mode"), Value: proto.String("idle")}},
				Counter: &dto.Counter{Value: proto.Float64(12345.67)}},
			{Label: []*dto.LabelPair{{Name: proto.String("cpu"), Value: proto.String("0")}, {Name: proto.String("mode"), Value: proto.String("a\"b\\c\nd")}},
				Counter: &dto.Counter{Value: proto.Float64(1)}},
		},
	}
	text, ok := AppendFamily(nil, mf, false)
	if !ok {
		t.Fatal("declined")
	}
	const wantText = `# HELP clavis_cpu_seconds_total Seconds the CPUs spent in each mode ("idle", \\ and so on).
# TYPE clavis_cpu_seconds_total counter
clavis_cpu_seconds_total{cpu="0",mode="idle"} 12345.67
clavis_cpu_seconds_total{cpu="0",mode="a\"b\\c\nd"} 1
`
	if string(text) != wantText {
		t.Errorf("text:\n%s\nwant:\n%s", text, wantText)
	}
	om, ok := AppendFamily(nil, mf, true)
	if !ok {
		t.Fatal("declined")
	}
	const wantOM = `# HELP clavis_cpu_seconds Seconds the CPUs spent in each mode (\"idle\", \\ and so on).
# TYPE clavis_cpu_seconds counter
clavis_cpu_seconds_total{cpu="0",mode="idle"} 12345.67
clavis_cpu_seconds_total{cpu="0",mode="a\"b\\c\nd"} 1.0
`
	if string(om) != wantOM {
		t.Errorf("openmetrics:\n%s\nwant:\n%s", om, wantOM)
	}
}

// BenchmarkAppendFamily compares AppendFamily with expfmt on a POP-sized
// exposition (30 families, 93 series), as in docs/benchmarks.md.
func BenchmarkAppendFamily(b *testing.B) {
	var mfs []*dto.MetricFamily
	for f := range 30 {
		mf := &dto.MetricFamily{Name: proto.String("clavis_family_" + string(rune('a'+f%26)) + "_bytes"),
			Help: proto.String("A help text of the length the POP's help texts have, give or take."),
			Type: dto.MetricType_GAUGE.Enum()}
		for s := range 3 {
			mf.Metric = append(mf.Metric, &dto.Metric{
				Label: []*dto.LabelPair{{Name: proto.String("device"), Value: proto.String("sd" + string(rune('a'+s)))}},
				Gauge: &dto.Gauge{Value: proto.Float64(float64(f*1000+s) * 1.37)}})
		}
		mfs = append(mfs, mf)
	}
	for accept, om := range formats {
		name := "text"
		if om {
			name = "openmetrics"
		}
		format := negotiate(accept)
		b.Run(name+"/exposition", func(b *testing.B) {
			var buf []byte
			for b.Loop() {
				buf = buf[:0]
				for _, mf := range mfs {
					buf, _ = AppendFamily(buf, mf, om)
				}
			}
		})
		b.Run(name+"/expfmt", func(b *testing.B) {
			var buf bytes.Buffer
			for b.Loop() {
				buf.Reset()
				enc := expfmt.NewEncoder(&buf, format)
				for _, mf := range mfs {
					if err := enc.Encode(mf); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}
