package sim

import (
	"path/filepath"
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
	for _, q := range qs {
		if strings.Contains(q.Expr, "$") {
			t.Errorf("panel %q: variable left in %s", q.Panel, q.Expr)
		}
	}
}
