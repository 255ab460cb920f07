package sim

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// Every query of the shipped fleet dashboard comes out with no variable
// left, the fleet-wide selection where the dashboard saves "All".
func TestDashboardQueriesOfTheFleetDashboard(t *testing.T) {
	path := filepath.Join(e2eutil.RepoRoot(t), "grafana", "dashboards", "clavis-fleet.json")
	qs, err := DashboardQueries(path, 20*time.Second, 6*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if len(qs) < 10 {
		t.Fatalf("%d queries", len(qs))
	}
	kinds := map[string]bool{}
	for _, q := range qs {
		if strings.Contains(q.Expr, "$") {
			t.Errorf("panel %q: variable left in %s", q.Panel, q.Expr)
		}
		kinds[q.Panel+" instant="+strconv.FormatBool(q.Instant)] = true
	}
	// The table of POPs and the stats are instant queries in Grafana, the
	// time series range queries: the benchmark sends each as Grafana does.
	for _, k := range []string{"POPs instant=true", "POPs up instant=true", "CPU utilisation (busiest $topk) instant=false", "Up per POP (least available $topk) instant=false"} {
		if !kinds[k] {
			t.Errorf("no panel query %q in %v", k, kinds)
		}
	}
	// A panel's min interval sets the step when it is longer.
	for _, q := range qs {
		switch q.Panel {
		case "CPU utilisation (busiest $topk)":
			if q.Step != time.Minute {
				t.Errorf("CPU utilisation: step %s, want the panel's 1m", q.Step)
			}
		case "Up per POP (least available $topk)":
			if q.Step != 20*time.Second {
				t.Errorf("Up per POP: step %s, want 20s", q.Step)
			}
		}
	}
}
