package collector

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	scrapeDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "scrape", "collector_duration_seconds"),
		"How long a collector took during this scrape.",
		[]string{"collector"}, nil)
	scrapeSuccessDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "scrape", "collector_success"),
		"Whether a collector succeeded during this scrape (1) or failed or timed out (0).",
		[]string{"collector"}, nil)
)

// errStillRunning is reported for a collector whose previous run has not
// finished yet: starting another would pile up goroutines behind a hang.
var errStillRunning = errors.New("previous run has not finished (hung?); skipped")

// Named pairs a collector with its registry name.
type Named struct {
	Name      string
	Collector Collector
}

// Scraper runs collectors concurrently on every scrape. It is a
// prometheus.Collector; a collector that fails or hangs reports success 0
// and never fails or stalls the scrape.
type Scraper struct {
	entries []*scrapeEntry
	timeout time.Duration
	logger  *slog.Logger
}

type scrapeEntry struct {
	Named
	running atomic.Bool
	start   sync.Once
	// The worker goroutine and its metric channel live as long as the
	// scraper: starting goroutines and channels afresh on every scrape cost
	// a tenth of a scrape's CPU (stack growth included).
	requests chan runRequest
	metrics  chan prometheus.Metric // nil marks the end of one run
	gathered chan []prometheus.Metric
}

type runRequest struct {
	ctx  context.Context
	done chan<- runResult
}

// NewScraper returns a scraper for the given collectors, each allowed
// timeout per scrape.
func NewScraper(cs []Named, timeout time.Duration, logger *slog.Logger) *Scraper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Scraper{timeout: timeout, logger: logger}
	for _, c := range cs {
		s.entries = append(s.entries, &scrapeEntry{Named: c})
	}
	return s
}

// Names lists the collectors this scraper runs.
func (s *Scraper) Names() []string {
	out := make([]string, len(s.entries))
	for i, e := range s.entries {
		out[i] = e.Name
	}
	return out
}

// Describe sends nothing: the set of metrics depends on the host, so the
// scraper is an unchecked collector, like node_exporter's.
func (s *Scraper) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (s *Scraper) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for _, e := range s.entries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s.collectOne(e, ch)
		}()
	}
	wg.Wait()
}

type runResult struct {
	metrics []prometheus.Metric
	err     error
}

func (s *Scraper) collectOne(e *scrapeEntry, ch chan<- prometheus.Metric) {
	start := time.Now()
	metrics, err := s.run(e)
	duration := time.Since(start).Seconds()
	success := 1.0
	if err != nil {
		success = 0
		s.logger.Error("collector failed", "collector", e.Name, "duration_seconds", duration, "err", err)
	}
	// Metrics a collector managed to send before failing are still useful:
	// export them next to success 0.
	for _, m := range metrics {
		ch <- m
	}
	ch <- prometheus.MustNewConstMetric(scrapeDurationDesc, prometheus.GaugeValue, duration, e.Name)
	ch <- prometheus.MustNewConstMetric(scrapeSuccessDesc, prometheus.GaugeValue, success, e.Name)
}

// run executes one collector on its worker goroutine, so that a hang cannot
// hold the scrape: after the timeout the scrape returns, the late metrics are
// discarded, and until the hung run ends the collector is skipped.
func (s *Scraper) run(e *scrapeEntry) ([]prometheus.Metric, error) {
	if !e.running.CompareAndSwap(false, true) {
		return nil, errStillRunning
	}
	e.start.Do(e.startWorker)
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	done := make(chan runResult, 1)
	e.requests <- runRequest{ctx: ctx, done: done} // never blocks: one run at a time, buffered
	// The scrape waits on its own timer rather than on ctx, which the
	// deferred cancel ends too.
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	select {
	case r := <-done:
		return r.metrics, r.err
	case <-timer.C:
		return nil, errors.New("timed out after " + s.timeout.String())
	}
}

// startWorker starts the goroutines that run the collector on request and
// gather what it sends.
func (e *scrapeEntry) startWorker() {
	e.requests = make(chan runRequest, 1)
	e.metrics = make(chan prometheus.Metric, 64)
	e.gathered = make(chan []prometheus.Metric)
	go func() {
		var ms []prometheus.Metric
		for m := range e.metrics {
			if m == nil {
				e.gathered <- ms
				ms = make([]prometheus.Metric, 0, cap(ms))
				continue
			}
			ms = append(ms, m)
		}
	}()
	go func() {
		for req := range e.requests {
			err := updateSafely(req.ctx, e.Collector, e.metrics)
			e.metrics <- nil
			r := runResult{metrics: <-e.gathered, err: err}
			// Clear the flag before handing over the result, so a scrape
			// that follows right after this one never sees a finished run
			// as running.
			e.running.Store(false)
			req.done <- r
		}
	}()
}

// updateSafely runs Update and turns a panic into an error: one broken
// collector must not take the exporter down.
func updateSafely(ctx context.Context, c Collector, ch chan<- prometheus.Metric) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError{p}
		}
	}()
	return c.Update(ctx, ch)
}

type panicError struct{ v any }

func (p panicError) Error() string { return "panic: " + fmtAny(p.v) }
