#!/usr/bin/env bash
# The whole POP against the stack an operator would otherwise run (issue 13
# §5), side by side on the same load, for DURATION (default 5m; DURATION=60s
# for a quick run): an access log at 2,000 lines/s (combined + request time,
# mixed methods, codes, IPv4/IPv6 clients), every /metrics scraped each
# second, 300 scanners held in the SSH tarpit and 20 in the HTTP tarpit, a
# vault directory of 100,000 files with 10 creates or deletes per second.
#
#   clavis-telemetry (telemetry edition, default collectors, scanner log on)
#   vs node_exporter (cpu, meminfo, loadavg, filesystem, diskstats, netdev,
#      + textfile for the vault count), mtail (bench/accesslog.mtail on the
#      same log), endlessh (the same 320 scanners, -v log), and the peer's
#      vault count: find | awk every PEER_VAULT_INTERVAL (default 1m, cron's
#      granularity) writing a node_exporter textfile.
#
# First prints the library floor: the peak RSS of bench/rssfloor, an
# exporter of the same libraries serving nothing of its own.
# Prints CPU seconds, peak RSS, open fds, scrape p50/p99 per process and the
# ratios; RSS, fds and goroutines every 10 s; then, same processes with the
# log and vault load stopped, CPU per scrape of clavis-telemetry and
# node_exporter over back-to-back scrapes. CPU is from schedstat (ns).
# Targets: CPU <= 1/5 of the peer stack's, peak RSS <= 1/2 of the peers'
# sum, scrape p99 < 10 ms in every minute, no growth (RSS +10 % at most,
# fds and goroutines flat), CPU per scrape <= 0.5x node_exporter's.
# Exits non-zero when a target is missed or the run is invalid (a side
# missed work: vault count or log lines not exact, a process died).
# Extra driver flags: POPLOAD_ARGS (see go run ./bench/popload -h).
# PERF=file records a CPU profile of clavis-telemetry over the loaded phase
# with perf (call graphs from Go's frame pointers; the binary then keeps its
# symbols): read it with `perf report -i file --no-children`.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5m}
PEER_VAULT_INTERVAL=${PEER_VAULT_INTERVAL:-1m}
node=$(command -v prometheus-node-exporter || command -v node_exporter || true)
mtail=$(command -v mtail || true)
endlessh=$(command -v endlessh || true)
for b in node mtail endlessh; do
  [ -n "${!b}" ] || { echo "pop.sh: $b not installed (scripts/install-deps.sh)" >&2; exit 1; }
done
# 640 scanner sockets in the driver, 340 in each tarpit.
ulimit -n 4096 2>/dev/null || true
work=$(mktemp -d)
trap 'st=$?; rm -rf "$work/run/vaults"; if [ $st -ne 0 ] && [ -d "$work/run" ]; then echo "logs kept in $work/run"; else rm -rf "$work"; fi' EXIT
strip="-s -w"
[ -z "${PERF:-}" ] || strip=""
CGO_ENABLED=0 go build -trimpath -ldflags "$strip" -tags telemetry -o "$work/clavis-telemetry" ./cmd/clavis-telemetry
CGO_ENABLED=0 go build -trimpath -o "$work/popload" ./bench/popload
echo "whole-POP benchmark: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), clavis-telemetry $(git describe --always --dirty 2>/dev/null || echo dev),"
echo "  $("$node" --version 2>&1 | head -1 | cut -d' ' -f1-3), $("$mtail" --version 2>&1 | head -1 | cut -d' ' -f1-3), $("$endlessh" -V 2>&1 | head -1)"
# The floor under our RSS: an exporter of the same libraries (Registry, Go
# and process collectors, promhttp, exporter-toolkit) serving nothing else.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$work/rssfloor" ./bench/rssfloor
floor_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
GOMAXPROCS=1 "$work/rssfloor" -web.listen-address=127.0.0.1:$floor_port 2>/dev/null &
floor_pid=$!
for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$floor_port/metrics" 2>/dev/null && break; sleep 0.1; done
for _ in $(seq 30); do curl -fsS -o /dev/null "http://127.0.0.1:$floor_port/metrics"; done
echo "  library floor (bench/rssfloor, 30 scrapes): peak RSS $(awk '/^VmHWM/{printf "%.1f MiB", $2/1024}' /proc/$floor_pid/status)"
kill "$floor_pid"; wait "$floor_pid" 2>/dev/null || true
if [ -n "${PERF:-}" ]; then
  command -v perf >/dev/null || { echo "pop.sh: PERF set but perf is not installed" >&2; exit 1; }
  (
    # The loaded phase starts once the vault directory is made and the
    # processes are up; wait for the agent, then record for DURATION.
    while ! pid=$(pgrep -x -f "$work/clavis-telemetry .*" | head -1) || [ -z "$pid" ]; do sleep 0.5; done
    sleep 5
    perf record -q -F 499 -g -o "$PERF" -p "$pid" -- sleep "$DURATION" >/dev/null 2>&1 || true
  ) &
fi
# shellcheck disable=SC2086
"$work/popload" -clavis "$work/clavis-telemetry" -node "$node" -mtail "$mtail" -endlessh "$endlessh" \
  -mtail-prog bench/accesslog.mtail -duration "$DURATION" -peer-vault-interval "$PEER_VAULT_INTERVAL" \
  -tmp "$work/run" ${POPLOAD_ARGS:-}
