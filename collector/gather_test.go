package collector

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
)

// textOf encodes families in the text format.
func textOf(t *testing.T, mfs []*dto.MetricFamily) string {
	t.Helper()
	var buf bytes.Buffer
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&buf, mf); err != nil {
			t.Fatal(err)
		}
	}
	return buf.String()
}

// gatherText runs one transactional gather and returns its text, calling
// done only afterwards, as promhttp does.
func gatherText(t *testing.T, g prometheus.TransactionalGatherer) (string, error) {
	t.Helper()
	mfs, done, err := g.Gather()
	defer done()
	return textOf(t, mfs), err
}

var (
	gatherCPUDesc  = prometheus.NewDesc("clavis_test_cpu_seconds_total", "CPU \"seconds\" \\ by mode.\nSecond line.", []string{"cpu", "mode"}, nil)
	gatherDiskDesc = prometheus.NewDesc("clavis_test_disk_bytes", "Disk bytes.", []string{"device"}, prometheus.Labels{"unit": "bytes"})
	gatherUnitDesc = prometheus.V2.NewDesc("clavis_test_uptime_seconds", "Uptime.", prometheus.UnconstrainedLabels(nil), nil)
)

// mixedCollector sends samples and const metrics out of order, across two
// families, the way real collectors interleave them.
func mixedCollector(t *testing.T, base float64) fakeCollector {
	cpu := map[[2]string]*series{}
	for _, k := range [][2]string{{"1", "user"}, {"0", "user"}, {"1", "idle"}, {"0", "idle"}} {
		s, err := newSeries(gatherCPUDesc, k[0], k[1])
		if err != nil {
			t.Fatal(err)
		}
		cpu[k] = s
	}
	return func(_ context.Context, ch *Batch) error {
		ch.Send(cpu[[2]string{"1", "user"}].counter(base + 1))
		ch.Send(prometheus.MustNewConstMetric(gatherDiskDesc, prometheus.GaugeValue, base*2, "sdb"))
		ch.Send(cpu[[2]string{"0", "idle"}].counter(base + 2))
		ch.Send(prometheus.MustNewConstMetric(gatherDiskDesc, prometheus.GaugeValue, base*3, "sda"))
		ch.Send(cpu[[2]string{"0", "user"}].counter(base + 3))
		ch.Send(cpu[[2]string{"1", "idle"}].counter(base + 4))
		ch.Send(prometheus.MustNewConstMetric(gatherUnitDesc, prometheus.GaugeValue, base))
		return nil
	}
}

// TestGathererMatchesRegistry: the Gatherer produces what a
// prometheus.Registry holding the same scraper produces (the values of
// the scrape duration aside).
func TestGathererMatchesRegistry(t *testing.T) {
	build := func() *Scraper {
		return NewScraper([]Named{{Name: "mixed", Collector: mixedCollector(t, 10)}, {Name: "other", Collector: emit(7)}}, time.Second, nil)
	}
	info := prometheus.MustNewConstMetric(prometheus.NewDesc("clavis_build_info", "Build.", nil, prometheus.Labels{"version": "v1", "edition": "telemetry"}), prometheus.GaugeValue, 1)

	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(build())
	reg.MustRegister(constCollector{info})
	want, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got, err := gatherText(t, NewGatherer(build(), info))
	if err != nil {
		t.Fatal(err)
	}
	if w := dropDurations(textOf(t, want)); dropDurations(got) != w {
		t.Errorf("Gatherer:\n%s\nRegistry:\n%s", dropDurations(got), w)
	}
	if !strings.Contains(got, `clavis_test_cpu_seconds_total{cpu="0",mode="idle"} 12`) {
		t.Errorf("sorted counter series missing:\n%s", got)
	}
}

type constCollector struct{ m prometheus.Metric }

func (c constCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.m.Desc() }
func (c constCollector) Collect(ch chan<- prometheus.Metric) { ch <- c.m }

// dropDurations removes the duration samples, whose values differ from run
// to run.
func dropDurations(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if strings.HasPrefix(line, "clavis_scrape_collector_duration_seconds{") {
			continue
		}
		out = append(out, line)
	}
	return strings.Join(out, "\n")
}

// TestGathererReusesAfterDone: families handed out stay intact until done;
// the next gather then reuses them with fresh values.
func TestGathererReusesAfterDone(t *testing.T) {
	var base atomic.Int64
	base.Store(10)
	c := fakeCollector(func(ctx context.Context, ch *Batch) error {
		return mixedCollector(t, float64(base.Load()))(ctx, ch)
	})
	g := NewGatherer(NewScraper([]Named{{Name: "mixed", Collector: c}}, time.Second, nil))
	first, done1, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	before := dropDurations(textOf(t, first))
	base.Store(20)
	// A concurrent scrape while the first is being written: its own state.
	second, done2, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if after := dropDurations(textOf(t, first)); after != before {
		t.Fatalf("a gather changed the families of one not yet done:\n%s\nwas:\n%s", after, before)
	}
	if !strings.Contains(textOf(t, second), `mode="idle"} 22`) {
		t.Errorf("second gather lacks its own values:\n%s", textOf(t, second))
	}
	done1()
	done2()
	base.Store(30)
	third, err := gatherText(t, g)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(third, `clavis_test_cpu_seconds_total{cpu="0",mode="idle"} 32`) || strings.Contains(third, `mode="idle"} 22`) {
		t.Errorf("reused state kept stale values:\n%s", third)
	}
}

var (
	gatherHelpADesc  = prometheus.NewDesc("clavis_test_clash", "One help.", nil, nil)
	gatherHelpBDesc  = prometheus.NewDesc("clavis_test_clash", "Another help.", []string{"x"}, nil)
	gatherTypedDesc  = prometheus.NewDesc("clavis_test_typed", "Typed.", []string{"x"}, nil)
	gatherDupDesc    = prometheus.NewDesc("clavis_test_dup", "Duplicated.", []string{"x"}, nil)
	gatherBrokenDesc = prometheus.NewInvalidDesc(errors.New("constructed wrongly"))
)

type failingMetric struct{}

func (failingMetric) Desc() *prometheus.Desc   { return gatherDupDesc }
func (failingMetric) Write(*dto.Metric) error  { return errors.New("write failed") }
func (brokenMetric) Desc() *prometheus.Desc    { return gatherBrokenDesc }
func (brokenMetric) Write(m *dto.Metric) error { return nil }

type brokenMetric struct{}

// TestGathererRejectsInconsistentMetrics: what a Registry would refuse is
// dropped with an error, and the rest is served.
func TestGathererRejectsInconsistentMetrics(t *testing.T) {
	bad := fakeCollector(func(_ context.Context, ch *Batch) error {
		ch.Send(prometheus.MustNewConstMetric(gatherHelpADesc, prometheus.GaugeValue, 1))
		ch.Send(prometheus.MustNewConstMetric(gatherHelpBDesc, prometheus.GaugeValue, 2, "b")) // other help
		ch.Send(prometheus.MustNewConstMetric(gatherTypedDesc, prometheus.GaugeValue, 3, "a"))
		ch.Send(prometheus.MustNewConstMetric(gatherTypedDesc, prometheus.CounterValue, 4, "b")) // other type
		ch.Send(prometheus.MustNewConstMetric(gatherDupDesc, prometheus.GaugeValue, 5, "same"))
		ch.Send(prometheus.MustNewConstMetric(gatherDupDesc, prometheus.GaugeValue, 6, "same")) // duplicate
		ch.Send(failingMetric{})
		ch.Send(brokenMetric{})
		return nil
	})
	text, err := gatherText(t, NewGatherer(NewScraper([]Named{{Name: "bad", Collector: bad}, {Name: "good", Collector: emit(9)}}, time.Second, nil)))
	if err == nil {
		t.Fatal("no error for inconsistent metrics")
	}
	for _, want := range []string{"help text different", "has type COUNTER, but the family has GAUGE", "duplicate series {x}", "write failed", "constructed wrongly"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
	for _, want := range []string{"clavis_test_clash 1\n", `clavis_test_typed{x="a"} 3`, `clavis_test_dup{x="same"} 5`, "clavis_test_value 9\n", `clavis_scrape_collector_success{collector="bad"} 1`} {
		if !strings.Contains(text, want) {
			t.Errorf("exposition lacks %q:\n%s", want, text)
		}
	}
	for _, unwanted := range []string{`x="b"`, `clavis_test_dup{x="same"} 6`} {
		if strings.Contains(text, unwanted) {
			t.Errorf("exposition holds the rejected %q:\n%s", unwanted, text)
		}
	}
}

// TestParseDesc reads name, help and unit back from every kind of Desc,
// including help texts that need Go quoting.
func TestParseDesc(t *testing.T) {
	for _, tc := range []struct {
		desc             *prometheus.Desc
		name, help, unit string
	}{
		{gatherCPUDesc, "clavis_test_cpu_seconds_total", "CPU \"seconds\" \\ by mode.\nSecond line.", ""},
		{gatherDiskDesc, "clavis_test_disk_bytes", "Disk bytes.", ""},
		{prometheus.NewDesc("a:b", "héllo, wörld ✓ \x00", nil, prometheus.Labels{"k": `"v"`}), "a:b", "héllo, wörld ✓ \x00", ""},
		{prometheus.NewDesc("clavis_test_empty_help", "", nil, nil), "clavis_test_empty_help", "", ""},
	} {
		m := parseDesc(tc.desc)
		if m.err != nil || m.name != tc.name || m.help != tc.help || (m.unit != nil) != (tc.unit != "") {
			t.Errorf("parseDesc(%v) = %q %q %v %v", tc.desc, m.name, m.help, m.unit, m.err)
		}
	}
	if m := parseDesc(gatherBrokenDesc); m.err == nil {
		t.Error("an invalid Desc parsed without error")
	}
}

// TestGathererConcurrentScrapes runs gathers in parallel (-race checks the
// pooled state is never shared).
func TestGathererConcurrentScrapes(t *testing.T) {
	g := NewGatherer(NewScraper([]Named{{Name: "mixed", Collector: mixedCollector(t, 1)}}, 5*time.Second, nil))
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				mfs, done, err := g.Gather()
				// A collector still running from a parallel scrape is
				// reported failed, never mixed into this one.
				if err != nil {
					t.Error(err)
				}
				if s := textOf(t, mfs); strings.Count(s, "clavis_test_cpu_seconds_total{") > 4 {
					t.Errorf("series from another scrape leaked in:\n%s", s)
				}
				done()
			}
		}()
	}
	wg.Wait()
}
