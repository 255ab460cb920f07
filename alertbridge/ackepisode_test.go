package alertbridge

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// TestAckBoundToEpisode: an Ack token is for the firing episode of its
// page. After the group resolved, it acknowledges nothing (410), also not
// a later episode of the same group, whose reminders keep coming and whose
// own Ack works; replay stays 409 and another action's use 403.
func TestAckBoundToEpisode(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(newServer(t, ntfy))
		c.Ntfy.RepeatInterval = time.Nanosecond // every unchanged re-send is due
		c.Actions = &ActionsConfig{ExternalURL: "http://ab.example", Secret: []byte("0123456789abcdef"), AlertmanagerURL: "http://127.0.0.1:1"}
	})
	actions := httptest.NewServer(tb.ActionHandler())
	defer actions.Close()
	call := func(u string) int {
		pu, _ := url.Parse(u)
		resp, err := http.Post(actions.URL+pu.RequestURI(), "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	ackOf := func(m fakenotify.Message) string {
		for _, act := range m.Actions {
			if act.Label == "Ack" {
				return act.URL
			}
		}
		t.Fatalf("no Ack on %q", m.Title)
		return ""
	}
	a := mkAlert("PopDown", "fra1", "critical", "firing", t0)
	tb.mustPost(t, mkPayload(a))
	tb.mustPost(t, mkPayload(a)) // a reminder: a second Ack token of the episode
	tb.waitDrained(t, 10*time.Second)
	oldAck1, oldAck2 := ackOf(ntfy.Messages()[0]), ackOf(ntfy.Messages()[1])
	r := a
	r.Status, r.EndsAt = "resolved", t0.Add(time.Minute)
	tb.mustPost(t, mkPayload(r))
	a2 := mkAlert("PopDown", "fra1", "critical", "firing", t0.Add(time.Hour))
	tb.mustPost(t, mkPayload(a2))
	tb.waitDrained(t, 10*time.Second)
	if c := call(oldAck1); c != http.StatusGone {
		t.Errorf("earlier episode's ack on a later episode: %d, want 410", c)
	}
	tb.mustPost(t, mkPayload(a2)) // unchanged: a reminder, not held
	tb.waitDrained(t, 10*time.Second)
	msgs := ntfy.Messages()
	if got := titles(msgs); len(got) != 5 || strings.HasPrefix(got[4], "[ACK]") || !strings.Contains(msgs[4].Message, "(reminder)") {
		t.Fatalf("pages %q: want firing, reminder, resolved, firing, reminder", got)
	}
	r2 := a2
	r2.Status, r2.EndsAt = "resolved", t0.Add(2*time.Hour)
	tb.mustPost(t, mkPayload(r2))
	if c := call(oldAck2); c != http.StatusGone {
		t.Errorf("ack after the resolution: %d, want 410", c)
	}
	a3 := mkAlert("PopDown", "fra1", "critical", "firing", t0.Add(3*time.Hour))
	tb.mustPost(t, mkPayload(a3))
	tb.mustPost(t, mkPayload(a3))
	tb.waitDrained(t, 10*time.Second)
	msgs = ntfy.Messages()
	newAck := ackOf(msgs[len(msgs)-1])
	a2 = a3
	if c := call(strings.Replace(newAck, "/action/ack", "/action/silence", 1)); c != http.StatusForbidden {
		t.Errorf("ack token on silence: %d, want 403", c)
	}
	if c := call(newAck); c != 200 {
		t.Errorf("the episode's own ack: %d, want 200", c)
	}
	if c := call(newAck); c != http.StatusConflict {
		t.Errorf("replayed ack: %d, want 409", c)
	}
	tb.mustPost(t, mkPayload(a2)) // acknowledged now: held
	tb.waitDrained(t, 10*time.Second)
	if got := titles(ntfy.Messages()); len(got) != 9 || got[8] != "[ACK] PopDown fra1" {
		t.Errorf("after the ack: %q", got)
	}
}
