package alertbridge

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// KumaConfig configures the Uptime Kuma push target.
type KumaConfig struct {
	// PushURL is the monitor's push URL, https://kuma/api/push/<token>
	// (any status/msg/ping query parameters are replaced on each push).
	PushURL string
	// DownSeverities are the severity label values that make a firing
	// alert an outage (default: critical).
	DownSeverities []string
	// ConfigErrorBackoff is how long to wait after a 404 (unknown push
	// token) before trying again.
	ConfigErrorBackoff time.Duration
}

// kumaMsgMax bounds the msg parameter: Kuma shows it in a list.
const kumaMsgMax = 200

// apply folds one record into the outage state.
func (st *kumaState) apply(r *Record, down map[string]bool) {
	fp := r.Fingerprint
	switch r.Status {
	case "firing":
		if t, ok := st.Resolved[fp]; ok && !r.StartsAt.After(t) {
			return // a late copy of an episode already resolved
		}
		if down[r.Labels["severity"]] {
			st.dirty[fp] = true
			name := r.Alertname()
			if pop := r.Labels["pop"]; pop != "" {
				name += " " + pop
			}
			st.setFiring(fp, kumaAlert{Name: name, StartsAt: r.StartsAt})
		}
	case "resolved":
		st.dirty[fp] = true
		if cur, ok := st.Firing[fp]; ok && !cur.StartsAt.After(r.StartsAt) {
			st.delFiring(fp)
		}
		if t, ok := st.Resolved[fp]; !ok || r.StartsAt.After(t) {
			st.Resolved[fp] = r.StartsAt
		}
	}
}

// setFiring and delFiring keep names (outage name -> number of firing
// alerts with it) in step with Firing, so a summary does not rescan.
func (st *kumaState) setFiring(fp string, a kumaAlert) {
	if old, ok := st.Firing[fp]; ok {
		st.unname(old.Name)
	}
	st.Firing[fp] = a
	st.names[a.Name]++
}

func (st *kumaState) delFiring(fp string) {
	if old, ok := st.Firing[fp]; ok {
		st.unname(old.Name)
		delete(st.Firing, fp)
	}
}

func (st *kumaState) unname(n string) {
	if st.names[n] <= 1 {
		delete(st.names, n)
	} else {
		st.names[n]--
	}
}

// summary is the push Kuma should show: up/OK, or down with the first
// outage names in order and how many more there are.
func (st *kumaState) summary() (status, msg string) {
	if len(st.names) == 0 {
		return "up", "OK"
	}
	// The smallest few names, without sorting them all (a flood of
	// thousands of outages must not make every batch O(n log n)).
	const keep = 32
	first := make([]string, 0, keep+1)
	for n := range st.names {
		if len(first) == keep && n >= first[keep-1] {
			continue
		}
		i := sort.SearchStrings(first, n)
		first = append(first, "")
		copy(first[i+1:], first[i:])
		first[i] = n
		if len(first) > keep {
			first = first[:keep]
		}
	}
	total := len(st.names)
	var b strings.Builder
	for i, n := range first {
		sep := ""
		if i > 0 {
			sep = ", "
		}
		rest := total - i - 1
		more := ""
		if rest > 0 {
			more = " (+" + itoa(rest) + " more)"
		}
		if i > 0 && b.Len()+len(sep)+len(n)+len(more) > kumaMsgMax {
			b.WriteString(" (+" + itoa(total-i) + " more)")
			return "down", TruncateUTF8(b.String(), kumaMsgMax)
		}
		b.WriteString(sep + n)
	}
	if total > len(first) {
		b.WriteString(" (+" + itoa(total-len(first)) + " more)")
	}
	return "down", TruncateUTF8(b.String(), kumaMsgMax)
}

func itoa(n int) string { return strconv.Itoa(n) }

// kumaWorker drains the Kuma queue in batches: it folds the queued records
// into the outage state and pushes when the state (status or message)
// changed or a Watchdog notification arrived; the records and the new state
// are committed together only after Kuma answered.
func (b *Bridge) kumaWorker(ctx context.Context) {
	st, err := b.spool.loadKumaState()
	if err != nil {
		b.log.Error("kuma state unreadable; starting from an empty state", "err", err)
		st = newKumaState()
	}
	lastGC := time.Time{}
	down := map[string]bool{}
	for _, s := range b.cfg.Kuma.DownSeverities {
		down[s] = true
	}
	for {
		items, ok := b.nextQueued(ctx, TargetKuma, 500)
		if !ok {
			return
		}
		// st is changed in place: if the push or the commit does not
		// happen, the worker returns and the next start reloads the
		// committed state and replays the same records.
		next := st
		heartbeat := false
		var oldest time.Time
		seqs := make([]uint64, 0, len(items))
		for _, it := range items {
			seqs = append(seqs, it.Seq)
			r := &it.Record
			if r.Key == "" {
				continue
			}
			stale := time.Since(r.Accepted) > b.cfg.MaxAge
			if r.Alertname() == b.cfg.WatchdogAlertname {
				if stale {
					b.m.dropped.WithLabelValues(TargetKuma).Inc()
				} else if r.Status == "firing" {
					heartbeat = true
					if oldest.IsZero() {
						oldest = r.Accepted
					}
				}
				continue
			}
			// Outage state is applied even from old records, so Kuma never
			// stays down for an outage whose resolution was delayed.
			next.apply(r, down)
			if oldest.IsZero() && !stale {
				oldest = r.Accepted
			}
		}
		if time.Since(lastGC) > time.Hour {
			lastGC = time.Now()
			cutoff := lastGC.Add(-b.cfg.DedupRetention)
			for fp, t := range next.Resolved {
				if t.Before(cutoff) {
					delete(next.Resolved, fp)
					next.dirty[fp] = true
				}
			}
		}
		status, msg := next.summary()
		if heartbeat || status != st.LastStatus || msg != st.LastMsg {
			err := b.pushKuma(ctx, status, msg)
			if ctx.Err() != nil {
				return
			}
			if err == nil {
				next.LastStatus, next.LastMsg = status, msg
				b.m.sent.WithLabelValues(TargetKuma).Inc()
				if !oldest.IsZero() {
					b.m.duration.WithLabelValues(TargetKuma).Observe(time.Since(oldest).Seconds())
				}
				b.log.Info("kuma push", "status", status, "msg", msg, "heartbeat", heartbeat)
			} else {
				b.m.failed.WithLabelValues(TargetKuma).Inc()
				b.log.Error("kuma push failed permanently", "status", status, "err", err)
			}
		}
		for {
			err := b.spool.Done(TargetKuma, seqs, next.save)
			if err == nil {
				break
			}
			b.log.Error("spool update failed; retrying", "target", TargetKuma, "err", err)
			if sleep(ctx, time.Second) != nil {
				return
			}
		}
		clear(st.dirty)
	}
}

// pushKuma sends one push, retrying 429/5xx/network errors with backoff and
// a 404 (unknown push token: a configuration error) slowly, until Kuma
// answers 2xx, a permanent error, or shutdown.
func (b *Bridge) pushKuma(ctx context.Context, status, msg string) error {
	u, err := url.Parse(b.cfg.Kuma.PushURL)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("status", status)
	q.Set("msg", msg)
	q.Set("ping", "")
	u.RawQuery = q.Encode()
	for attempt := 0; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
		req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
		if err != nil {
			cancel()
			return err
		}
		err = do(b.client, req)
		cancel()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var se *sendError
		if !errors.As(err, &se) {
			return err
		}
		var wait time.Duration
		switch {
		case se.status == http.StatusNotFound:
			b.m.kumaConfigErr.Inc()
			wait = b.cfg.Kuma.ConfigErrorBackoff
			b.log.Error("KUMA CONFIGURATION ERROR: push token unknown to Uptime Kuma (404); check --kuma.push-url / KUMA_PUSH_URL and that the push monitor exists and is active",
				"response", se.body, "retry_in", wait)
		case se.retryable:
			wait = b.cfg.Backoff.wait(attempt, se.retryAfter)
			b.log.Warn("kuma push failed; will retry", "attempt", attempt+1, "retry_in", wait, "err", err)
		default:
			return err
		}
		b.m.retried.WithLabelValues(TargetKuma).Inc()
		if sleep(ctx, wait) != nil {
			return ctx.Err()
		}
	}
}
