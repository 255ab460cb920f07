package collector

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// switchable fails with err while err is set.
type switchable struct {
	mu  sync.Mutex
	err error
}

func (c *switchable) set(err error) { c.mu.Lock(); c.err = err; c.mu.Unlock() }

func (c *switchable) Update(context.Context, chan<- prometheus.Metric) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// TestScraperLogsAFailureOnceNotEveryScrape: a collector that keeps failing
// with the same error is logged when it starts, again when the error
// changes, every failureLogRepeat while it lasts (with the count of failed
// scrapes), and its recovery once; success is exported at every scrape
// regardless.
func TestScraperLogsAFailureOnceNotEveryScrape(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	c := &switchable{}
	s := NewScraper([]Named{{Name: "vault", Collector: c}}, time.Second, logger)
	now := time.Unix(1_800_000_000, 0)
	s.now = func() time.Time { return now }
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(s)
	scrape := func() float64 {
		t.Helper()
		now = now.Add(15 * time.Second)
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "clavis_scrape_collector_success" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		t.Fatal("no clavis_scrape_collector_success")
		return 0
	}
	lines := func() []string {
		out := strings.Split(strings.TrimSpace(buf.String()), "\n")
		buf.Reset()
		if out[0] == "" {
			return nil
		}
		return out
	}

	scrape()
	if l := lines(); len(l) != 0 {
		t.Fatalf("a succeeding collector logged %q", l)
	}
	c.set(errors.New("open vault data directory /srv/vaults: no such file or directory"))
	for i := range 20 { // 5 minutes at 15 s
		if v := scrape(); v != 0 {
			t.Fatalf("scrape %d: success %v while failing", i, v)
		}
	}
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], "collector failed") || !strings.Contains(l[0], "no such file") {
		t.Fatalf("20 failing scrapes with one error logged %d lines, want 1: %q", len(l), l)
	}
	c.set(errors.New("open vault data directory /srv/vaults: permission denied"))
	scrape()
	scrape()
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], "permission denied") {
		t.Fatalf("a changed error logged %q, want it once", l)
	}
	for range 40 { // 10 minutes
		scrape()
	}
	l := lines()
	if len(l) != 1 || !strings.Contains(l[0], "permission denied") || !strings.Contains(l[0], "failed_scrapes=61") {
		t.Fatalf("10 minutes of the same failure logged %q, want one repeat naming the 61 failed scrapes since the last success", l)
	}
	c.set(nil)
	if v := scrape(); v != 1 {
		t.Fatalf("success %v after recovery", v)
	}
	scrape()
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], "collector recovered") || !strings.Contains(l[0], "failed_scrapes=62") {
		t.Fatalf("recovery logged %q, want one line", l)
	}
	c.set(errors.New("open vault data directory /srv/vaults: permission denied"))
	scrape()
	if l := lines(); len(l) != 1 || !strings.Contains(l[0], "collector failed") {
		t.Fatalf("a failure after recovery logged %q, want it at once", l)
	}
}
