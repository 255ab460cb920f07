package accesslog

import "time"

// RequestCount is the count of one (method, code, route) combination.
type RequestCount struct {
	Method, Code, Route string
	Count               uint64
}

// Histogram is the request time distribution of one route.
type Histogram struct {
	Route string
	// UpperBounds of the buckets in seconds, and the cumulative count at
	// each (Prometheus' convention); Count is the +Inf bucket.
	UpperBounds []float64
	Cumulative  []uint64
	Count       uint64
	Sum         float64
}

// Snapshot is a consistent copy of a Counter's aggregates. It holds no
// address, path or other content of a line.
type Snapshot struct {
	// Requests lists, for every (method, route) pair seen at least once,
	// every code class, zeros included: a series that exists before its
	// first increment lets rate() and increase() see that increment.
	Requests      []RequestCount
	Durations     []Histogram // routes with at least one timed request
	ResponseBytes uint64
	Lines         map[string]uint64 // by result: parsed, malformed, too_long (always all three)
	// LastLineTimestamp is the time written in the last parsed line (Unix
	// seconds), or when it was read if the line has no time; 0 before any.
	LastLineTimestamp float64
	UniqueIPs24h      uint64
	UniqueIPs1h       uint64
}

// Snapshot copies the aggregates; now is the end of the unique-IP windows.
func (c *Counter) Snapshot(now time.Time) Snapshot {
	// Estimates first, outside c.mu: each merges up to 24 sketches.
	s := Snapshot{
		UniqueIPs24h: c.unique24h.Estimate(now),
		UniqueIPs1h:  c.unique1h.Estimate(now),
		Lines:        make(map[string]uint64, numResults),
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	names := c.classify.names
	for route := range names {
		for m := Method(0); m < numMethods; m++ {
			base := (route*int(numMethods) + int(m)) * int(numCodes)
			counts := c.requests[base : base+int(numCodes)]
			seen := false
			for _, v := range counts {
				if v > 0 {
					seen = true
					break
				}
			}
			if !seen {
				continue
			}
			for code, v := range counts {
				s.Requests = append(s.Requests, RequestCount{
					Method: m.String(), Code: Code(code).String(), Route: names[route], Count: v,
				})
			}
		}
		h := &c.durations[route]
		if h.count == 0 {
			continue
		}
		cum := make([]uint64, len(durationBuckets))
		var acc uint64
		for i := range durationBuckets {
			acc += h.buckets[i]
			cum[i] = acc
		}
		s.Durations = append(s.Durations, Histogram{
			Route: names[route], UpperBounds: append([]float64(nil), durationBuckets[:]...), Cumulative: cum, Count: h.count, Sum: h.sum,
		})
	}
	s.ResponseBytes = c.respBytes
	for r := Result(0); r < numResults; r++ {
		s.Lines[r.String()] = c.lines[r]
	}
	s.LastLineTimestamp = c.lastTime
	return s
}
