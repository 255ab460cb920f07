#!/usr/bin/env bash
# Tarpit benchmark: hold N concurrent SSH-tarpit connections on loopback
# (spread over 127.0.0.x sources, 1 s interval) against Debian's endlessh
# and against clavis-telemetry's tarpit (community edition) in the same run;
# print RSS growth per held connection and CPU while holding, and the ratios.
#
#   bash bench/tarpit.sh            # N=9000 HOLD=5
#   N=2000 HOLD=3 bash bench/tarpit.sh
#   N=320 INTERVAL_MS=10000 SPREAD=1 HOLD=60 bash bench/tarpit.sh
#
# SPREAD=1 connects the scanners one by one over one interval, as real
# ones arrive, instead of in bursts (the idle POP: what held scanners cost
# when nothing else wakes the process).
#
# Targets: <= 1 KB RSS per held connection; CPU <= 1.2x endlessh's.
set -euo pipefail
cd "$(dirname "$0")/.."

N=${N:-9000}
SOURCES=${SOURCES:-90}
HOLD=${HOLD:-5}
INTERVAL_MS=${INTERVAL_MS:-1000}
SPREAD=${SPREAD:-}
load_args=()
if [ -n "$SPREAD" ]; then
	# One connection at a time over one interval; count once every client
	# has had its first line.
	load_args=(-batch 1 -pause "$((INTERVAL_MS * 1000 / N))us" -settle "$((INTERVAL_MS + 2000))ms")
fi
PER_SOURCE=$(( (N + SOURCES - 1) / SOURCES + 10 ))

# Each tarpit and each load generator holds N sockets.
hard=$(ulimit -Hn)
want=$(( N + 1000 ))
if [ "$hard" != unlimited ] && [ "$hard" -lt "$want" ]; then
	echo "tarpit.sh: the hard fd limit ($hard) is below $want; lower N" >&2
	exit 1
fi
ulimit -n "$want"

ENDLESSH=$(command -v endlessh || echo /usr/bin/endlessh)
[ -x "$ENDLESSH" ] || { echo "tarpit.sh: endlessh not found (scripts/install-deps.sh)" >&2; exit 1; }

tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

go build -o "$tmp/clavis-telemetry" ./cmd/clavis-telemetry
go build -o "$tmp/tarpitload" ./bench/tarpitload

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
# CPU in ns, every thread (schedstat: ticks of 10 ms are too coarse for an
# idle tarpit).
cpu_ticks() { cat /proc/"$1"/task/*/schedstat | awk '{s += $1} END {printf "%d\n", s}'; }
now_s() { date +%s.%N; }

wait_port() { # wait until something listens on 127.0.0.1:$1
	for _ in $(seq 100); do
		if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
		sleep 0.1
	done
	echo "tarpit.sh: nothing listens on port $1" >&2
	return 1
}

port_e=$("$tmp/tarpitload" -free-port)
port_c=$("$tmp/tarpitload" -free-port)
web=$("$tmp/tarpitload" -free-port)
"$ENDLESSH" -4 -d "$INTERVAL_MS" -m $((N + 100)) -p "$port_e" -v >"$tmp/endlessh.log" 2>&1 &
epid=$!; pids+=("$epid")
"$tmp/clavis-telemetry" --web.listen-address="127.0.0.1:$web" --tarpit.ssh.listen-address="127.0.0.1:$port_c" \
	--tarpit.interval="${INTERVAL_MS}ms" --tarpit.max-clients=$((N + 100)) --tarpit.max-clients-per-source="$PER_SOURCE" \
	--tarpit.log.file="$tmp/scanner.log" >"$tmp/clavis.log" 2>&1 &
cpid=$!; pids+=("$cpid")
wait_port "$port_e"
wait_port "$port_c"
sleep 1 # the probe connections of wait_port are gone by now

# Both servers are loaded and measured at the same time, so that whatever
# else the machine does weighs on both alike.
declare -A rss0 rss1 c0 c1 held
rss0[endlessh]=$(rss_kb "$epid"); rss0[clavis]=$(rss_kb "$cpid")
"$tmp/tarpitload" -addr "127.0.0.1:$port_e" -n "$N" -sources "$SOURCES" -hold "$((HOLD + INTERVAL_MS / 1000 * 2 + 150))s" "${load_args[@]}" >"$tmp/load-endlessh.out" &
lpid_e=$!; pids+=("$lpid_e")
"$tmp/tarpitload" -addr "127.0.0.1:$port_c" -n "$N" -sources "$SOURCES" -hold "$((HOLD + INTERVAL_MS / 1000 * 2 + 150))s" "${load_args[@]}" >"$tmp/load-clavis.out" &
lpid_c=$!; pids+=("$lpid_c")
for name in endlessh clavis; do
	for _ in $(seq 900); do
		grep -q '^ready' "$tmp/load-$name.out" 2>/dev/null && break
		sleep 0.1
	done
	grep -q '^ready' "$tmp/load-$name.out" || { echo "tarpit.sh: load generator for $name not ready" >&2; exit 1; }
	report=$(grep '^ready' "$tmp/load-$name.out")
	echo "  $name: $report"
	held[$name]=$(sed -E 's/.*held=([0-9]+).*/\1/' <<<"$report")
done
sleep 1
rss1[endlessh]=$(rss_kb "$epid"); rss1[clavis]=$(rss_kb "$cpid")
c0[endlessh]=$(cpu_ticks "$epid"); c0[clavis]=$(cpu_ticks "$cpid"); t0=$(now_s)
sleep "$HOLD"
c1[endlessh]=$(cpu_ticks "$epid"); c1[clavis]=$(cpu_ticks "$cpid"); t1=$(now_s)
kill "$lpid_e" "$lpid_c"; wait "$lpid_e" "$lpid_c" 2>/dev/null || true

results=()
for name in endlessh clavis; do
	results+=("$(awk -v n="$name" -v h="${held[$name]}" -v r0="${rss0[$name]}" -v r1="${rss1[$name]}" \
		-v c0="${c0[$name]}" -v c1="${c1[$name]}" -v t0="$t0" -v t1="$t1" \
		'BEGIN { printf "%s %d %.3f %.4f %d %d\n", n, h, (h > 0 ? (r1 - r0) / h : 0), 100 * (c1 - c0) / 1e9 / (t1 - t0), r0, r1 }')")
done

printf '\n%-10s %8s %14s %10s %10s %10s\n' server held "KB RSS/conn" "CPU %" "RSS0 KB" "RSS1 KB"
for r in "${results[@]}"; do
	read -r name held kb cpu r0 r1 <<<"$r"
	printf '%-10s %8d %14s %10s %10d %10d\n' "$name" "$held" "$kb" "$cpu" "$r0" "$r1"
done
read -r _ eheld ekb ecpu _ _ <<<"${results[0]}"
read -r _ cheld ckb ccpu _ _ <<<"${results[1]}"
awk -v ekb="$ekb" -v ckb="$ckb" -v ecpu="$ecpu" -v ccpu="$ccpu" 'BEGIN {
	printf "\nratio clavis/endlessh: RSS per conn %.2fx, CPU %.2fx\n", (ekb > 0 ? ckb / ekb : 0), (ecpu > 0 ? ccpu / ecpu : 0) }'

status=0
if [ "$cheld" -lt "$N" ] || [ "$eheld" -lt "$N" ]; then
	echo "FAIL: not every connection was held (endlessh $eheld, clavis $cheld of $N)"; status=1
fi
# At a few hundred connections the RSS growth is mostly the process's own
# (pages, the first scanner-log writes): the 9,000 run measures per
# connection.
if [ -z "$SPREAD" ] && awk -v k="$ckb" 'BEGIN { exit !(k > 1.0) }'; then
	echo "MISS: clavis uses more than 1 KB RSS per held connection ($ckb KB)"; status=1
fi
if awk -v c="$ccpu" -v e="$ecpu" 'BEGIN { exit !(c > 1.2 * e) }'; then
	echo "MISS: clavis CPU ${ccpu}% is above 1.2x endlessh's ${ecpu}%"; status=1
fi
checked="<= 1 KB RSS per held connection, CPU <= 1.2x endlessh"
[ -z "$SPREAD" ] || checked="CPU <= 1.2x endlessh; RSS per connection is checked at thousands"
[ "$status" = 0 ] && echo "PASS: targets met ($checked)"
exit "$status"
