package alertbridge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Config is everything the bridge needs; cmd/alertbridge fills it from flags.
type Config struct {
	// SpoolPath is the bbolt file (created with its directory if missing).
	SpoolPath string
	// MaxAge: spooled notifications older than this are dropped unsent.
	MaxAge time.Duration
	// DedupRetention is how long alert keys are remembered for
	// deduplication.
	DedupRetention time.Duration
	// Compact says when the running spool is compacted (zero fields take
	// DefaultCompactPolicy's), checked every CompactInterval (default 1m).
	Compact         CompactPolicy
	CompactInterval time.Duration
	// WebhookToken, when non-empty, is the bearer token /webhook requires.
	WebhookToken string
	// Authenticated says senders are authenticated (a webhook token, or
	// basic auth in front of the handler): they get MaxBodyBytes. Others
	// get MaxAnonymousBodyBytes.
	Authenticated bool
	// MaxBodyBytes bounds an authenticated webhook body (default 32 MiB:
	// a group of 5,000 alerts with 200-byte descriptions is 3-4 MiB).
	MaxBodyBytes int64
	// MaxConcurrentIntake bounds the webhooks read at once (default 16);
	// with MaxBodyBytes it bounds intake memory. A webhook that finds no
	// slot within IntakeQueueWait is answered 503 (Alertmanager retries).
	MaxConcurrentIntake int
	IntakeQueueWait     time.Duration
	// BodyIdleTimeout: a webhook body that sends nothing for this long
	// (default 5s) is answered 408 and frees its intake slot, so senders
	// that stall their bodies cannot hold every slot until the server's
	// ReadTimeout. BodyReadTimeout (default 30s, cmd/alertbridge's
	// ReadTimeout, which the per-read deadlines replace) bounds the whole
	// body: 32 MiB then needs about 1.1 MB/s.
	BodyIdleTimeout time.Duration
	BodyReadTimeout time.Duration
	// WatchdogAlertname is the always-firing heartbeat alert's name.
	WatchdogAlertname string
	// WatchdogInterval: when no Watchdog arrived for this long, Kuma
	// pushes stop (so Kuma's own timeout reports the dead pipeline).
	// Zero disables the check.
	WatchdogInterval time.Duration

	Ntfy    *NtfyConfig    // nil: ntfy disabled
	Kuma    *KumaConfig    // nil: Kuma disabled
	Actions *ActionsConfig // nil: no phone actions (needs Ntfy)

	Backoff Backoff
	// Timeout bounds one delivery attempt.
	Timeout time.Duration

	Logger *slog.Logger
	// OutageLogger receives the one line per accepted alert (default:
	// Logger). cmd/alertbridge gives it its own info level so the outage
	// log stays on whatever --log.level says.
	OutageLogger *slog.Logger
	Registerer   prometheus.Registerer
	// Client is the HTTP client for deliveries (default: a fresh one). A
	// copy is used, with checkRedirect unless it has a CheckRedirect.
	Client *http.Client
}

func (c *Config) setDefaults() {
	if c.MaxAge <= 0 {
		c.MaxAge = 24 * time.Hour
	}
	if c.DedupRetention <= 0 {
		c.DedupRetention = 7 * 24 * time.Hour
	}
	if c.DedupRetention < c.MaxAge {
		c.DedupRetention = c.MaxAge
	}
	if c.Compact.MinBytes <= 0 {
		c.Compact.MinBytes = DefaultCompactPolicy.MinBytes
	}
	if c.Compact.MaxLive <= 0 {
		c.Compact.MaxLive = DefaultCompactPolicy.MaxLive
	}
	if c.CompactInterval <= 0 {
		c.CompactInterval = time.Minute
	}
	if c.WatchdogAlertname == "" {
		c.WatchdogAlertname = "Watchdog"
	}
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 32 << 20
	}
	if c.MaxConcurrentIntake <= 0 {
		c.MaxConcurrentIntake = 16
	}
	if c.IntakeQueueWait <= 0 {
		c.IntakeQueueWait = 10 * time.Second
	}
	if c.BodyIdleTimeout <= 0 {
		c.BodyIdleTimeout = 5 * time.Second
	}
	if c.BodyReadTimeout <= 0 {
		c.BodyReadTimeout = 30 * time.Second
	}
	if c.Backoff.Min <= 0 {
		c.Backoff.Min = 250 * time.Millisecond
	}
	if c.Backoff.Max < c.Backoff.Min {
		c.Backoff.Max = max(time.Minute, c.Backoff.Min)
	}
	if c.Backoff.MaxRetryAfter <= 0 {
		c.Backoff.MaxRetryAfter = 10 * time.Minute
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.OutageLogger == nil {
		c.OutageLogger = c.Logger
	}
	if c.Registerer == nil {
		c.Registerer = prometheus.NewRegistry()
	}
	if c.Ntfy != nil {
		if c.Ntfy.Priorities == nil {
			c.Ntfy.Priorities = DefaultPriorities()
		}
		lower := make(map[string]int, len(c.Ntfy.Priorities))
		for k, v := range c.Ntfy.Priorities {
			lower[strings.ToLower(k)] = v
		}
		c.Ntfy.Priorities = lower
		if c.Ntfy.PerMinute <= 0 {
			c.Ntfy.PerMinute = 10
		}
		if c.Ntfy.StormWindow <= 0 {
			c.Ntfy.StormWindow = time.Minute
		}
		if c.Ntfy.Concurrency <= 0 {
			c.Ntfy.Concurrency = 4
		}
		if c.Ntfy.AuthErrorBackoff <= 0 {
			c.Ntfy.AuthErrorBackoff = 5 * time.Minute
		}
		if c.Ntfy.RepeatTimeout <= 0 {
			c.Ntfy.RepeatTimeout = 2 * time.Minute
		}
		if c.Ntfy.DefaultPriority == 0 {
			c.Ntfy.DefaultPriority = 3
		}
		if c.Ntfy.ResolvedPriority == 0 {
			c.Ntfy.ResolvedPriority = 3
		}
	} else {
		c.Actions = nil
	}
	if c.Actions != nil {
		if c.Actions.TTL <= 0 {
			c.Actions.TTL = 24 * time.Hour
		}
		if c.Actions.SilenceFor <= 0 {
			c.Actions.SilenceFor = time.Hour
		}
	}
	if c.Kuma != nil {
		if len(c.Kuma.DownSeverities) == 0 {
			c.Kuma.DownSeverities = []string{"critical"}
		}
		if c.Kuma.ConfigErrorBackoff <= 0 {
			c.Kuma.ConfigErrorBackoff = 5 * time.Minute
		}
		if c.Kuma.FiringTTL <= 0 {
			c.Kuma.FiringTTL = 2 * time.Hour
		}
	}
}

// Bridge is the running alertbridge: webhook intake, spool and workers.
type Bridge struct {
	cfg      Config
	log      *slog.Logger
	spool    *Spool
	m        *metrics
	client   *http.Client
	targets  []string
	wake     map[string]chan struct{}
	kumaKick chan struct{}
	token    [32]byte
	ready    atomic.Bool
	closeMu  sync.Once
	intake   chan struct{} // slots of concurrent webhook reads
	started  time.Time

	watchdogSeen atomic.Int64 // unix nanos of the last Watchdog (start time until one came)
	authProblem  atomic.Pointer[string]
	// Recovery is set when the spool was damaged at start.
	Recovery *Recovery
	actions  *actionHandler
	idleMu   sync.Mutex
	ntfyIdle func() bool // set by the ntfy dispatcher
}

// New validates cfg, opens the spool and registers the metrics. Call Run
// to start delivery and Close when done.
func New(cfg Config) (*Bridge, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	var targets []string
	if cfg.Ntfy != nil {
		targets = append(targets, TargetNtfy)
	}
	if cfg.Kuma != nil {
		targets = append(targets, TargetKuma)
	}
	sp, rec, err := OpenSpool(cfg.SpoolPath, targets)
	if err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, log: cfg.Logger, spool: sp, targets: targets, wake: map[string]chan struct{}{},
		kumaKick: make(chan struct{}, 1), intake: make(chan struct{}, cfg.MaxConcurrentIntake), started: time.Now(), Recovery: rec}
	b.watchdogSeen.Store(b.started.UnixNano())
	for _, t := range targets {
		b.wake[t] = make(chan struct{}, 1)
	}
	b.client = deliveryClient(cfg.Client, func() http.RoundTripper {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		// Every ntfy publish in flight, the Kuma push and a follow-up may
		// share one host: fewer idle connections than that means a dial
		// and a close per request (7 % of the intake profile's CPU).
		tr.MaxIdleConnsPerHost = 8
		if cfg.Ntfy != nil {
			tr.MaxIdleConnsPerHost = max(8, cfg.Ntfy.Concurrency+4)
		}
		return tr
	})
	if cfg.WebhookToken != "" {
		b.token = sha256.Sum256([]byte(cfg.WebhookToken))
	}
	b.m = newMetrics(cfg.Registerer, sp, targets, func() bool { return b.watchdogMissing(time.Now()) }, func() bool {
		b.idleMu.Lock()
		f := b.ntfyIdle
		b.idleMu.Unlock()
		return f == nil || f()
	})
	if cfg.Actions != nil {
		if b.actions, err = newActionHandler(b); err != nil {
			sp.Close()
			return nil, err
		}
	}
	if rec != nil {
		b.m.spoolRecoveries.Inc()
		b.m.spoolSalvaged.Add(float64(rec.Salvaged))
		b.log.Error("SPOOL DAMAGED: moved aside, readable records recovered, started on a fresh spool",
			"problem", rec.Problem, "moved_to", rec.MovedTo, "recovered_records", rec.Salvaged)
	}
	for _, t := range []string{TargetNtfy, TargetKuma} {
		if _, ok := b.wake[t]; ok {
			continue
		}
		if depth, oldest, err := sp.Stats(t); err == nil && depth > 0 {
			b.log.Warn("spool holds undelivered notifications for a target that is not configured now; they wait until it is configured again",
				"target", t, "depth", depth, "oldest", oldest)
		}
	}
	return b, nil
}

// Targets lists the active notification targets ("ntfy", "kuma").
func (b *Bridge) Targets() []string { return append([]string(nil), b.targets...) }

// Ready reports whether delivery workers run.
func (b *Bridge) Ready() bool { return b.ready.Load() }

// Run starts one delivery worker per target and the key cleaner, and
// blocks until ctx ends and they stopped. Records not yet delivered stay in
// the spool for the next start.
func (b *Bridge) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range b.targets {
		switch t {
		case TargetNtfy:
			wg.Go(func() { b.ntfyDispatcher(ctx) })
		case TargetKuma:
			wg.Go(func() { b.kumaWorker(ctx) })
		}
	}
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Minute)
		defer tick.Stop()
		for {
			if err := b.spool.forgetUsedActions(time.Now()); err != nil {
				b.log.Error("forgetting expired action tokens failed", "err", err)
			}
			if n, err := b.spool.ForgetKeys(time.Now().Add(-b.cfg.DedupRetention)); err != nil {
				b.log.Error("forgetting old alert keys failed", "err", err)
			} else if n > 0 {
				b.log.Debug("forgot old alert keys", "count", n)
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	wg.Go(func() { b.compactor(ctx) })
	b.ready.Store(true)
	wg.Wait()
	b.ready.Store(false)
}

// compactor shrinks the spool file while the bridge runs, once it is
// mostly free (after an outage drained); see CompactPolicy for the bound on
// the pause.
func (b *Bridge) compactor(ctx context.Context) {
	tick := time.NewTicker(b.cfg.CompactInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		res, err := b.spool.Compact(b.cfg.Compact)
		switch {
		case err != nil && !errors.Is(err, errClosed):
			b.m.compactFailures.Inc()
			b.log.Error("spool compaction failed; the spool keeps its old file", "err", err)
		case res.Compacted:
			b.log.Info("spool compacted", "bytes_before", res.Before, "bytes_after", res.After, "live_bytes", res.Live, "writes_held", res.Duration)
		}
	}
}

// Close closes the spool. Call after Run returned.
func (b *Bridge) Close() error {
	var err error
	b.closeMu.Do(func() { err = b.spool.Close() })
	return err
}

// setNtfyAuthProblem records (or clears, with "") why ntfy refuses pages,
// and has the Kuma worker push it.
func (b *Bridge) setNtfyAuthProblem(p string) {
	b.authProblem.Store(&p)
	b.m.ntfyAuthFailing.Set(boolGauge(p != ""))
	select {
	case b.kumaKick <- struct{}{}:
	default:
	}
}

func (b *Bridge) ntfyAuthProblem() string {
	if p := b.authProblem.Load(); p != nil {
		return *p
	}
	return ""
}

func (b *Bridge) watchdogLast() time.Time { return time.Unix(0, b.watchdogSeen.Load()) }

func (b *Bridge) watchdogMissing(now time.Time) bool {
	return b.cfg.WatchdogInterval > 0 && now.Sub(b.watchdogLast()) > b.cfg.WatchdogInterval
}

func (b *Bridge) kick() {
	for _, ch := range b.wake {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

func (b *Bridge) reject(w http.ResponseWriter, code int, reason, msg string) {
	b.m.rejected.WithLabelValues(reason).Inc()
	http.Error(w, msg, code)
}

// jsonContent: Alertmanager sends application/json. Anything else is
// refused, a missing type too: a page in a browser that holds the
// bridge's basic-auth credentials can post a form (text/plain,
// urlencoded, multipart) or a typeless blob to another origin without a
// CORS preflight, and so page on-call or fake the Watchdog; a JSON type
// cannot be sent cross-origin without one.
func jsonContent(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

func (b *Bridge) authorized(r *http.Request) bool {
	if b.cfg.WebhookToken == "" {
		return true
	}
	h := r.Header.Get("Authorization")
	if len(h) < 7 || !strings.EqualFold(h[:7], "bearer ") {
		return false
	}
	// Compare digests so neither content nor length leaks through timing.
	got := sha256.Sum256([]byte(strings.TrimSpace(h[7:])))
	return subtle.ConstantTimeCompare(got[:], b.token[:]) == 1
}

// deadlineReader moves the connection's read deadline along while a body
// arrives: at most idle after the last read began (checked every tenth of
// idle, so a read costs no deadline update each time), never past end.
type deadlineReader struct {
	r     io.ReadCloser
	rc    *http.ResponseController
	idle  time.Duration
	end   time.Time
	last  time.Time
	unsup bool // the connection takes no deadlines: the server's ReadTimeout applies
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if now := time.Now(); !d.unsup && now.Sub(d.last) >= d.idle/10 {
		d.last = now
		dl := now.Add(d.idle)
		if dl.After(d.end) {
			dl = d.end
		}
		if err := d.rc.SetReadDeadline(dl); err != nil {
			d.unsup = true
		}
	}
	return d.r.Read(p)
}

func (d *deadlineReader) Close() error { return d.r.Close() }

// ServeHTTP is the POST /webhook endpoint.
func (b *Bridge) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.m.received.Inc()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		b.reject(w, http.StatusMethodNotAllowed, "method", "method "+r.Method+" not allowed: POST an Alertmanager webhook payload")
		return
	}
	if !b.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="alertbridge"`)
		b.reject(w, http.StatusUnauthorized, "unauthorized", "missing or invalid bearer token")
		return
	}
	if !jsonContent(r.Header.Get("Content-Type")) {
		b.reject(w, http.StatusUnsupportedMediaType, "content_type", "Content-Type must be application/json (an Alertmanager webhook payload)")
		return
	}
	// Bounded intake: at most MaxConcurrentIntake bodies are read at once.
	wait := time.NewTimer(b.cfg.IntakeQueueWait)
	select {
	case b.intake <- struct{}{}:
		wait.Stop()
	case <-wait.C:
		w.Header().Set("Retry-After", "1")
		b.reject(w, http.StatusServiceUnavailable, "busy", "too many webhooks at once; retry")
		return
	case <-r.Context().Done():
		wait.Stop()
		return
	}
	defer func() { <-b.intake }()
	limit := int64(MaxBodyBytes)
	if b.cfg.Authenticated || b.cfg.WebhookToken != "" {
		limit = b.cfg.MaxBodyBytes
	}
	tooLarge := fmt.Sprintf("payload larger than %d bytes", limit)
	if r.ContentLength > limit {
		b.reject(w, http.StatusRequestEntityTooLarge, "too_large", tooLarge)
		return
	}
	dr := &deadlineReader{r: r.Body, rc: http.NewResponseController(w), idle: b.cfg.BodyIdleTimeout,
		end: time.Now().Add(b.cfg.BodyReadTimeout)}
	body, err := io.ReadAll(http.MaxBytesReader(w, dr, limit))
	if err != nil {
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &mbe):
			b.reject(w, http.StatusRequestEntityTooLarge, "too_large", tooLarge)
		case errors.Is(err, os.ErrDeadlineExceeded):
			w.Header().Set("Connection", "close")
			b.reject(w, http.StatusRequestTimeout, "timeout", fmt.Sprintf("webhook body too slow: nothing for %s, or not all within %s", b.cfg.BodyIdleTimeout, b.cfg.BodyReadTimeout))
		default:
			b.reject(w, http.StatusBadRequest, "bad_json", "cannot read body: "+err.Error())
		}
		return
	}
	now := time.Now()
	p, err := DecodePayloadAt(body, now)
	body = nil
	if err != nil {
		var bre *BadRequestError
		reason := "invalid"
		if errors.As(err, &bre) {
			reason = bre.Reason
		}
		b.reject(w, http.StatusBadRequest, reason, err.Error())
		return
	}
	if refused := p.Refused(); len(refused) > 0 {
		b.m.refused.Add(float64(len(refused)))
		b.log.Error("ALERTS REFUSED: alerts of this notification failed validation and were left out; the others were taken",
			"refused", len(refused), "first", logText(refused[0]), "receiver", logText(p.Receiver), "groupKey", logText(p.GroupKey))
	}
	if p.TruncatedAlerts > 0 {
		b.m.truncated.Add(float64(p.TruncatedAlerts))
		b.log.Info("Alertmanager left alerts out of this notification (max_alerts); the page counts them as \"+N more\"",
			"truncatedAlerts", p.TruncatedAlerts, "receiver", logText(p.Receiver), "groupKey", logText(p.GroupKey))
	}
	res, err := b.accept(p, now)
	if err != nil {
		b.log.Error("spool write failed; Alertmanager will retry", "err", err)
		b.reject(w, http.StatusInternalServerError, "spool_error", "spool write failed")
		return
	}
	b.kick()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if refused := p.Refused(); len(refused) > 0 {
		fmt.Fprintf(w, "ok: %d accepted, %d duplicate, %d stale, %d refused (%s)\n", res.accepted, res.dup, res.stale, len(refused), TruncateUTF8(strings.Join(refused, "; "), 1024))
		return
	}
	fmt.Fprintf(w, "ok: %d accepted, %d duplicate, %d stale\n", res.accepted, res.dup, res.stale)
}

type acceptResult struct{ accepted, dup, stale, pages int }

// accept spools one notification in one fsync'd transaction: every new
// (fingerprint, status, startsAt) is remembered and queued for Kuma, and
// the group's page (if anything changed) is rendered and queued for ntfy.
func (b *Bridge) accept(p *Payload, now time.Time) (acceptResult, error) {
	recs := p.Records(now)
	var alerts []Alert // the group without the Watchdog
	var idx []int      // alerts[i] is recs[idx[i]]
	raw := make([][]byte, len(recs))
	for i := range recs {
		if recs[i].Alertname() != b.cfg.WatchdogAlertname {
			alerts = append(alerts, p.Alerts[i])
			idx = append(idx, i)
		} else if recs[i].Status == "firing" {
			b.watchdogSeen.Store(now.UnixNano())
			b.m.watchdog.Set(float64(now.UnixNano()) / 1e9)
		}
		if b.cfg.Kuma != nil {
			v, err := json.Marshal(&recs[i])
			if err != nil {
				return acceptResult{}, err
			}
			raw[i] = v
		}
	}
	gid := groupID(p)
	fresh := make([]bool, len(recs))
	stale := make([]bool, len(recs))
	var res acceptResult
	err := b.spool.Update(func(t SpoolTx) error {
		// Runs again alone if the shared commit fails: start from scratch.
		res = acceptResult{}
		for i := range recs {
			r := &recs[i]
			fresh[i], stale[i] = false, false
			if r.Alertname() == b.cfg.WatchdogAlertname {
				// The heartbeat repeats unchanged by design: every copy is a
				// Kuma push and none is a page.
				if b.cfg.Kuma != nil && r.Status == "firing" {
					if err := t.Enqueue(TargetKuma, raw[i]); err != nil {
						return err
					}
				}
				continue
			}
			if t.Seen(r.Key) {
				res.dup++
				continue
			}
			if err := t.Remember(r.Key, now); err != nil {
				return err
			}
			if r.Status == "firing" {
				if at, ok := t.ResolvedAt(r.Fingerprint, now); ok && !r.StartsAt.After(at) {
					// An HA peer's older copy of an episode already resolved.
					stale[i] = true
					res.stale++
					continue
				}
			} else if err := t.SetResolved(r.Fingerprint, r.StartsAt, now); err != nil {
				return err
			}
			fresh[i] = true
			res.accepted++
			if b.cfg.Kuma != nil {
				if err := t.Enqueue(TargetKuma, raw[i]); err != nil {
					return err
				}
			}
		}
		if b.cfg.Ntfy == nil || len(alerts) == 0 {
			return nil
		}
		return b.groupPage(t, p, gid, alerts, idx, recs, fresh, stale, now, &res)
	})
	if err != nil {
		return res, fmt.Errorf("spool commit: %w", err)
	}
	for i := range recs {
		if fresh[i] {
			b.logOutage(&recs[i])
		}
	}
	b.m.accepted.Add(float64(res.accepted))
	b.m.duplicate.Add(float64(res.dup))
	b.m.stale.Add(float64(res.stale))
	return res, nil
}

// groupPage updates the group's state and queues its page if the group
// changed: new alerts firing, or alerts resolved.
func (b *Bridge) groupPage(t SpoolTx, p *Payload, gid string, alerts []Alert, idx []int, recs []Record, fresh, stale []bool, now time.Time, res *acceptResult) error {
	in := &pageInput{p: p, alerts: alerts, fresh: make([]bool, len(alerts)), prev: t.Group(gid), priority: 1,
		group: gid, actions: b.cfg.Actions}
	changed := false
	allInfo := true
	next := &groupState{Firing: map[string]string{}, LastPage: now}
	common := commonLabels(alerts)
	for j, i := range idx {
		in.fresh[j] = fresh[i]
		if fresh[i] {
			changed = true
		}
		if recs[i].Status != "firing" || stale[i] {
			continue
		}
		in.firing = append(in.firing, j)
		next.Firing[recs[i].Fingerprint] = alertName(recs[i].Labels, common, recs[i].Fingerprint)
		sev := severity(recs[i].Labels)
		if sev != "info" {
			allInfo = false
		}
		prio, ok := b.cfg.Ntfy.Priorities[sev]
		if !ok {
			prio = b.cfg.Ntfy.DefaultPriority
		}
		if prio > in.priority || in.severity == "" {
			in.priority, in.severity = max(prio, in.priority), sev
		}
	}
	if len(next.Firing) == 0 {
		next = nil // resolved: forget the group
	} else if in.prev == nil {
		next.Episode = newEpisode()
	} else if next.Episode = in.prev.Episode; !changed {
		next.LastPage, next.Acked = in.prev.LastPage, in.prev.Acked
		// Unchanged, still firing: a reminder once per repeat interval,
		// unless someone acknowledged it.
		if ri := b.cfg.Ntfy.RepeatInterval; ri > 0 && !in.prev.Acked && now.Sub(in.prev.LastPage) >= ri {
			next.LastPage = now
			in.reminder = true
			changed = true
		}
	}
	if err := t.PutGroup(gid, next); err != nil {
		return err
	}
	if !changed {
		return nil
	}
	if in.reminder {
		b.m.reminders.Inc()
	}
	if len(in.firing) > 0 && allInfo && b.cfg.Ntfy.DropInfo {
		return nil
	}
	if len(in.firing) == 0 && in.prev == nil && allInfoResolved(recs, idx, fresh) && b.cfg.Ntfy.DropInfo {
		return nil
	}
	if next != nil {
		in.episode = next.Episode
	}
	pg := renderPage(b.cfg.Ntfy, in, now)
	pg.Group = gid
	if pg.droppedActions > 0 {
		// Not the actions themselves: their URLs carry signed tokens.
		b.log.Warn("page actions dropped: their X-Actions header would be too large for ntfy; the body still lists the alerts",
			"title", pg.Title, "dropped", pg.droppedActions)
	}
	v, err := json.Marshal(&pg)
	if err != nil {
		return err
	}
	res.pages++
	return t.Enqueue(TargetNtfy, v)
}

// legacyPage renders a record queued by an older version (one per alert)
// as the page of a group of one.
func (b *Bridge) legacyPage(r *Record) Page {
	a := Alert{Status: r.Status, Labels: r.Labels, Annotations: r.Annotations, StartsAt: r.StartsAt, EndsAt: r.EndsAt,
		GeneratorURL: r.GeneratorURL, Fingerprint: r.Fingerprint}
	p := &Payload{Version: "4", Receiver: r.Receiver, ExternalURL: r.ExternalURL, Alerts: []Alert{a},
		GroupLabels: map[string]string{"alertname": r.Alertname()}}
	if pop := r.Labels["pop"]; pop != "" {
		p.GroupLabels["pop"] = pop
	}
	in := &pageInput{p: p, alerts: p.Alerts, fresh: []bool{true}, priority: b.cfg.Ntfy.DefaultPriority, severity: severity(r.Labels)}
	if prio, ok := b.cfg.Ntfy.Priorities[in.severity]; ok {
		in.priority = prio
	}
	if r.Status == "firing" {
		in.firing = []int{0}
	}
	pg := renderPage(b.cfg.Ntfy, in, r.Accepted)
	pg.Group = "legacy:" + r.Fingerprint
	return pg
}

func allInfoResolved(recs []Record, idx []int, fresh []bool) bool {
	for _, i := range idx {
		if fresh[i] && severity(recs[i].Labels) != "info" {
			return false
		}
	}
	return true
}

// logTextMax bounds a sender's text (group key, receiver, label and
// annotation values) in a log line: the body may be 32 MiB, a log line
// should not.
const logTextMax = 512

// logText is s, or, when longer than logTextMax, its start, its length and
// a hash (so long values can still be told apart and matched).
func logText(s string) string {
	if len(s) <= logTextMax {
		return s
	}
	sum := sha256.Sum256([]byte(s))
	return fmt.Sprintf("%s[%d bytes, sha256:%x]", TruncateUTF8(s, logTextMax-64), len(s), sum[:8])
}

// logOutage writes the outage log line every accepted alert gets.
func (b *Bridge) logOutage(r *Record) {
	attrs := []any{
		"alertname", logText(r.Alertname()), "status", r.Status, "severity", logText(r.Labels["severity"]),
		"pop", logText(r.Labels["pop"]), "summary", logText(r.Annotations["summary"]),
		"startsAt", r.StartsAt.UTC().Format(time.RFC3339),
	}
	if !r.EndsAt.IsZero() && r.EndsAt.Year() > 1 {
		attrs = append(attrs, "endsAt", r.EndsAt.UTC().Format(time.RFC3339))
	} else {
		attrs = append(attrs, "endsAt", "")
	}
	b.cfg.OutageLogger.Info("alert", attrs...)
}
