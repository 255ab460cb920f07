#!/usr/bin/env bash
# tools/build.sh [NAME...]: builds the current upstream Prometheus, promtool,
# Alertmanager, amtool and VictoriaMetrics from their Go modules at the
# versions pinned in tools/*/go.mod, into $TOOLS_BIN (default bin/tools),
# and prints one line per binary on stdout: "NAME PATH". Progress goes to
# stderr. With NAMEs, builds only those (e.g. `tools/build.sh prometheus
# victoria-metrics`).
#
# Each tool is a module of its own under tools/, so the product's go.mod
# stays clean and every upstream builds with the dependency graph it was
# released with (Prometheus v0.316.0 and VictoriaMetrics v1.151.0 pin
# different Prometheus libraries; Alertmanager with its web UI needs an
# older release than the newest). The first build is slow (Prometheus is
# most of it); later runs hit the Go build cache, and a binary whose
# inputs (go.mod, go.sum, overlay, this script, the Go version) have not
# changed is not rebuilt at all.
#
#   NAME                 module dir              what
#   prometheus           tools/prometheus        Prometheus 3.16.0 (v0.316.0): API only, its React UI is not in the module
#   promtool             tools/prometheus        promtool 3.16.0
#   alertmanager         tools/alertmanager      Alertmanager 0.35.0, built with -overlay: our UI stub replaces ui/web.go
#   amtool               tools/alertmanager      amtool 0.35.0
#   alertmanager-webui   tools/alertmanager-webui Alertmanager 0.31.1, the newest whose web UI is in its module (make stack)
#   victoria-metrics     tools/victoriametrics   single-node VictoriaMetrics v1.151.0
set -euo pipefail

TOOLS=$(cd "$(dirname "$0")" && pwd)
OUT=${TOOLS_BIN:-$TOOLS/../bin/tools}
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
GO=${GO:-go}

# name | module dir | package | version (for --version) | ldflags version package | overlay (file in the module to replace = our file) | build tags
#
# Prometheus and promtool are built with upstream's documented tag
# remove_all_sd: every optional service discovery (Kubernetes, AWS, Azure,
# GCE, Consul, ...) is left out, file_sd, static and http_sd stay. Our
# configs use file_sd only (a config naming another SD fails its check, so
# this cannot hide a problem), and the cloud SDKs were most of Prometheus'
# cold build: 595 CPU-seconds with the tag against about 1,500 without.
TABLE=(
  "prometheus|prometheus|github.com/prometheus/prometheus/cmd/prometheus|3.16.0|github.com/prometheus/common/version||remove_all_sd"
  "promtool|prometheus|github.com/prometheus/prometheus/cmd/promtool|3.16.0|github.com/prometheus/common/version||remove_all_sd"
  "alertmanager|alertmanager|github.com/prometheus/alertmanager/cmd/alertmanager|0.35.0|github.com/prometheus/common/version|ui/web.go=alertmanager/uistub/web.go|"
  "amtool|alertmanager|github.com/prometheus/alertmanager/cmd/amtool|0.35.0|github.com/prometheus/common/version||"
  "alertmanager-webui|alertmanager-webui|github.com/prometheus/alertmanager/cmd/alertmanager|0.31.1|github.com/prometheus/common/version||"
  "victoria-metrics|victoriametrics|github.com/VictoriaMetrics/VictoriaMetrics/app/victoria-metrics|v1.151.0|vm||"
)

want=("$@")
selected() {
  [ ${#want[@]} -eq 0 ] && return 0
  local w
  for w in "${want[@]}"; do [ "$w" = "$1" ] && return 0; done
  return 1
}
for w in "${want[@]}"; do
  found=0
  for row in "${TABLE[@]}"; do [ "${row%%|*}" = "$w" ] && found=1; done
  [ $found = 1 ] || { echo "tools/build.sh: unknown tool $w" >&2; exit 2; }
done

# One build at a time into $OUT (parallel test processes may ask at once).
exec 9>"$OUT/.lock"
flock 9

goversion=$("$GO" env GOVERSION)
for row in "${TABLE[@]}"; do
  IFS='|' read -r name dir pkg version vpkg overlay tags <<<"$row"
  selected "$name" || continue
  mod=$TOOLS/$dir
  bin=$OUT/$name
  args=(build -o "$bin")
  [ -z "$tags" ] || args+=(-tags "$tags")
  inputs=("$mod/go.mod" "$mod/go.sum" "$TOOLS/build.sh")
  builddir=$mod
  upmod=${pkg%/app/*}
  upmod=${upmod%/cmd/*}
  upver=$(cd "$mod" && "$GO" list -m -f '{{.Version}}' "$upmod")
  if [ -n "$overlay" ]; then
    # go build -overlay may not replace files in the module cache, so the
    # module (as go.sum of tools/$dir verified it) is copied out once and
    # built as the main module, with its own go.mod and go.sum: upstream's
    # dependency graph. Our file replaces one of its files via -overlay;
    # nothing of upstream's is committed here.
    updir=$(cd "$mod" && "$GO" mod download -json "$upmod@$upver" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
    [ -n "$updir" ] && [ -f "$updir/go.mod" ] || { echo "tools/build.sh: cannot find $upmod@$upver in the module cache" >&2; exit 1; }
    builddir=$OUT/.src/$name@$upver
    if [ ! -f "$builddir/go.mod" ]; then
      rm -rf "$builddir" "$builddir.tmp"
      mkdir -p "$OUT/.src"
      cp -R "$updir" "$builddir.tmp"
      chmod -R u+w "$builddir.tmp"
      mv "$builddir.tmp" "$builddir"
    fi
    ov=$OUT/.$name.overlay.json
    printf '{"Replace": {"%s": "%s"}}\n' "$builddir/${overlay%%=*}" "$TOOLS/${overlay#*=}" > "$ov"
    args+=(-overlay "$ov")
    inputs+=("$TOOLS/${overlay#*=}")
    pkg=./${pkg#"$upmod"/}
  fi
  if [ "$vpkg" = vm ]; then
    ldflags="-X github.com/VictoriaMetrics/VictoriaMetrics/lib/buildinfo.Version=victoria-metrics-$version-clavis-tools"
  else
    ldflags="-X $vpkg.Version=$version -X $vpkg.Revision=$upver -X $vpkg.Branch=module -X $vpkg.BuildUser=clavis-tools"
  fi
  args+=(-ldflags "$ldflags" "$pkg")
  stamp=$( { echo "$goversion ${args[*]}"; cat "${inputs[@]}"; } | sha256sum | cut -d' ' -f1)
  if [ -x "$bin" ] && [ "$(cat "$OUT/.$name.stamp" 2>/dev/null)" = "$stamp" ]; then
    echo "tools/build.sh: $name $version up to date" >&2
  else
    echo "tools/build.sh: building $name $version ($pkg)" >&2
    start=$(date +%s)
    (cd "$builddir" && "$GO" "${args[@]}")
    echo "$stamp" > "$OUT/.$name.stamp"
    echo "tools/build.sh: $name built in $(( $(date +%s) - start )) s" >&2
  fi
  echo "$name $bin"
done
