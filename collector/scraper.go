package collector

import (
	"context"
	"errors"
	"fmt"
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
// prometheus.Collector, registered in the POP's prometheus.Registry; a
// collector that fails or hangs reports success 0 and never fails or
// stalls the scrape.
type Scraper struct {
	entries []*scrapeEntry
	timeout time.Duration
	logger  *slog.Logger
	now     func() time.Time // the failure log's clock; tests set it
}

// failureLogRepeat is how often a collector that keeps failing with the
// same error is logged again. A failure lasts until an operator acts (a
// missing vault directory, a log not yet created): one line at every
// scrape, 240 an hour at 15 s and more with two Prometheus replicas,
// buries everything else in the journal, while
// clavis_scrape_collector_success says it at every scrape anyway.
const failureLogRepeat = 10 * time.Minute

type scrapeEntry struct {
	Named
	// running is set while a run of the collector is in flight, including
	// one a scrape gave up on.
	running atomic.Bool

	// The failure log's state: scrapes may run concurrently.
	logMu      sync.Mutex
	lastErr    string    // the error last logged; "" while the collector succeeds
	lastLogged time.Time // when it was logged
	unlogged   int       // failures with that error since
	failures   int       // failed scrapes since the last success
}

type runResult struct {
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
	s := &Scraper{timeout: timeout, logger: logger, now: time.Now}
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

// Collect implements prometheus.Collector: it runs every collector once and
// sends, collector by collector, what each sent followed by its duration and
// success.
func (s *Scraper) Collect(ch chan<- prometheus.Metric) {
	for i, r := range s.scrape() {
		e := s.entries[i]
		seconds := r.duration.Seconds()
		success := 1.0
		if r.err != nil {
			success = 0
		}
		s.logOutcome(e, r.err, seconds)
		// Metrics a collector managed to send before failing are still
		// useful: export them next to success 0.
		for _, m := range r.metrics {
			ch <- m
		}
		ch <- prometheus.MustNewConstMetric(scrapeDurationDesc, prometheus.GaugeValue, seconds, e.Name)
		ch <- prometheus.MustNewConstMetric(scrapeSuccessDesc, prometheus.GaugeValue, success, e.Name)
	}
}

// logOutcome logs a collector's failure when it starts, when its error
// changes and every failureLogRepeat while it lasts (saying how many
// failed scrapes went unlogged), and its recovery once.
func (s *Scraper) logOutcome(e *scrapeEntry, err error, seconds float64) {
	e.logMu.Lock()
	defer e.logMu.Unlock()
	if err == nil {
		if e.lastErr != "" {
			s.logger.Info("collector recovered", "collector", e.Name, "failed_scrapes", e.failures)
		}
		e.lastErr, e.unlogged, e.failures = "", 0, 0
		return
	}
	e.failures++
	now, msg := s.now(), err.Error()
	if msg == e.lastErr && now.Sub(e.lastLogged) < failureLogRepeat {
		e.unlogged++
		return
	}
	attrs := []any{"collector", e.Name, "duration_seconds", seconds, "err", err}
	if msg == e.lastErr {
		attrs = append(attrs, "failed_scrapes", e.failures, "unlogged_since_last_line", e.unlogged)
	}
	s.logger.Error("collector failed", attrs...)
	e.lastErr, e.lastLogged, e.unlogged = msg, now, 0
}

// scrape starts every collector on a goroutine of its own and waits for all
// of them, or for the timeout: then the scrape moves on, the late metrics
// are discarded, and until a hung run ends its collector is skipped. The
// collectors start together, so one deadline serves them all.
func (s *Scraper) scrape() []runResult {
	results := make([]runResult, len(s.entries))
	type indexed struct {
		i int
		r runResult
	}
	// Buffered for every collector, so a run that ends after its scrape
	// gave up on it never blocks.
	done := make(chan indexed, len(s.entries))
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	start := time.Now()
	pending := make([]bool, len(s.entries))
	waiting := 0
	for i, e := range s.entries {
		if !e.running.CompareAndSwap(false, true) {
			results[i].err = errStillRunning
			continue
		}
		pending[i] = true
		waiting++
		go func() {
			r := run(ctx, e.Collector)
			// Clear the flag before handing over the result, so a scrape
			// that follows right after this one never sees a finished run
			// as running.
			e.running.Store(false)
			done <- indexed{i, r}
		}()
	}
	for waiting > 0 {
		select {
		case d := <-done:
			results[d.i] = d.r
			pending[d.i] = false
			waiting--
		case <-ctx.Done():
			late := time.Since(start)
			for i := range results {
				if pending[i] {
					results[i] = runResult{err: errors.New("timed out after " + s.timeout.String()), duration: late}
				}
			}
			return results
		}
	}
	return results
}

// run calls Update once, collecting what it sends. A panic becomes an
// error: one broken collector must not take the exporter down.
func run(ctx context.Context, c Collector) (r runResult) {
	ch := make(chan prometheus.Metric, 64)
	drained := make(chan []prometheus.Metric)
	go func() {
		var ms []prometheus.Metric
		for m := range ch {
			ms = append(ms, m)
		}
		drained <- ms
	}()
	start := time.Now()
	func() {
		defer func() {
			if p := recover(); p != nil {
				r.err = fmt.Errorf("panic: %v", p)
			}
		}()
		r.err = c.Update(ctx, ch)
	}()
	close(ch)
	r.metrics = <-drained
	r.duration = time.Since(start)
	return r
}
