package privacy

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"google.golang.org/protobuf/proto"
)

// ipForms is every textual form of an address the gate must catch.
var ipForms = []string{
	"1.2.3.4", "0.0.0.0", "255.255.255.255", "127.0.0.1", "1.2.3.4:80", "1.2.3.4:65535",
	"1.2.3.4.", // absolute-name spelling
	"::", "::1", "[::1]", "[::1]:443", "fe80::1%eth0", "[fe80::1%eth0]:8443", "fe80::1%25eth0",
	"::ffff:1.2.3.4", "::ffff:102:304", "[::ffff:1.2.3.4]:80", "::ffff:1.2.3.4:80",
	"2001:db8::8a2e:370:7334", "2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:DB8::1",
	"0:0:0:0:0:0:0:1", "00000::1", "::ffff:001.002.003.004", "64:ff9b::192.0.2.33",
	// inet_aton and sloppy spellings net/netip refuses.
	"0x7f.0.0.1", "0177.0.0.1", "127.000.000.001", "001.002.003.004:8080", "0x7f000001", "0X7F.0X0.0X0.0X1",
	// Addresses inside longer values.
	"for=1.2.3.4", "1.2.3.4, 5.6.7.8", "client 10.0.0.1 via proxy", "/mnt/10.0.0.5/x",
	"2001:db8::1/64", "X-Forwarded-For: 203.0.113.7", "http://[2001:db8::2]:8080/", "ip=\"198.51.100.9\"",
	"0::0% ", "fe80::1%", "fe80::1%my zone", "ip%3D10.0.0.1", "a%2F192.0.2.1%2Fb", "%5B2001:db8::3%5D%3A443",
}

// benignValues are label values the POP really exports; none may be taken
// for an address.
var benignValues = []string{
	"", "2xx", "5xx", "GET", "other", "cpu0", "0", "17", "idle", "sda", "sda1", "nvme0n1", "dm-0", "eth0", "lo", "veth1a2b3c4",
	"/", "/var/lib", "/var/lib/clavitor/vaults", "/run/user/1000", "ext4", "fuse.sshfs", "vault", "ssh", "http",
	"max_clients", "per_source", "1.25.0", "1.2.3", "v0.1.0-3-gabc123-dirty", "go1.26.8", "20261129", "12:30:45",
	"12:30:45.123", "00:11:22:33:44:55", "a:b:c", "api:v2", "1.2.3-rc.4", "0x", "commercial", "telemetry",
	"deadbeefcafebabe0123456789abcdef01234567", "/var/lib/docker/overlay2/3f9c2e7a1b/merged", "malformed", "too_long",
}

func TestContainsIP(t *testing.T) {
	t.Parallel()
	for _, v := range ipForms {
		if !ContainsAddress(v) {
			t.Errorf("ContainsAddress(%q) = false, want true", v)
		}
	}
	for _, v := range benignValues {
		if ContainsAddress(v) {
			t.Errorf("ContainsAddress(%q) = true, want false", v)
		}
	}
}

func TestScrubIPs(t *testing.T) {
	t.Parallel()
	in := `collected metric "clavis_x" { label:{name:"route" value:"10.1.2.3"} label:{name:"b" value:"[::1]:443"} } was collected before`
	got := ScrubAddresses(in)
	if strings.Contains(got, "10.1.2.3") || strings.Contains(got, "::1") {
		t.Errorf("scrubIPs left an address: %s", got)
	}
	if !strings.Contains(got, `value:"<redacted>"`) || !strings.Contains(got, "was collected before") {
		t.Errorf("scrubIPs damaged the message: %s", got)
	}
	if s := "nothing to see here 1.2.3"; ScrubAddresses(s) != s {
		t.Errorf("scrubIPs changed %q", s)
	}
}

// leaky is a collector that emits whatever it is told, as a buggy
// collector would.
type leaky struct{ metrics []prometheus.Metric }

func (l leaky) Describe(chan<- *prometheus.Desc) {}
func (l leaky) Collect(ch chan<- prometheus.Metric) {
	for _, m := range l.metrics {
		ch <- m
	}
}

func gauge(name string, labels map[string]string) prometheus.Metric {
	var names, values []string
	for k, v := range labels {
		names = append(names, k)
		values = append(values, v)
	}
	return prometheus.MustNewConstMetric(prometheus.NewDesc(name, "test", names, nil), prometheus.GaugeValue, 1, values...)
}

func gatherGate(t *testing.T, gate prometheus.Gatherer) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := gate.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*dto.MetricFamily{}
	for i, mf := range mfs {
		if i > 0 && mfs[i-1].GetName() >= mf.GetName() {
			t.Errorf("families out of order: %s before %s", mfs[i-1].GetName(), mf.GetName())
		}
		out[mf.GetName()] = mf
	}
	return out
}

func redactions(t *testing.T, fams map[string]*dto.MetricFamily) map[string]float64 {
	t.Helper()
	mf := fams[redactionsFamily]
	if mf == nil {
		t.Fatal("clavis_privacy_redactions_total missing from the gate's output")
	}
	got := map[string]float64{}
	for _, m := range mf.GetMetric() {
		got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
	}
	if len(got) != len(redactionReasons) {
		t.Errorf("want a series for each of %v, got %v", redactionReasons, got)
	}
	return got
}

func TestPrivacyGateDropsIPsInEveryForm(t *testing.T) {
	t.Parallel()
	var ms []prometheus.Metric
	for _, v := range ipForms {
		ms = append(ms, gauge("clavis_http_requests_total", map[string]string{"method": "GET", "code": "2xx", "route": v}))
	}
	for _, v := range benignValues {
		ms = append(ms, gauge("clavis_filesystem_size_bytes", map[string]string{"device": "sda1", "fstype": "ext4", "mountpoint": v}))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(leaky{ms})
	var logBuf bytes.Buffer
	gate := NewGate(reg, slog.New(slog.NewTextHandler(&logBuf, nil)))
	fams := gatherGate(t, gate)
	if mf := fams["clavis_http_requests_total"]; mf != nil {
		for _, m := range mf.GetMetric() {
			t.Errorf("series with an address passed the gate: %v", m.GetLabel())
		}
	}
	if n := len(fams["clavis_filesystem_size_bytes"].GetMetric()); n != len(benignValues) {
		t.Errorf("%d of %d benign series passed", n, len(benignValues))
	}
	got := redactions(t, fams)
	if got[ReasonIPAddress] != float64(len(ipForms)) {
		t.Errorf("ip_address redactions = %v, want %d", got[ReasonIPAddress], len(ipForms))
	}
	// Logged once for the family, without any value.
	if n := strings.Count(logBuf.String(), "privacy gate dropped series"); n != 1 {
		t.Errorf("logged %d times, want once:\n%s", n, logBuf.String())
	}
	for _, v := range ipForms {
		if strings.Contains(logBuf.String(), v) {
			t.Errorf("the log holds the dropped value %q", v)
		}
	}
	// Counting goes on scrape after scrape; the log stays quiet.
	got = redactions(t, gatherGate(t, gate))
	if got[ReasonIPAddress] != float64(2*len(ipForms)) {
		t.Errorf("second scrape: ip_address = %v, want %d", got[ReasonIPAddress], 2*len(ipForms))
	}
	if n := strings.Count(logBuf.String(), "privacy gate dropped series"); n != 1 {
		t.Errorf("logged %d times after two scrapes, want once", n)
	}
}

func TestPrivacyGateAllowlist(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", MaxLabelValueBytes+1)
	reg := prometheus.NewRegistry()
	reg.MustRegister(leaky{[]prometheus.Metric{
		gauge("clavis_vaults", nil),
		gauge("clavis_not_on_the_list", nil),
		gauge("clavis_not_on_the_list2", map[string]string{"x": "1"}),
		gauge("clavis_tarpit_rejected_total", map[string]string{"reason": "per_source"}),
		gauge("clavis_tarpit_rejected_total", map[string]string{"reason": long}),
		gauge("clavis_tarpit_rejected_total", map[string]string{"reason": strings.Repeat("b", MaxLabelValueBytes)}),
		gauge("clavis_accesslog_lines_total", map[string]string{"result": "ok", "path": "/vault/abc"}),
		gauge("clavis_privacy_redactions_total", map[string]string{"reason": "forged"}),
	}})
	fams := gatherGate(t, NewGate(reg, nil))
	for _, name := range []string{"clavis_not_on_the_list", "clavis_not_on_the_list2", "clavis_accesslog_lines_total"} {
		if fams[name] != nil {
			t.Errorf("%s passed the gate", name)
		}
	}
	if fams["clavis_vaults"] == nil {
		t.Error("clavis_vaults (allowed, no labels) was dropped")
	}
	if n := len(fams["clavis_tarpit_rejected_total"].GetMetric()); n != 2 {
		t.Errorf("clavis_tarpit_rejected_total: %d series passed, want 2 (the 129-byte value dropped, 128 bytes kept)", n)
	}
	want := map[string]float64{ReasonUnknownFamily: 3, ReasonUnknownLabel: 1, ReasonTooLong: 1, ReasonIPAddress: 0}
	got := redactions(t, fams)
	for r, v := range want {
		if got[r] != v {
			t.Errorf("redactions{reason=%q} = %v, want %v", r, got[r], v)
		}
	}
	// The forged family did not reach the output.
	for _, m := range fams[redactionsFamily].GetMetric() {
		if m.GetLabel()[0].GetValue() == "forged" {
			t.Error("a collector's clavis_privacy_redactions_total reached the output")
		}
	}
}

// A fresh gate exposes every reason at zero, so rate() and alerts work
// from the first scrape.
func TestPrivacyGateZeroSeries(t *testing.T) {
	t.Parallel()
	gate := NewGate(prometheus.NewRegistry(), nil)
	mfs, err := gate.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	want := "# HELP clavis_privacy_redactions_total " + redactionsHelp + "\n# TYPE clavis_privacy_redactions_total counter\n" +
		"clavis_privacy_redactions_total{reason=\"email_address\"} 0\n" +
		"clavis_privacy_redactions_total{reason=\"ip_address\"} 0\n" +
		"clavis_privacy_redactions_total{reason=\"too_long\"} 0\n" +
		"clavis_privacy_redactions_total{reason=\"unknown_family\"} 0\n" +
		"clavis_privacy_redactions_total{reason=\"unknown_label\"} 0\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

func TestPrivacyGateStripsExemplarsAndKeepsInputIntact(t *testing.T) {
	t.Parallel()
	desc := prometheus.NewDesc("clavis_accesslog_rotations_total", "test", nil, nil)
	m := prometheus.MustNewMetricWithExemplars(prometheus.MustNewConstMetric(desc, prometheus.CounterValue, 3),
		prometheus.Exemplar{Value: 1, Labels: prometheus.Labels{"client": "192.0.2.1"}})
	inner := fixedGatherer{{
		Name: proto.String("clavis_accesslog_rotations_total"), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{writeMetric(t, m)},
	}, {
		Name: proto.String("clavis_http_requests_total"), Type: dto.MetricType_COUNTER.Enum(),
		Metric: []*dto.Metric{
			{Label: []*dto.LabelPair{{Name: proto.String("code"), Value: proto.String("192.0.2.1")}}, Counter: &dto.Counter{Value: proto.Float64(1)}},
			{Label: []*dto.LabelPair{{Name: proto.String("code"), Value: proto.String("2xx")}}, Counter: &dto.Counter{Value: proto.Float64(2)}},
		},
	}}
	before := proto.Clone(inner[1]).(*dto.MetricFamily)
	mfs, err := NewGate(inner, nil).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeOpenMetrics))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	if strings.Contains(buf.String(), "192.0.2.1") || strings.Contains(buf.String(), "client") {
		t.Errorf("exemplar leaked:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), "clavis_accesslog_rotations_total 3.0") || !strings.Contains(buf.String(), `clavis_http_requests_total{code="2xx"} 2.0`) {
		t.Errorf("allowed series missing:\n%s", buf.String())
	}
	if !proto.Equal(before, inner[1]) || inner[0].Metric[0].GetCounter().GetExemplar() == nil {
		t.Error("the gate modified the wrapped gatherer's families")
	}
}

type fixedGatherer []*dto.MetricFamily

func (f fixedGatherer) Gather() ([]*dto.MetricFamily, error) { return f, nil }

type failingGatherer struct{ err error }

func (f failingGatherer) Gather() ([]*dto.MetricFamily, error) { return nil, f.err }

func writeMetric(t *testing.T, m prometheus.Metric) *dto.Metric {
	t.Helper()
	var out dto.Metric
	if err := m.Write(&out); err != nil {
		t.Fatal(err)
	}
	return &out
}

func TestPrivacyGateScrubsErrors(t *testing.T) {
	t.Parallel()
	gate := NewGate(failingGatherer{errors.New(`collected metric with label value "203.0.113.9" was collected before`)}, nil)
	mfs, err := gate.Gather()
	if err == nil || strings.Contains(err.Error(), "203.0.113.9") || !strings.Contains(err.Error(), "was collected before") {
		t.Errorf("error not scrubbed: %v", err)
	}
	if len(mfs) != 1 || mfs[0].GetName() != redactionsFamily {
		t.Errorf("on error the gate still reports its counter, got %d families", len(mfs))
	}
}

// BenchmarkPrivacyGate measures the gate's cost per scrape on a realistic
// mix of series (mount points, request counters), next to what the
// registry's own Gather costs for the same collector: "gate-only" runs the
// gate over already gathered families, "registry" is client_golang alone,
// "registry+gate" is what /metrics does.
func BenchmarkPrivacyGate(b *testing.B) {
	var ms []prometheus.Metric
	for _, v := range benignValues {
		ms = append(ms, gauge("clavis_filesystem_size_bytes", map[string]string{"device": "sda1", "fstype": "ext4", "mountpoint": v}))
	}
	for _, v := range []string{"GET", "POST", "PUT", "DELETE", "HEAD", "other"} {
		for _, c := range []string{"2xx", "3xx", "4xx", "5xx"} {
			ms = append(ms, gauge("clavis_http_requests_total", map[string]string{"method": v, "code": c, "route": "vault_api"}))
		}
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(leaky{ms})
	mfs, err := reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		g    prometheus.Gatherer
	}{
		{"gate-only", NewGate(fixedGatherer(mfs), nil)},
		{"registry", reg},
		{"registry+gate", NewGate(reg, nil)},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := bc.g.Gather(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(ms))*float64(b.N)/b.Elapsed().Seconds(), "series/s")
		})
	}
}

// FuzzContainsIP checks the detector against net/netip: whatever netip
// reads as an address (alone, with a port, in any of its printed forms, or
// inside a longer value) the gate must catch; and no input makes it panic.
func FuzzContainsAddress(f *testing.F) {
	for _, v := range ipForms {
		f.Add(v)
	}
	for _, v := range benignValues {
		f.Add(v)
	}
	for _, vs := range [][]string{addressSpellings, emailSpellings, operatorValues} {
		for _, v := range vs {
			f.Add(v)
		}
	}
	f.Add(strings.Repeat("[", 300) + "1")
	f.Add(strings.Repeat("%5B%5D", 100) + "::1")
	f.Fuzz(func(t *testing.T, s string) {
		// The readers' work stays linear on whatever the fuzzer makes
		// (see TestDetectorWorkIsLinear).
		work := 0
		workCounter = func(k int) { work += k }
		got := ContainsAddress(s)
		_ = ScrubAddresses(s)
		_ = IsEmailShaped(s)
		workCounter = nil
		if limit := 200*len(s) + 1000; work > limit {
			t.Fatalf("%d bytes examined for %d bytes of input %q", work, len(s), s)
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(s); err == nil {
			addrs = append(addrs, a)
		}
		if ap, err := netip.ParseAddrPort(s); err == nil {
			addrs = append(addrs, ap.Addr())
		}
		if len(addrs) > 0 && !got {
			t.Fatalf("ContainsAddress(%q) = false, but net/netip parses it", s)
		}
		for _, a := range addrs {
			for _, form := range []string{a.String(), a.StringExpanded(), a.Unmap().String(), "x=" + a.String() + ";",
				netip.AddrPortFrom(a, 443).String()} {
				if !ContainsAddress(form) {
					t.Fatalf("ContainsAddress(%q) = false (a form of %q)", form, s)
				}
				// No address may be left; the text of a zone may remain
				// ("::% ::X" keeps " ::X"), so the substring test is for
				// zoneless addresses.
				scrubbed := ScrubAddresses(form)
				if ContainsAddress(scrubbed) || (a.Zone() == "" && strings.Contains(scrubbed, a.String())) {
					t.Fatalf("ScrubAddresses(%q) = %q kept an address", form, scrubbed)
				}
			}
		}
	})
}

// TestAllowlistWellFormed checks the contract file itself: names are valid
// clavis_ metric names, label names are valid, unique, and none is one the
// exposition reserves.
func TestAllowlistWellFormed(t *testing.T) {
	t.Parallel()
	for name, labels := range allowedFamilies {
		if !strings.HasPrefix(name, "clavis_") || !model.IsValidLegacyMetricName(name) {
			t.Errorf("allowlist family %q: not a valid clavis_ metric name", name)
		}
		seen := map[string]bool{}
		for _, l := range labels {
			if !model.LabelName(l).IsValidLegacy() || strings.HasPrefix(l, "__") {
				t.Errorf("allowlist family %q: label %q is not a valid label name", name, l)
			}
			if l == "le" || l == "quantile" {
				t.Errorf("allowlist family %q: label %q is reserved for histograms and summaries", name, l)
			}
			if seen[l] {
				t.Errorf("allowlist family %q: label %q listed twice", name, l)
			}
			seen[l] = true
		}
	}
}

// TestPrivacyGateConcurrentScrapes runs scrapes in parallel, as /metrics
// does with several scrapers: every redaction is counted once, none lost.
func TestPrivacyGateConcurrentScrapes(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	reg.MustRegister(leaky{[]prometheus.Metric{
		gauge("clavis_tarpit_rejected_total", map[string]string{"reason": "192.0.2.77"}),
		gauge("clavis_tarpit_rejected_total", map[string]string{"reason": "max_clients"}),
		gauge("clavis_unknown_thing", nil),
	}})
	gate := NewGate(reg, nil)
	const workers, scrapes = 8, 50
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range scrapes {
				mfs, err := gate.Gather()
				if err != nil {
					t.Error(err)
					return
				}
				for _, mf := range mfs {
					if mf.GetName() == "clavis_tarpit_rejected_total" && len(mf.GetMetric()) != 1 {
						t.Errorf("want only the max_clients series, got %d", len(mf.GetMetric()))
					}
				}
			}
		}()
	}
	wg.Wait()
	got := redactions(t, gatherGate(t, gate))
	if want := float64(workers*scrapes + 1); got[ReasonIPAddress] != want || got[ReasonUnknownFamily] != want {
		t.Errorf("redactions = %v, want ip_address and unknown_family %v each", got, want)
	}
}

// TestPrivacyGateChecksHelpAndUnit: a HELP or UNIT that holds an address or
// an e-mail drops its family, counted; a plain one passes.
func TestPrivacyGateChecksHelpAndUnit(t *testing.T) {
	t.Parallel()
	fam := func(name, help, unit string) *dto.MetricFamily {
		return &dto.MetricFamily{
			Name: proto.String(name), Help: proto.String(help), Unit: proto.String(unit), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: proto.Float64(1)}}, {Gauge: &dto.Gauge{Value: proto.Float64(2)}}},
		}
	}
	gate := NewGate(fixedGatherer([]*dto.MetricFamily{
		fam("clavis_boot_time_seconds", "Boot time, last seen by 203.0.113.9.", ""),
		fam("clavis_cpus_online", "CPUs online, ask alice@example.com.", ""),
		fam("clavis_load1", "Load average over 1 minute.", "10.0.0.1"),
		fam("clavis_load15", "Load average over 15 minutes (see RFC 1.2.3).", ""),
	}), nil)
	fams := gatherGate(t, gate)
	for _, name := range []string{"clavis_boot_time_seconds", "clavis_cpus_online", "clavis_load1"} {
		if fams[name] != nil {
			t.Errorf("%s passed with an address in its HELP or UNIT", name)
		}
	}
	if fams["clavis_load15"] == nil {
		t.Error("clavis_load15 with a plain HELP was dropped")
	}
	got := redactions(t, fams)
	if got[ReasonIPAddress] != 4 || got[ReasonEmailAddress] != 2 {
		t.Errorf("redactions = %v, want ip_address 4, email_address 2", got)
	}
}
