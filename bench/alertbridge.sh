#!/usr/bin/env bash
# Benchmark of alertbridge's durable webhook intake: alerts per second
# accepted (each one fsync'd in the bbolt spool before the 2xx, fsyncs of
# concurrent webhooks batched) and time to 2xx, for payloads of 1 and 50
# alerts, against the built binary on loopback with the spool on local disk.
# Two configurations: no targets (intake alone) and ntfy + Kuma targets
# (served by the fake from internal/fakenotify), whose delivery workers
# drain the spool at the same time.
# Target: >= 2000 alerts/s and p99 < 20 ms for single-alert payloads.
# DURATION (default 10s) per run. Exits non-zero if a run has errors.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10s}
work=$(mktemp -d -p "${TMPDIR:-/var/tmp}" alertbridge-bench.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

go build -o "$work/alertbridge" ./cmd/alertbridge
go build -o "$work/fakenotify" ./internal/fakenotify/cmd/fakenotify
go build -o "$work/load" ./bench/alertbridgeload

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { for _ in $(seq 100); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; echo "not ready: $1" >&2; return 1; }

fport=$(free_port)
"$work/fakenotify" --listen=127.0.0.1:$fport --kuma.token=benchtok >/dev/null 2>"$work/fake.log" &
pids+=($!)

run_bridge() { # name, extra args...
  local name=$1; shift
  local port; port=$(free_port)
  "$work/alertbridge" --web.listen-address=127.0.0.1:$port --spool.path="$work/$name/spool.db" --webhook.insecure-no-auth "$@" >"$work/$name.log" 2>&1 &
  bpid=$!
  pids+=($bpid)
  wait_ready "http://127.0.0.1:$port/-/ready"
  url="http://127.0.0.1:$port/webhook"
}

echo "alertbridge intake benchmark ($(nproc) cores, spool on $(df --output=fstype "$work" | tail -1) at $work, ${DURATION} per run)"
status=0
for mode in ${MODES:-intake-only with-targets}; do
  if [ $mode = intake-only ]; then
    run_bridge $mode
  else
    run_bridge $mode --ntfy.url=http://127.0.0.1:$fport/bench --kuma.push-url=http://127.0.0.1:$fport/api/push/benchtok
  fi
  "$work/load" -url "$url" -alerts 1 -concurrency ${CONC1:-16} -duration "$DURATION" -label "$mode 1-alert" || status=1
  "$work/load" -url "$url" -alerts 50 -concurrency ${CONC50:-4} -duration "$DURATION" -label "$mode 50-alert" || status=1
  depth=$(curl -fsS "${url%/webhook}/metrics" | grep -E '^clavis_alertbridge_(alerts_accepted_total|spool_depth|notifications_sent_total)' | tr '\n' ' ')
  echo "  $mode: $depth"
  kill $bpid; wait $bpid 2>/dev/null || true
done
exit $status
