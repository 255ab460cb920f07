package alertbridge

import (
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// FuzzDecodePayload feeds arbitrary bodies to the webhook decoder: it must
// never panic, every error must be a 400-class BadRequestError, and every
// accepted payload must yield valid, deterministic spool keys.
// Seeds: testdata/fuzz/FuzzDecodePayload (Alertmanager 0.25 and current
// payloads, pre-0.19 without fingerprints, wrong versions, broken JSON).
func FuzzDecodePayload(f *testing.F) {
	f.Add(mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := DecodePayload(body)
		if err != nil {
			bre, ok := err.(*BadRequestError)
			if !ok || bre.Reason == "" || bre.Msg == "" {
				t.Fatalf("error %v (%T) is not a BadRequestError with reason and message", err, err)
			}
			return
		}
		if p.Version != "4" {
			t.Fatalf("accepted version %q", p.Version)
		}
		recs := p.Records(time.Unix(0, 0))
		again, err := DecodePayload(body)
		if err != nil {
			t.Fatalf("second decode failed: %v", err)
		}
		recs2 := again.Records(time.Unix(0, 0))
		for i, r := range recs {
			if r.Status != "firing" && r.Status != "resolved" {
				t.Fatalf("record status %q", r.Status)
			}
			if r.Fingerprint == "" || len(r.Labels) == 0 || !strings.Contains(r.Key, "|"+r.Status+"|") {
				t.Fatalf("record %+v", r)
			}
			if recs2[i].Key != r.Key {
				t.Fatalf("keys differ between decodes: %q %q", r.Key, recs2[i].Key)
			}
		}
		// Rendering the group never panics and stays within ntfy's limits.
		in := pageInput{p: p, alerts: p.Alerts, fresh: make([]bool, len(p.Alerts))}
		for i, a := range p.Alerts {
			in.fresh[i] = true
			if a.Status == "firing" {
				in.firing = append(in.firing, i)
			}
		}
		for _, prev := range []*groupState{nil, {}} {
			in.prev = prev
			m := renderPage(&NtfyConfig{Priorities: DefaultPriorities(), DefaultPriority: 3, ResolvedPriority: 3}, &in, time.Unix(0, 0))
			if len(m.Body) > NtfyMaxMessageBytes || len(m.Actions) > 3 || len(m.Title) > titleMax {
				t.Fatalf("message body %d bytes, %d actions, title %d bytes", len(m.Body), len(m.Actions), len(m.Title))
			}
			if _, err := fakenotify.ParseActions(actionsHeader(m.Actions)); len(m.Actions) > 0 && err != nil {
				t.Fatalf("actions ntfy would refuse: %v", err)
			}
			h := m.Header("", true)
			for k, vs := range h {
				for _, v := range vs {
					if strings.ContainsAny(v, "\r\n\x00") {
						t.Fatalf("header %s carries a control character: %q", k, v)
					}
				}
			}
		}
	})
}
