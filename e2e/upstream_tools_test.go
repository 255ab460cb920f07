package e2e

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// The central config on the current upstream promtool and amtool (3.16 and
// 0.35, built by tools/build.sh) as well as on Debian's: both Prometheus
// configs (single host and HA) and both Alertmanager configs load.

// checkTools are promtool and amtool of one release line.
type checkTools struct{ name, promtool, amtool string }

func checkToolsets(t *testing.T) []checkTools {
	return []checkTools{
		{"debian", e2eutil.RequireBinary(t, "promtool"), e2eutil.RequireBinary(t, "amtool")},
		{"upstream", e2eutil.Tool(t, "promtool"), e2eutil.Tool(t, "amtool")},
	}
}

func TestCentralConfigOnEveryToolset(t *testing.T) {
	t.Parallel()
	for _, tools := range checkToolsets(t) {
		t.Run(tools.name, func(t *testing.T) {
			t.Parallel()
			// promtool check config also checks that secret files exist;
			// placeholders in a copy, as an operator has the real ones.
			dir := t.TempDir()
			copyDir(t, filepath.Join(e2eutil.RepoRoot(t), "prometheus"), dir)
			for _, f := range []string{"pop-ca.crt", "pop-scrape-password", "alertbridge-ca.crt"} {
				writeFile(t, filepath.Join(dir, "secrets", f), []byte("x\n"), 0o600)
			}
			for _, cfg := range []string{"prometheus.yml", filepath.Join("ha", "prometheus.yml")} {
				out := runTool(t, dir, tools.promtool, "check", "config", cfg)
				if !strings.Contains(out, "SUCCESS: "+cfg+" is valid") {
					t.Errorf("promtool check config %s:\n%s", cfg, out)
				}
			}
			// The rules and their unit tests on both promtools:
			// TestRulesCheckAndUnitTests.
			for _, cfg := range []string{"alertmanager.yml", filepath.Join("ha", "alertmanager.yml")} {
				if out := runTool(t, dir, tools.amtool, "check-config", cfg); !strings.Contains(out, "SUCCESS") {
					t.Errorf("amtool check-config %s:\n%s", cfg, out)
				}
			}
		})
	}
}
