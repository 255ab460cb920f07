#!/usr/bin/env bash
# Benchmark of alertbridge (issue 15 §4), against the built binary on
# loopback with its bbolt spool on local disk, side by side with the plain
# HTTP floor (bench/alertbridgeload -serve-floor: the same requests read
# and decoded by a Go HTTP server that keeps nothing) under the same load.
#
# 1. Durable intake: C senders post Alertmanager v4 payloads of 1 and of 50
#    alerts, every alert new (each one fsync'd in the spool before the 2xx),
#    with an authenticated sender, ntfy + Kuma targets active (the fake
#    from internal/fakenotify) and the delivery workers draining meanwhile.
#    Targets: >= 5,000 alerts/s with 1-alert payloads and 16 senders,
#    p99 < 20 ms; >= 20,000 alerts/s with 50-alert payloads.
# 2. Drain: 10,000 one-alert groups through a fake ntfy that answers 503
#    to 20 % of publishes at random (storm guard off, so every page is a
#    publish): time from the first post to an empty spool. Target < 60 s.
#
# DURATION (default 10s) per intake run; CONC (16) senders; PAGES (10000).
# Exits non-zero if a run has errors.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
CONC=${CONC:-16}
PAGES=${PAGES:-10000}
work=$(mktemp -d -p "${TMPDIR:-/var/tmp}" alertbridge-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/alertbridge" ./cmd/alertbridge
go build -o "$work/fakenotify" ./internal/fakenotify/cmd/fakenotify
go build -o "$work/load" ./bench/alertbridgeload

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }
metric() { curl -fsS "$1/metrics" | awk -v m="$2" '$1==m {print $2}'; }

printf 'bench-webhook-token\n' >"$work/token"
fport=$(free_port)
"$work/fakenotify" --listen=127.0.0.1:$fport --kuma.token=benchtok --ntfy.token=tk --quiet 2>"$work/fake.log" &
pids+=($!)
wait_ready "http://127.0.0.1:$fport/-/fake/ntfy/messages"

run_bridge() { # name ntfy-port, extra args...
  local name=$1 np=$2; shift 2
  local port; port=$(free_port)
  "$work/alertbridge" --web.listen-address=127.0.0.1:$port --spool.path="$work/$name/spool.db" --webhook.token-file="$work/token" \
    --ntfy.url=http://127.0.0.1:$np/bench --ntfy.token=tk --kuma.push-url=http://127.0.0.1:$np/api/push/benchtok \
    --watchdog.interval=0 "$@" >"$work/$name.log" 2>&1 &
  bpid=$!
  pids+=($bpid)
  wait_ready "http://127.0.0.1:$port/-/ready"
  base="http://127.0.0.1:$port"
}

echo "alertbridge benchmark ($(nproc) cores, spool on $(df --output=fstype "$work" | tail -1) at $work, ${DURATION} per intake run, $CONC senders)"
status=0

floor_port=$(free_port)
"$work/load" -serve-floor 127.0.0.1:$floor_port &
floor_pid=$!
pids+=($floor_pid)
wait_ready "http://127.0.0.1:$floor_port/-/ready"
run_bridge intake $fport --ntfy.max-per-minute=10
for n in 1 50; do
  "$work/load" -url "http://127.0.0.1:$floor_port/webhook" -alerts $n -concurrency $CONC -duration "$DURATION" -label "floor $n-alert" || status=1
  "$work/load" -url "$base/webhook" -token bench-webhook-token -alerts $n -concurrency $CONC -duration "$DURATION" -label "alertbridge $n-alert" || status=1
done
echo "  alertbridge: accepted $(metric "$base" clavis_alertbridge_alerts_accepted_total) alerts, spool $(metric "$base" clavis_alertbridge_spool_file_bytes) bytes"
kill $bpid $floor_pid; wait $bpid $floor_pid 2>/dev/null || true

# Drain through a flaky ntfy.
dport=$(free_port)
"$work/fakenotify" --listen=127.0.0.1:$dport --kuma.token=benchtok --ntfy.token=tk --ntfy.fail-ratio=0.2 --quiet 2>"$work/fake2.log" &
pids+=($!)
wait_ready "http://127.0.0.1:$dport/-/fake/ntfy/messages"
run_bridge drain $dport --ntfy.max-per-minute=100000
start=$(date +%s.%N)
"$work/load" -url "$base/webhook" -token bench-webhook-token -alerts 1 -concurrency $CONC -duration 10m -max-requests $PAGES -label "drain intake" || status=1
while :; do
  d=$(metric "$base" 'clavis_alertbridge_spool_depth{target="ntfy"}')
  [ "$d" = 0 ] && break
  sleep 0.2
done
end=$(date +%s.%N)
sent=$(metric "$base" 'clavis_alertbridge_notifications_sent_total{target="ntfy"}')
retried=$(metric "$base" 'clavis_alertbridge_notifications_retried_total{target="ntfy"}')
failed=$(metric "$base" 'clavis_alertbridge_notifications_failed_total{target="ntfy"}')
printf 'drain: %d pages, 20%% of publishes 503: empty spool after %.1f s (sent %s, retried %s, failed %s)\n' \
  "$PAGES" "$(echo "$end - $start" | bc)" "$sent" "$retried" "$failed"
[ "$sent" = "$PAGES" ] || status=1
exit $status
