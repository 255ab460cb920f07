//go:build telemetry || commercial

package main

import "github.com/clavitor/clavis-telemetry/internal/logscrub"

// scrubAddresses cleans every log line of the telemetry editions with the
// same detector as the privacy gate, so a log line and a label value are
// held to one standard.
// TODO(listener): privacy.ScrubAddresses once package privacy lands.
func scrubAddresses(s string) string { return logscrub.Addresses(s) }
