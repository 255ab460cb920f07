//go:build !telemetry && !commercial

package main

// edition is the community edition: offline, no telemetry code linked.
const edition = "community"
