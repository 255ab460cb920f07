package e2e

import (
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestFleetDashboardDrawsTheWorstPOPs: at hundreds of POPs a line, row or
// bar per POP is unreadable, so every fleet panel that draws one per POP
// (the POPs table aside, which lists them all) draws the $topk worst (or
// largest) of them. Twelve POPs, p01 best and p12 worst in every metric
// (the highest CPU, fill, 5xx ratio, vaults and traffic, the least memory
// available, the most failed scrapes): through promtool 2.x and 3.x, each
// such panel shows exactly p03..p12 with Top N at its default of 10, and
// the one POP chosen when $pop selects one.
func TestFleetDashboardDrawsTheWorstPOPs(t *testing.T) {
	t.Parallel()
	var fleet dashboard
	for _, d := range loadDashboards(t) {
		if d.Title == "Clavis fleet" {
			fleet = d
		}
	}
	type panelQuery struct{ title, expr string }
	var qs []panelQuery
	for _, p := range fleet.allPanels() {
		for _, tg := range p.Targets {
			perPOP := strings.Contains(tg.LegendFormat, "{{pop}}")
			if p.Type == "table" || !perPOP {
				continue
			}
			if !strings.Contains(tg.Expr, "$topk") {
				t.Errorf("panel %q draws one series per POP without $topk: %s", p.Title, tg.Expr)
				continue
			}
			qs = append(qs, panelQuery{p.Title, tg.Expr})
		}
	}
	if len(qs) < 10 {
		t.Fatalf("%d per-POP panels with $topk, want the 10 time series, the state timeline and the 2 bar gauges", len(qs))
	}

	// The series every query reads, for each POP. Badness i: p01 is the
	// best POP, p12 the worst.
	selector := regexp.MustCompile(`([a-zA-Z_:][a-zA-Z0-9_:]*)\{`)
	metrics := map[string]bool{}
	for _, q := range qs {
		for _, m := range selector.FindAllStringSubmatch(q.expr, -1) {
			metrics[m[1]] = true
		}
	}
	const pops, samples = 12, 61 // 1-minute samples from 0 to 60m
	var b strings.Builder
	b.WriteString("rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n")
	b.WriteString("      - series: 'slo:clavis_http_error_budget:ratio'\n        values: '0.001x60'\n")
	for _, m := range slices.Sorted(maps.Keys(metrics)) {
		for i := 1; i <= pops; i++ {
			var values string
			switch m {
			case "up":
				// Down for the first i minutes of the hour.
				values = fmt.Sprintf("0x%d 1x%d", i-1, samples-1-i)
			case "pop:clavis_memory_available:ratio":
				values = fmt.Sprintf("%gx60", 1-float64(i)/100)
			default:
				values = fmt.Sprintf("%gx60", float64(i)/100)
			}
			fmt.Fprintf(&b, "      - series: '%s{job=\"clavis-pop\",instance=\"p%02d:9745\",pop=\"p%02d\",region=\"eu-west\"}'\n        values: '%s'\n", m, i, i, values)
		}
	}
	b.WriteString("    promql_expr_test:\n")
	for _, q := range qs {
		for _, c := range []struct {
			pop  string
			want []int
		}{
			{".*", []int{3, 4, 5, 6, 7, 8, 9, 10, 11, 12}},
			{"p05", []int{5}},
			{"p01", []int{1}},
		} {
			// At the end of the shown range ($__range is an hour here).
			expr := "count by (pop) (" + substitute(q.expr, c.pop, "1m") + ")"
			fmt.Fprintf(&b, "      # %s, $pop %s\n      - expr: %s\n        eval_time: 60m\n        exp_samples:\n", q.title, c.pop, strconv.Quote(expr))
			for _, i := range c.want {
				fmt.Fprintf(&b, "          - labels: '{pop=\"p%02d\"}'\n            value: 1\n", i)
			}
		}
	}
	path := filepath.Join(t.TempDir(), "fleet_topn_test.yml")
	writeFile(t, path, []byte(b.String()), 0o644)
	for major, promtool := range promtools(t) {
		out, err := exec.Command(promtool, "test", "rules", path).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: the fleet panels do not draw the worst POPs (%v):\n%s", major, err, out)
		}
	}
}
