//go:build commercial

package main

// edition is the commercial POP edition: telemetry is enforced on.
const edition = "commercial"
