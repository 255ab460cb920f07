package alertbridge

import (
	"context"
	"encoding/json"
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
	// FiringTTL: an outage not refreshed by Alertmanager for this long
	// (it re-sends firing alerts every group_interval when the group
	// changes and every repeat_interval when it does not) is forgotten,
	// so a lost resolution cannot keep Kuma down for ever. An alert's own
	// endsAt extends it. Keep it above the repeat_interval of the routes
	// of DownSeverities.
	FiringTTL time.Duration
}

// kumaBatchGap is the least time between two batches of the Kuma worker:
// a state change reaches Kuma at most this much later.
const kumaBatchGap = 100 * time.Millisecond

// kumaMsgMax bounds the msg parameter: Kuma shows it in a list.
const kumaMsgMax = 200

// apply folds one record into the outage state.
func (st *kumaState) apply(r *Record, down map[string]bool, ttl time.Duration) {
	fp := r.Fingerprint
	if !storableTime(r.StartsAt) || (!r.EndsAt.IsZero() && !storableTime(r.EndsAt)) {
		// Only an older version's queue holds such a record (intake
		// refuses it): its state could not be saved.
		return
	}
	switch r.Status {
	case "firing":
		if t, ok := st.Resolved[fp]; ok && !r.StartsAt.After(t.StartsAt) {
			return // a late copy of an episode already resolved
		}
		if down[severity(r.Labels)] {
			st.dirty[fp] = true
			name := r.Alertname()
			if pop := r.Labels["pop"]; pop != "" {
				name += " " + pop
			}
			exp := r.Accepted.Add(ttl)
			if r.EndsAt.After(exp) {
				exp = r.EndsAt
			}
			st.setFiring(fp, kumaAlert{Name: name, StartsAt: r.StartsAt, Expires: exp})
		}
	case "resolved":
		st.dirty[fp] = true
		if cur, ok := st.Firing[fp]; ok && !cur.StartsAt.After(r.StartsAt) {
			st.delFiring(fp)
		}
		// As at intake (SpoolTx.ResolvedAt): a resolution whose startsAt
		// is implausibly far ahead of its acceptance (queued by an older
		// version) would hide the fingerprint's genuine outages.
		if t, ok := st.Resolved[fp]; plausibleStart(r.StartsAt, r.Accepted) && (!ok || r.StartsAt.After(t.StartsAt)) {
			st.Resolved[fp] = kumaResolved{StartsAt: r.StartsAt, Accepted: r.Accepted}
		}
	}
}

// expire forgets outages not refreshed before now and returns the earliest
// expiry left (zero if none). It scans Firing only once the earliest known
// expiry has passed.
func (st *kumaState) expire(now time.Time) (next time.Time) {
	if !st.nextExpiry.IsZero() && now.Before(st.nextExpiry) {
		return st.nextExpiry
	}
	for fp, a := range st.Firing {
		if a.Expires.IsZero() {
			continue // saved by an older version: refreshed on the next notification
		}
		if !a.Expires.After(now) {
			st.delFiring(fp)
			st.dirty[fp] = true
			continue
		}
		if next.IsZero() || a.Expires.Before(next) {
			next = a.Expires
		}
	}
	st.nextExpiry = next
	return next
}

// setFiring and delFiring keep names (outage name -> number of firing
// alerts with it), the smallest names and the earliest expiry in step with
// Firing, so a summary does not rescan.
func (st *kumaState) setFiring(fp string, a kumaAlert) {
	old, ok := st.Firing[fp]
	st.Firing[fp] = a
	if !ok || old.Name != a.Name {
		if ok {
			st.unname(old.Name)
		}
		st.name(a.Name)
	}
	if !a.Expires.IsZero() && (st.nextExpiry.IsZero() || a.Expires.Before(st.nextExpiry)) {
		st.nextExpiry = a.Expires
	}
}

func (st *kumaState) delFiring(fp string) {
	if old, ok := st.Firing[fp]; ok {
		st.unname(old.Name)
		delete(st.Firing, fp)
	}
}

func (st *kumaState) name(n string) {
	st.names[n]++
	if st.names[n] > 1 || !st.firstOK {
		return
	}
	// A new name: it joins first if it is among the smallest.
	if len(st.first) == summaryNames && n >= st.first[summaryNames-1] {
		return
	}
	i := sort.SearchStrings(st.first, n)
	st.first = append(st.first, "")
	copy(st.first[i+1:], st.first[i:])
	st.first[i] = n
	if len(st.first) > summaryNames {
		st.first = st.first[:summaryNames]
	}
}

func (st *kumaState) unname(n string) {
	if st.names[n] > 1 {
		st.names[n]--
		return
	}
	delete(st.names, n)
	if st.firstOK && len(st.first) > 0 && n <= st.first[len(st.first)-1] {
		st.firstOK = false // one of the smallest left: find them again
	}
}

// summaryNames is how many outage names a summary can show at most.
const summaryNames = 32

// smallestNames returns the summaryNames smallest outage names, sorted,
// scanning names only when one of them went away.
func (st *kumaState) smallestNames() []string {
	if st.firstOK {
		return st.first
	}
	// Without sorting them all: a flood of thousands of outages must not
	// make a recount O(n log n).
	first := st.first[:0]
	for n := range st.names {
		if len(first) == summaryNames && n >= first[summaryNames-1] {
			continue
		}
		i := sort.SearchStrings(first, n)
		first = append(first, "")
		copy(first[i+1:], first[i:])
		first[i] = n
		if len(first) > summaryNames {
			first = first[:summaryNames]
		}
	}
	st.first, st.firstOK = first, true
	return first
}

// summary is the push Kuma should show: up/OK, or down with the first
// outage names in order and how many more there are.
func (st *kumaState) summary() (status, msg string) {
	if len(st.names) == 0 {
		return "up", "OK"
	}
	first := st.smallestNames()
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
			return "down", withMore(b.String(), total-i)
		}
		b.WriteString(sep + n)
	}
	return "down", withMore(b.String(), total-len(first))
}

// withMore appends " (+N more)" to names, cutting the names (never the
// count) to keep the message within kumaMsgMax.
func withMore(names string, more int) string {
	if more <= 0 {
		return TruncateUTF8(names, kumaMsgMax)
	}
	suffix := " (+" + itoa(more) + " more)"
	return TruncateUTF8(names, kumaMsgMax-len(suffix)) + suffix
}

func itoa(n int) string { return strconv.Itoa(n) }

// kumaSummary is the push for the outage state plus the bridge's own
// problems: while ntfy refuses the token, pages are not reaching anyone,
// which is an outage of the paging path.
func kumaSummary(st *kumaState, problem string) (status, msg string) {
	status, msg = st.summary()
	if problem == "" {
		return status, msg
	}
	if status == "up" {
		return "down", TruncateUTF8(problem, kumaMsgMax)
	}
	return "down", TruncateUTF8(problem+"; "+msg, kumaMsgMax)
}

// nextKuma returns up to n of the Kuma queue's oldest records, waiting
// until there is at least one, the bridge kicks the worker (a problem
// changed), or wait has passed. It returns false once ctx is done.
func (b *Bridge) nextKuma(ctx context.Context, n int, wait time.Duration) ([]Queued, bool) {
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		items, err := b.spool.Peek(TargetKuma, n)
		if err != nil {
			b.log.Error("spool read failed", "target", TargetKuma, "err", err)
		} else if len(items) > 0 {
			return items, true
		}
		select {
		case <-ctx.Done():
			return nil, false
		case <-b.wake[TargetKuma]:
			if err != nil {
				if sleep(ctx, time.Second) != nil {
					return nil, false
				}
			}
		case <-b.kumaKick:
			return nil, true
		case <-t.C:
			return nil, true
		}
	}
}

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
		down[strings.ToLower(s)] = true
	}
	missingLogged := false
	nextExpiry := st.expire(time.Now())
	var lastBatch time.Time
	for {
		// At most one batch per kumaBatchGap: under a flood of webhooks
		// each batch would otherwise carry the records of one intake
		// commit and add a commit (two fsyncs) of its own.
		if gap := kumaBatchGap - time.Since(lastBatch); gap > 0 {
			if sleep(ctx, gap) != nil {
				return
			}
		}
		lastBatch = time.Now()
		wait := time.Minute
		if b.cfg.WatchdogInterval > 0 {
			wait = min(wait, max(b.cfg.WatchdogInterval/2, 10*time.Millisecond))
		}
		if !nextExpiry.IsZero() {
			wait = min(wait, max(time.Until(nextExpiry), time.Millisecond))
		}
		items, ok := b.nextKuma(ctx, 500, wait)
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
			next.apply(r, down, b.cfg.Kuma.FiringTTL)
			if oldest.IsZero() && !stale {
				oldest = r.Accepted
			}
		}
		if time.Since(lastGC) > time.Hour {
			lastGC = time.Now()
			cutoff := lastGC.Add(-b.cfg.DedupRetention)
			for fp, t := range next.Resolved {
				if t.Accepted.Before(cutoff) {
					delete(next.Resolved, fp)
					next.dirty[fp] = true
				}
			}
		}
		nextExpiry = next.expire(time.Now())
		status, msg := kumaSummary(next, b.ntfyAuthProblem())
		missing := b.watchdogMissing(time.Now())
		if missing && !missingLogged {
			b.log.Error("WATCHDOG MISSING: no Watchdog alert from Alertmanager within --watchdog.interval; Kuma pushes stopped so Kuma's own heartbeat timeout reports the dead pipeline",
				"interval", b.cfg.WatchdogInterval, "last_seen", b.watchdogLast())
		} else if !missing && missingLogged {
			b.log.Info("Watchdog is back; Kuma pushes resume")
		}
		missingLogged = missing
		if !missing && (heartbeat || status != st.LastStatus || msg != st.LastMsg) {
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

// kumaPushOK reports whether a 2xx body is Kuma's push answer, {"ok":true}.
func kumaPushOK(body []byte) bool {
	var a struct {
		OK bool `json:"ok"`
	}
	return json.Unmarshal(body, &a) == nil && a.OK
}

// kumaErrorMsg returns the msg of Kuma's error answer {"ok":false,"msg":...}
// and whether body is one.
func kumaErrorMsg(body string) (string, bool) {
	var a struct {
		OK  *bool  `json:"ok"`
		Msg string `json:"msg"`
	}
	if json.Unmarshal([]byte(body), &a) != nil || a.OK == nil || *a.OK {
		return "", false
	}
	return a.Msg, true
}

// pushKuma sends one push until Kuma answers {"ok":true}, a permanent
// error, or shutdown. It retries 429/5xx/network errors and Kuma's own
// errors with backoff, and configuration errors slowly: an unknown push
// token, a URL that is not Kuma's push route (a web page answering 2xx)
// or a redirect not followed.
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
		err = doAnswer(b.client, req, kumaPushOK)
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
		b.m.failures.WithLabelValues(TargetKuma, se.class()).Inc()
		var wait time.Duration
		kumaMsg, isKumaError := kumaErrorMsg(se.body)
		switch {
		case se.redirect():
			b.m.kumaConfigErr.Inc()
			wait = b.cfg.Kuma.ConfigErrorBackoff
			b.log.Error("KUMA CONFIGURATION ERROR: the push URL answers with a redirect that is not followed (it leaves https); set --kuma.push-url / KUMA_PUSH_URL to the URL it redirects to",
				"status", se.status, "location", se.location, "retry_in", wait)
		case se.unexpected:
			// Kuma's universal route answers every GET its push route
			// does not match (no /api/push/, no token) with its web app,
			// 200; so does a login page in front of it.
			b.m.kumaConfigErr.Inc()
			wait = b.cfg.Kuma.ConfigErrorBackoff
			b.log.Error("KUMA CONFIGURATION ERROR: the push URL answers 2xx but not with Kuma's push answer {\"ok\":true}: check that --kuma.push-url / KUMA_PUSH_URL is the monitor's push URL (https://kuma/api/push/<token>) and that no login page is in front of it",
				"status", se.status, "response", se.body, "retry_in", wait)
		case strings.Contains(kumaMsg, "Monitor not found") || (se.status == http.StatusNotFound && !isKumaError):
			// Kuma answers an unknown or inactive push token 404 with
			// {"ok":false,"msg":"Monitor not found or not active."}; a
			// 404 that is not Kuma's JSON is a path Kuma does not route.
			b.m.kumaConfigErr.Inc()
			wait = b.cfg.Kuma.ConfigErrorBackoff
			b.log.Error("KUMA CONFIGURATION ERROR: push token unknown to Uptime Kuma; check --kuma.push-url / KUMA_PUSH_URL and that the push monitor exists and is active",
				"status", se.status, "response", se.body, "retry_in", wait)
		case se.retryable || isKumaError:
			// Kuma answers every other error its push handler throws
			// (a database error, SQLITE_BUSY) 404 too: worth retrying
			// soon, not a configuration error.
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
