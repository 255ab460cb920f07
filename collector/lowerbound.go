//go:build lowerbound

package collector

import (
	"cmp"
	"context"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// This file is benchmark-only: no edition builds it (the lowerbound tag is
// set by bench/exporter.sh alone). It answers /metrics with the exporter's
// own collectors and nothing else the exporter does for a scrape, so the
// benchmark can show what serving these collectors costs at the very least
// with this code, and how much of #2's CPU budget that leaves for the rest.
//
// Left out on purpose, each of which the exporter needs: a goroutine and a
// timeout per collector, the duration and success series, sorting, the
// Gatherer's consistency checks, the privacy gate, content negotiation and
// byte-exact exposition. Collectors run one after the other on the request's
// goroutine; a collector's samples are grouped by family (the filesystem
// collector sends them mount by mount), in the order the families first
// appeared; each series' "name{labels} " and each family's HELP/TYPE lines
// are rendered once and reused.

// LowerBoundHandler serves the system collectors of s that way. It supports
// only collectors whose samples come from series (the system collectors).
//
// With concurrent set, the collectors run as the exporter runs them, which
// issue 2 asks for: each on its own goroutine under the scrape's timeout,
// followed by its duration and success series (Scraper.collect). All else
// stays left out. The difference between the two is what that machinery
// costs on its own.
func LowerBoundHandler(s *Scraper, concurrent bool) http.Handler {
	return &lowerBound{scraper: s, concurrent: concurrent, prefixes: map[*series][]byte{}, headers: map[*prometheus.Desc][]byte{}, rank: map[*prometheus.Desc]int{}}
}

type lowerBound struct {
	scraper    *Scraper
	concurrent bool

	mu       sync.Mutex
	batch    Batch
	buf      []byte
	prefixes map[*series][]byte
	headers  map[*prometheus.Desc][]byte
	rank     map[*prometheus.Desc]int // order of first appearance
}

func (h *lowerBound) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, err := h.render(r.Context())
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	_, _ = w.Write(b)
}

func (h *lowerBound) render(ctx context.Context) ([]byte, error) {
	b := h.buf[:0]
	var err error
	if h.concurrent {
		h.batch.metrics = h.batch.metrics[:0]
		h.scraper.collect(func(m prometheus.Metric) { h.batch.metrics = append(h.batch.metrics, m) })
		if b, err = h.appendBatch(b, "scraper"); err != nil {
			return nil, err
		}
		h.buf = b
		return b, nil
	}
	for _, e := range h.scraper.entries {
		h.batch.metrics = h.batch.metrics[:0]
		if err := e.Collector.Update(ctx, &h.batch); err != nil {
			return nil, fmt.Errorf("collector %s: %w", e.Name, err)
		}
		if b, err = h.appendBatch(b, e.Name); err != nil {
			return nil, err
		}
	}
	h.buf = b
	return b, nil
}

// appendBatch appends the samples of h.batch, grouped by family.
func (h *lowerBound) appendBatch(b []byte, source string) ([]byte, error) {
	// Grouped already when every change of family goes to a family ranked
	// later (families are ranked by first appearance).
	grouped, prev := true, -1
	var last *prometheus.Desc
	for _, m := range h.batch.metrics {
		s, ok := m.(*sample)
		if !ok {
			return nil, fmt.Errorf("%s: %T is not a series sample", source, m)
		}
		if d := s.series.desc; d != last {
			r, seen := h.rank[d]
			if !seen {
				r = len(h.rank)
				h.rank[d] = r
			}
			grouped = grouped && r > prev
			prev, last = r, d
		}
	}
	if !grouped {
		slices.SortStableFunc(h.batch.metrics, func(a, b prometheus.Metric) int {
			return cmp.Compare(h.rank[a.Desc()], h.rank[b.Desc()])
		})
	}
	last = nil
	for _, m := range h.batch.metrics {
		s := m.(*sample)
		if d := s.series.desc; d != last {
			last = d
			hdr, err := h.header(d, s.isCounter)
			if err != nil {
				return nil, err
			}
			b = append(b, hdr...)
		}
		b = append(b, h.prefix(s.series)...)
		b = strconv.AppendFloat(b, s.value, 'g', -1, 64)
		b = append(b, '\n')
	}
	return b, nil
}

func (h *lowerBound) header(d *prometheus.Desc, counter bool) ([]byte, error) {
	if hdr, ok := h.headers[d]; ok {
		return hdr, nil
	}
	meta := parseDesc(d)
	if meta.err != nil {
		return nil, meta.err
	}
	typ := "gauge"
	if counter {
		typ = "counter"
	}
	help := strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(meta.help)
	hdr := []byte("# HELP " + meta.name + " " + help + "\n# TYPE " + meta.name + " " + typ + "\n")
	h.headers[d] = hdr
	return hdr, nil
}

func (h *lowerBound) prefix(s *series) []byte {
	if p, ok := h.prefixes[s]; ok {
		return p
	}
	p := []byte(parseDesc(s.desc).name)
	for i, l := range s.labels {
		if i == 0 {
			p = append(p, '{')
		} else {
			p = append(p, ',')
		}
		p = append(p, l.GetName()...)
		p = append(p, '=')
		p = strconv.AppendQuote(p, l.GetValue())
	}
	if len(s.labels) > 0 {
		p = append(p, '}')
	}
	p = append(p, ' ')
	h.prefixes[s] = p
	return p
}
