package main

import (
	"bufio"
	"bytes"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// percentile returns the p-th percentile (0..100) of ds by the nearest-rank
// method; 0 for no data.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	rank = min(max(rank, 1), len(s))
	return s[rank-1]
}

// metricValue sums the samples of family name (any labels) in a text
// exposition; found is false when there is none.
func metricValue(body []byte, name string) (sum float64, found bool) {
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' || !strings.HasPrefix(line, name) {
			continue
		}
		rest := line[len(name):]
		if rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue // a longer name with this prefix
		}
		if rest[0] == '{' {
			end := strings.LastIndexByte(rest, '}')
			if end < 0 {
				continue
			}
			rest = rest[end+1:]
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		sum, found = sum+v, true
	}
	return sum, found
}

// growth is the relative change from the mean of the first third of xs
// (after warm-up) to the mean of the last third.
func growth(xs []float64) float64 {
	if len(xs) < 3 {
		return 0
	}
	k := len(xs) / 3
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	first, last := mean(xs[:k]), mean(xs[len(xs)-k:])
	if first == 0 {
		return 0
	}
	return (last - first) / first
}

// labelledValues returns the samples of family name by the value of label,
// in exposition order.
func labelledValues(body []byte, name, label string) (keys []string, vals map[string]float64) {
	vals = map[string]float64{}
	prefix := name + "{"
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		end := strings.LastIndexByte(line, '}')
		if end < 0 {
			continue
		}
		var key string
		for _, kv := range strings.Split(line[len(prefix):end], ",") {
			k, v, ok := strings.Cut(kv, "=")
			if ok && k == label {
				key = strings.Trim(v, `"`)
			}
		}
		f := strings.Fields(line[end+1:])
		if key == "" || len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		if _, dup := vals[key]; !dup {
			keys = append(keys, key)
		}
		vals[key] = v
	}
	return keys, vals
}
