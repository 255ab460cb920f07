// Command rssfloor is the smallest exporter built from the libraries issue 13
// asks the agent to use: a prometheus.Registry with the Go and process
// collectors, promhttp.HandlerFor and exporter-toolkit's listener, serving
// nothing of its own. Its RSS after a few scrapes is the floor under the
// agent's, which bench/pop.sh compares with node_exporter + mtail + endlessh.
//
//	go run ./bench/rssfloor -web.listen-address=127.0.0.1:9999
package main

import (
	"flag"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
)

func main() {
	addr := flag.String("web.listen-address", "127.0.0.1:9999", "listen address")
	flag.Parse()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{EnableOpenMetrics: true}))
	srv := &http.Server{Handler: mux}
	flags := &web.FlagConfig{WebListenAddresses: &[]string{*addr}, WebConfigFile: new(string)}
	if err := web.ListenAndServe(srv, flags, slog.New(slog.NewTextHandler(os.Stderr, nil))); err != nil {
		slog.Error("listen", "err", err)
		os.Exit(1)
	}
}
