// Command httpfloor is the floor bench/exporter.sh measures exporters
// against: a Go net/http server on one OS thread (GOMAXPROCS 1, as both
// exporters run) answering /metrics with a fixed body of the size of
// clavis-telemetry's exposition. What it costs per scrape, any Go exporter
// pays before reading a single /proc file.
package main

import (
	"flag"
	"log"
	"net/http"
	"runtime"
	"strconv"
	"strings"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:0", "address to serve on")
	size := flag.Int("size", 10500, "bytes of /metrics body")
	flag.Parse()
	runtime.GOMAXPROCS(1)
	line := `clavis_network_receive_bytes_total{device="eth0"} 1.234567e+09` + "\n"
	body := []byte(strings.Repeat(line, *size/len(line)+1)[:*size])
	http.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		_, _ = w.Write(body)
	})
	log.Fatal(http.ListenAndServe(*listen, nil))
}
