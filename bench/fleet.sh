#!/usr/bin/env bash
# Fleet benchmark: one Prometheus 3.x with the repository's prometheus.yml
# and rules scraping 100, 300 and 1,000 simulated POPs (bench/fleet, built
# from a real capture of clavis-telemetry) every 15 s, with 6 h of history
# backfilled by promtool so the fleet dashboard's queries read real blocks.
# Then an alert storm (200 POPs of one region down at once, Alertmanager
# with the shipped config, alertbridge, the fake ntfy) and VictoriaMetrics
# ingesting the 1,000-POP fleet by remote_write side by side with
# Prometheus' own TSDB.
#
# Reports, per size: Prometheus RSS and CPU, head series, samples/s, each
# rule group's evaluation time (max of prometheus_rule_group_last_duration_
# seconds over the window), every fleet-dashboard query over 6 h (p50/p99/max
# of RUNS runs), the simulator's own CPU. Results: $OUT/*.json and the text
# log. Targets (issue 16): every rule group < 1 s, every query p99 < 2 s.
#
# Everything listens on loopback; the POPs on 127.1.x.y:$POP_PORT.
#
# The bench config is derived from prometheus/prometheus.yml by
# bench/fleet-config.py: the POP job loses TLS and basic auth (the simulator
# serves plain HTTP), the four loopback addresses are this run's, and in the
# VictoriaMetrics phase a remote_write section is appended. Nothing else
# changes: rules, intervals, relabelling and file_sd are as shipped.
#
# Environment:
#   PROMETHEUS PROMTOOL ALERTMANAGER VICTORIA_METRICS  binaries (default: tools/ build, else PATH)
#   SIZES="100 300 1000"  HISTORY_HOURS=6  WARMUP=5m  WINDOW=2m  RUNS=20  RULES_STEP=60s RULES_EVAL=60s
#   STORM_POPS=1000 STORM_DOWN=200 STORM_WATCH=6m STORM_RESOLVE_WATCH=3m  VM_POPS=1000 VM_WINDOW=5m
#   PHASES="capacity storm vm"   OUT (results, kept; default /var/tmp/fleet-bench-results)   WORK (scratch, removed)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SIZES=${SIZES:-100 300 1000}
HISTORY_HOURS=${HISTORY_HOURS:-6}
WARMUP=${WARMUP:-5m}
WINDOW=${WINDOW:-2m}
RUNS=${RUNS:-20}
RULES_STEP=${RULES_STEP:-60s}
RULES_EVAL=${RULES_EVAL:-60s}
PHASES=${PHASES:-capacity storm vm}
POP_PORT=${POP_PORT:-19745}
OUT=${OUT:-${TMPDIR:-/var/tmp}/fleet-bench-results}
mkdir -p "$OUT"
WORK=${WORK:-$(mktemp -d -p "${TMPDIR:-/var/tmp}" fleet-bench.XXXXXX)}
mkdir -p "$WORK"
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  [ -n "${KEEP_WORK:-}" ] || rm -rf "$WORK"
}
trap cleanup EXIT
log() { echo "fleet.sh $(date -u +%H:%M:%S) $*" | tee -a "$OUT/fleet.log" >&2; }
die() { log "FAIL: $*"; exit 1; }

# Binaries: the environment, else the tools/ module's build (that one tool
# only: build.sh without names builds every tool, the web-UI Alertmanager
# too), else PATH.
tool() { # var tools-name candidates...
  local var=$1; shift
  if [ -n "${!var:-}" ]; then echo "${!var}"; return; fi
  if [ -f "$ROOT/tools/build.sh" ]; then
    local p
    p=$(bash "$ROOT/tools/build.sh" "$1" 2>>"$OUT/tools-build.log" | awk -v n="$1" '$1 == n {print $2; exit}') || true
    [ -n "$p" ] && [ -x "$p" ] && { echo "$p"; return; }
  fi
  for n in "$@"; do command -v "$n" 2>/dev/null && return; done
  echo ""
}
PROMETHEUS=$(tool PROMETHEUS prometheus)
PROMTOOL=$(tool PROMTOOL promtool)
ALERTMANAGER=$(tool ALERTMANAGER alertmanager prometheus-alertmanager)
VICTORIA_METRICS=$(tool VICTORIA_METRICS victoria-metrics victoria-metrics-prod)
[ -x "$PROMETHEUS" ] && [ -x "$PROMTOOL" ] || die "prometheus/promtool not found (set PROMETHEUS, PROMTOOL)"
"$PROMETHEUS" --version 2>&1 | head -1 | grep -q 'version 3\.' || log "warning: $("$PROMETHEUS" --version 2>&1 | head -1): the targets are for Prometheus 3.x"
log "prometheus: $("$PROMETHEUS" --version 2>&1 | head -1)"

# The commit the binaries and rules of this run come from (with "+dirty"
# for uncommitted changes), taken before anything is built or read.
COMMIT=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || COMMIT="$COMMIT+dirty"
log "commit $COMMIT"
go build -o "$WORK/fleet" ./bench/fleet
go build -tags telemetry -o "$WORK/clavis-telemetry" ./cmd/clavis-telemetry
go build -o "$WORK/alertbridge" ./cmd/alertbridge
go build -o "$WORK/fakenotify" ./internal/fakenotify/cmd/fakenotify
FLEET=$WORK/fleet

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_http() { for _ in $(seq 600); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done; die "not answering: $1"; }
promq() { curl -fsS "http://$PROM_ADDR/api/v1/query" --data-urlencode "query=$1" | jq -r '.data.result[0].value[1] // "0"'; }
wait_until() { # description timeout-seconds command...
  local what=$1 t=$2; shift 2
  for _ in $(seq $((t * 2))); do "$@" && return 0; sleep 0.5; done
  die "timed out: $what"
}
stop_pid() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# One capture of the real exporter for every phase.
"$FLEET" capture -exporter "$WORK/clavis-telemetry" -out "$WORK/pop.capture" 2>>"$OUT/fleet.log"
SERIES_PER_POP=$(awk '/^# clavis-fleet-capture second/{p=1;next} p && !/^#/' "$WORK/pop.capture" | wc -l)
log "capture: $SERIES_PER_POP series per POP"

# prometheus_dir DIR: the shipped prometheus/ directory (rules, targets)
# with the bench config next to it.
prometheus_dir() { # dir extra-config-args...
  local d=$1; shift
  rm -rf "$d"; mkdir -p "$d"
  cp -r "$ROOT/prometheus/rules" "$d/rules"
  mkdir -p "$d/targets"
  python3 "$ROOT/bench/fleet-config.py" "$ROOT/prometheus/prometheus.yml" \
    --prometheus "$PROM_ADDR" --alertmanager "$AM_ADDR" --alertbridge "$BRIDGE_ADDR" "$@" > "$d/prometheus.yml"
  "$PROMTOOL" check config "$d/prometheus.yml" >/dev/null || die "derived config does not check"
}

start_fleet() { # pops extra-args...
  local n=$1; shift
  CONTROL=127.0.0.1:$(free_port)
  "$FLEET" serve -capture "$WORK/pop.capture" -pops "$n" -port "$POP_PORT" -control "$CONTROL" \
    -targets "$PDIR/targets/pops.yml" "$@" 2>>"$OUT/fleet-sim.log" &
  SIM_PID=$!; pids+=($SIM_PID)
  wait_http "http://$CONTROL/state"
}

start_prometheus() { # data-dir extra-flags...
  local data=$1; shift
  "$PROMETHEUS" --config.file="$PDIR/prometheus.yml" --storage.tsdb.path="$data" \
    --web.listen-address="$PROM_ADDR" --web.enable-admin-api --log.level=warn "$@" 2>>"$OUT/prometheus.log" &
  PROM_PID=$!; pids+=($PROM_PID)
  wait_http "http://$PROM_ADDR/-/ready"
}

blocks_loaded() { curl -fsS "http://$PROM_ADDR/metrics" | awk '/^prometheus_tsdb_blocks_loaded /{print $2}'; }
targets_up() { [ "$(promq "count(up{job=\"clavis-pop\"} == 1)")" -ge "$1" ] 2>/dev/null; }

# backfill N DATA END: the fleet's history into DATA. The series the fleet
# dashboard reads directly at the scrape interval (15 s); the other series
# the rules read every $RULES_STEP (their 5 m windows are live after
# WARMUP); then the recording rules over that history with promtool, every
# $RULES_EVAL, once Prometheus serves the raw blocks. (At 15 s throughout,
# 1,000 POPs x 6 h is 360 M samples: hours of promtool on 2 cores. The
# dashboard's recorded series over 6 h then hold a sample per RULES_EVAL in
# their history, per 15 s in the live part.)
#
# In chunks on promtool's 2 h block boundaries, each generated while the
# previous one is written: promtool reads its whole input once per 2 h
# block it spans, so one 6 h file is read four times; a chunk is one block
# and is read once (at 100 POPs: 18 s of promtool CPU instead of 31 s), and
# only two chunks are on disk at a time (about 3 GB each at 1,000 POPs).
backfill_chunk() { # n from-epoch to-epoch(excluded, or the end itself) last(0/1) out-prefix
  local n=$1 from=$2 to=$3 last=$4 pre=$5 dash=$ROOT/grafana/dashboards/clavis-fleet.json endarg
  if [ "$last" = 1 ]; then endarg=$(date -u -d "@$to" +%Y-%m-%dT%H:%M:%SZ); else endarg=$(date -u -d "@$((to - 1))" +%Y-%m-%dT%H:%M:%SZ); fi
  local fromarg; fromarg=$(date -u -d "@$from" +%Y-%m-%dT%H:%M:%SZ)
  "$FLEET" openmetrics -capture "$WORK/pop.capture" -pops "$n" -port "$POP_PORT" -from "$fromarg" -end "$endarg" -step 15s \
    -keep-names-in "$dash" -drop "$DROP" -out "$pre.a.om" 2>>"$OUT/fleet.log" &&
  "$FLEET" openmetrics -capture "$WORK/pop.capture" -pops "$n" -port "$POP_PORT" -from "$fromarg" -end "$endarg" -step "$RULES_STEP" \
    -keep-names-in "$ROOT/prometheus/rules/clavis-recording.yml" -keep-names-in "$ROOT/prometheus/rules/clavis-alerts.yml" \
    -skip-names-in "$dash" -drop "$DROP" -out "$pre.b.om" 2>>"$OUT/fleet.log"
}
backfill_raw() {
  local n=$1 data=$2 end=$3 e s c next i=0 gen="" last
  e=$(date -u -d "$end" +%s); s=$((e - HISTORY_HOURS * 3600))
  local bounds=() ; c=$s
  while [ "$c" -lt "$e" ]; do bounds+=("$c"); c=$(( (c / 7200 + 1) * 7200 )); done
  bounds+=("$e")
  local chunks=$(( ${#bounds[@]} - 1 ))
  backfill_chunk "$n" "${bounds[0]}" "${bounds[1]}" $(( chunks == 1 )) "$WORK/chunk-0" || die "fleet openmetrics chunk 0"
  for (( i = 0; i < chunks; i++ )); do
    gen=""
    if (( i + 1 < chunks )); then
      last=$(( i + 2 == chunks ))
      backfill_chunk "$n" "${bounds[i+1]}" "${bounds[i+2]}" "$last" "$WORK/chunk-$((i + 1))" & gen=$!
    fi
    log "backfill chunk $((i + 1))/$chunks: $(date -u -d "@${bounds[i]}" +%H:%M)-$(date -u -d "@${bounds[i+1]}" +%H:%M), $(( $(stat -c %s "$WORK/chunk-$i.a.om") + $(stat -c %s "$WORK/chunk-$i.b.om") )) bytes"
    for f in a b; do
      "$PROMTOOL" tsdb create-blocks-from openmetrics "$WORK/chunk-$i.$f.om" "$data" >>"$OUT/promtool.log" 2>&1 || die "promtool backfill chunk $i $f"
      rm -f "$WORK/chunk-$i.$f.om"
    done
    if [ -n "$gen" ]; then wait "$gen" || die "fleet openmetrics chunk $((i + 1))"; fi
  done
}
# The recording rules' history, one dependency level at a time
# (bench/rule-levels.py): promtool evaluates each rule against the running
# Prometheus, so a rule that reads another recorded series (the 5xx ratio,
# the long windows' tiles) sees its input only once the level below is
# loaded. Each group keeps its own interval (the 1 m and 5 m groups).
backfill_rules() {
  local data=$1 end=$2 e s f names
  e=$(date -d "$end" +%s); s=$((e - HISTORY_HOURS * 3600))
  rm -rf "$WORK/rule-levels"
  for f in $(python3 "$ROOT/bench/rule-levels.py" "$PDIR/rules/clavis-recording.yml" "$WORK/rule-levels"); do
    rm -rf "$WORK/rules-data"
    "$PROMTOOL" tsdb create-blocks-from rules --url="http://$PROM_ADDR" --start="$s" --end="$e" \
      --eval-interval="$RULES_EVAL" --output-dir="$WORK/rules-data" "$f" >>"$OUT/promtool.log" 2>&1 || die "promtool rules backfill $f"
    ls "$WORK/rules-data"/01* >/dev/null 2>&1 || { log "rules backfill $(basename "$f"): no samples"; continue; }
    mv "$WORK/rules-data"/01* "$data/"
    # Prometheus loads new blocks on its next reload (every minute): wait
    # until this level's series answer half an hour into the history.
    names=$(awk '/^ *- record: /{print $3}' "$f" | paste -sd'|')
    wait_until "recorded history of $(basename "$f") loaded" 180 \
      sh -c "[ \"\$(curl -fsS http://$PROM_ADDR/api/v1/query --data-urlencode 'query=count({__name__=~\"$names\"} @ $((s + 1800)))' | jq -r '.data.result[0].value[1] // 0')\" != 0 ]"
  done
}

PROM_ADDR=127.0.0.1:$(free_port)
AM_ADDR=127.0.0.1:$(free_port)
BRIDGE_ADDR=127.0.0.1:$(free_port)
PDIR=$WORK/prometheus
# The scrape config's metric_relabel drop rule, for the backfill.
DROP=$(python3 "$ROOT/bench/fleet-config.py" "$ROOT/prometheus/prometheus.yml" --print-drop-regex)

for phase in $PHASES; do case $phase in
capacity)
  for n in $SIZES; do
    log "== capacity: $n POPs"
    prometheus_dir "$PDIR"
    end=$(date -u +%Y-%m-%dT%H:%M:%SZ)
    data=$WORK/data-$n
    rm -rf "$data"
    t0=$(date +%s)
    # HISTORY_HOURS=0: live data only (the query figures then do not read
    # history).
    if [ "$HISTORY_HOURS" != 0 ]; then
      backfill_raw "$n" "$data" "$end"
      log "raw history backfilled in $(( $(date +%s) - t0 )) s: $(du -sm "$data" | cut -f1) MiB"
    fi
    start_fleet "$n"
    start_prometheus "$data"
    if [ "$HISTORY_HOURS" != 0 ]; then
      t0=$(date +%s)
      backfill_rules "$data" "$end"
      log "recorded history backfilled in $(( $(date +%s) - t0 )) s"
    fi
    wait_until "$n targets up" 120 targets_up $((n * 9 / 10))
    log "warm-up $WARMUP (load average $(cut -d' ' -f1-3 /proc/loadavg))"
    sleep "$WARMUP"
    "$FLEET" measure -prom "http://$PROM_ADDR" -pid prometheus=$PROM_PID -pid simulator=$SIM_PID \
      -window "$WINDOW" -dashboard "$ROOT/grafana/dashboards/clavis-fleet.json" -range "${QUERY_RANGE:-6h}" -runs "$RUNS" \
      -label "prometheus $n POPs" -out "$OUT/capacity-$n.json" | tee -a "$OUT/fleet.log"
    "$PROMTOOL" tsdb list "$data" > "$OUT/blocks-$n.txt" 2>&1 || true
    stop_pid "$PROM_PID"; stop_pid "$SIM_PID"
    rm -rf "$data"
  done
  ;;
storm)
  n=${STORM_POPS:-1000} down=${STORM_DOWN:-200}
  log "== alert storm: $n POPs, $down of eu-west down at once"
  [ -x "$ALERTMANAGER" ] || die "alertmanager not found (set ALERTMANAGER)"
  log "alertmanager: $("$ALERTMANAGER" --version 2>&1 | head -1)"
  prometheus_dir "$PDIR"
  FAKE_ADDR=127.0.0.1:$(free_port)
  "$WORK/fakenotify" --listen="$FAKE_ADDR" --ntfy.token=tk_bench --kuma.token=benchpush > "$WORK/ntfy.log" 2>>"$OUT/fakenotify.log" &
  pids+=($!); FAKE_PID=$!
  echo bench-webhook-token > "$WORK/webhook-token"; chmod 600 "$WORK/webhook-token"
  "$WORK/alertbridge" --web.listen-address="$BRIDGE_ADDR" --webhook.token-file="$WORK/webhook-token" \
    --spool.path="$WORK/spool.db" --ntfy.url="http://$FAKE_ADDR/clavis-alerts" --ntfy.token=tk_bench \
    --kuma.push-url="http://$FAKE_ADDR/api/push/benchpush" 2>>"$OUT/alertbridge.log" &
  BRIDGE_PID=$!; pids+=($BRIDGE_PID)
  # The shipped alertmanager.yml; only the bridge's address and the token
  # file's path are this run's.
  sed -e "s|http://127.0.0.1:9746/webhook|http://$BRIDGE_ADDR/webhook|g" \
      -e "s|/etc/alertmanager/alertbridge-token|$WORK/webhook-token|g" "$ROOT/prometheus/alertmanager.yml" > "$WORK/alertmanager.yml"
  grep -q "$BRIDGE_ADDR" "$WORK/alertmanager.yml" || die "alertmanager.yml: bridge URL not found"
  "$ALERTMANAGER" --config.file="$WORK/alertmanager.yml" --storage.path="$WORK/am" --web.listen-address="$AM_ADDR" \
    --cluster.listen-address= 2>>"$OUT/alertmanager.log" &
  AM_PID=$!; pids+=($AM_PID)
  wait_http "http://$AM_ADDR/-/ready"
  wait_http "http://$BRIDGE_ADDR/-/healthy"
  # No scheduled flapping, 5xx bursts or fast-filling disks: the storm's
  # pages are the storm's.
  start_fleet "$n" -flap-share 0 -burst-share 0 -fill-share 0
  start_prometheus "$WORK/data-storm"
  wait_until "$n targets up" 180 targets_up "$n"
  # Let the first evaluations settle (Watchdog heartbeat flowing).
  sleep 60
  # With the five default regions, STORM_DOWN=200 of 1,000 is all of
  # eu-west: RegionPopsDown fires and holds PopDown back (inhibition). Less
  # than half a region: PopDown pages, one group per region.
  log "storm: load average $(cut -d' ' -f1-3 /proc/loadavg), $(promq 'count(up{job="clavis-pop"} == 1)') POPs up"
  "$FLEET" storm -control "http://$CONTROL" -region eu-west -count "$down" -ntfy-log "$WORK/ntfy.log" \
    -watch "${STORM_WATCH:-6m}" -resolve-watch "${STORM_RESOLVE_WATCH:-3m}" -out "$OUT/storm.json" | tee -a "$OUT/fleet.log"
  log "storm measured on commit $COMMIT"
  stop_pid "$PROM_PID"; stop_pid "$SIM_PID"; stop_pid "$AM_PID"; stop_pid "$BRIDGE_PID"; stop_pid "$FAKE_PID"
  rm -rf "$WORK/data-storm" "$WORK/am" "$WORK/spool.db"
  ;;
vm)
  n=${VM_POPS:-1000}
  [ -x "$VICTORIA_METRICS" ] || { log "VictoriaMetrics not found (set VICTORIA_METRICS): vm phase skipped"; continue; }
  log "== VictoriaMetrics: $n POPs, Prometheus remote_write, side by side"
  log "victoria-metrics: $("$VICTORIA_METRICS" --version 2>&1 | head -1)"
  VM_ADDR=127.0.0.1:$(free_port)
  "$VICTORIA_METRICS" -httpListenAddr="$VM_ADDR" -storageDataPath="$WORK/vm" -retentionPeriod=2d \
    -dedup.minScrapeInterval=15s -loggerLevel=WARN 2>>"$OUT/victoria-metrics.log" &
  VM_PID=$!; pids+=($VM_PID)
  wait_http "http://$VM_ADDR/health"
  prometheus_dir "$PDIR" --remote-write "http://$VM_ADDR/api/v1/write"
  start_fleet "$n"
  start_prometheus "$WORK/data-vm"
  wait_until "$n targets up" 180 targets_up $((n * 9 / 10))
  sleep 60
  "$FLEET" measure -prom "http://$PROM_ADDR" -pid prometheus=$PROM_PID -pid victoria-metrics=$VM_PID -pid simulator=$SIM_PID \
    -window "${VM_WINDOW:-5m}" -label "prometheus + remote_write, $n POPs" -out "$OUT/vm-prometheus.json" | tee -a "$OUT/fleet.log"
  # Bytes per sample on disk, both engines, for the same samples: VM after
  # a flush, Prometheus' head written out as a block by a snapshot.
  curl -fsS "http://$VM_ADDR/internal/force_flush" >/dev/null
  sleep 5
  curl -fsS "http://$VM_ADDR/metrics" > "$WORK/vm.metrics"
  vm_bytes=$(awk '/^vm_data_size_bytes\{/ {s+=$2} END {printf "%.0f", s}' "$WORK/vm.metrics")
  vm_rows=$(awk '/^vm_rows\{type="storage\/(small|big)"/ {s+=$2} END {printf "%.0f", s}' "$WORK/vm.metrics")
  vm_du=$(du -sb "$WORK/vm" | cut -f1)
  snap=$(curl -fsS -XPOST "http://$PROM_ADDR/api/v1/admin/tsdb/snapshot" | jq -r .data.name)
  "$PROMTOOL" tsdb list "$WORK/data-vm/snapshots/$snap" > "$OUT/vm-prometheus-snapshot.txt" 2>&1
  prom_samples=$(awk 'NR>1 {s+=$5} END {printf "%.0f", s}' "$OUT/vm-prometheus-snapshot.txt")
  prom_bytes=$(du -sb "$WORK/data-vm/snapshots/$snap" | cut -f1)
  python3 - "$vm_bytes" "$vm_rows" "$vm_du" "$prom_bytes" "$prom_samples" <<'EOF' | tee -a "$OUT/fleet.log" | tee "$OUT/vm-disk.txt"
import sys
vb, vr, vdu, pb, ps = map(float, sys.argv[1:])
print(f"victoria-metrics: {vr:.0f} rows on disk, {vb:.0f} bytes (vm_data_size_bytes), {vdu:.0f} bytes (du): {vb/max(vr,1):.2f} bytes/sample")
print(f"prometheus block: {ps:.0f} samples, {pb:.0f} bytes: {pb/max(ps,1):.2f} bytes/sample")
EOF
  stop_pid "$PROM_PID"; stop_pid "$SIM_PID"; stop_pid "$VM_PID"
  rm -rf "$WORK/vm" "$WORK/data-vm"
  ;;
*) die "unknown phase $phase";;
esac; done
log "done; results in $OUT"
