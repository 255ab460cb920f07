// Package exposition writes /metrics in the text formats Prometheus scrapes
// (text 0.0.4 and OpenMetrics 1.0), byte for byte as
// github.com/prometheus/common/expfmt writes them, at a fraction of the
// cost, and serves it (Handler) in front of promhttp.
//
// Why not expfmt alone: on a POP, encoding was the largest single cost of a
// scrape. expfmt copies every family to apply name escaping, validates every
// metric and label name rune by rune twice per sample, and funnels each
// family through a pooled bufio.Writer. The POP's families are counters and
// gauges with legacy-valid names (the privacy gate's allowlist guarantees
// it), which need none of that: AppendFamily validates names with a byte
// loop and appends straight into the response buffer. Anything it does not
// cover the same way expfmt would (summaries, histograms, exemplars, units,
// names outside the legacy character set) it leaves to expfmt, family by
// family, so the output is always what expfmt would write. A property test
// holds the two to that.
package exposition

import (
	"math"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
)

// AppendFamily appends mf in the given format (openMetrics or text 0.0.4)
// to buf. ok is false, and buf unchanged, when mf holds something only
// expfmt writes: the caller then encodes mf with expfmt.
func AppendFamily(buf []byte, mf *dto.MetricFamily, openMetrics bool) (_ []byte, ok bool) {
	name := mf.GetName()
	typ := mf.GetType()
	if !legacyName(name) || len(mf.Metric) == 0 || mf.Unit != nil {
		return buf, false
	}
	switch typ {
	case dto.MetricType_COUNTER, dto.MetricType_GAUGE, dto.MetricType_UNTYPED:
	default:
		return buf, false
	}
	start := len(buf)

	// The name in HELP and TYPE: OpenMetrics drops a counter's _total.
	headerName := name
	if openMetrics && typ == dto.MetricType_COUNTER && strings.HasSuffix(name, "_total") {
		headerName = name[:len(name)-len("_total")]
		if !legacyName(headerName) {
			return buf, false // "_total" alone: expfmt quotes the empty name
		}
	}
	if mf.Help != nil {
		buf = append(buf, "# HELP "...)
		buf = append(buf, headerName...)
		buf = append(buf, ' ')
		buf = appendEscaped(buf, *mf.Help, openMetrics)
		buf = append(buf, '\n')
	}
	buf = append(buf, "# TYPE "...)
	buf = append(buf, headerName...)
	buf = append(buf, typeName(typ, name, openMetrics)...)

	for _, m := range mf.Metric {
		var v float64
		switch typ {
		case dto.MetricType_COUNTER:
			if m.Counter == nil || (openMetrics && m.Counter.Exemplar != nil) {
				return buf[:start], false
			}
			v = m.Counter.GetValue()
		case dto.MetricType_GAUGE:
			if m.Gauge == nil {
				return buf[:start], false
			}
			v = m.Gauge.GetValue()
		default:
			if m.Untyped == nil {
				return buf[:start], false
			}
			v = m.Untyped.GetValue()
		}
		buf = append(buf, name...)
		if len(m.Label) > 0 {
			sep := byte('{')
			for _, lp := range m.Label {
				ln := lp.GetName()
				if !legacyName(ln) || ln == "__name__" {
					return buf[:start], false
				}
				buf = append(buf, sep)
				buf = append(buf, ln...)
				buf = append(buf, '=', '"')
				buf = appendEscaped(buf, lp.GetValue(), true)
				buf = append(buf, '"')
				sep = ','
			}
			buf = append(buf, '}')
		}
		buf = append(buf, ' ')
		buf = appendFloat(buf, v, openMetrics)
		if m.TimestampMs != nil {
			buf = append(buf, ' ')
			if openMetrics {
				buf = appendFloat(buf, float64(*m.TimestampMs)/1000, true)
			} else {
				buf = strconv.AppendInt(buf, *m.TimestampMs, 10)
			}
		}
		buf = append(buf, '\n')
	}
	return buf, true
}

// typeName is the rest of the TYPE line.
func typeName(typ dto.MetricType, name string, openMetrics bool) string {
	switch typ {
	case dto.MetricType_COUNTER:
		if openMetrics && !strings.HasSuffix(name, "_total") {
			return " unknown\n"
		}
		return " counter\n"
	case dto.MetricType_GAUGE:
		return " gauge\n"
	}
	if openMetrics {
		return " unknown\n"
	}
	return " untyped\n"
}

// legacyName reports whether s matches [a-zA-Z_:][a-zA-Z0-9_:]*, the names
// expfmt writes unquoted (it checks label names by the same rule).
func legacyName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == ':' || c >= '0' && c <= '9' && i > 0 {
			continue
		}
		return false
	}
	return true
}

// appendEscaped escapes \ and newline, and " when quote is set.
func appendEscaped(buf []byte, s string, quote bool) []byte {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '\\':
			esc = `\\`
		case '\n':
			esc = `\n`
		case '"':
			if !quote {
				continue
			}
			esc = `\"`
		default:
			continue
		}
		buf = append(buf, s[last:i]...)
		buf = append(buf, esc...)
		last = i + 1
	}
	return append(buf, s[last:]...)
}

// appendFloat formats a value like expfmt's writers. OpenMetrics marks
// whole numbers as floats ("1.0"); both write zero, even -0, as 0.
func appendFloat(buf []byte, f float64, openMetrics bool) []byte {
	switch {
	case math.IsNaN(f):
		return append(buf, "NaN"...)
	case math.IsInf(f, +1):
		return append(buf, "+Inf"...)
	case math.IsInf(f, -1):
		return append(buf, "-Inf"...)
	}
	start := len(buf)
	if f == 0 {
		buf = append(buf, '0')
	} else {
		buf = strconv.AppendFloat(buf, f, 'g', -1, 64)
	}
	if !openMetrics {
		return buf
	}
	for _, c := range buf[start:] {
		if c == 'e' || c == '.' {
			return buf
		}
	}
	return append(buf, '.', '0')
}
