package collector

import (
	"context"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
)

func init() {
	Register(Spec{
		Name:           "tarpit",
		DefaultEnabled: true,
		Setup: func(*kingpin.Application) Factory {
			return func(env Env) (Collector, error) {
				return newTarpitCollector(env.Tarpit), nil
			}
		},
	})
}

// tarpitCollector exports the tarpit's aggregates. The tarpit hands over
// counts by protocol and by rejection reason only: no address ever reaches
// this collector (they stay in the local scanner log).
type tarpitCollector struct {
	src TarpitSource // nil when no tarpit runs: nothing is exported

	connections, active, trapped, bytes, rejected, unique, logDropped, untrusted *prometheus.Desc
}

func newTarpitCollector(src TarpitSource) *tarpitCollector {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(Namespace, "tarpit", name), help, labels, nil)
	}
	return &tarpitCollector{
		src:         src,
		connections: desc("connections_total", "Connections trapped by the tarpit, by protocol (ssh, http).", "protocol"),
		active:      desc("active_connections", "Connections trapped right now, by protocol.", "protocol"),
		trapped:     desc("trapped_seconds_total", "Time scanners have spent trapped, summed over closed and open connections, by protocol.", "protocol"),
		bytes:       desc("bytes_sent_total", "Bytes the tarpit has dripped to trapped connections, by protocol.", "protocol"),
		rejected:    desc("rejected_total", "Connections the tarpit closed at once instead of trapping, by reason (max_clients, per_source, accept_error, proxy_header, shutdown).", "reason"),
		unique:      desc("unique_sources_24h", "Estimated distinct source addresses trapped over the last 24 hours (HyperLogLog; the addresses are not kept)."),
		logDropped:  desc("log_dropped_total", "Scanner-log lines dropped because the log writer fell behind or failed."),
		untrusted:   desc("proxy_headers_untrusted_total", "PROXY headers sent by clients that are not a --tarpit.proxy-protocol.trusted balancer: ignored, the client is taken by its own address."),
	}
}

func (c *tarpitCollector) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	if c.src == nil {
		return nil
	}
	s := c.src.Snapshot()
	for proto, p := range s.Protocols {
		ch <- prometheus.MustNewConstMetric(c.connections, prometheus.CounterValue, float64(p.Connections), proto)
		ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(p.Active), proto)
		ch <- prometheus.MustNewConstMetric(c.trapped, prometheus.CounterValue, p.TrappedSeconds, proto)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(p.BytesSent), proto)
	}
	for reason, n := range s.Rejected {
		ch <- prometheus.MustNewConstMetric(c.rejected, prometheus.CounterValue, float64(n), reason)
	}
	ch <- prometheus.MustNewConstMetric(c.unique, prometheus.GaugeValue, float64(s.UniqueSources24h))
	ch <- prometheus.MustNewConstMetric(c.logDropped, prometheus.CounterValue, float64(s.LogDropped))
	ch <- prometheus.MustNewConstMetric(c.untrusted, prometheus.CounterValue, float64(s.UntrustedProxyHeaders))
	return nil
}
