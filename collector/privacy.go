package collector

import (
	"log/slog"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// The privacy gate is the last thing every metric of the POP passes before
// it is written to /metrics. The collectors are built never to emit user
// data; the gate is the backstop that makes a bug in one of them a dropped
// series and a counter increment instead of a leak:
//
//   - a family whose name is not in allowedFamilies is dropped whole;
//   - a series with a label name not allowed for its family, a label value
//     longer than MaxLabelValueBytes, or a label value that contains an IP
//     address (containsIP) is dropped;
//   - exemplars (which carry labels of their own) are stripped;
//   - every dropped series is counted in
//     clavis_privacy_redactions_total{reason}, which the gate itself adds to
//     the output, with a series for every reason from the first scrape on.
//
// What was dropped is logged once per family and reason, never with the
// offending value.

// MaxLabelValueBytes is the longest label value the gate lets through.
// Legitimate values (device names, mount points, route classes) are far
// shorter; anything longer smells of a raw path, user agent or token.
const MaxLabelValueBytes = 128

// Redaction reasons, the values of clavis_privacy_redactions_total's label.
const (
	ReasonIPAddress     = "ip_address"
	ReasonTooLong       = "too_long"
	ReasonUnknownFamily = "unknown_family"
	ReasonUnknownLabel  = "unknown_label"
)

// redactionReasons is sorted, as the exposition lists them.
var redactionReasons = [...]string{ReasonIPAddress, ReasonTooLong, ReasonUnknownFamily, ReasonUnknownLabel}

const (
	redactionsFamily = Namespace + "_privacy_redactions_total"
	redactionsHelp   = "Series the privacy gate dropped before exposition since start, by reason: ip_address (a label value holds an IP), too_long (a label value over 128 bytes), unknown_family (metric not on the allowlist), unknown_label (label not allowed for its metric)."
	// maxLoggedKeys bounds the memory spent remembering what was logged, in
	// case a broken collector invents family names without end.
	maxLoggedKeys = 1024
)

type privacyGate struct {
	inner  prometheus.Gatherer
	logger *slog.Logger
	// allowed is the allowlist as the gate reads it; built once, never
	// changed, so concurrent scrapes read it without a lock.
	allowed map[string][]string
	counts  [len(redactionReasons)]atomic.Uint64

	mu     sync.Mutex
	logged map[string]struct{}
}

// NewPrivacyGate wraps the POP registry so that every metric family passes
// the allowlist and the IP/length checks before it is written.
func NewPrivacyGate(g prometheus.Gatherer, logger *slog.Logger) prometheus.Gatherer {
	gate := newPrivacyGate(logger)
	gate.inner = g
	return gate
}

func newPrivacyGate(logger *slog.Logger) *privacyGate {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	allowed := make(map[string][]string, len(allowedFamilies))
	for name, labels := range allowedFamilies {
		allowed[name] = append([]string(nil), labels...)
	}
	return &privacyGate{
		logger:  logger.With("component", "privacy_gate"),
		allowed: allowed,
		logged:  map[string]struct{}{},
	}
}

// Gather implements prometheus.Gatherer. Errors of the wrapped gatherer are
// passed on with anything that looks like an IP cut out of their text (the
// registry's consistency errors quote label values).
func (g *privacyGate) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.inner.Gather()
	return g.pass(mfs, err)
}

// NewTransactionalPrivacyGate is NewPrivacyGate for a gatherer whose
// families are reused once written, such as Gatherer.
func NewTransactionalPrivacyGate(g prometheus.TransactionalGatherer, logger *slog.Logger) prometheus.TransactionalGatherer {
	return transactionalGate{gate: newPrivacyGate(logger), inner: g}
}

type transactionalGate struct {
	gate  *privacyGate
	inner prometheus.TransactionalGatherer
}

func (t transactionalGate) Gather() ([]*dto.MetricFamily, func(), error) {
	mfs, done, err := t.inner.Gather()
	out, err := t.gate.pass(mfs, err)
	return out, done, err
}

// pass returns the families of mfs that pass the gate, and err with IPs
// scrubbed from its text.
func (g *privacyGate) pass(mfs []*dto.MetricFamily, err error) ([]*dto.MetricFamily, error) {
	out := make([]*dto.MetricFamily, 0, len(mfs)+1)
	for _, mf := range mfs {
		name := mf.GetName()
		labels, ok := g.allowed[name]
		if !ok || name == redactionsFamily {
			// The gate's own counter comes from the gate alone.
			g.redact(name, ReasonUnknownFamily, "", len(mf.GetMetric()))
			continue
		}
		if kept := g.filter(mf, labels); kept != nil {
			out = append(out, kept)
		}
	}
	own := g.redactionsFamily()
	i := sort.Search(len(out), func(i int) bool { return out[i].GetName() >= redactionsFamily })
	out = append(out, nil)
	copy(out[i+1:], out[i:])
	out[i] = own
	if err != nil {
		err = scrubbedError{msg: scrubIPs(err.Error())}
	}
	return out, err
}

// filter returns mf with the series that pass, mf itself when all do, or
// nil when none does. The wrapped family is never modified.
func (g *privacyGate) filter(mf *dto.MetricFamily, allowedLabels []string) *dto.MetricFamily {
	metrics := mf.GetMetric()
	var kept []*dto.Metric // nil while every series so far passed unchanged
	for i, m := range metrics {
		reason, label := checkSeries(m, allowedLabels)
		if reason != "" {
			g.redact(mf.GetName(), reason, label, 1)
			if kept == nil {
				kept = append(make([]*dto.Metric, 0, len(metrics)), metrics[:i]...)
			}
			continue
		}
		if hasExemplars(m) {
			m = stripExemplars(m)
			if kept == nil {
				kept = append(make([]*dto.Metric, 0, len(metrics)), metrics[:i]...)
			}
		}
		if kept != nil {
			kept = append(kept, m)
		}
	}
	if kept == nil {
		if len(metrics) == 0 {
			return nil // an empty family is not valid exposition
		}
		return mf
	}
	if len(kept) == 0 {
		return nil
	}
	return &dto.MetricFamily{Name: mf.Name, Help: mf.Help, Type: mf.Type, Unit: mf.Unit, Metric: kept}
}

// checkSeries returns why m must be dropped ("" if it may pass) and, for
// unknown_label, the offending label name (names are code, never user data).
func checkSeries(m *dto.Metric, allowedLabels []string) (reason, labelName string) {
	for _, lp := range m.GetLabel() {
		name := lp.GetName()
		if !labelAllowed(name, allowedLabels) {
			return ReasonUnknownLabel, name
		}
		v := lp.GetValue()
		if len(v) > MaxLabelValueBytes {
			return ReasonTooLong, name
		}
		if containsIP(v) {
			return ReasonIPAddress, name
		}
	}
	return "", ""
}

// labelAllowed is a linear scan: families have at most a handful of labels,
// fewer than it takes a map lookup to pay off.
func labelAllowed(name string, allowed []string) bool {
	for _, a := range allowed {
		if a == name {
			return true
		}
	}
	return false
}

func hasExemplars(m *dto.Metric) bool {
	if m.GetCounter().GetExemplar() != nil {
		return true
	}
	h := m.GetHistogram()
	if h == nil {
		return false
	}
	if len(h.GetExemplars()) > 0 {
		return true
	}
	for _, b := range h.GetBucket() {
		if b.GetExemplar() != nil {
			return true
		}
	}
	return false
}

func stripExemplars(m *dto.Metric) *dto.Metric {
	c := proto.Clone(m).(*dto.Metric)
	if c.Counter != nil {
		c.Counter.Exemplar = nil
	}
	if h := c.Histogram; h != nil {
		h.Exemplars = nil
		for _, b := range h.Bucket {
			b.Exemplar = nil
		}
	}
	return c
}

func (g *privacyGate) redact(family, reason, labelName string, series int) {
	if series <= 0 {
		return
	}
	for i, r := range redactionReasons {
		if r == reason {
			g.counts[i].Add(uint64(series))
		}
	}
	key := family + "\x00" + reason
	g.mu.Lock()
	_, seen := g.logged[key]
	full := len(g.logged) >= maxLoggedKeys
	if !seen && !full {
		g.logged[key] = struct{}{}
	}
	g.mu.Unlock()
	if seen || full {
		return
	}
	if containsIP(family) {
		family = "<redacted>" // a metric name can spell "::1"
	}
	attrs := []any{"family", family, "reason", reason, "series", series}
	if labelName != "" {
		attrs = append(attrs, "label", labelName)
	}
	g.logger.Warn("privacy gate dropped series (logged once per family and reason; values are never logged)", attrs...)
}

// redactionLabels are the label pairs of the gate's own counter, built
// once: only the values change from scrape to scrape.
var redactionLabels = func() (out [len(redactionReasons)][]*dto.LabelPair) {
	for i, r := range redactionReasons {
		out[i] = []*dto.LabelPair{{Name: proto.String("reason"), Value: proto.String(r)}}
	}
	return out
}()

func (g *privacyGate) redactionsFamily() *dto.MetricFamily {
	// One allocation per kind instead of several per series.
	const n = len(redactionReasons)
	metrics := make([]dto.Metric, n)
	counters := make([]dto.Counter, n)
	values := make([]float64, n)
	mf := &dto.MetricFamily{
		Name:   proto.String(redactionsFamily),
		Help:   proto.String(redactionsHelp),
		Type:   dto.MetricType_COUNTER.Enum(),
		Metric: make([]*dto.Metric, n),
	}
	for i := range n {
		values[i] = float64(g.counts[i].Load())
		counters[i].Value = &values[i]
		metrics[i].Label = redactionLabels[i]
		metrics[i].Counter = &counters[i]
		mf.Metric[i] = &metrics[i]
	}
	return mf
}

type scrubbedError struct{ msg string }

func (e scrubbedError) Error() string { return e.msg }

// scrubIPs replaces every token of s that containsIP flags with
// "<redacted>".
func scrubIPs(s string) string {
	var b strings.Builder
	last := 0
	for start, end := range ipTokens(s) {
		b.WriteString(s[last:start])
		b.WriteString("<redacted>")
		last = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}
