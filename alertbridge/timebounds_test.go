package alertbridge

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// TestStartsAtBounds: a startsAt more than MaxStartsAtAhead ahead of the
// bridge's clock, or a startsAt/endsAt a spool cannot store (it keeps Unix
// nanos: years 1678-2262), is refused with 400 and a clear message; a
// refused far-future resolution cannot keep a genuine firing from paging.
func TestStartsAtBounds(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(newServer(t, ntfy)) })
	now := time.Now().UTC()
	for _, c := range []struct {
		name     string
		a        Alert
		wantCode int
		wantMsg  string
	}{
		{"resolved in 2200", mkAlert("PopDown", "fra1", "critical", "resolved", time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)), 400, "more than 1h0m0s ahead of alertbridge's clock"},
		{"resolved in 2685 (wraps to 2100)", mkAlert("PopDown", "fra1", "critical", "resolved", time.Date(2685, 1, 1, 0, 0, 0, 0, time.UTC)), 400, "startsAt 2685-01-01T00:00:00Z out of range"},
		{"firing in 1600", mkAlert("PopDown", "fra1", "critical", "firing", time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC)), 400, "out of range"},
		{"firing 2h ahead", mkAlert("PopDown", "fra1", "critical", "firing", now.Add(2*time.Hour)), 400, "ahead of alertbridge's clock"},
		{"endsAt in 3000", func() Alert {
			a := mkAlert("PopDown", "ams1", "critical", "resolved", t0)
			a.EndsAt = time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
			return a
		}(), 400, "endsAt 3000-01-01T00:00:00Z out of range"},
	} {
		code, msg := tb.post(t, mkPayload(c.a))
		if code != c.wantCode || !strings.Contains(msg, c.wantMsg) {
			t.Errorf("%s: %d %q, want %d %q", c.name, code, msg, c.wantCode, c.wantMsg)
		}
	}
	// Clock skew within the bound is fine.
	tb.mustPost(t, mkPayload(mkAlert("Skewed", "fra1", "critical", "firing", now.Add(30*time.Minute))))
	// The genuine episode pages.
	code, msg := tb.post(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", now)))
	if code != 200 || !strings.Contains(msg, "1 accepted, 0 duplicate, 0 stale") {
		t.Fatalf("genuine firing: %d %q", code, msg)
	}
	tb.waitDrained(t, 10*time.Second)
	if got := fmt.Sprint(titles(ntfy.Messages())); !strings.Contains(got, "[FIRING:1] PopDown fra1") {
		t.Errorf("pages %s, want the genuine firing", got)
	}
}

// TestResolvedForgottenByAcceptance: a resolution is remembered for the
// dedup retention from when it was accepted, not from its startsAt: a
// long episode's late HA copy stays dropped; after the retention, a new
// firing pages.
func TestResolvedForgottenByAcceptance(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(newServer(t, ntfy)) })
	now := time.Now()
	started := now.Add(-10 * 24 * time.Hour) // a ten-day episode, resolved now
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "resolved", started)))
	if _, err := tb.spool.ForgetKeys(now.Add(-7 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	code, msg := tb.post(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", started)))
	if code != 200 || !strings.Contains(msg, "1 stale") {
		t.Errorf("late firing copy of the resolved episode: %d %q, want it stale", code, msg)
	}
	if _, err := tb.spool.ForgetKeys(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	code, msg = tb.post(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", started.Add(time.Second))))
	if code != 200 || !strings.Contains(msg, "1 accepted") {
		t.Errorf("firing after the resolution was forgotten: %d %q, want it accepted", code, msg)
	}
}

// TestResolvedOldFormat: a spool written before acceptance times were kept
// holds 8-byte resolutions (startsAt alone) for the bridge and RFC 3339
// strings for Kuma. They are still read and honoured, except one whose
// startsAt is implausibly far ahead (spooled before intake refused those):
// it no longer keeps the fingerprint's genuine firings from paging or
// setting Kuma down, and is deleted.
func TestResolvedOldFormat(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "spool.db")
	poisoned := mkAlert("PopDown", "fra1", "critical", "firing", time.Now().UTC().Truncate(time.Second))
	legit := mkAlert("PopDown", "ams1", "critical", "firing", time.Now().Add(-2*time.Hour).UTC().Truncate(time.Second))
	sp, _, err := OpenSpool(path, []string{TargetNtfy, TargetKuma})
	if err != nil {
		t.Fatal(err)
	}
	future := time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
	err = sp.commit(func(tx *bolt.Tx) error {
		old := func(t time.Time) []byte { return binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())) }
		rb, kb := tx.Bucket(bucketResolved), tx.Bucket(bucketKumaResolved)
		for _, e := range []struct {
			fp string
			at time.Time
		}{{poisoned.Fingerprint, future}, {legit.Fingerprint, legit.StartsAt.Add(time.Hour)}} {
			if err := rb.Put([]byte(e.fp), old(e.at)); err != nil {
				return err
			}
			if err := kb.Put([]byte(e.fp), []byte(e.at.Format(time.RFC3339Nano))); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sp.Close()

	ntfy := newNtfy(fakenotify.NtfyOptions{})
	kuma := fakenotify.NewKuma("pushtok")
	fs := newServer(t, fakenotify.Mux(ntfy, kuma))
	tb := startBridge(t, path, func(c *Config) {
		c.Ntfy = ntfyTo(fs)
		c.Kuma = &KumaConfig{PushURL: fs.URL() + "/api/push/pushtok"}
	})
	code, msg := tb.post(t, mkPayload(legit))
	if code != 200 || !strings.Contains(msg, "1 stale") {
		t.Errorf("firing older than an old-format resolution: %d %q, want stale", code, msg)
	}
	code, msg = tb.post(t, mkPayload(poisoned))
	if code != 200 || !strings.Contains(msg, "1 accepted, 0 duplicate, 0 stale") {
		t.Errorf("genuine firing after a far-future old-format resolution: %d %q, want accepted", code, msg)
	}
	tb.waitDrained(t, 10*time.Second)
	if got := fmt.Sprint(titles(ntfy.Messages())); got != "[[FIRING:1] PopDown fra1]" {
		t.Errorf("pages %s, want only fra1's firing", got)
	}
	waitFor(t, 10*time.Second, "Kuma down for fra1", func() bool {
		p, ok := kuma.Last()
		return ok && p.Status == "down" && p.Msg == "PopDown fra1"
	})
	if _, err := tb.spool.ForgetKeys(time.Now().Add(-7 * 24 * time.Hour)); err != nil {
		t.Fatal(err)
	}
	tb.spool.view(func(tx *bolt.Tx) error {
		rb := tx.Bucket(bucketResolved)
		if rb.Get([]byte(poisoned.Fingerprint)) != nil {
			t.Errorf("far-future old-format resolution not forgotten")
		}
		if rb.Get([]byte(legit.Fingerprint)) == nil {
			t.Errorf("plausible old-format resolution forgotten before its time")
		}
		return nil
	})
}

// TestKumaResolvedSurvivesRestart: the Kuma worker's resolutions, saved
// with their acceptance time, are read back after a restart, so a late
// firing copy still does not set Kuma down.
func TestKumaResolvedSurvivesRestart(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "spool.db")
	kuma := fakenotify.NewKuma("pushtok")
	fs := newServer(t, kuma)
	mod := func(c *Config) { c.Kuma = &KumaConfig{PushURL: fs.URL() + "/api/push/pushtok"} }
	tb := startBridge(t, path, mod)
	a := mkAlert("PopDown", "fra1", "critical", "resolved", t0)
	tb.mustPost(t, mkPayload(a))
	waitFor(t, 10*time.Second, "kuma queue drained", func() bool { return tb.counter("clavis_alertbridge_spool_depth", "target", "kuma") == 0 })
	tb.stop()
	st, err := func() (*kumaState, error) {
		sp, _, err := OpenSpool(path, []string{TargetKuma})
		if err != nil {
			return nil, err
		}
		defer sp.Close()
		return sp.loadKumaState()
	}()
	if err != nil {
		t.Fatal(err)
	}
	if r, ok := st.Resolved[a.Fingerprint]; !ok || !r.StartsAt.Equal(t0) || time.Since(r.Accepted) > time.Minute {
		t.Fatalf("resolution read back as %+v %v", r, ok)
	}
}

// TestInvalidAlertLeavesTheOthers: one alert whose startsAt a sender put
// hours ahead (a time zone taken for UTC) refused its whole notification,
// on every retry: the valid alerts of its group never paged. It is left
// out, loudly; the others are taken.
func TestInvalidAlertLeavesTheOthers(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) { c.Ntfy = ntfyTo(ns) })
	now := time.Now()
	good := mkAlert("PopDown", "fra1", "critical", "firing", now.Add(-time.Minute))
	bad := mkAlert("PopDown", "ams1", "critical", "firing", now.Add(2*time.Hour))
	code, msg := tb.post(t, mkPayload(good, bad))
	if code != 200 || !strings.Contains(msg, "1 accepted") || !strings.Contains(msg, "1 refused") || !strings.Contains(msg, "alert 1: startsAt") {
		t.Fatalf("webhook answered %d %q", code, msg)
	}
	tb.waitDrained(t, 15*time.Second)
	msgs := ntfy.Messages()
	if len(msgs) != 1 || !strings.Contains(msgs[0].Message, "fra1") || strings.Contains(msgs[0].Message, "ams1") {
		t.Fatalf("pages %+v", msgs)
	}
	if n := tb.counter("clavis_alertbridge_alerts_refused_total"); n != 1 {
		t.Errorf("alerts_refused_total %v", n)
	}
	if !strings.Contains(tb.log.String(), "ALERTS REFUSED") {
		t.Error("not logged")
	}
	// A notification with no valid alert is still refused whole.
	if code, msg := tb.post(t, mkPayload(bad)); code != 400 || !strings.Contains(msg, "ahead of alertbridge's clock") {
		t.Errorf("all invalid: %d %q", code, msg)
	}
}
