#!/usr/bin/env bash
# make stack: the central pipeline on this machine, in the foreground, for a
# person. Three clavis-telemetry POPs (TLS + basic auth, each with a vault
# dir and an access log that keeps growing), Prometheus and Alertmanager
# with the repository's prometheus/ config, alertbridge, and a fake ntfy +
# Uptime Kuma that print every message and push they receive right here.
# Everything listens on loopback only. Ctrl-C stops it all.
#
# Try: kill one POP (its pid is printed) and watch PopDown page after 2 min;
# start it again (the command is printed) and watch the resolution.
#
# Which servers, for a person's browser: Debian's Prometheus (2.42; its
# package has the classic web pages, /classic/...; a Prometheus 3.x built
# from its Go module has no web UI) and Alertmanager 0.31.1 built from its
# Go module by tools/build.sh (the newest whose web UI is in the module;
# Debian's package has none, and the ntfy message's Silence button opens
# that UI). Every URL printed below answers with a working page.
#
# Overrides (environment): BIN (built binaries, default bin), PROMETHEUS,
# ALERTMANAGER (binaries), PROM_ADDR, AM_ADDR, BRIDGE_ADDR, FAKE_ADDR
# (host:port on loopback), POP_PORT, POP_NET (POPs on $POP_NET.2-4,
# default 127.0.0), STACK_DIR (kept after exit when set; default: a temp
# dir, removed).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
BIN=${BIN:-$ROOT/bin}
PROM_ADDR=${PROM_ADDR:-127.0.0.1:9090}
AM_ADDR=${AM_ADDR:-127.0.0.1:9093}
BRIDGE_ADDR=${BRIDGE_ADDR:-127.0.0.1:9746}
FAKE_ADDR=${FAKE_ADDR:-127.0.0.1:9747}
POP_PORT=${POP_PORT:-9745}
POP_NET=${POP_NET:-127.0.0}
case $POP_NET in 127.*) ;; *) echo "stack: POP_NET must be in 127.0.0.0/8" >&2; exit 1;; esac
POPS=("fra1 eu-central $POP_NET.2" "ams1 eu-west $POP_NET.3" "iad1 us-east $POP_NET.4")
# A demo password for a loopback-only stack; its bcrypt hash (cost 10) is
# what the POPs' web config holds. Never reuse it anywhere else.
SCRAPE_PASSWORD=clavis-stack
SCRAPE_HASH='$2a$10$18Fd8UHed6iyi/3xM6Dw7eltxD4r2.Hx21BRhlr8QMlmmxcUv7hWK'

die() { echo "stack: $*" >&2; exit 1; }
find_bin() {
  for n in "$@"; do
    command -v "$n" 2>/dev/null && return 0
    for d in /usr/sbin /usr/bin; do [ -x "$d/$n" ] && { echo "$d/$n"; return 0; }; done
  done
  return 1
}
for a in "$PROM_ADDR" "$AM_ADDR" "$BRIDGE_ADDR" "$FAKE_ADDR"; do
  case $a in 127.*:*) ;; *) die "$a: only loopback addresses (127.x.x.x:port)";; esac
done
if [ -z "${PROMETHEUS:-}" ]; then
  PROMETHEUS=$(find_bin prometheus) || die "prometheus not found: run 'make deps'"
fi
if [ -z "${ALERTMANAGER:-}" ]; then
  echo "stack: Alertmanager 0.31.1 with its web UI, from tools/ (built once, then cached)..."
  ALERTMANAGER=$(bash "$ROOT/tools/build.sh" alertmanager-webui | awk '$1 == "alertmanager-webui" {print $2}') ||
    die "building Alertmanager with tools/build.sh failed (it needs the Go module proxy once)"
fi
OPENSSL=$(find_bin openssl) || die "openssl not found (apt-get install openssl)"
POP_BIN=$BIN/clavis-telemetry-telemetry
BRIDGE_BIN=$BIN/alertbridge
[ -x "$POP_BIN" ] && [ -x "$BRIDGE_BIN" ] || die "$POP_BIN or $BRIDGE_BIN missing: run 'make build' (or 'make stack')"
FAKE_BIN=$BIN/fakenotify
if [ ! -x "$FAKE_BIN" ]; then
  go build -o "$FAKE_BIN" ./internal/fakenotify/cmd/fakenotify
fi

if [ -n "${STACK_DIR:-}" ]; then DIR=$STACK_DIR; mkdir -p "$DIR"; KEEP=1; else DIR=$(mktemp -d /tmp/clavis-stack.XXXXXX); KEEP=0; fi
mkdir -p "$DIR/logs"
PIDS=()
cleanup() {
  trap - EXIT INT TERM
  echo
  echo "stack: stopping..."
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
  [ "$KEEP" = 1 ] && echo "stack: files kept in $DIR" || rm -rf "$DIR"
  echo "stack: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Central config: the repository's files, with the secrets where
# prometheus.yml expects them and this stack's POPs as targets.
cp -r "$ROOT/prometheus" "$DIR/prometheus"
P=$DIR/prometheus
mkdir -p "$P/secrets"
ips=""; for p in "${POPS[@]}"; do set -- $p; ips="$ips,IP:$3"; done
"$OPENSSL" req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 7 \
  -subj /CN=clavis-stack-pop -addext "subjectAltName=DNS:localhost${ips}" \
  -addext "basicConstraints=critical,CA:TRUE" \
  -keyout "$DIR/pop.key" -out "$P/secrets/pop-ca.crt" 2>/dev/null
chmod 600 "$DIR/pop.key"
printf '%s\n' "$SCRAPE_PASSWORD" > "$P/secrets/pop-scrape-password"
printf 'stack-webhook-token\n' > "$DIR/alertbridge-token"
chmod 600 "$P/secrets/pop-scrape-password" "$DIR/alertbridge-token"
cat > "$DIR/pop-web.yml" <<WEB
tls_server_config:
  cert_file: $P/secrets/pop-ca.crt
  key_file: $DIR/pop.key
basic_auth_users:
  prometheus: '$SCRAPE_HASH'
WEB
: > "$P/targets/pops.yml"
for p in "${POPS[@]}"; do
  set -- $p
  printf -- "- targets: ['%s:%s']\n  labels:\n    pop: %s\n    region: %s\n" "$3" "$POP_PORT" "$1" "$2" >> "$P/targets/pops.yml"
done
sed -i -e "s|'127.0.0.1:9093'|'$AM_ADDR'|g" -e "s|'127.0.0.1:9746'|'$BRIDGE_ADDR'|g" -e "s|'127.0.0.1:9090'|'$PROM_ADDR'|g" "$P/prometheus.yml"
sed -e "s|http://127.0.0.1:9746/webhook|http://$BRIDGE_ADDR/webhook|g" \
    -e "s|/etc/alertmanager/alertbridge-token|$DIR/alertbridge-token|g" "$P/alertmanager.yml" > "$DIR/alertmanager.yml"

start() { # name, command...
  local name=$1; shift
  "$@" > "$DIR/logs/$name.log" 2>&1 &
  PIDS+=($!)
  eval "PID_$name=$!"
}

# Fake ntfy + Kuma: prints what it receives to this terminal.
"$FAKE_BIN" --listen="$FAKE_ADDR" --ntfy.token=tk_stack --kuma.token=stackpush &
PIDS+=($!)

declare -A POP_CMD
for p in "${POPS[@]}"; do
  set -- $p
  mkdir -p "$DIR/$1/vaults"
  for i in $(seq 1 $((5 + RANDOM % 5))); do head -c $((RANDOM * 4)) /dev/zero > "$DIR/$1/vaults/vault-$i.db"; done
  : > "$DIR/$1/access.log"
  POP_CMD[$1]="$POP_BIN --web.listen-address=$3:$POP_PORT --web.config.file=$DIR/pop-web.yml --vault.data-dir=$DIR/$1/vaults --accesslog.path=$DIR/$1/access.log --accesslog.format=combined --accesslog.route=api=^/api/ --accesslog.route=sync=^/sync --tarpit.log.file=$DIR/$1/tarpit.log"
  start "$1" ${POP_CMD[$1]}
done
start alertbridge "$BRIDGE_BIN" --web.listen-address="$BRIDGE_ADDR" --webhook.token-file="$DIR/alertbridge-token" \
  --spool.path="$DIR/alertbridge/spool.db" --ntfy.url="http://$FAKE_ADDR/clavis-alerts" --ntfy.token=tk_stack \
  --kuma.push-url="http://$FAKE_ADDR/api/push/stackpush"
# --web.external-url: the links in alerts (Prometheus's generatorURL, the
# Silence link alertbridge builds from Alertmanager's externalURL) name
# these loopback addresses, not this machine's hostname.
start alertmanager "$ALERTMANAGER" --config.file="$DIR/alertmanager.yml" --storage.path="$DIR/alertmanager" \
  --web.listen-address="$AM_ADDR" --web.external-url="http://$AM_ADDR" --cluster.listen-address=
start prometheus "$PROMETHEUS" --config.file="$P/prometheus.yml" --storage.tsdb.path="$DIR/tsdb" \
  --web.listen-address="$PROM_ADDR" --web.external-url="http://$PROM_ADDR"

# Traffic: a few combined-format lines per POP every second (documentation
# addresses, some 5xx), so the dashboards have something to show.
(
  trap 'exit 0' TERM
  paths=(/api/v1/items /api/v1/sync /sync/push / /favicon.ico)
  while :; do
    now=$(date -u '+%d/%b/%Y:%H:%M:%S +0000')
    for p in "${POPS[@]}"; do
      set -- $p
      for _ in 1 2 3; do
        code=200; [ $((RANDOM % 10)) = 0 ] && code=503
        printf '203.0.113.%d - - [%s] "GET %s HTTP/1.1" %d %d "-" "stack-agent/1.0" 0.%03d\n' \
          $((RANDOM % 250 + 1)) "$now" "${paths[RANDOM % 5]}" "$code" $((RANDOM % 2000 + 200)) $((RANDOM % 200 + 1)) >> "$DIR/$1/access.log"
      done
    done
    sleep 1
  done
) &
PIDS+=($!)

# Wait for each HTTP service to answer, then say where everything is.
wait_http() { # url, what
  for _ in $(seq 1 100); do
    if curl -fsk -o /dev/null -u "prometheus:$SCRAPE_PASSWORD" "$1" 2>/dev/null; then return 0; fi
    sleep 0.2
  done
  echo "stack: $2 did not come up; its log:" >&2
  tail -20 "$DIR/logs/$3.log" >&2 || true
  exit 1
}
wait_http "http://$PROM_ADDR/-/ready" Prometheus prometheus
wait_http "http://$AM_ADDR/-/ready" Alertmanager alertmanager
wait_http "http://$BRIDGE_ADDR/-/healthy" alertbridge alertbridge
for p in "${POPS[@]}"; do set -- $p; wait_http "https://$3:$POP_PORT/-/healthy" "POP $1" "$1"; done

# Prometheus's pages: Debian's 2.x serves the classic UI under /classic/
# (its /targets and /alerts are 404), an upstream 2.x or 3.x release its
# React UI at /targets and /alerts, and one built from the Go module none
# (then the API, which always works, is what there is to open).
prom_ui() { # path -> the URL of that page on this Prometheus
  # The page is read whole before it is searched: `curl | grep -q` under
  # pipefail fails when grep stops early and curl dies of SIGPIPE, which
  # made a working /classic/alerts look missing.
  local u body
  for u in "http://$PROM_ADDR/classic/$1" "http://$PROM_ADDR/$1"; do
    body=$(curl -fs "$u" 2>/dev/null) || continue
    if [[ $body == *'<html'* ]]; then echo "$u"; return; fi
  done
  echo "http://$PROM_ADDR/api/v1/$1"
}
PROM_TARGETS=$(prom_ui targets)
PROM_ALERTS=$(prom_ui alerts)
case $PROM_TARGETS in */api/v1/*) PROM_NOTE="  (this Prometheus has no web UI: API only)";; *) PROM_NOTE="";; esac
am_index=$(curl -fs "http://$AM_ADDR/" 2>/dev/null || true)
if [[ $am_index == *script.js* ]]; then
  AM_LINE="http://$AM_ADDR/#/alerts   (silences: http://$AM_ADDR/#/silences)"
else
  AM_LINE="http://$AM_ADDR/api/v2/alerts   (this Alertmanager has no web UI: API only)"
fi

cat <<INFO

  Clavis central stack (loopback only; Ctrl-C stops everything)

  Prometheus     $PROM_TARGETS
                 $PROM_ALERTS$PROM_NOTE
  Alertmanager   $AM_LINE
  alertbridge    http://$BRIDGE_ADDR/metrics
  fake ntfy      http://$FAKE_ADDR/-/fake/ntfy/messages   (printed below as "ntfy {...}")
  fake Kuma      http://$FAKE_ADDR/-/fake/kuma/pushes     (printed below as "kuma {...}")
INFO
for p in "${POPS[@]}"; do
  set -- $p; pid_var=PID_$1
  printf '  POP %-10s https://%s:%s/metrics  (user prometheus, password %s; pid %s)\n' "$1" "$3" "$POP_PORT" "$SCRAPE_PASSWORD" "${!pid_var}"
done
cat <<INFO

  Logs and config: $DIR
  Grafana dashboards: import grafana/dashboards/*.json with a Prometheus datasource at http://$PROM_ADDR
  Outage drill: kill ${PID_ams1}   (PopDown pages after 2 minutes); restart it with:
    ${POP_CMD[ams1]}

stack: ready
INFO

wait
