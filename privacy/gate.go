package privacy

import (
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"google.golang.org/protobuf/proto"
)

// The Gate is the last thing every metric of the POP passes before it is
// written to /metrics. The collectors are built never to emit user data;
// the gate is the backstop that makes a bug in one of them a dropped series
// and a counter increment instead of a leak:
//
//   - a family whose name is not in allowedFamilies is dropped whole;
//   - a series with a label name not allowed for its family, a label value
//     longer than MaxLabelValueBytes, a label value that holds an IP address
//     anywhere inside it (ContainsAddress) or an e-mail-shaped value
//     (IsEmailShaped) is dropped;
//   - a family whose HELP or UNIT holds an IP address or an e-mail-shaped
//     value is dropped whole, every series counted under ip_address or
//     email_address: HELP is code, so such a text is a collector building
//     it from data, and the data's series are as suspect as its text
//     (rewriting the HELP would keep them; dropping fails safe). HELP is
//     not held to MaxLabelValueBytes: real ones are longer;
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
	ReasonEmailAddress  = "email_address"
	ReasonIPAddress     = "ip_address"
	ReasonTooLong       = "too_long"
	ReasonUnknownFamily = "unknown_family"
	ReasonUnknownLabel  = "unknown_label"
)

// redactionReasons is sorted, as the exposition lists them.
var redactionReasons = [...]string{ReasonEmailAddress, ReasonIPAddress, ReasonTooLong, ReasonUnknownFamily, ReasonUnknownLabel}

const (
	redactionsFamily = "clavis_privacy_redactions_total"
	redactionsHelp   = "Series the privacy gate dropped before exposition since start, by reason: email_address (a label value, or its family's HELP or UNIT, holds an e-mail-shaped value), ip_address (the same for an IP address), too_long (a label value over 128 bytes), unknown_family (metric not on the allowlist), unknown_label (label not allowed for its metric)."
	// maxLoggedKeys bounds the memory spent remembering what was logged, in
	// case a broken collector invents family names without end.
	maxLoggedKeys = 1024
)

// Gate is a prometheus.Gatherer that passes on only what the privacy rules
// allow of the families of the gatherer it wraps, and adds its own
// clavis_privacy_redactions_total.
type Gate struct {
	inner  prometheus.Gatherer
	logger *slog.Logger
	// allowed is the allowlist as the gate reads it; built once, never
	// changed, so concurrent scrapes read it without a lock.
	allowed    map[string][]string
	redactions *prometheus.CounterVec
	own        *prometheus.Registry

	mu     sync.Mutex
	logged map[string]struct{}
}

// NewGate wraps the POP's gatherer so that every metric family passes the
// allowlist and the address, e-mail and length checks before it is written.
func NewGate(inner prometheus.Gatherer, logger *slog.Logger) *Gate {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	allowed := make(map[string][]string, len(allowedFamilies))
	for name, labels := range allowedFamilies {
		allowed[name] = append([]string(nil), labels...)
	}
	g := &Gate{
		inner:   inner,
		logger:  logger.With("component", "privacy_gate"),
		allowed: allowed,
		redactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: redactionsFamily,
			Help: redactionsHelp,
		}, []string{"reason"}),
		own:    prometheus.NewRegistry(),
		logged: map[string]struct{}{},
	}
	for _, r := range redactionReasons {
		g.redactions.WithLabelValues(r) // every reason from the first scrape on
	}
	g.own.MustRegister(g.redactions)
	return g
}

// Gather implements prometheus.Gatherer. Errors of the wrapped gatherer are
// passed on with every address cut out of their text (the registry's
// consistency errors quote label values).
func (g *Gate) Gather() ([]*dto.MetricFamily, error) {
	mfs, err := g.inner.Gather()
	return g.pass(mfs, err)
}

// pass returns the families of mfs that pass the gate, and err with IPs
// scrubbed from its text.
func (g *Gate) pass(mfs []*dto.MetricFamily, err error) ([]*dto.MetricFamily, error) {
	out := make([]*dto.MetricFamily, 0, len(mfs)+1)
	for _, mf := range mfs {
		name := mf.GetName()
		labels, ok := g.allowed[name]
		if !ok || name == redactionsFamily {
			// The gate's own counter comes from the gate alone.
			g.redact(name, ReasonUnknownFamily, "", len(mf.GetMetric()))
			continue
		}
		if reason := textReason(mf.GetHelp(), mf.GetUnit()); reason != "" {
			g.redact(name, reason, "", len(mf.GetMetric()))
			continue
		}
		if kept := g.filter(mf, labels); kept != nil {
			out = append(out, kept)
		}
	}
	own, ownErr := g.own.Gather()
	if ownErr != nil || len(own) != 1 {
		panic("privacy: the gate's own counter cannot be gathered: " + errText(ownErr)) // a programming error
	}
	i := sort.Search(len(out), func(i int) bool { return out[i].GetName() >= redactionsFamily })
	out = append(out, nil)
	copy(out[i+1:], out[i:])
	out[i] = own[0]
	if err != nil {
		err = scrubbedError{msg: scrubText(err.Error())}
	}
	return out, err
}

// filter returns mf with the series that pass, mf itself when all do, or
// nil when none does. The wrapped family is never modified.
func (g *Gate) filter(mf *dto.MetricFamily, allowedLabels []string) *dto.MetricFamily {
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
		if ContainsAddress(v) {
			return ReasonIPAddress, name
		}
		if IsEmailShaped(v) {
			return ReasonEmailAddress, name
		}
	}
	return "", ""
}

// textReason returns why a family with this HELP and UNIT must be
// dropped, or "".
func textReason(texts ...string) string {
	for _, t := range texts {
		if ContainsAddress(t) {
			return ReasonIPAddress
		}
		if IsEmailShaped(t) {
			return ReasonEmailAddress
		}
	}
	return ""
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

func (g *Gate) redact(family, reason, labelName string, series int) {
	if series <= 0 {
		return
	}
	g.redactions.WithLabelValues(reason).Add(float64(series))
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
	if ContainsAddress(family) || IsEmailShaped(family) {
		family = "<redacted>" // a metric name can spell "::1"
	}
	attrs := []any{"family", family, "reason", reason, "series", series}
	if labelName != "" {
		attrs = append(attrs, "label", labelName)
	}
	g.logger.Warn("privacy gate dropped series (logged once per family and reason; values are never logged)", attrs...)
}

type scrubbedError struct{ msg string }

func (e scrubbedError) Error() string { return e.msg }

// scrubText cuts addresses and e-mail-shaped words out of an error text.
func scrubText(s string) string {
	s = ScrubAddresses(s)
	if !IsEmailShaped(s) {
		return s
	}
	words := strings.Fields(s)
	for i, w := range words {
		if IsEmailShaped(w) {
			words[i] = Redacted
		}
	}
	return strings.Join(words, " ")
}

func errText(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
