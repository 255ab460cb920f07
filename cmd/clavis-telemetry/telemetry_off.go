//go:build !telemetry && !commercial

package main

import (
	"context"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/version"

	"github.com/clavitor/clavis-telemetry/tarpit"
)

// telemetry is absent from the community edition: no collector, promhttp or
// exposition code is linked (build_test.go checks with go tool nm). Even
// exporter-toolkit stays out, since its web package pulls in the Prometheus
// client; the listener here only carries health checks and the HTTP tarpit.
type telemetry struct {
	listenAddresses []string
	writeTimeout    *time.Duration // no scrape to outlast here
}

func addTelemetryFlags(app *kingpin.Application) *telemetry {
	t := &telemetry{}
	app.Flag("web.listen-address", "Address to listen on for health checks and the HTTP tarpit (repeatable).").
		Default(DefaultListenAddress).StringsVar(&t.listenAddresses)
	return t
}

func (t *telemetry) validate() error {
	return checkListenAddresses("web.listen-address", t.listenAddresses)
}

// telemetryOnlyFlags are the flags (a trailing dot: the flag families) only
// the telemetry editions declare. Only their names are here, no telemetry
// code.
var telemetryOnlyFlags = []string{"web.config.file", "web.systemd-socket", "web.disable-exporter-metrics",
	"web.max-requests", "web.compression", "collector.", "path.", "vault.", "accesslog."}

// editionFlagHint turns kingpin's "unknown long flag" for a flag of the
// telemetry editions into an error that says why this build lacks it and
// which build has it: an operator who followed the README's telemetry steps
// with the default build would otherwise be told only that the flag is unknown.
func editionFlagHint(err error) error {
	rest, ok := strings.CutPrefix(err.Error(), "unknown long flag '--")
	if !ok {
		return err
	}
	name := strings.TrimPrefix(strings.TrimSuffix(rest, "'"), "no-")
	for _, f := range telemetryOnlyFlags {
		if name == f || (strings.HasSuffix(f, ".") && strings.HasPrefix(name, f)) {
			return fmt.Errorf("%w: a flag of the telemetry editions, not of this community build without telemetry; "+
				"use bin/clavis-telemetry-telemetry or bin/clavis-telemetry-commercial from make build (go build -tags telemetry)", err)
		}
	}
	return err
}

func (*telemetry) mount(_ context.Context, mux *http.ServeMux, logger *slog.Logger, _ *tarpit.Tarpit) (http.Handler, error) {
	logger.Info("telemetry is not compiled into this build (community edition); only the tarpit runs. " +
		"To opt in, build with: go build -tags telemetry ./cmd/clavis-telemetry")
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "telemetry is not compiled into this build (community edition); build with -tags telemetry to opt in", http.StatusNotFound)
	})
	page := "<!DOCTYPE html><html><head><title>" + program + "</title></head><body><h1>" + program + "</h1>" +
		"<p>Community edition " + html.EscapeString(version.Info()) + ". Telemetry is not compiled in; " +
		"build with <code>-tags telemetry</code> to opt in.</p><p><a href=\"/-/healthy\">Health</a></p></body></html>\n"
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, page)
	}), nil
}

// serve listens on every --web.listen-address, plain HTTP, until ctx is
// done. The mux already sends unknown paths to the tarpit.
func (t *telemetry) serve(ctx context.Context, ws *webServer, logger *slog.Logger) error {
	listeners, err := listenTCP(t.listenAddresses)
	if err != nil {
		return err
	}
	for _, l := range listeners {
		logger.Info("Listening on", "address", l.Addr().String())
	}
	return ws.serveAll(ctx, listeners, func(l net.Listener, srv *http.Server) error {
		return srv.Serve(l)
	})
}
