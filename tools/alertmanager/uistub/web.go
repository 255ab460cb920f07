// Package ui replaces Alertmanager's ui/web.go when tools/build.sh builds
// cmd/alertmanager from its Go module (go build -overlay).
//
// Why: from v0.32 on, Alertmanager embeds its web UI from ui/app/dist
// (`//go:embed app/dist`), which npm builds at release time and which is
// not in the module, so `go build` of cmd/alertmanager fails with
// "pattern app/dist: no matching files found". The API (v2), the cluster
// and notifications, which is what the tests use, do not depend on the UI.
// This file keeps the package's one exported function, Register, and serves
// a page that says what this binary is, so that nobody mistakes it for a
// broken UI. make stack, which a person opens in a browser, runs an
// Alertmanager whose UI is in its module instead (tools/alertmanager-webui).
package ui

import (
	"net/http"

	"github.com/prometheus/common/route"
)

const page = `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Alertmanager (API only)</title></head>
<body>
<h1>Alertmanager, built without its web UI</h1>
<p>This Alertmanager was built from its Go module by clavis-telemetry's
tools/build.sh for tests. Its web UI is built by npm and is not part of the
module, so this build has none. The API is complete: <a href="api/v2/status">api/v2/status</a>,
<a href="api/v2/alerts">api/v2/alerts</a>, <a href="api/v2/silences">api/v2/silences</a>.</p>
</body></html>
`

// Register serves the page above where the UI would be.
func Register(r *route.Router) {
	serve := func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache, no-store, must-revalidate")
		_, _ = w.Write([]byte(page))
	}
	r.Get("/", serve)
}
