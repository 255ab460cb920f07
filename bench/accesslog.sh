#!/usr/bin/env bash
# Access-log benchmark: a generated 1,000,000-line combined log with request
# times (~155 MB, in a temp dir, deleted afterwards) processed by our parser +
# counters + unique-IP sketches (internal/accesslog, GOMAXPROCS=1) and by
# Debian's mtail with the equivalent program bench/accesslog.mtail, in the
# same run. Prints lines per CPU-second (user + system from rusage of each
# process) and the ratio, then the resident memory after 10,000,000 distinct
# client IPs went through the counter alone, and through the real exporter
# (telemetry edition, default collectors) following a log rotated every
# 1,000,000 lines.
# Targets: >= 2,000,000 lines/CPU-s, >= 20x mtail, RSS < 32 MB.
# LINES and RSS_IPS override the sizes. Exits non-zero when a run fails or a
# pipeline miscounts; missed targets are printed as MISSED.
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-1000000}
RSS_IPS=${RSS_IPS:-10000000}
mtail=$(command -v mtail || echo /usr/bin/mtail)
[ -x "$mtail" ] || { echo "mtail not found (scripts/install-deps.sh installs it)" >&2; exit 1; }
work=$(mktemp -d -p "${TMPDIR:-/var/tmp}" accesslog-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
go build -o "$work/accesslogbench" ./bench/accesslogbench
go build -tags telemetry -o "$work/clavis-telemetry" ./cmd/clavis-telemetry
echo "access-log benchmark ($(nproc) cores, $("$mtail" --version 2>&1 | head -1 | cut -d' ' -f1-3))"
"$work/accesslogbench" -lines "$LINES" -mtail "$mtail" -progs bench -rss-ips "$RSS_IPS" -tmp "$work" \
  -exporter "$work/clavis-telemetry"
