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
// prometheus.Collector, and NewGatherer turns it into the exporter's
// /metrics source; a collector that fails or hangs reports success 0 and
// never fails or stalls the scrape.
type Scraper struct {
	entries []*scrapeEntry
	timeout time.Duration
	logger  *slog.Logger
}

type scrapeEntry struct {
	Named
	running atomic.Bool
	start   sync.Once
	// The worker goroutine lives as long as the scraper: starting a
	// goroutine afresh on every scrape cost a tenth of a scrape's CPU
	// (stack growth included).
	requests chan runRequest
	// lastCount sizes the next run's batch; only the worker touches it.
	lastCount int
	// The collector's own duration and success series, built once.
	duration, success *series
}

// runRequest asks a worker for one run. done is shared by all collectors
// of one scrape and buffered for all of them, so a worker that finishes
// after its scrape gave up on it never blocks.
type runRequest struct {
	ctx   context.Context
	index int
	done  chan<- runResult
}

type runResult struct {
	index    int
	metrics  []prometheus.Metric
	err      error
	duration time.Duration
}

// NewScraper returns a scraper for the given collectors, each allowed
// timeout per scrape.
func NewScraper(cs []Named, timeout time.Duration, logger *slog.Logger) *Scraper {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Scraper{timeout: timeout, logger: logger}
	for _, c := range cs {
		e := &scrapeEntry{Named: c}
		// Collector names come from Register (code), so the label values
		// are valid; a failure here is a programming error.
		var err error
		if e.duration, err = newSeries(scrapeDurationDesc, c.Name); err != nil {
			panic(err)
		}
		if e.success, err = newSeries(scrapeSuccessDesc, c.Name); err != nil {
			panic(err)
		}
		s.entries = append(s.entries, e)
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
	s.collect(func(m prometheus.Metric) { ch <- m })
}

// collect runs every collector once and hands emit, collector by collector
// in registration order, what each sent followed by its duration and
// success.
func (s *Scraper) collect(emit func(prometheus.Metric)) {
	for i, r := range s.scrape() {
		e := s.entries[i]
		seconds := r.duration.Seconds()
		success := 1.0
		if r.err != nil {
			success = 0
			s.logger.Error("collector failed", "collector", e.Name, "duration_seconds", seconds, "err", r.err)
		}
		// Metrics a collector managed to send before failing are still
		// useful: export them next to success 0.
		for _, m := range r.metrics {
			emit(m)
		}
		emit(e.duration.gauge(seconds))
		emit(e.success.gauge(success))
	}
}

// scrape starts every collector on its worker goroutine and waits for all
// of them, or for the timeout: then the scrape moves on, the late metrics
// are discarded, and until a hung run ends its collector is skipped. The
// collectors start together, so one deadline serves them all.
func (s *Scraper) scrape() []runResult {
	results := make([]runResult, len(s.entries))
	done := make(chan runResult, len(s.entries))
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	start := time.Now()
	pending := 0
	for i, e := range s.entries {
		if !e.running.CompareAndSwap(false, true) {
			results[i].err = errStillRunning
			continue
		}
		e.start.Do(e.startWorker)
		e.requests <- runRequest{ctx: ctx, index: i, done: done} // never blocks: one run at a time, buffered
		results[i].err = errPending
		pending++
	}
	for ; pending > 0; pending-- {
		select {
		case r := <-done:
			results[r.index] = r
		case <-ctx.Done():
			late := time.Since(start)
			for i := range results {
				if results[i].err == errPending {
					results[i] = runResult{err: errors.New("timed out after " + s.timeout.String()), duration: late}
				}
			}
			return results
		}
	}
	return results
}

// errPending marks, within one scrape, a collector that has not answered.
var errPending = errors.New("pending")

// startWorker starts the goroutine that runs the collector on request.
func (e *scrapeEntry) startWorker() {
	e.requests = make(chan runRequest, 1)
	go func() {
		for req := range e.requests {
			start := time.Now()
			b := &Batch{metrics: make([]prometheus.Metric, 0, e.lastCount)}
			err := updateSafely(req.ctx, e.Collector, b)
			e.lastCount = len(b.metrics)
			r := runResult{index: req.index, metrics: b.metrics, err: err, duration: time.Since(start)}
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
func updateSafely(ctx context.Context, c Collector, ch *Batch) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = panicError{p}
		}
	}()
	return c.Update(ctx, ch)
}

type panicError struct{ v any }

func (p panicError) Error() string { return "panic: " + fmtAny(p.v) }
