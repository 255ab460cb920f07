#!/usr/bin/env bash
# Main listener under an idle-connection flood (issue 13 §3).
#
# Scrapes /metrics over TLS + basic auth (one keep-alive client, as
# Prometheus does, every 100 ms) with no flood, then while 20,000
# connections from loopback sit open (10,000 half-open, 10,000 idle
# keep-alive TLS after one request, from 8 source addresses of 127/8), then
# while they churn (every one the server closes is reopened after 1 s).
# The peer is Debian's node_exporter behind the same web config and flood.
# Prints per phase: scrapes, failures, p50/p99/max latency, the server's
# open fds and RSS. docs/benchmarks.md, "Main listener under
# idle-connection flood", has the current figures.
#
#   bash bench/listener.sh            # SCRAPES=200 by default
#   SPLIT=1 bash bench/listener.sh    # flood on the last CPU, server and
#                                     # scraper on the others: on a POP the
#                                     # attacker's CPU is not the server's
set -euo pipefail
cd "$(dirname "$0")/.."
SCRAPES=${SCRAPES:-200}
# With SPLIT set, the flood generator (whose TLS handshakes cost as much as
# the server's) is pinned away from the server and the scraper.
serve_on=() flood_on=()
if [ -n "${SPLIT:-}" ]; then
	last=$(($(nproc) - 1))
	[ "$last" -ge 1 ] || { echo "SPLIT needs 2 CPUs"; exit 1; }
	serve_on=(taskset -c "0-$((last - 1))") flood_on=(taskset -c "$last")
fi
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -tags commercial -o "$tmp/clavis-telemetry" ./cmd/clavis-telemetry
go build -o "$tmp/connflood" ./bench/connflood
"$tmp/connflood" webconfig -dir "$tmp" -user prometheus -password bench-secret
node_exporter=$(command -v prometheus-node-exporter || command -v node_exporter || true)
[ -n "$node_exporter" ] || { echo "node_exporter not installed (make deps)"; exit 1; }

cputicks() { awk '{print $14 + $15}' "/proc/$1/stat"; } # utime + stime

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

wait_tls() {
	for _ in $(seq 200); do
		curl -skf -u prometheus:bench-secret -o /dev/null "https://$1/metrics" && return 0
		sleep 0.1
	done
	echo "server on $1 did not come up"; exit 1
}

phase() { # name server-pid addr
	local out
	local cpu0; cpu0=$(cputicks "$2")
	out=$("${serve_on[@]}" "$tmp/connflood" scrape -url "https://$3/metrics" -user prometheus -password bench-secret -insecure \
		-count "$SCRAPES" -interval 100ms -timeout 10s 2>/dev/null)
	printf '%-16s %-26s %s fds=%s rss_kb=%s cpu_s=%s\n' "$1" "$4" "$out" \
		"$(ls /proc/$2/fd | wc -l)" "$(awk '/VmRSS/ {print $2}' /proc/$2/status)" \
		"$(awk -v a="$cpu0" -v b="$(cputicks "$2")" -v hz="$(getconf CLK_TCK)" 'BEGIN {printf "%.2f", (b - a) / hz}')"
}

flood() { # addr reconnect-arg... ; starts two flood processes, waits for both
	local addr=$1; shift
	: > "$tmp/flood1"; : > "$tmp/flood2"
	"${flood_on[@]}" "$tmp/connflood" flood -addr "$addr" -n 10000 -src 127.0.1.1,127.0.1.2,127.0.1.3,127.0.1.4 "$@" > "$tmp/flood1" & pids+=($!); f1=$!
	"${flood_on[@]}" "$tmp/connflood" flood -addr "$addr" -n 10000 -src 127.0.2.1,127.0.2.2,127.0.2.3,127.0.2.4 -tls -request "$@" > "$tmp/flood2" & pids+=($!); f2=$!
	for _ in $(seq 1800); do
		grep -q ready "$tmp/flood1" && grep -q ready "$tmp/flood2" && return 0
		sleep 0.1
	done
	echo "flood did not get its connections open"; exit 1
}

stop_flood() { kill "$f1" "$f2" 2>/dev/null || true; wait "$f1" "$f2" 2>/dev/null || true; sleep 2; }

run_side() { # name command...
	local name=$1; shift
	local port; port=$(free_port)
	"$@" "127.0.0.1:$port" > "$tmp/$name.log" 2>&1 & local pid=$!; pids+=($pid)
	wait_tls "127.0.0.1:$port"
	phase "$name" "$pid" "127.0.0.1:$port" "no flood"
	flood "127.0.0.1:$port"
	phase "$name" "$pid" "127.0.0.1:$port" "20,000 held open"
	stop_flood
	flood "127.0.0.1:$port" -reconnect 1s
	phase "$name" "$pid" "127.0.0.1:$port" "20,000 churning (1 s)"
	stop_flood
	kill "$pid"; wait "$pid" 2>/dev/null || true
}

ours() { exec "${serve_on[@]}" "$tmp/clavis-telemetry" --web.config.file="$tmp/web.yml" --tarpit.log.file= --web.listen-address="$1"; }
peer() { exec "${serve_on[@]}" "$node_exporter" --web.config.file="$tmp/web.yml" --web.listen-address="$1"; }

echo "clavis-telemetry (commercial, --web.max-connections=256) vs $("$node_exporter" --version 2>&1 | head -1); fd limit $(ulimit -n); $(nproc) CPUs${SPLIT:+, flood pinned apart}"
run_side clavis-telemetry ours
run_side node_exporter peer
