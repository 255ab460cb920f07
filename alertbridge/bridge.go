package alertbridge

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
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
	// WebhookToken, when non-empty, is the bearer token /webhook requires.
	WebhookToken string
	// WatchdogAlertname is the always-firing heartbeat alert's name.
	WatchdogAlertname string

	Ntfy *NtfyConfig // nil: ntfy disabled
	Kuma *KumaConfig // nil: Kuma disabled

	Backoff Backoff
	// Timeout bounds one delivery attempt.
	Timeout time.Duration

	Logger *slog.Logger
	// OutageLogger receives the one line per accepted alert (default:
	// Logger). cmd/alertbridge gives it its own info level so the outage
	// log stays on whatever --log.level says.
	OutageLogger *slog.Logger
	Registerer   prometheus.Registerer
	// Client is the HTTP client for deliveries (default: a fresh one).
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
	if c.WatchdogAlertname == "" {
		c.WatchdogAlertname = "Watchdog"
	}
	if c.Backoff.Min <= 0 {
		c.Backoff.Min = time.Second
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
		if c.Ntfy.DefaultPriority == 0 {
			c.Ntfy.DefaultPriority = 3
		}
		if c.Ntfy.ResolvedPriority == 0 {
			c.Ntfy.ResolvedPriority = 3
		}
	}
	if c.Kuma != nil {
		if len(c.Kuma.DownSeverities) == 0 {
			c.Kuma.DownSeverities = []string{"critical"}
		}
		if c.Kuma.ConfigErrorBackoff <= 0 {
			c.Kuma.ConfigErrorBackoff = 5 * time.Minute
		}
	}
}

func checkURL(name, s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("%s %q: want an absolute http:// or https:// URL", name, s)
	}
	return nil
}

// Bridge is the running alertbridge: webhook intake, spool and workers.
type Bridge struct {
	cfg     Config
	log     *slog.Logger
	spool   *Spool
	m       *metrics
	client  *http.Client
	targets []string
	wake    map[string]chan struct{}
	token   [32]byte
	ready   atomic.Bool
	closeMu sync.Once
}

// New validates cfg, opens the spool and registers the metrics. Call Run
// to start delivery and Close when done.
func New(cfg Config) (*Bridge, error) {
	cfg.setDefaults()
	var targets []string
	if cfg.Ntfy != nil {
		if err := checkURL("ntfy URL", cfg.Ntfy.URL); err != nil {
			return nil, err
		}
		for sev, p := range cfg.Ntfy.Priorities {
			if p < 1 || p > 5 {
				return nil, fmt.Errorf("ntfy priority for severity %q: %d is outside 1..5", sev, p)
			}
		}
		targets = append(targets, TargetNtfy)
	}
	if cfg.Kuma != nil {
		if err := checkURL("Kuma push URL", cfg.Kuma.PushURL); err != nil {
			return nil, err
		}
		targets = append(targets, TargetKuma)
	}
	if cfg.SpoolPath == "" {
		return nil, errors.New("spool path is empty")
	}
	sp, err := OpenSpool(cfg.SpoolPath, targets)
	if err != nil {
		return nil, err
	}
	b := &Bridge{cfg: cfg, log: cfg.Logger, spool: sp, targets: targets, wake: map[string]chan struct{}{}}
	for _, t := range targets {
		b.wake[t] = make(chan struct{}, 1)
	}
	b.client = cfg.Client
	if b.client == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 4
		b.client = &http.Client{Transport: tr}
	}
	if cfg.WebhookToken != "" {
		b.token = sha256.Sum256([]byte(cfg.WebhookToken))
	}
	b.m = newMetrics(cfg.Registerer, sp, targets)
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
			wg.Go(func() { b.ntfyWorker(ctx) })
		case TargetKuma:
			wg.Go(func() { b.kumaWorker(ctx) })
		}
	}
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Minute)
		defer tick.Stop()
		for {
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
	b.ready.Store(true)
	wg.Wait()
	b.ready.Store(false)
}

// Close closes the spool. Call after Run returned.
func (b *Bridge) Close() error {
	var err error
	b.closeMu.Do(func() { err = b.spool.Close() })
	return err
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
	tooLarge := fmt.Sprintf("payload larger than %d bytes", MaxBodyBytes)
	if r.ContentLength > MaxBodyBytes {
		b.reject(w, http.StatusRequestEntityTooLarge, "too_large", tooLarge)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBodyBytes))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			b.reject(w, http.StatusRequestEntityTooLarge, "too_large", tooLarge)
		} else {
			b.reject(w, http.StatusBadRequest, "bad_json", "cannot read body: "+err.Error())
		}
		return
	}
	p, err := DecodePayload(body)
	if err != nil {
		var bre *BadRequestError
		reason := "invalid"
		if errors.As(err, &bre) {
			reason = bre.Reason
		}
		b.reject(w, http.StatusBadRequest, reason, err.Error())
		return
	}
	if p.TruncatedAlerts > 0 {
		b.log.Warn("Alertmanager truncated the alert list of this notification; set max_alerts: 0 in its webhook_config",
			"truncatedAlerts", p.TruncatedAlerts, "receiver", p.Receiver, "groupKey", p.GroupKey)
	}
	now := time.Now()
	recs := p.Records(now)
	entries := make([]Entry, len(recs))
	for i := range recs {
		e := Entry{Record: recs[i]}
		if recs[i].Alertname() == b.cfg.WatchdogAlertname {
			// The heartbeat repeats unchanged by design; every copy is a
			// Kuma push and none is an ntfy page.
			e.NoDedup = true
			if b.cfg.Kuma != nil && recs[i].Status == "firing" {
				e.Targets = []string{TargetKuma}
			}
			if recs[i].Status == "firing" {
				b.m.watchdog.Set(float64(now.UnixNano()) / 1e9)
			}
		} else {
			e.Targets = b.targets
		}
		entries[i] = e
	}
	fresh, err := b.spool.Add(entries)
	if err != nil {
		b.log.Error("spool write failed; Alertmanager will retry", "err", err)
		b.reject(w, http.StatusInternalServerError, "spool_error", "spool write failed")
		return
	}
	accepted, dup := 0, 0
	for i, ok := range fresh {
		if !ok {
			dup++
			continue
		}
		accepted++
		b.logOutage(&recs[i])
	}
	b.m.accepted.Add(float64(accepted))
	b.m.duplicate.Add(float64(dup))
	b.kick()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintf(w, "ok: %d accepted, %d duplicate\n", accepted, dup)
}

// logOutage writes the outage log line every accepted alert gets.
func (b *Bridge) logOutage(r *Record) {
	attrs := []any{
		"alertname", r.Alertname(), "status", r.Status, "severity", r.Labels["severity"],
		"pop", r.Labels["pop"], "summary", r.Annotations["summary"],
		"startsAt", r.StartsAt.UTC().Format(time.RFC3339),
	}
	if !r.EndsAt.IsZero() && r.EndsAt.Year() > 1 {
		attrs = append(attrs, "endsAt", r.EndsAt.UTC().Format(time.RFC3339))
	} else {
		attrs = append(attrs, "endsAt", "")
	}
	b.cfg.OutageLogger.Info("alert", attrs...)
}
