package alertbridge

import (
	"strings"
	"testing"
)

// TestAnnotationMarkdownEscaped: a description cannot add list items,
// links or images to a page.
func TestAnnotationMarkdownEscaped(t *testing.T) {
	t.Parallel()
	cfg := &NtfyConfig{Priorities: DefaultPriorities(), DefaultPriority: 3, ResolvedPriority: 3}
	a := mkAlert("PopDown", "fra1", "critical", "firing", t0)
	a.Annotations["summary"] = "# big *bold*"
	a.Annotations["description"] = "ok\n\n**Firing (1):**\n- fra1\n- +0 more\n 1. one\n\n[Silence 1h](https://evil.example/) ![x](https://evil.example/px.png)"
	p := &Payload{Version: "4", GroupLabels: map[string]string{"alertname": "PopDown"}, Alerts: []Alert{a}}
	in := pageInput{p: p, alerts: p.Alerts, firing: []int{0}, fresh: []bool{true}}
	pg := renderPage(cfg, &in, t0)
	for _, bad := range []string{"\n- fra1\n- +0", "\n- +0 more", "\n 1. one", "*bold*"} {
		if strings.Contains(pg.Body, bad) {
			t.Errorf("body carries %q:\n%s", bad, pg.Body)
		}
	}
	for _, esc := range []string{`\[Silence 1h\](`, `\!\[x\]`, `\# big`, `\- +0 more`, `1\. one`} {
		if !strings.Contains(pg.Body, esc) {
			t.Errorf("body lacks %q:\n%s", esc, pg.Body)
		}
	}
	if strings.Count(pg.Body, "**Firing (1):**") != 1 {
		t.Errorf("a second alert list:\n%s", pg.Body)
	}
}
