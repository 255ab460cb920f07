package alertbridge

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"testing"
)

// TestTruncatedAlertsValidated: a negative count is a bad payload; a huge
// one saturates instead of overflowing.
func TestTruncatedAlertsValidated(t *testing.T) {
	t.Parallel()
	a := mkAlert("PopDown", "fra1", "critical", "firing", t0)
	body := strings.Replace(string(mkPayload(a)), `"truncatedAlerts":0`, `"truncatedAlerts":-3`, 1)
	var bre *BadRequestError
	if _, err := DecodePayload([]byte(body)); !errors.As(err, &bre) || bre.Reason != "invalid" {
		t.Errorf("truncatedAlerts -3: %v", err)
	}
	cfg := &NtfyConfig{Priorities: DefaultPriorities(), DefaultPriority: 3, ResolvedPriority: 3}
	p := &Payload{Version: "4", TruncatedAlerts: math.MaxInt, GroupLabels: map[string]string{"alertname": "PopDown"}, Alerts: []Alert{a}}
	in := pageInput{p: p, alerts: p.Alerts, firing: []int{0}, fresh: []bool{true}}
	pg := renderPage(cfg, &in, t0)
	if pg.Count != math.MaxInt || !strings.HasPrefix(pg.Title, fmt.Sprintf("[FIRING:%d]", math.MaxInt)) {
		t.Errorf("count %d, title %q\n%s", pg.Count, pg.Title, pg.Body)
	}
	if !strings.Contains(pg.Body, fmt.Sprintf("**Firing (%d):**", math.MaxInt)) {
		t.Errorf("list head overflowed:\n%s", pg.Body)
	}
}

// TestTruncatedAlertsOnAResolvedPage: a resolved notification that
// Alertmanager cut (max_alerts) said "Firing (3): +3 more" under
// RESOLVED, as if three alerts still fired; nothing says they do.
func TestTruncatedAlertsOnAResolvedPage(t *testing.T) {
	t.Parallel()
	a := mkAlert("PopDown", "fra1", "critical", "resolved", t0)
	cfg := &NtfyConfig{Priorities: DefaultPriorities(), DefaultPriority: 3, ResolvedPriority: 3}
	p := &Payload{Version: "4", Status: "resolved", TruncatedAlerts: 3, GroupLabels: map[string]string{"alertname": "PopDown"}, Alerts: []Alert{a}}
	in := pageInput{p: p, alerts: p.Alerts, fresh: []bool{true}}
	pg := renderPage(cfg, &in, t0)
	if !strings.HasPrefix(pg.Title, "[RESOLVED:1]") {
		t.Errorf("title %q", pg.Title)
	}
	if strings.Contains(pg.Body, "Firing") || !strings.Contains(pg.Body, "+3 more alerts not sent by Alertmanager (max_alerts)") {
		t.Errorf("body:\n%s", pg.Body)
	}
}
