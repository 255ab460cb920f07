//go:build !telemetry && !commercial

package main

import "github.com/clavitor/clavis-telemetry/internal/logscrub"

// scrubAddresses cleans every log line of the community edition. That
// edition must not link the privacy gate (hard rule 3: go tool nm shows no
// privacy symbol), and it has nothing to gate: what it logs are its own
// start-up lines, net/http's connection errors and the tarpit's errors,
// where addresses come in Go's canonical forms. logscrub.Addresses covers
// those forms; a test in the telemetry build checks that what it leaves of
// such lines passes the gate's detector too.
func scrubAddresses(s string) string { return logscrub.Addresses(s) }
