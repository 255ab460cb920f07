#!/usr/bin/env bash
# Scrape latency while the vault index rescans (issue 13 §2: "a cold first
# scan never blocks a scrape"; the agent runs on one P by default).
# FILES vault files (default 300,000), --vault.rescan-interval=1m, a scrape
# every 50 ms on one keep-alive connection for RUN_SECONDS (default 125, two
# rescans), for each GOMAXPROCS in PROCS (default "1 2"). Prints p50, p99,
# p99.9 and the slowest scrape (client side, Python's http.client), the last
# scan's duration and the agent's CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
FILES=${FILES:-300000}
RUN_SECONDS=${RUN_SECONDS:-125}
PROCS=${PROCS:-1 2}
work=$(mktemp -d -p "${TMPDIR:-/var/tmp}" rescan-latency.XXXXXX)
pid=
trap '[ -z "$pid" ] || kill "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT
CGO_ENABLED=0 go build -trimpath -ldflags '-s -w' -tags telemetry -o "$work/clavis-telemetry" ./cmd/clavis-telemetry
mkdir "$work/vaults"
python3 - "$work/vaults" "$FILES" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    open(os.path.join(d, '%016x.db' % i), 'w').close()
PY
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
echo "rescan latency: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), $FILES files, clavis-telemetry $(git describe --always --dirty 2>/dev/null || echo dev)"
for procs in $PROCS; do
  port=$(free_port)
  "$work/clavis-telemetry" --web.listen-address=127.0.0.1:$port --tarpit.log.file= --vault.data-dir="$work/vaults" \
    --vault.rescan-interval=1m --runtime.gomaxprocs=$procs >"$work/agent.log" 2>&1 &
  pid=$!
  for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/-/ready" 2>/dev/null && break; sleep 0.1; done
  sleep 5 # the first scan
  lat=$(python3 - 127.0.0.1 "$port" "$RUN_SECONDS" <<'PY'
import sys, time, http.client
host, port, secs = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
c = http.client.HTTPConnection(host, port, timeout=10)
lat, end = [], time.time() + secs
while time.time() < end:
    t = time.perf_counter()
    c.request("GET", "/metrics")
    r = c.getresponse(); r.read()
    if r.status != 200:
        sys.exit("scrape failed: %d" % r.status)
    lat.append((time.perf_counter() - t) * 1000)
    time.sleep(0.05)
lat.sort(); n = len(lat)
print("scrapes %d  p50 %.2f ms  p99 %.2f ms  p99.9 %.2f ms  max %.2f ms" % (n, lat[n//2], lat[int(n*0.99)], lat[int(n*0.999)], lat[-1]))
PY
)
  m=$(curl -fsS "http://127.0.0.1:$port/metrics")
  scan=$(awk '/^clavis_vault_scan_duration_seconds /{printf "%.2f", $2}' <<<"$m")
  cpu=$(awk '/^process_cpu_seconds_total /{print $2}' <<<"$m")
  echo "GOMAXPROCS=$procs  $lat  last scan ${scan} s  agent CPU ${cpu} s"
  kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
done
