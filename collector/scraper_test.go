package collector

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

var (
	testDesc = prometheus.NewDesc("clavis_test_value", "A test value.", nil, nil)
	hungDesc = prometheus.NewDesc("clavis_test_late_value", "Sent after a hang.", nil, nil)
)

type fakeCollector func(ctx context.Context, ch chan<- prometheus.Metric) error

func (f fakeCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	return f(ctx, ch)
}

func emit(v float64) fakeCollector {
	return func(_ context.Context, ch chan<- prometheus.Metric) error {
		ch <- prometheus.MustNewConstMetric(testDesc, prometheus.GaugeValue, v)
		return nil
	}
}

func successOf(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "clavis_scrape_collector_success" {
			continue
		}
		for _, m := range mf.GetMetric() {
			out[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
		}
	}
	return out
}

func TestScraperReportsSuccessAndFailure(t *testing.T) {
	s := NewScraper([]Named{
		{Name: "good", Collector: emit(42)},
		{Name: "bad", Collector: fakeCollector(func(context.Context, chan<- prometheus.Metric) error {
			return errors.New("boom")
		})},
		{Name: "panicky", Collector: fakeCollector(func(context.Context, chan<- prometheus.Metric) error {
			panic("collector bug")
		})},
	}, time.Second, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	got := successOf(t, reg)
	want := map[string]float64{"good": 1, "bad": 0, "panicky": 0}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("success{collector=%q} = %v, want %v (all: %v)", k, got[k], v, got)
		}
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(`
# HELP clavis_test_value A test value.
# TYPE clavis_test_value gauge
clavis_test_value 42
`), "clavis_test_value"); err != nil {
		t.Error(err)
	}
}

func TestScraperKeepsMetricsSentBeforeFailure(t *testing.T) {
	s := NewScraper([]Named{{Name: "partial", Collector: fakeCollector(func(_ context.Context, ch chan<- prometheus.Metric) error {
		ch <- prometheus.MustNewConstMetric(testDesc, prometheus.GaugeValue, 7)
		return errors.New("second half failed")
	})}}, time.Second, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	if n := testutil.CollectAndCount(s, "clavis_test_value"); n != 1 {
		t.Errorf("got %d clavis_test_value series, want 1", n)
	}
	if got := successOf(t, reg)["partial"]; got != 0 {
		t.Errorf("success = %v, want 0", got)
	}
}

// A hung collector must not stall the scrape, and must not be started again
// while its previous run still hangs.
func TestScraperTimesOutHungCollector(t *testing.T) {
	release := make(chan struct{})
	var starts atomic.Int32
	hung := fakeCollector(func(ctx context.Context, ch chan<- prometheus.Metric) error {
		starts.Add(1)
		<-release // ignores ctx on purpose: a statfs on a dead mount does too
		ch <- prometheus.MustNewConstMetric(hungDesc, prometheus.GaugeValue, 1)
		return nil
	})
	s := NewScraper([]Named{{Name: "hung", Collector: hung}, {Name: "good", Collector: emit(1)}}, 50*time.Millisecond, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)

	done := make(chan map[string]float64)
	go func() { done <- successOf(t, reg) }()
	select {
	case got := <-done:
		if got["hung"] != 0 || got["good"] != 1 {
			t.Fatalf("success = %v, want hung 0 and good 1", got)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("scrape stalled behind a hung collector")
	}
	// Second scrape while the first run still hangs: skipped, not restarted.
	if got := successOf(t, reg); got["hung"] != 0 {
		t.Fatalf("second scrape: success = %v", got)
	}
	if n := starts.Load(); n != 1 {
		t.Fatalf("hung collector started %d times, want 1", n)
	}
	close(release)
	// Once the hang ends, the collector runs again.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if successOf(t, reg)["hung"] == 1 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("collector did not recover after its hang ended")
}

func TestScraperCancelsContextOnTimeout(t *testing.T) {
	sawCancel := make(chan struct{})
	c := fakeCollector(func(ctx context.Context, _ chan<- prometheus.Metric) error {
		<-ctx.Done()
		close(sawCancel)
		return ctx.Err()
	})
	s := NewScraper([]Named{{Name: "slow", Collector: c}}, 20*time.Millisecond, nil)
	testutil.CollectAndCount(s)
	select {
	case <-sawCancel:
	case <-time.After(5 * time.Second):
		t.Fatal("collector's context was not cancelled at the timeout")
	}
}

// Back-to-back scrapes of a fast collector must all succeed: a finished run
// is never mistaken for a hung one.
func TestScraperBackToBackScrapes(t *testing.T) {
	s := NewScraper([]Named{{Name: "fast", Collector: emit(1)}}, time.Second, nil)
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)
	for i := range 500 {
		if got := successOf(t, reg)["fast"]; got != 1 {
			t.Fatalf("scrape %d: success = %v, want 1", i, got)
		}
	}
}
