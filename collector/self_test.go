package collector

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"
)

// TestSelfRegistryGathersWhatARegistryGathers: the exporter's own metrics
// (Go, process and promhttp's handler instrumentation, as the exporter
// wires them) come out of a SelfRegistry as out of a prometheus.Registry:
// the same families in the same order, with the same types, help texts,
// label sets and number of series. Only values move between two gathers.
func TestSelfRegistryGathersWhatARegistryGathers(t *testing.T) {
	process, err := NewProcessCollector("/proc", nil)
	if err != nil {
		t.Fatal(err)
	}
	goc := collectors.NewGoCollector()
	self := NewSelfRegistry()
	self.MustRegister(process, goc)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(process, goc)
	// promhttp's instrumentation registers into either; scrape once so its
	// counter has a series.
	for _, r := range []prometheus.Registerer{self, reg} {
		h := promhttp.InstrumentMetricHandler(r, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/metrics", nil))
	}

	want, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for round := range 2 { // the second gather reuses the first one's protobufs
		got, done, err := self.Gather()
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: %d families, a Registry gathers %d", round, len(got), len(want))
		}
		for i, w := range want {
			g := got[i]
			if g.GetName() != w.GetName() || g.GetType() != w.GetType() || g.GetHelp() != w.GetHelp() {
				t.Errorf("family %d: %s %v %q, Registry %s %v %q", i, g.GetName(), g.GetType(), g.GetHelp(), w.GetName(), w.GetType(), w.GetHelp())
				continue
			}
			if len(g.GetMetric()) != len(w.GetMetric()) {
				t.Errorf("%s: %d series, Registry %d", g.GetName(), len(g.GetMetric()), len(w.GetMetric()))
				continue
			}
			for j := range w.GetMetric() {
				if gl, wl := labelKey(g.GetMetric()[j]), labelKey(w.GetMetric()[j]); gl != wl {
					t.Errorf("%s series %d: labels %s, Registry %s", g.GetName(), j, gl, wl)
				}
			}
		}
		done()
	}
}

// TestSelfRegistryRegisterUnregister: registration follows a Registry's
// rules: the same descriptions again are AlreadyRegisteredError (with the
// collector registered first, which promhttp's instrumentation uses), a
// collector describing a family another one describes is refused,
// unchecked collectors are all accepted, and Unregister goes by
// descriptions.
func TestSelfRegistryRegisterUnregister(t *testing.T) {
	self := NewSelfRegistry()
	opts := prometheus.CounterOpts{Name: "clavis_test_total", Help: "A test counter."}
	c := prometheus.NewCounter(opts)
	if err := self.Register(c); err != nil {
		t.Fatal(err)
	}
	var are prometheus.AlreadyRegisteredError
	twin := prometheus.NewCounter(opts)
	if err := self.Register(twin); !errors.As(err, &are) || are.ExistingCollector != c {
		t.Fatalf("registering a twin: %v, want AlreadyRegisteredError with the first collector", err)
	}
	other := prometheus.NewGauge(prometheus.GaugeOpts{Name: "clavis_test_total", Help: "Other help."})
	if err := self.Register(other); err == nil || errors.As(err, &are) || !strings.Contains(err.Error(), "clavis_test_total") {
		t.Fatalf("registering another collector of the same family: %v, want a plain error naming it", err)
	}
	u1, u2 := uncheckedCollector{}, uncheckedCollector{}
	if err := errors.Join(self.Register(u1), self.Register(u2)); err != nil {
		t.Fatalf("unchecked collectors: %v", err)
	}
	if !self.Unregister(twin) || self.Unregister(c) {
		t.Fatal("Unregister by descriptions: want true once, then false")
	}
	if !self.Unregister(u1) || !self.Unregister(u2) || self.Unregister(u1) {
		t.Fatal("Unregister of unchecked collectors: want true twice, then false")
	}
	mfs, done, err := self.Gather()
	defer done()
	if err != nil || len(mfs) != 0 {
		t.Fatalf("after Unregister: %d families, %v", len(mfs), err)
	}
}

// uncheckedCollector describes nothing and sends one gauge.
type uncheckedCollector struct{}

var uncheckedDesc = prometheus.NewDesc("clavis_test_unchecked", "Unchecked.", nil, nil)

func (uncheckedCollector) Describe(chan<- *prometheus.Desc) {}
func (uncheckedCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(uncheckedDesc, prometheus.GaugeValue, 1)
}

type panickingCollector struct{}

func (panickingCollector) Describe(chan<- *prometheus.Desc) {}
func (panickingCollector) Collect(chan<- prometheus.Metric) { panic("boom") }

// clashingCollector sends one family with two help texts: the second
// series is dropped at gather time.
type clashingCollector struct{}

func (clashingCollector) Describe(chan<- *prometheus.Desc) {}
func (clashingCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("clavis_test_clash", "One help.", []string{"x"}, nil), prometheus.GaugeValue, 1, "a")
	ch <- prometheus.MustNewConstMetric(prometheus.NewDesc("clavis_test_clash", "Another help.", []string{"x"}, nil), prometheus.GaugeValue, 2, "b")
}

// TestSelfRegistryPanicAndClash: a collector that panics, or sends a
// family with two help texts, costs its own series and an error; the other
// collectors are served.
func TestSelfRegistryPanicAndClash(t *testing.T) {
	self := NewSelfRegistry()
	good := prometheus.NewGauge(prometheus.GaugeOpts{Name: "clavis_test_good", Help: "Good."})
	good.Set(3)
	self.MustRegister(good, panickingCollector{}, clashingCollector{})
	mfs, done, err := self.Gather()
	defer done()
	if err == nil || !strings.Contains(err.Error(), "panicked: boom") || !strings.Contains(err.Error(), "clavis_test_clash") {
		t.Errorf("err = %v, want the panic and the clash", err)
	}
	if len(mfs) != 2 || mfs[0].GetName() != "clavis_test_clash" || len(mfs[0].GetMetric()) != 1 ||
		mfs[1].GetName() != "clavis_test_good" || mfs[1].GetType() != dto.MetricType_GAUGE ||
		mfs[1].GetMetric()[0].GetGauge().GetValue() != 3 {
		t.Fatalf("served %v, want the first clash series and the good gauge at 3", mfs)
	}
}

// TestSelfRegistryConcurrentGathers: scrapes in flight at once (up to
// --web.max-requests) each get whole, consistent families; -race checks
// the sharing.
func TestSelfRegistryConcurrentGathers(t *testing.T) {
	process, err := NewProcessCollector("/proc", nil)
	if err != nil {
		t.Fatal(err)
	}
	self := NewSelfRegistry()
	self.MustRegister(process, collectors.NewGoCollector())
	first, done, err := self.Gather()
	if err != nil {
		t.Fatal(err)
	}
	want := len(first)
	done()
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for range 20 {
				mfs, done, err := self.Gather()
				if err == nil && len(mfs) != want {
					err = fmt.Errorf("%d families, want %d", len(mfs), want)
				}
				done()
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
