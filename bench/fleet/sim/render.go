package sim

import (
	"bufio"
	"io"
	"math"
	"regexp"
	"strconv"
	"time"
)

// AppendText appends POP p's exposition at time t in the Prometheus text
// format (version 0.0.4), as clavis-telemetry serves it: the captured
// families, help texts and series, with the model's values.
func (f *Fleet) AppendText(b []byte, p *POP, t time.Time) []byte {
	ts := float64(t.UnixNano()) / 1e9
	for _, fam := range f.T.Families {
		b = append(b, fam.helpType...)
		for _, s := range fam.Samples {
			b = append(b, s.prefix...)
			b = appendValue(b, f.Value(p, s, fam, ts))
			b = append(b, '\n')
		}
	}
	return b
}

func appendValue(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// ScrapeSeriesNames are the series Prometheus records for every scrape of a
// target, in the order WriteOpenMetrics writes them.
var ScrapeSeriesNames = []string{"up", "scrape_duration_seconds", "scrape_samples_scraped", "scrape_samples_post_metric_relabeling", "scrape_series_added"}

// HistoryOptions select what WriteOpenMetrics writes.
type HistoryOptions struct {
	From, To time.Time
	Step     time.Duration
	// Job is the scrape job's name, added as the job label with instance
	// (the POP's address), pop and region: the labels Prometheus attaches
	// when it scrapes the POP through file_sd.
	Job string
	// Drop removes samples whose name matches (the scrape config's
	// metric_relabel_configs drop rule); Keep, when set, keeps only samples
	// whose name matches.
	Drop, Keep *regexp.Regexp
	// ScrapeSeries adds the series Prometheus records for every scrape
	// (ScrapeSeriesNames), subject to Drop and Keep.
	ScrapeSeries bool
}

// WriteOpenMetrics writes the fleet's history from From to To (inclusive)
// every Step in the OpenMetrics text format, for `promtool tsdb
// create-blocks-from openmetrics`. A POP that is down at a step has up 0
// and no other sample. It returns the number of samples written.
//
// No # TYPE or # HELP line is written: TSDB blocks keep no metadata, and
// without them every sample name (with its _total, _bucket ...) is taken
// as it is.
func (f *Fleet) WriteOpenMetrics(w io.Writer, o HistoryOptions) (int64, error) {
	bw := bufio.NewWriterSize(w, 1<<20)
	if o.Job == "" {
		o.Job = "clavis-pop"
	}
	if o.Step <= 0 {
		o.Step = 15 * time.Second
	}
	// Per POP, the target labels to splice into every sample's braces.
	targetLabels := make([][]byte, len(f.POPs))
	for i, p := range f.POPs {
		targetLabels[i] = []byte(`instance="` + p.Addr.String() + `",job="` + o.Job + `",pop="` + p.Name + `",region="` + p.Region + `"`)
	}
	type sel struct {
		fam *Family
		s   *Sample
		// name and labels split, so target labels can be added.
		name, labels []byte
	}
	var kept []sel
	for _, fam := range f.T.Families {
		for _, s := range fam.Samples {
			if o.Drop != nil && o.Drop.MatchString(s.Name) {
				continue
			}
			if o.Keep != nil && !o.Keep.MatchString(s.Name) {
				continue
			}
			var labels []byte
			if len(s.Labels) > 0 {
				// prefix is name{...} ; keep what is inside the braces.
				labels = s.prefix[len(s.Name)+1 : len(s.prefix)-2]
			}
			kept = append(kept, sel{fam: fam, s: s, name: []byte(s.Name), labels: labels})
		}
	}
	postRelabel := float64(len(kept))
	var scrapeNames [][]byte
	if o.ScrapeSeries {
		for _, n := range ScrapeSeriesNames {
			if (o.Drop == nil || !o.Drop.MatchString(n)) && (o.Keep == nil || o.Keep.MatchString(n)) {
				scrapeNames = append(scrapeNames, []byte(n))
			}
		}
	}
	var n int64
	var buf []byte
	line := func(name, labels []byte, pop int, v, ts float64) {
		buf = append(buf[:0], name...)
		buf = append(buf, '{')
		buf = append(buf, targetLabels[pop]...)
		if len(labels) > 0 {
			buf = append(buf, ',')
			buf = append(buf, labels...)
		}
		buf = append(buf, '}', ' ')
		buf = appendValue(buf, v)
		buf = append(buf, ' ')
		buf = strconv.AppendFloat(buf, ts, 'f', -1, 64)
		buf = append(buf, '\n')
		bw.Write(buf)
		n++
	}
	scraped := float64(f.T.SeriesCount())
	for t := o.From; !t.After(o.To); t = t.Add(o.Step) {
		ts := float64(t.UnixMilli()) / 1e3
		for i, p := range f.POPs {
			down := f.Down(p, t)
			if len(scrapeNames) > 0 {
				vals := []float64{1, 0.004 + 0.002*unit(mix(p.seed^uint64(t.Unix()))), scraped, postRelabel, 0}
				if down {
					vals[0], vals[2], vals[3] = 0, 0, 0
				}
				for _, n := range scrapeNames {
					for j, sn := range ScrapeSeriesNames {
						if sn == string(n) {
							line(n, nil, i, vals[j], ts)
						}
					}
				}
			}
			if down {
				continue
			}
			for _, k := range kept {
				line(k.name, k.labels, i, f.Value(p, k.s, k.fam, ts), ts)
			}
		}
	}
	bw.WriteString("# EOF\n")
	return n, bw.Flush()
}
