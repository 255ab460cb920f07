//go:build telemetry || commercial

package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/coreos/go-systemd/v22/activation"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/clavitor/clavis-telemetry/collector"
	"github.com/clavitor/clavis-telemetry/internal/logscrub"
	"github.com/clavitor/clavis-telemetry/privacy"
	"github.com/clavitor/clavis-telemetry/tarpit"
)

type telemetry struct {
	web                    *web.FlagConfig
	collectors             *collector.Set
	disableExporterMetrics *bool
	maxRequests            *int
	compression            *bool
	writeTimeout           *time.Duration // --web.write-timeout, set by newApp
}

// maxScrapeRequests bounds --web.max-requests: a POP has a handful of
// scrapers (an HA pair, a person with curl); more in flight at once is a
// flood, not monitoring.
const maxScrapeRequests = 1000

func addTelemetryFlags(app *kingpin.Application) *telemetry {
	t := &telemetry{
		web:        kingpinflag.AddFlags(app, DefaultListenAddress),
		collectors: collector.NewSet(app),
	}
	if edition == "commercial" {
		t.collectors.HideCoreSwitches()
	}
	// exporter-toolkit's help offers vsock:// addresses; the agent listens
	// on TCP only (checkListenAddresses).
	app.GetFlag("web.listen-address").Help("Addresses on which to expose metrics and the web interface (repeatable), TCP host:port: `:9745` or `[::1]:9745`.")
	t.disableExporterMetrics = app.Flag("web.disable-exporter-metrics",
		"Exclude the exporter's own Go and process metrics (go_*, process_*, promhttp_*) from /metrics.").Bool()
	t.maxRequests = app.Flag("web.max-requests",
		"Maximum number of concurrent scrape requests; 0 disables the limit.").Default("10").Int()
	t.compression = app.Flag("web.compression",
		"Gzip /metrics when the scraper asks for it. Off by default: a POP's exposition is about 24 kB per scrape, and gzip would add about half again to the exporter's CPU per scrape on the POP for a few kB saved.").
		Default("false").Bool()
	return t
}

// validate refuses, in the commercial edition, any flag that would turn
// core telemetry off: disabling a core collector, or a collector timeout too
// short for any collector to finish.
// editionFlagHint is for the community edition, which lacks this
// edition's flags; here every flag is declared.
func editionFlagHint(err error) error { return err }

func (t *telemetry) validate() error {
	if !*t.web.WebSystemdSocket {
		if err := checkListenAddresses("web.listen-address", *t.web.WebListenAddresses); err != nil {
			return err
		}
	} else if os.Getenv("LISTEN_FDS") == "" {
		// A configuration error like any other flag's (exit 2, which the
		// unit's RestartPreventExitStatus= does not restart every 5 s).
		return errNoSystemdSockets
	}
	if err := checkWebConfig(*t.web.WebConfigFile); err != nil {
		return err
	}
	if n := *t.maxRequests; n < 0 || n > maxScrapeRequests {
		return fmt.Errorf("--web.max-requests=%d is out of range: it must be between 0 (no limit) and %d", n, maxScrapeRequests)
	}
	if w := t.writeTimeout; w != nil && *w <= t.collectors.Timeout() {
		return fmt.Errorf("--web.write-timeout=%s: must be longer than --collector.timeout=%s, or every scrape that waits for a slow collector is cut off before its answer", *w, t.collectors.Timeout())
	}
	if edition == "commercial" {
		if err := t.collectors.CheckEnforced(); err != nil {
			return err
		}
		return t.collectors.CheckTimeout(collector.MinCommercialCollectorTimeout)
	}
	return nil
}

var errNoSystemdSockets = errors.New("--web.systemd-socket: systemd passed no sockets (LISTEN_FDS unset): start the service from a .socket unit, " +
	"or drop the flag to listen on --web.listen-address")

// serve runs every --web.listen-address (or the systemd sockets) through
// exporter-toolkit, so TLS and basic auth come from --web.config.file and
// follow its changes, until ctx is done. Requests for paths the exporter
// does not serve go to the tarpit in front of the auth check.
func (t *telemetry) serve(ctx context.Context, ws *webServer, logger *slog.Logger) error {
	var listeners []net.Listener
	var err error
	if *t.web.WebSystemdSocket {
		logger.Info("Listening on systemd activated listeners instead of port listeners.")
		if listeners, err = activation.Listeners(); err == nil && len(listeners) == 0 {
			err = errNoSystemdSockets
		}
	} else {
		listeners, err = listenTCP(*t.web.WebListenAddresses)
	}
	if err != nil {
		return err
	}
	return ws.serveAll(ctx, listeners, func(l net.Listener, srv *http.Server) error {
		return web.Serve(l, srv, t.web, logger)
	})
}

// mount adds /metrics to mux and returns the landing page.
func (t *telemetry) mount(ctx context.Context, mux *http.ServeMux, logger *slog.Logger, trap *tarpit.Tarpit) (http.Handler, error) {
	env := collector.Env{Logger: logger.With("component", "collector"), Context: ctx, Enforced: edition == "commercial"}
	if trap != nil {
		env.Tarpit = trap
	}
	scraper, err := t.collectors.Build(env)
	if err != nil {
		return nil, err
	}
	logger.Info("telemetry enabled", "edition", edition, "collectors", fmt.Sprint(scraper.Names()))

	// Everything the POP says about itself passes the privacy gate; the
	// exporter's own go_*, process_* and promhttp_* families come from a
	// registry of their own next to it.
	pop := prometheus.NewRegistry()
	pop.MustRegister(scraper, buildInfo())
	gatherers := prometheus.Gatherers{privacy.NewGate(pop, logger)}
	opts := promhttp.HandlerOpts{
		ErrorLog:            logscrub.ScrapeErrorLog(logger),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: *t.maxRequests,
		EnableOpenMetrics:   true,
		DisableCompression:  !*t.compression,
	}
	var self *prometheus.Registry
	if !*t.disableExporterMetrics {
		self = prometheus.NewRegistry()
		self.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		gatherers = append(gatherers, self)
		opts.Registry = self // promhttp_metric_handler_errors_total
	}
	var handler http.Handler = promhttp.HandlerFor(gatherers, opts)
	if self != nil {
		handler = promhttp.InstrumentMetricHandler(self, handler)
	}
	mux.Handle("/metrics", handler)
	return web.NewLandingPage(web.LandingConfig{
		Name:        program,
		Description: "Operational telemetry for a Clavitor POP (" + edition + " edition). No user data is exported.",
		Version:     version.Info(),
		// exporter-toolkit links /debug/pprof/* by default; nothing serves
		// them here (the tarpit would hold the browser), so no links.
		Profiling: "false",
		Links:     []web.LandingLinks{{Address: "/metrics", Text: "Metrics"}, {Address: "/-/healthy", Text: "Health"}},
	})
}

// buildInfo is clavis_build_info{version,revision,edition} 1.
func buildInfo() prometheus.Collector {
	v, rev := version.Version, version.GetRevision() // filled in by newApp when ldflags set neither
	g := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: prometheus.BuildFQName(collector.Namespace, "", "build_info"),
		Help: "Which build of clavis-telemetry runs: version, revision and edition (community telemetry opt-in or commercial). Always 1.",
		ConstLabels: prometheus.Labels{
			"version":  v,
			"revision": rev,
			"edition":  edition,
		},
	})
	g.Set(1)
	return g
}
