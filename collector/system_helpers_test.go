package collector

import (
	"context"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/procfs"
	"github.com/prometheus/procfs/blockdevice"
)

// fixtureProc is the /proc tree made from a real machine and edited by hand
// (see testdata/SYSTEM-FIXTURES.md).
const fixtureProc = "testdata/proc"

func mustProcFS(t testing.TB, path string) procfs.FS {
	t.Helper()
	fs, err := procfs.NewFS(path)
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

// compareCollector registers one collector the way the exporter does (under
// the scraper, so success is reported) and compares the named families with
// want, in the text exposition format.
func compareCollector(t *testing.T, name string, c Collector, want string, families ...string) {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(AsPrometheus(name, c))
	families = append(families, "clavis_scrape_collector_success")
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), families...); err != nil {
		t.Fatal(err)
	}
}

// collectAll runs Update once and returns what it sent and its error.
func collectAll(c Collector) ([]prometheus.Metric, error) {
	var b batch
	err := updateInto(context.Background(), c, &b)
	return b.Metrics(), err
}

// batch holds what Update calls sent, for tests that look at a
// collector's metrics directly.
type batch struct{ ms []prometheus.Metric }

// Metrics returns what was sent, in order.
func (b *batch) Metrics() []prometheus.Metric { return b.ms }

// updateInto runs c.Update once and appends what it sent to b.
func updateInto(ctx context.Context, c Collector, b *batch) error {
	ch := make(chan prometheus.Metric)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for m := range ch {
			b.ms = append(b.ms, m)
		}
	}()
	err := c.Update(ctx, ch)
	close(ch)
	<-done
	return err
}

const successHelp = `# HELP clavis_scrape_collector_success Whether a collector succeeded during this scrape (1) or failed or timed out (0).
# TYPE clavis_scrape_collector_success gauge
`

// labelKey renders a series' label pairs, for comparing series by labels.
func labelKey(m *dto.Metric) string {
	var b strings.Builder
	for _, l := range m.GetLabel() {
		b.WriteString(l.GetName() + "=" + l.GetValue() + ",")
	}
	return "{" + b.String() + "}"
}

func mustBlockFS(t testing.TB, proc string) blockdevice.FS {
	t.Helper()
	fs, err := blockdevice.NewFS(proc, "testdata/sys")
	if err != nil {
		t.Fatal(err)
	}
	return fs
}

type testSample struct {
	name   string
	labels map[string]string
	value  float64
}

// metricSample reads one const metric's name, labels and value.
func metricSample(t testing.TB, m prometheus.Metric) testSample {
	t.Helper()
	var pb dto.Metric
	if err := m.Write(&pb); err != nil {
		t.Fatal(err)
	}
	s := testSample{name: metricName(m), labels: map[string]string{}}
	for _, l := range pb.GetLabel() {
		s.labels[l.GetName()] = l.GetValue()
	}
	switch {
	case pb.Counter != nil:
		s.value = pb.GetCounter().GetValue()
	default:
		s.value = pb.GetGauge().GetValue()
	}
	return s
}
