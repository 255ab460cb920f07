//go:build lowerbound

package collector

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// fixtureCollectors are the six system collectors over the fixture tree.
func fixtureCollectors(t *testing.T) []Named {
	stat := func(string) (fsStats, error) { return fakeStats, nil }
	return []Named{
		{"cpu", newCPUCollector(fixtureProc, nil)},
		{"memory", newMemoryCollector(fixtureProc)},
		{"loadavg", newLoadavgCollector(fixtureProc)},
		{"filesystem", newFilesystemCollector(defaultFilesystemConfig(t, fixtureProc, stat))},
		{"diskstats", newDiskstatsCollector(fixtureProc, deviceFilter{exclude: mustRegexpFlag(t, defaultDiskstatsExclude)})},
		{"netdev", newNetdevCollector(fixtureProc, deviceFilter{exclude: mustRegexpFlag(t, "^lo$")})},
	}
}

// TestLowerBoundServesWhatTheExporterServes: the benchmark reference does
// the exporter's collection work, not less. Its output parses as the text
// format and holds every family, series, type and value the exporter's
// Gatherer produces from the same collectors, the scrape's own duration and
// success series aside.
func TestLowerBoundServesWhatTheExporterServes(t *testing.T) {
	for _, concurrent := range []bool{false, true} {
		t.Run(map[bool]string{false: "inline", true: "concurrent"}[concurrent], func(t *testing.T) {
			testLowerBoundServes(t, concurrent)
		})
	}
}

func testLowerBoundServes(t *testing.T, concurrent bool) {
	lb := LowerBoundHandler(NewScraper(fixtureCollectors(t), time.Second, nil), concurrent)
	var got map[string]*dto.MetricFamily
	for range 2 { // the second scrape reuses the cached prefixes and headers
		rec := httptest.NewRecorder()
		lb.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
		if rec.Code != http.StatusOK {
			t.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		var err error
		if got, err = parser.TextToMetricFamilies(rec.Body); err != nil {
			t.Fatalf("lower bound output does not parse: %v", err)
		}
	}

	mfs, done, err := NewGatherer(NewScraper(fixtureCollectors(t), time.Second, nil)).Gather()
	if err != nil {
		t.Fatal(err)
	}
	defer done()
	compared := 0
	for _, mf := range mfs {
		// The scrape's own series come with the scraper (concurrent) only;
		// their durations differ from run to run.
		if strings.HasPrefix(mf.GetName(), "clavis_scrape_") {
			g, ok := got[mf.GetName()]
			switch {
			case ok != concurrent:
				t.Errorf("family %s served %v, want %v", mf.GetName(), ok, concurrent)
			case ok && len(g.GetMetric()) != len(mf.GetMetric()):
				t.Errorf("%s: %d series, want %d", mf.GetName(), len(g.GetMetric()), len(mf.GetMetric()))
			}
			continue
		}
		g, ok := got[mf.GetName()]
		if !ok {
			t.Errorf("family %s missing", mf.GetName())
			continue
		}
		if g.GetType() != mf.GetType() || g.GetHelp() != mf.GetHelp() {
			t.Errorf("%s: type %v help %q, want %v %q", mf.GetName(), g.GetType(), g.GetHelp(), mf.GetType(), mf.GetHelp())
		}
		if len(g.GetMetric()) != len(mf.GetMetric()) {
			t.Errorf("%s: %d series, want %d", mf.GetName(), len(g.GetMetric()), len(mf.GetMetric()))
		}
		served := map[string]float64{}
		for _, m := range g.GetMetric() {
			served[labelKey(m)] = sampleValue(m)
		}
		for _, m := range mf.GetMetric() {
			compared++
			if v, ok := served[labelKey(m)]; !ok || v != sampleValue(m) {
				t.Errorf("%s%s: served %v (present %v), want %v", mf.GetName(), labelKey(m), v, ok, sampleValue(m))
			}
		}
	}
	if compared < 50 {
		t.Fatalf("compared %d series; the fixtures give more than 50", compared)
	}
}

func sampleValue(m *dto.Metric) float64 {
	if m.GetCounter() != nil {
		return m.GetCounter().GetValue()
	}
	return m.GetGauge().GetValue()
}
