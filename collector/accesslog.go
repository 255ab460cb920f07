package collector

import (
	"context"
	"errors"
	"fmt"
	"net/netip"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clavitor/clavis-telemetry/internal/accesslog"
	"github.com/clavitor/clavis-telemetry/privacy"
)

// The accesslog collector follows the HTTP front's access logs in the
// background (internal/accesslog) and exports aggregates only: requests by
// method, status class and operator-defined route class, response bytes,
// request time, and a distinct-client estimate. No path, address or user
// agent ever reaches a label (hard rules 1 and 2).

var (
	httpRequestsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "http", "requests_total"),
		"HTTP requests in the followed access logs, by method (fixed set, else other), status class and route class (--accesslog.route; unmatched is other).",
		[]string{"method", "code", "route"}, nil)
	httpDurationDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "http", "request_duration_seconds"),
		"Request time written in the access log (nginx $request_time, Caddy duration), by route class. Only lines that carry a request time count.",
		[]string{"route"}, nil)
	httpResponseBytesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "http", "response_size_bytes_total"),
		"Response body bytes written in the access log (nginx $body_bytes_sent, Caddy size).",
		nil, nil)
	accesslogLinesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "accesslog", "lines_total"),
		"Access log lines read, by result: parsed, malformed (counted, never fatal), too_long (over 64 KiB, skipped).",
		[]string{"result"}, nil)
	accesslogRotationsDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "accesslog", "rotations_total"),
		"Access log rotations noticed: a file replaced under its path (rename or delete, then create) or truncated (copytruncate).",
		nil, nil)
	accesslogFollowingDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "accesslog", "following"),
		"Number of configured access logs (--accesslog.path) currently open.",
		nil, nil)
	accesslogLastLineDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "accesslog", "last_line_timestamp_seconds"),
		"Time written in the last parsed access log line (when it was read, if the line has none), Unix seconds; 0 before the first line.",
		nil, nil)
	uniqueIPs24hDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "unique_ips_24h"),
		"Estimated distinct client IP addresses over the last 24 hours (HyperLogLog, relative error under 2%; no address is kept).",
		nil, nil)
	uniqueIPs1hDesc = prometheus.NewDesc(
		prometheus.BuildFQName(Namespace, "", "unique_ips_1h"),
		"Estimated distinct client IP addresses over the last hour (HyperLogLog, relative error under 2%; no address is kept).",
		nil, nil)
)

func init() {
	Register(Spec{
		Name:           "accesslog",
		DefaultEnabled: true,
		Core:           true,
		Setup:          setupAccesslog,
	})
}

// routesFlag is a repeatable --accesslog.route, parsed and compiled when the
// flag is parsed, so a bad route is a flag error naming it.
type routesFlag struct{ routes []accesslog.Route }

func (f *routesFlag) Set(s string) error {
	r, err := accesslog.ParseRoute(s)
	if err != nil {
		return err
	}
	// The name is exported as the route label: one the privacy gate would
	// drop at every scrape is refused now, with the reason.
	if privacy.LooksLikeAddress(r.Name) || privacy.IsEmailShaped(r.Name) {
		return fmt.Errorf("route name %q reads as an address; label values never carry one, choose another name", r.Name)
	}
	if len(f.routes) >= accesslog.MaxRoutes {
		return fmt.Errorf("at most %d routes", accesslog.MaxRoutes)
	}
	f.routes = append(f.routes, r)
	return nil
}

func (f *routesFlag) String() string     { return fmt.Sprint(len(f.routes), " routes") }
func (f *routesFlag) IsCumulative() bool { return true }

// prefixesFlag is --accesslog.trusted-proxies, a comma-separated CIDR list.
type prefixesFlag struct {
	src      string
	prefixes []netip.Prefix
}

func (f *prefixesFlag) Set(s string) error {
	p, err := accesslog.ParseTrustedProxies(s)
	if err != nil {
		return err
	}
	f.src, f.prefixes = s, p
	return nil
}

func (f *prefixesFlag) String() string { return f.src }

// durationUnitFlag is --accesslog.caddy-duration-format: auto or one of
// Caddy's duration_format names, aliases included, checked when parsed.
type durationUnitFlag struct {
	src  string
	unit accesslog.DurationUnit
}

func (f *durationUnitFlag) Set(s string) error {
	u, err := accesslog.ParseDurationUnit(s)
	if err != nil {
		return err
	}
	f.src, f.unit = s, u
	return nil
}

func (f *durationUnitFlag) String() string { return f.src }

// accesslogConfig is the parsed command line of the collector.
type accesslogConfig struct {
	paths     []string
	format    string
	fromStart bool
	routes    routesFlag
	clientIP  string
	trusted   prefixesFlag
	caddyDur  durationUnitFlag
}

func setupAccesslog(app *kingpin.Application) Factory {
	cfg := &accesslogConfig{}
	app.Flag("accesslog.path",
		"Access log of the HTTP front to follow (repeatable). It may not exist yet; rotation by rename+create and by copytruncate is followed.").
		StringsVar(&cfg.paths)
	app.Flag("accesslog.format",
		"Access log format: combined (nginx/Apache, optional trailing \"$http_x_forwarded_for\" and $request_time), json (Caddy JSON or console, Traefik, nginx escape=json) or auto (per line).").
		Default("auto").EnumVar(&cfg.format, "auto", "combined", "json")
	app.Flag("accesslog.from-start",
		"Read access logs that exist at start-up from their beginning (default: from their end, so a restart does not count lines twice).").
		Default("false").BoolVar(&cfg.fromStart)
	app.Flag("accesslog.route",
		"Route class name=regex (repeatable; first match wins; unmatched paths count as other). name is [a-z0-9_]{1,32}; the RE2 regex is matched against the path without query, anchor it with ^. The path itself is never exported.").
		SetValue(&cfg.routes)
	app.Flag("accesslog.client-ip",
		"Which address is the client's: remote_addr (the front's direct peer) or x-forwarded-for (the rightmost hop not in --accesslog.trusted-proxies; Caddy: request.client_ip).").
		Default("remote_addr").EnumVar(&cfg.clientIP, "remote_addr", "x-forwarded-for")
	app.Flag("accesslog.trusted-proxies",
		"Comma-separated CIDR prefixes of trusted proxies for --accesslog.client-ip=x-forwarded-for. When set, X-Forwarded-For is believed only from a peer inside them.").
		SetValue(&cfg.trusted)
	app.Flag("accesslog.caddy-duration-format",
		"How Caddy writes \"duration\" (its log encoder's duration_format): seconds (s, second), ms (milli, millis), ns (nano, nanos), string, or auto (float seconds, integer nanoseconds or a Go duration string, told apart by their look; ms cannot be, set it). With a unit, a number is read in it whether or not it is whole; a Go duration string is read in any.").
		Default("auto").SetValue(&cfg.caddyDur)
	return func(env Env) (Collector, error) {
		return newAccesslogCollector(cfg, env)
	}
}

type accesslogCollector struct {
	counter  *accesslog.Counter
	follower *accesslog.Follower
	env      Env
}

func newAccesslogCollector(cfg *accesslogConfig, env Env) (*accesslogCollector, error) {
	format, err := accesslog.ParseFormat(cfg.format)
	if err != nil {
		return nil, err
	}
	clientIP, err := accesslog.ParseClientIPSource(cfg.clientIP)
	if err != nil {
		return nil, err
	}
	counter, err := accesslog.NewCounter(accesslog.Options{
		Format:         format,
		Routes:         cfg.routes.routes,
		ClientIP:       clientIP,
		TrustedProxies: cfg.trusted.prefixes,
		CaddyDuration:  cfg.caddyDur.unit,
		Now:            env.Now,
	})
	if err != nil {
		return nil, err
	}
	for _, p := range cfg.paths {
		if p == "" {
			return nil, errors.New("--accesslog.path is empty: give the access log's path, or leave the flag out")
		}
	}
	follower, err := accesslog.NewFollower(counter, accesslog.FollowOptions{
		Paths:     cfg.paths,
		FromStart: cfg.fromStart,
		Logger:    env.Logger,
		Settle:    env.Settle,
	})
	if err != nil {
		return nil, err
	}
	if len(cfg.paths) == 0 {
		env.Logger.Warn("accesslog collector: no --accesslog.path; request metrics stay at zero")
	}
	go follower.Run(env.Context)
	return &accesslogCollector{counter: counter, follower: follower, env: env}, nil
}

func (c *accesslogCollector) Update(ctx context.Context, ch chan<- prometheus.Metric) error {
	s := c.counter.Snapshot(c.env.Now())
	for _, r := range s.Requests {
		ch <- prometheus.MustNewConstMetric(httpRequestsDesc, prometheus.CounterValue, float64(r.Count), r.Method, r.Code, r.Route)
	}
	for _, h := range s.Durations {
		buckets := make(map[float64]uint64, len(h.Cumulative))
		for i, ub := range h.UpperBounds {
			buckets[ub] = h.Cumulative[i]
		}
		ch <- prometheus.MustNewConstHistogram(httpDurationDesc, h.Count, h.Sum, buckets, h.Route)
	}
	ch <- prometheus.MustNewConstMetric(httpResponseBytesDesc, prometheus.CounterValue, float64(s.ResponseBytes))
	for result, v := range s.Lines {
		ch <- prometheus.MustNewConstMetric(accesslogLinesDesc, prometheus.CounterValue, float64(v), result)
	}
	ch <- prometheus.MustNewConstMetric(accesslogRotationsDesc, prometheus.CounterValue, float64(c.follower.Rotations()))
	ch <- prometheus.MustNewConstMetric(accesslogFollowingDesc, prometheus.GaugeValue, float64(c.follower.Following()))
	ch <- prometheus.MustNewConstMetric(accesslogLastLineDesc, prometheus.GaugeValue, s.LastLineTimestamp)
	ch <- prometheus.MustNewConstMetric(uniqueIPs24hDesc, prometheus.GaugeValue, float64(s.UniqueIPs24h))
	ch <- prometheus.MustNewConstMetric(uniqueIPs1hDesc, prometheus.GaugeValue, float64(s.UniqueIPs1h))
	return nil
}
