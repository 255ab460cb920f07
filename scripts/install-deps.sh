#!/usr/bin/env bash
# Installs the real peers the tests run against, from Debian packages, when
# they are missing. Idempotent; `make test` calls it. Needs root (or sudo).
set -euo pipefail

# command -> Debian package
declare -A want=(
  [prometheus]=prometheus
  [promtool]=prometheus
  [prometheus-alertmanager]=prometheus-alertmanager
  [amtool]=prometheus-alertmanager
  [prometheus-node-exporter]=prometheus-node-exporter
  [mtail]=mtail
  [endlessh]=endlessh
  [nginx]=nginx
  [logrotate]=logrotate # collector: TestAccesslogAgainstLogrotate
  [ssh]=openssh-client
  [curl]=curl
  [openssl]=openssl
  [systemd-analyze]=systemd
)

missing=()
for cmd in "${!want[@]}"; do
  if ! command -v "$cmd" >/dev/null 2>&1 && [ ! -x "/usr/sbin/$cmd" ] && [ ! -x "/usr/bin/$cmd" ]; then
    missing+=("${want[$cmd]}")
  fi
done
# file -> Debian package, for what is not a command (nginx modules).
declare -A wantFile=(
  [/usr/lib/nginx/modules/ngx_stream_module.so]=libnginx-mod-stream # tarpit: PROXY headers from nginx
)
for f in "${!wantFile[@]}"; do
  [ -e "$f" ] || missing+=("${wantFile[$f]}")
done
[ ${#missing[@]} -eq 0 ] && exit 0

pkgs=$(printf '%s\n' "${missing[@]}" | sort -u | tr '\n' ' ')
echo "install-deps: installing $pkgs"
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO=sudo
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# --no-install-recommends keeps the set small; the services are started by
# the tests themselves, never by the package's init scripts.
$SUDO apt-get install -y -qq --no-install-recommends $pkgs >/dev/null
# Debian starts packaged daemons on install; the tests start their own.
for svc in prometheus prometheus-alertmanager prometheus-node-exporter nginx endlessh mtail; do
  if command -v systemctl >/dev/null 2>&1; then $SUDO systemctl stop "$svc" >/dev/null 2>&1 || true; fi
  if command -v service >/dev/null 2>&1; then $SUDO service "$svc" stop >/dev/null 2>&1 || true; fi
done
