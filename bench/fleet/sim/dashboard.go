package sim

import (
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// DashboardQuery is one panel query of a Grafana dashboard. Instant: the
// target asks for an instant query only (Grafana's "instant" on, "range"
// off: stat, table and bar-gauge panels), which Grafana sends as one
// evaluation at the end of the dashboard's range.
// Step is the step Grafana would send for a range query: the given step,
// or the panel's min interval ("interval") when that is longer.
type DashboardQuery struct {
	Panel, Expr string
	Instant     bool
	Step        time.Duration
}

var grafanaVar = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}?`)

// DashboardQueries returns every panel query of a Grafana dashboard, with
// Grafana's built-in interval variables substituted as Grafana would for
// the given step and range. A dashboard variable it cannot resolve is an
// error, not a silently different query.
func DashboardQueries(path string, step, rng time.Duration) ([]DashboardQuery, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var d struct {
		Panels     []json.RawMessage `json:"panels"`
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Type       string `json:"type"`
				IncludeAll bool   `json:"includeAll"`
				AllValue   string `json:"allValue"`
				Current    struct {
					Value json.RawMessage `json:"value"`
				} `json:"current"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	vars := map[string]string{
		"__range": promDuration(rng), "__range_s": strconv.Itoa(int(rng.Seconds())),
	}
	// Grafana's interval variables for a panel's step; $__rate_interval is
	// max(4 x scrape interval, step + scrape interval).
	setStep := func(step time.Duration) {
		vars["__interval"] = promDuration(step)
		vars["__interval_ms"] = strconv.Itoa(int(step.Milliseconds()))
		vars["__rate_interval"] = promDuration(max(4*15*time.Second, step+15*time.Second))
	}
	// The dashboard's own variables at their saved value: "All" is the
	// variable's allValue (the whole fleet), a saved selection its values.
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			continue
		}
		var vals []string
		if err := json.Unmarshal(v.Current.Value, &vals); err != nil {
			var one string
			if json.Unmarshal(v.Current.Value, &one) == nil && one != "" {
				vals = []string{one}
			}
		}
		switch {
		case len(vals) == 1 && vals[0] == "$__all" && v.IncludeAll && v.AllValue != "":
			vars[v.Name] = v.AllValue
		case len(vals) > 0 && vals[0] != "$__all":
			vars[v.Name] = strings.Join(vals, "|")
		}
	}
	var out []DashboardQuery
	var walk func([]json.RawMessage) error
	walk = func(panels []json.RawMessage) error {
		for _, raw := range panels {
			var p struct {
				Title    string            `json:"title"`
				Interval string            `json:"interval"`
				Panels   []json.RawMessage `json:"panels"`
				Targets  []struct {
					Expr    string `json:"expr"`
					Instant bool   `json:"instant"`
					Range   *bool  `json:"range"`
				} `json:"targets"`
			}
			if err := json.Unmarshal(raw, &p); err != nil {
				return err
			}
			if err := walk(p.Panels); err != nil {
				return err
			}
			pstep := step
			if p.Interval != "" {
				min, err := time.ParseDuration(p.Interval)
				if err != nil || min <= 0 {
					return fmt.Errorf("panel %q: min interval %q: not a duration", p.Title, p.Interval)
				}
				pstep = max(step, min)
			}
			setStep(pstep)
			for _, t := range p.Targets {
				if t.Expr == "" {
					continue
				}
				var bad error
				e := grafanaVar.ReplaceAllStringFunc(t.Expr, func(m string) string {
					name := grafanaVar.FindStringSubmatch(m)[1]
					if v, ok := vars[name]; ok {
						return v
					}
					bad = fmt.Errorf("panel %q: variable $%s has no value here", p.Title, name)
					return m
				})
				if bad != nil {
					return bad
				}
				out = append(out, DashboardQuery{Panel: p.Title, Expr: e, Instant: t.Instant && (t.Range == nil || !*t.Range), Step: pstep})
			}
		}
		return nil
	}
	if err := walk(d.Panels); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: no panel query", path)
	}
	return out, nil
}

func promDuration(d time.Duration) string {
	if d%time.Minute == 0 {
		return strconv.Itoa(int(d/time.Minute)) + "m"
	}
	return strconv.Itoa(int(d/time.Second)) + "s"
}
