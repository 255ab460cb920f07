//go:build lowerbound

// Command lowerbound serves /metrics from clavis-telemetry's own collectors
// with nothing else the exporter does for a scrape (collector.LowerBoundHandler:
// no per-collector goroutine or timeout, no sorting, checks or privacy gate).
// bench/exporter.sh runs it next to the exporter as a reference: the least
// CPU per scrape these collectors can be served with, on the same runtime
// settings (GOMAXPROCS 1, GOGC 50) and with the same collector flags.
//
//	go build -tags telemetry,lowerbound ./bench/lowerbound
//	lowerbound --listen=127.0.0.1:9746 [--concurrent] --collector.disable-defaults --collector.cpu ...
package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/alecthomas/kingpin/v2"

	"github.com/clavitor/clavis-telemetry/collector"
)

func main() {
	app := kingpin.New("lowerbound", "clavis-telemetry's collectors served with nothing else (benchmark reference).")
	listen := app.Flag("listen", "Address to serve /metrics on.").Default("127.0.0.1:0").String()
	concurrent := app.Flag("concurrent", "Run the collectors as the exporter does: a goroutine and the scrape timeout each, and their duration and success series.").Bool()
	set := collector.NewSet(app)
	kingpin.MustParse(app.Parse(os.Args[1:]))
	runtime.GOMAXPROCS(1)
	debug.SetGCPercent(50)
	scraper, err := set.Build(collector.Env{Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))})
	if err != nil {
		fmt.Fprintln(os.Stderr, "lowerbound:", err)
		os.Exit(1)
	}
	http.Handle("/metrics", collector.LowerBoundHandler(scraper, *concurrent))
	if err := http.ListenAndServe(*listen, nil); err != nil {
		fmt.Fprintln(os.Stderr, "lowerbound:", err)
		os.Exit(1)
	}
}
