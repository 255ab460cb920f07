//go:build telemetry && !commercial

package main

// edition is the community edition with telemetry opted in at build time.
const edition = "telemetry"
