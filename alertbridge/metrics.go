package alertbridge

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "clavis_alertbridge"

// Rejection reasons of clavis_alertbridge_webhooks_rejected_total.
var rejectReasons = []string{"method", "unauthorized", "too_large", "bad_json", "bad_version", "invalid", "spool_error", "busy", "timeout", "content_type"}

// Failure classes of clavis_alertbridge_delivery_failures_total.
var failureClasses = []string{"4xx", "5xx", "timeout", "network", "other"}

type metrics struct {
	received      prometheus.Counter
	rejected      *prometheus.CounterVec
	accepted      prometheus.Counter
	duplicate     prometheus.Counter
	sent          *prometheus.CounterVec
	failed        *prometheus.CounterVec
	retried       *prometheus.CounterVec
	dropped       *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	watchdog      prometheus.Gauge
	kumaConfigErr prometheus.Counter

	failures        *prometheus.CounterVec
	stale           prometheus.Counter
	truncated       prometheus.Counter
	refused         prometheus.Counter
	digests         prometheus.Counter
	merged          prometheus.Counter
	repeats         prometheus.Counter
	ntfyAuthErrors  prometheus.Counter
	ntfyAuthFailing prometheus.Gauge
	actions         *prometheus.CounterVec
	reminders       prometheus.Counter
	spoolRecoveries prometheus.Counter
	spoolSalvaged   prometheus.Counter
	compactFailures prometheus.Counter
}

func newMetrics(reg prometheus.Registerer, s *Spool, targets []string, watchdogMissing, ntfyIdle func() bool) *metrics {
	m := &metrics{
		received: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "webhooks_received_total",
			Help: "Webhook requests received on /webhook."}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "webhooks_rejected_total",
			Help: "Webhook requests rejected, by reason."}, []string{"reason"}),
		accepted: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "alerts_accepted_total",
			Help: "Alerts (one per alert and status) written to the spool."}),
		duplicate: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "alerts_duplicate_total",
			Help: "Alerts already in the spool (Alertmanager retries, HA peers), not queued again."}),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "notifications_sent_total",
			Help: "Notifications the target answered with 2xx."}, []string{"target"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "notifications_failed_total",
			Help: "Notifications that failed permanently (4xx other than 429)."}, []string{"target"}),
		retried: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "notifications_retried_total",
			Help: "Delivery attempts that failed and will be retried (429, 5xx, timeouts, connection errors)."}, []string{"target"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "notifications_dropped_total",
			Help: "Spooled notifications dropped unsent because they were older than --spool.max-age."}, []string{"target"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "delivery_duration_seconds",
			Help:    "Time from accepting an alert to the target's 2xx.",
			Buckets: []float64{0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600, 21600}}, []string{"target"}),
		watchdog: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "watchdog_last_seen_timestamp_seconds",
			Help: "Unix time the Watchdog alert was last received (0 = never since start)."}),
		kumaConfigErr: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "kuma_config_errors_total",
			Help: "Kuma pushes answered 404: the push token in --kuma.push-url is unknown to Kuma."}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "delivery_failures_total",
			Help: "Failed delivery attempts, by target and class (4xx, 5xx, timeout, network, other)."}, []string{"target", "class"}),
		stale: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "alerts_stale_total",
			Help: "Firing alerts dropped because a resolution of the same or a later episode was already seen (late HA copies)."}),
		truncated: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "alerts_truncated_total",
			Help: "Alerts Alertmanager left out of notifications (max_alerts), counted in the pages as +N more."}),
		refused: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "alerts_refused_total",
			Help: "Alerts left out of an accepted notification because they failed validation (the notification's other alerts were taken)."}),
		digests: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "storm_digests_total",
			Help: "Digest messages sent by the storm guard."}),
		merged: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "storm_merged_pages_total",
			Help: "Pages merged into storm digests instead of being sent one by one."}),
		repeats: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "ntfy_repeats_total",
			Help: "Messages sent again, marked as possible repeats, after an attempt whose outcome was unknown (timeout)."}),
		ntfyAuthErrors: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "ntfy_auth_errors_total",
			Help: "ntfy answers 401 or 403: the token is wrong, revoked or lacks write access; pages stay spooled."}),
		ntfyAuthFailing: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "ntfy_auth_failing",
			Help: "1 while ntfy refuses the token (last answer 401 or 403) or the ntfy URL answers with a redirect: pages are held."}),

		actions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "actions_total",
			Help: "Phone actions (silence, ack) called, by result: ok, forged, expired, replayed, failed."}, []string{"action", "result"}),
		reminders: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "reminders_total",
			Help: "Pages sent again for a group still firing unchanged after --ntfy.repeat-interval."}),
		spoolRecoveries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "spool_recoveries_total",
			Help: "Damaged spool files moved aside at start (the process started on a fresh spool)."}),
		spoolSalvaged: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "spool_recovered_records_total",
			Help: "Queued records copied from a damaged spool into the fresh one."}),
		compactFailures: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "spool_compaction_failures_total",
			Help: "Running compactions of the spool that failed (the spool kept its old file)."}),
	}
	for _, r := range rejectReasons {
		m.rejected.WithLabelValues(r)
	}
	for _, t := range targets {
		m.sent.WithLabelValues(t)
		m.failed.WithLabelValues(t)
		m.retried.WithLabelValues(t)
		m.dropped.WithLabelValues(t)
		m.duration.WithLabelValues(t)
		for _, c := range failureClasses {
			m.failures.WithLabelValues(t, c)
		}
	}
	reg.MustRegister(m.received, m.rejected, m.accepted, m.duplicate, m.sent, m.failed, m.retried, m.dropped,
		m.duration, m.watchdog, m.kumaConfigErr, &spoolCollector{s: s, targets: targets},
		m.failures, m.stale, m.truncated, m.refused, m.digests, m.merged, m.repeats, m.ntfyAuthErrors, m.ntfyAuthFailing,
		m.spoolRecoveries, m.spoolSalvaged, m.compactFailures, m.actions, m.reminders)
	for _, a := range []string{ActionSilence, ActionAck} {
		for _, r := range actionResults {
			m.actions.WithLabelValues(a, r)
		}
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "watchdog_missing",
		Help: "1 while no Watchdog arrived within --watchdog.interval: Kuma pushes are stopped."},
		func() float64 { return boolGauge(watchdogMissing()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "ntfy_idle",
			Help: "1 when the ntfy dispatcher holds no page, has nothing in flight and nothing left to remove from the spool."},
			func() float64 { return boolGauge(ntfyIdle()) }))
	return m
}

// spoolCollector reads depth and oldest age from the spool at scrape time.
type spoolCollector struct {
	s       *Spool
	targets []string
}

var (
	spoolDepthDesc = prometheus.NewDesc(namespace+"_spool_depth", "Records waiting in the spool for delivery, per target.", []string{"target"}, nil)
	spoolAgeDesc   = prometheus.NewDesc(namespace+"_spool_oldest_age_seconds", "Age of the oldest record waiting for delivery (0 when empty), per target.", []string{"target"}, nil)
)

var (
	spoolFileDesc        = prometheus.NewDesc(namespace+"_spool_file_bytes", "Size of the spool file.", nil, nil)
	spoolCompactionsDesc = prometheus.NewDesc(namespace+"_spool_compactions_total",
		"Times the running spool file was rewritten compactly (it was mostly free).", nil, nil)
	spoolCompactDurDesc = prometheus.NewDesc(namespace+"_spool_last_compaction_duration_seconds",
		"How long the last compaction held spool writes (0 before the first).", nil, nil)
)

func (c *spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- spoolDepthDesc
	ch <- spoolAgeDesc
	ch <- spoolFileDesc
	ch <- spoolCompactionsDesc
	ch <- spoolCompactDurDesc
}

func (c *spoolCollector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(spoolFileDesc, prometheus.GaugeValue, float64(c.s.FileSize()))
	n, last := c.s.Compactions()
	ch <- prometheus.MustNewConstMetric(spoolCompactionsDesc, prometheus.CounterValue, float64(n))
	ch <- prometheus.MustNewConstMetric(spoolCompactDurDesc, prometheus.GaugeValue, last.Seconds())
	for _, t := range c.targets {
		depth, oldest, err := c.s.Stats(t)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(spoolDepthDesc, err)
			continue
		}
		age := 0.0
		if !oldest.IsZero() {
			age = time.Since(oldest).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(spoolDepthDesc, prometheus.GaugeValue, float64(depth), t)
		ch <- prometheus.MustNewConstMetric(spoolAgeDesc, prometheus.GaugeValue, age, t)
	}
}
