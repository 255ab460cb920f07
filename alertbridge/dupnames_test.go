package alertbridge

import (
	"fmt"
	"strings"
	"testing"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// TestDuplicateNames: an object that names a member twice is refused with
// 400 (encoding/json would keep the last: a second "alerts" array drops
// the first one's alerts, a second "status" hides a bogus first one), and
// nothing of it is spooled. The same name in different objects is fine.
func TestDuplicateNames(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(newServer(t, ntfy)) })
	alert := func(pop, extra string) string {
		return `{"status":"firing","labels":{"alertname":"PopDown","pop":"` + pop + `"` + extra + `},"startsAt":"2026-11-29T01:00:00Z","fingerprint":"fp` + pop + `"}`
	}
	head := `{"version":"4","groupKey":"g","receiver":"r",`
	for name, body := range map[string]string{
		"two alerts arrays":  head + `"status":"firing","alerts":[` + alert("ams1", "") + `],"alerts":[` + alert("fra1", "") + `]}`,
		"status twice":       head + `"status":"bogus","status":"firing","alerts":[]}`,
		"label twice":        head + `"status":"firing","alerts":[` + alert("fra1", `,"pop":"ams1"`) + `]}`,
		"alert field twice":  head + `"status":"firing","alerts":[{"status":"resolved","status":"firing","labels":{"a":"b"},"startsAt":"2026-11-29T01:00:00Z"}]}`,
		"many labels, twice": head + `"status":"firing","alerts":[` + alert("fra1", strings.Repeat(`,"l1":"v"`, 1)+`,"l2":"","l3":"","l4":"","l5":"","l6":"","l7":"","l8":"","l9":"","la":"","lb":"","lc":"","ld":"","le":"","lf":"","lg":"","lh":"","l1":"again"`) + `]}`,
	} {
		code, msg := tb.post(t, []byte(body))
		if code != 400 || !strings.Contains(msg, "invalid JSON: duplicate object member name") {
			t.Errorf("%s: %d %q, want 400 naming the duplicate", name, code, msg)
		}
	}
	if d := tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy"); d != 0 {
		t.Errorf("spool depth %v after refused payloads", d)
	}
	ok := head + `"status":"firing","groupLabels":{"alertname":"PopDown"},"commonLabels":{"alertname":"PopDown"},"alerts":[` + alert("ams1", "") + `,` + alert("fra1", "") + `]}`
	code, msg := tb.post(t, []byte(ok))
	if code != 200 || !strings.Contains(msg, "2 accepted") {
		t.Errorf("same names in different objects: %d %q", code, msg)
	}
}

// TestDuplicateNamesCaseFolded: encoding/json fills a struct field from
// any member whose name matches it case-insensitively (with Unicode
// simple folding: "ſ" is "s", the Kelvin sign is "k"), so in the payload
// and in each alert, names that differ only in case are duplicates too:
// "Alerts":[…],"alerts":[] would accept 0 alerts. Labels, annotations and
// the common/group maps are maps: "a" and "A" are two keys there.
func TestDuplicateNamesCaseFolded(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(newServer(t, ntfy)) })
	alert := func(pop, extra string) string {
		return `{"status":"firing","labels":{"alertname":"PopDown","pop":"` + pop + `"` + extra + `},"startsAt":"2026-11-29T01:00:00Z","fingerprint":"fp` + pop + `"}`
	}
	head := `{"version":"4","groupKey":"g","receiver":"r",`
	var many strings.Builder
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&many, `"x%d":1,`, i)
	}
	for name, body := range map[string]string{
		"Alerts then alerts":      head + `"status":"firing","Alerts":[` + alert("ams1", "") + `],"alerts":[]}`,
		"alerts then ALERTS":      head + `"status":"firing","alerts":[` + alert("ams1", "") + `],"ALERTS":[]}`,
		"Status then status":      head + `"Status":"bogus","status":"firing","alerts":[]}`,
		"long s in status":        head + `"status":"bogus","ſtatus":"firing","alerts":[]}`,
		"Kelvin sign in groupKey": head + `"status":"firing","group\u212aey":"other","alerts":[]}`,
		"after many names":        head + many.String() + `"status":"firing","alerts":[` + alert("ams1", "") + `],"aLeRtS":[]}`,
		"alert Status twice":      head + `"status":"firing","alerts":[{"Status":"resolved","status":"firing","labels":{"a":"b"},"startsAt":"2026-11-29T01:00:00Z"}]}`,
		"alert Labels twice":      head + `"status":"firing","alerts":[{"status":"firing","Labels":{"alertname":"A"},"labels":{"alertname":"B"},"startsAt":"2026-11-29T01:00:00Z"}]}`,
		"second alert":            head + `"status":"firing","alerts":[` + alert("ams1", "") + `,{"status":"firing","labels":{"a":"b"},"startsAt":"2026-11-29T01:00:00Z","fingerprint":"x","FINGERPRINT":"y"}]}`,
	} {
		code, msg := tb.post(t, []byte(body))
		if code != 400 || !strings.Contains(msg, "invalid JSON: duplicate object member name") || !strings.Contains(msg, "case-insensitively") {
			t.Errorf("%s: %d %q, want 400 naming the duplicate", name, code, msg)
		}
	}
	if d := tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy"); d != 0 {
		t.Errorf("spool depth %v after refused payloads", d)
	}
	// Map keys stay case-sensitive; an unknown member's object is no field.
	ok := head + `"status":"firing","commonLabels":{"alertname":"PopDown","a":"1","A":"2"},"groupLabels":{"g":"1","G":"2"},"commonAnnotations":{"s":"1","S":"2"},"extra":{"k":1,"K":2},` +
		`"alerts":[` + alert("ams1", `,"a":"1","A":"2"`) + `,{"status":"firing","labels":{"alertname":"PopDown","pop":"fra1"},"annotations":{"summary":"x","Summary":"y"},"startsAt":"2026-11-29T01:00:00Z","fingerprint":"fpfra1"}]}`
	code, msg := tb.post(t, []byte(ok))
	if code != 200 || !strings.Contains(msg, "2 accepted") {
		t.Errorf("keys differing in case in maps: %d %q", code, msg)
	}
}
