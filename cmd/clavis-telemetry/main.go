// Command clavis-telemetry runs on every Clavitor POP. In the telemetry and
// commercial editions it serves /metrics (operational signals only, behind a
// privacy gate); in every edition it runs the scanner tarpit.
//
// This file holds what all editions share. telemetry_on.go and
// telemetry_off.go are chosen by build tags, so the community edition's
// binary links no collector, promhttp or exposition code at all.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"

	"github.com/clavitor/clavis-telemetry/internal/cliflag"
	"github.com/clavitor/clavis-telemetry/internal/logscrub"
	"github.com/clavitor/clavis-telemetry/tarpit"
)

const program = "clavis-telemetry"

// listenAddressKey is the log attribute that carries the agent's own listen
// addresses (exporter-toolkit's "Listening on", the tarpit's listeners):
// the only one the log scrubber leaves as it is. Never log a client's
// address under it.
const listenAddressKey = "address"

// DefaultListenAddress is the documented default port of the exporter.
const DefaultListenAddress = ":9745"

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// run parses args and serves until ctx is done or a signal arrives. It
// returns the process exit code: 2 for bad flags, 1 for a failure at start-up.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	app, f := newApp(stderr)
	tarpitConfig, tel, webLimits, checkWebLimits, maxProcs, logConfig :=
		f.tarpit, f.tel, f.webLimits, f.checkWebLimits, f.maxProcs, f.log

	exited := false
	app.Terminate(func(int) { exited = true })
	_, err := app.Parse(args)
	if exited { // --help or --version printed; kingpin asked to exit
		return 0
	}
	if err == nil {
		err = cliflag.CheckWholeNumbers(app, args)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: error: %v (try --help)\n", program, editionFlagHint(cliflag.NameError(app, args, err)))
		return 2
	}

	// Every flag and config error exits 2 with the flag's name, before
	// anything is logged as started or listening.
	for _, check := range []func() error{checkWebLimits, tel.validate, tarpitConfig.Validate} {
		if err := check(); err != nil {
			fmt.Fprintf(stderr, "%s: error: %v\n", program, err)
			return 2
		}
	}

	// Every line the agent logs is scrubbed of addresses (hard rule 4).
	logger := slog.New(logscrub.NewHandler(promslog.New(logConfig).Handler(), scrubAddresses, listenAddressKey))
	if *maxProcs > 0 {
		runtime.GOMAXPROCS(int(*maxProcs))
	}
	logger.Info("starting "+program, "edition", edition, "version", version.Info(), "build_context", version.BuildContext())

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()

	trap, err := tarpit.New(*tarpitConfig, logger.With("component", "tarpit"))
	var tle *tarpit.ListenError
	if errors.As(err, &tle) {
		logger.Error("cannot start tarpit", "flag", "--"+tle.Flag, listenAddressKey, tle.Addr, "err", tle.Err)
		return 1
	}
	if err != nil {
		logger.Error("cannot start tarpit", "err", err)
		if tarpit.IsConfigError(err) { // the scanner log's path: fix the flag, do not restart
			return 2
		}
		return 1
	}

	var ready atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "Healthy\n")
	})
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if !ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, "Not ready\n")
			return
		}
		io.WriteString(w, "Ready\n")
	})
	landing, err := tel.mount(ctx, mux, logger, trap)
	if err != nil {
		// Building the collectors fails only on their flags (a filter
		// pair, an empty path, a --path.* that is no procfs): exit 2,
		// which the unit's RestartPreventExitStatus= does not restart.
		logger.Error("cannot start telemetry", "err", err)
		return 2
	}
	// "/" is the landing page; every path nobody legitimate asks for goes to
	// the HTTP tarpit.
	mux.Handle("/", rootHandler(landing, trap))

	web := &webServer{handler: mux, trap: trap, limits: *webLimits, logger: logger.With("component", "web")}

	// Both run until ctx is done; whichever fails first stops the other.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	serveErr := make(chan error, 1)
	go func() { serveErr <- tel.serve(ctx, web, logger) }()
	go func() {
		if err := trap.Run(ctx); err != nil {
			logger.Error("tarpit failed", "err", err)
			cancel()
		}
	}()
	ready.Store(true)

	code := 0
	select {
	case <-ctx.Done():
		logger.Info("shutting down")
		<-serveErr // the listeners shut down gracefully
	case err := <-serveErr:
		var le *listenError
		if errors.As(err, &le) { // name the address: the scrubber takes it out of err
			logger.Error("cannot listen", listenAddressKey, le.addr, "err", le.err)
		} else {
			logger.Error("web server failed", "err", err)
		}
		code = 1
		cancel()
	}
	// Let the tarpit close its trapped clients and flush their close lines
	// to the scanner log before the process exits.
	select {
	case <-trap.Done():
	case <-time.After(shutdownTimeout):
	}
	return code
}

// appFlags holds what the command line sets, once parsed.
type appFlags struct {
	tarpit         *tarpit.Config
	tel            *telemetry
	webLimits      *webLimits
	checkWebLimits func() error
	maxProcs       *gomaxprocsValue
	log            *promslog.Config
}

// newApp declares every flag of this edition on a new kingpin application.
// The README's flag table is checked against its model (readme_test.go).
// A plain `go build` sets no ldflags: take the version from what the
// toolchain recorded, for --version, the landing page, the start-up line
// and clavis_build_info alike. Once, before main, as ldflags would: run is
// called by parallel tests, and the version is the process's.
func init() {
	version.Version, version.Revision = buildVersion(version.Version, version.GetRevision(), debug.ReadBuildInfo)
}

func newApp(stderr io.Writer) (*kingpin.Application, *appFlags) {
	app := kingpin.New(program, "Operational telemetry and scanner tarpit for a Clavitor POP ("+edition+" edition).")
	app.UsageWriter(stderr)
	app.ErrorWriter(stderr)
	app.Terminate(nil)
	// The edition is in no tag of a community build ("tags: unknown").
	app.Version(version.Print(program) + "\n  edition:          " + edition)
	app.HelpFlag.Short('h')

	f := &appFlags{}
	f.tarpit = tarpit.AddFlags(app)
	f.tel = addTelemetryFlags(app)
	f.webLimits, f.checkWebLimits = addWebLimitFlags(app)
	f.tel.writeTimeout = &f.webLimits.writeTimeout
	f.maxProcs = new(gomaxprocsValue)
	// Default 1, as node_exporter's --runtime.gomaxprocs: the agent's work
	// (a scrape every few seconds, a log read every 200 ms, the tarpit's
	// one scheduler) never needs two CPUs at once, and every extra P is
	// another thread the runtime wakes and spins. Measured in the
	// whole-POP run (bench/pop.sh, docs/benchmarks.md): CPU per scrape
	// 3.24 -> 1.93 ms and idle CPU 1.10 -> 0.49 ms/s on 2 cores.
	app.Flag("runtime.gomaxprocs",
		"CPUs the Go runtime may use at once (GOMAXPROCS), 0 to 1024; 0 uses Go's default (the host's CPUs, or the cgroup's CPU limit). One, as node_exporter's default, is enough for the agent's work and keeps it off the vault service's cores.").
		Default("1").Envar("GOMAXPROCS").SetValue(f.maxProcs)
	f.log = &promslog.Config{Writer: stderr}
	promslogflag.AddFlags(app, f.log)
	return app, f
}

// rootHandler answers "/" with the landing page and hands every other path to
// the tarpit.
func rootHandler(landing http.Handler, trap http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/" {
			landing.ServeHTTP(w, r)
			return
		}
		trap.ServeHTTP(w, r)
	})
}

// gomaxprocsValue is --runtime.gomaxprocs: its errors name the flag and the
// environment variable it also comes from (kingpin's int says only
// `strconv.ParseFloat: parsing "abc"`).
type gomaxprocsValue int

func (v *gomaxprocsValue) Set(s string) error {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	if err != nil || n < 0 || n > 1024 {
		return fmt.Errorf("--runtime.gomaxprocs (or the GOMAXPROCS environment variable) is %q: want a whole number of CPUs from 0 (Go's default) to 1024", s)
	}
	*v = gomaxprocsValue(n)
	return nil
}

func (v *gomaxprocsValue) String() string { return strconv.Itoa(int(*v)) }

// buildVersion returns the version and revision set by the Makefile's
// ldflags, and for a plain `go build` (which sets neither) what the Go
// toolchain recorded: the module's version and the VCS revision.
func buildVersion(v, rev string, read func() (*debug.BuildInfo, bool)) (string, string) {
	if v != "" && rev != "" && rev != "unknown" {
		return v, rev
	}
	info, ok := read()
	if !ok {
		return orUnknown(v), orUnknown(rev)
	}
	if v == "" {
		v = info.Main.Version
	}
	if rev == "" || rev == "unknown" {
		rev = ""
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	return orUnknown(v), orUnknown(rev)
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
