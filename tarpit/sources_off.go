//go:build !telemetry && !commercial

package tarpit

import (
	"net/netip"
	"time"
)

// sourceEstimate is a no-op in the community edition: nothing there exports
// the unique-source estimate, and the binary must not link the sketch
// (sources_on.go has the real one).
type sourceEstimate struct{}

func newSourceEstimate() sourceEstimate { return sourceEstimate{} }

func (sourceEstimate) add(time.Time, netip.Addr) {}

func (sourceEstimate) estimate(time.Time) uint64 { return 0 }
