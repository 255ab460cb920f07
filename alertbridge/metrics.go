package alertbridge

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

const namespace = "clavis_alertbridge"

// Rejection reasons of clavis_alertbridge_webhooks_rejected_total.
var rejectReasons = []string{"method", "unauthorized", "too_large", "bad_json", "bad_version", "invalid", "spool_error"}

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
}

func newMetrics(reg prometheus.Registerer, s *Spool, targets []string) *metrics {
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
	}
	reg.MustRegister(m.received, m.rejected, m.accepted, m.duplicate, m.sent, m.failed, m.retried, m.dropped,
		m.duration, m.watchdog, m.kumaConfigErr, &spoolCollector{s: s, targets: targets})
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

func (c *spoolCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- spoolDepthDesc
	ch <- spoolAgeDesc
}

func (c *spoolCollector) Collect(ch chan<- prometheus.Metric) {
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
