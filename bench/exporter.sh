#!/usr/bin/env bash
# Benchmark of the system collectors: clavis-telemetry (telemetry edition)
# and Debian's prometheus-node-exporter, side by side on loopback with the
# equivalent collectors, scraped in turn N times each (default 1000) by
# bench/scrapebench with Prometheus' Accept header and gzip. Prints CPU time
# of each exporter process per scrape (from schedstat, and from the ticks of
# /proc/PID/stat), p50/p99 latency, RSS and response size, and the ratios to
# node_exporter.
#
# Passes:
#   1. the two exporters alone, side by side as issue 2 describes, the
#      collectors only (own Go/process metrics off on both), back to back.
#      Target verdicts.
#   2. references, each in rotation with node_exporter alone, as in pass 1
#      (no verdicts):
#        lower-bound       clavis-telemetry's own collectors served with
#                          nothing else (bench/lowerbound): no goroutine or
#                          timeout per collector, no sorting, checks or
#                          privacy gate. The least these collectors can be
#                          served with.
#        lower-bound-conc  the same with the collectors run as issue 2 asks:
#                          a goroutine and the scrape timeout each, and their
#                          duration and success series.
#        go-http-floor     a bare Go HTTP server with a fixed body of the
#                          same size (bench/httpfloor): the part of a
#                          scrape's cost that comes with net/http and the Go
#                          runtime.
#   3. all of them in one rotation, for the CPU of each above the floor.
#      More processes in turn leave every cache colder, which costs the
#      small exporters more: ratios here are higher than in passes 1 and 2.
#   4. pass 1 with GAP of idle time after each round (NCOLD rounds), as
#      between the scrapes of a real Prometheus, where every scrape starts
#      from cold caches and sleeping threads. Target verdicts; then each
#      reference the same way, in rotation with node_exporter alone. With
#      the default 100ms gap node_exporter costs what issue 2 measured
#      (3-4 ms per scrape on 2 cores).
#   5. as shipped: both with their own Go/process metrics on (the default
#      of each), node_exporter with exactly the flags issue 2 names. Target
#      verdicts.
# Targets (issue 2): CPU per scrape <= 1/8 of node_exporter's, p99 < 5 ms,
# RSS < 15 MB. The script reports them; it fails only if a scrape fails.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-1000}
NCOLD=${NCOLD:-200}
GAP=${GAP:-100ms}
work=$(mktemp -d -p "${TMPDIR:-/var/tmp}" exporter-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

node=$(command -v prometheus-node-exporter || true)
[ -n "$node" ] || for d in /usr/bin /usr/sbin; do [ -x $d/prometheus-node-exporter ] && node=$d/prometheus-node-exporter; done
[ -n "$node" ] || { echo "prometheus-node-exporter not installed (run scripts/install-deps.sh)" >&2; exit 1; }

# Built like `make build` builds it (static, stripped), so RSS is what a POP
# runs.
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -tags telemetry -o "$work/clavis-telemetry" ./cmd/clavis-telemetry
go build -o "$work/scrapebench" ./bench/scrapebench
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -o "$work/httpfloor" ./bench/httpfloor
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -tags telemetry,lowerbound -o "$work/lowerbound" ./bench/lowerbound

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 100); do curl -fsS -o /dev/null "$1" 2>/dev/null && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }

nport=$(free_port)
"$node" --web.listen-address=127.0.0.1:$nport --web.disable-exporter-metrics \
  --collector.disable-defaults --collector.cpu --collector.meminfo --collector.filesystem \
  --collector.loadavg --collector.diskstats --collector.netdev >"$work/node.log" 2>&1 &
npid=$!; pids+=($npid)

cport=$(free_port)
"$work/clavis-telemetry" --web.listen-address=127.0.0.1:$cport --web.disable-exporter-metrics \
  --collector.disable-defaults --collector.cpu --collector.memory --collector.filesystem \
  --collector.loadavg --collector.diskstats --collector.netdev >"$work/clavis.log" 2>&1 &
cpid=$!; pids+=($cpid)

# The floor: a bare Go HTTP server with a fixed body of the same size.
fport=$(free_port)
"$work/httpfloor" -listen 127.0.0.1:$fport >"$work/floor.log" 2>&1 &
fpid=$!; pids+=($fpid)

# The lower bound: the same collectors and flags, served with nothing else.
lport=$(free_port)
"$work/lowerbound" --listen=127.0.0.1:$lport \
  --collector.disable-defaults --collector.cpu --collector.memory --collector.filesystem \
  --collector.loadavg --collector.diskstats --collector.netdev >"$work/lowerbound.log" 2>&1 &
lpid=$!; pids+=($lpid)
lcport=$(free_port)
"$work/lowerbound" --listen=127.0.0.1:$lcport --concurrent \
  --collector.disable-defaults --collector.cpu --collector.memory --collector.filesystem \
  --collector.loadavg --collector.diskstats --collector.netdev >"$work/lowerbound-conc.log" 2>&1 &
lcpid=$!; pids+=($lcpid)

# As shipped: exporter metrics on.
nsport=$(free_port)
"$node" --web.listen-address=127.0.0.1:$nsport \
  --collector.disable-defaults --collector.cpu --collector.meminfo --collector.filesystem \
  --collector.loadavg --collector.diskstats --collector.netdev >"$work/node-shipped.log" 2>&1 &
nspid=$!; pids+=($nspid)
csport=$(free_port)
"$work/clavis-telemetry" --web.listen-address=127.0.0.1:$csport \
  --collector.disable-defaults --collector.cpu --collector.memory --collector.filesystem \
  --collector.loadavg --collector.diskstats --collector.netdev >"$work/clavis-shipped.log" 2>&1 &
cspid=$!; pids+=($cspid)

wait_ready "http://127.0.0.1:$nport/metrics"
wait_ready "http://127.0.0.1:$nsport/metrics"
wait_ready "http://127.0.0.1:$csport/metrics"
wait_ready "http://127.0.0.1:$fport/metrics"
wait_ready "http://127.0.0.1:$lport/metrics"
wait_ready "http://127.0.0.1:$lcport/metrics"
wait_ready "http://127.0.0.1:$cport/metrics"

echo "exporter benchmark: $(nproc) cores, $("$node" --version 2>&1 | head -1), clavis-telemetry $(git describe --always --dirty 2>/dev/null || echo dev)"
echo "series: node_exporter $(curl -fsS http://127.0.0.1:$nport/metrics | grep -vc '^#'), clavis-telemetry $(curl -fsS http://127.0.0.1:$cport/metrics | grep -vc '^#')"
node="node_exporter=http://127.0.0.1:$nport/metrics@$npid"
clavis="clavis-telemetry=http://127.0.0.1:$cport/metrics@$cpid"
lower="lower-bound=http://127.0.0.1:$lport/metrics@$lpid"
lowerconc="lower-bound-conc=http://127.0.0.1:$lcport/metrics@$lcpid"
floor="go-http-floor=http://127.0.0.1:$fport/metrics@$fpid"
verdicts=(-target-cpu-ratio 0.125 -target-p99 5ms -target-rss-mb 15)

echo; echo "== 1. node_exporter and clavis-telemetry alone, collectors only, back to back"
"$work/scrapebench" "${verdicts[@]}" -n "$N" "$node" "$clavis"

echo; echo "== 2. references, each in rotation with node_exporter alone ($N rounds each; table rows and ratios)"
for ref in "$lower" "$lowerconc" "$floor"; do
  name=${ref%%=*}
  "$work/scrapebench" -reference "$name" -n "$N" "$node" "$ref" | grep -E "^($name|node_exporter) " | grep -v '^node_exporter /'
done

echo; echo "== 3. all in one rotation, back to back"
"$work/scrapebench" -reference lower-bound,lower-bound-conc,go-http-floor -floor go-http-floor "${verdicts[@]}" \
  -n "$N" "$node" "$clavis" "$lower" "$lowerconc" "$floor"

echo; echo "== 4. pass 1 with $GAP idle between rounds"
"$work/scrapebench" "${verdicts[@]}" -n "$NCOLD" -warmup 5 -gap "$GAP" "$node" "$clavis"
echo "-- references, each in rotation with node_exporter alone, $GAP idle between rounds"
for ref in "$lower" "$lowerconc" "$floor"; do
  name=${ref%%=*}
  "$work/scrapebench" -reference "$name" -n "$NCOLD" -warmup 5 -gap "$GAP" "$node" "$ref" | grep -E "^($name|node_exporter) " | grep -v '^node_exporter /'
done

echo; echo "== 5. as shipped: each exporter's own Go/process metrics on"
"$work/scrapebench" "${verdicts[@]}" -n "$N" \
  "node_exporter=http://127.0.0.1:$nsport/metrics@$nspid" \
  "clavis-telemetry=http://127.0.0.1:$csport/metrics@$cspid"
