//go:build telemetry || commercial

package tarpit

import (
	"net/netip"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/sketch"
)

// sourceEstimate counts distinct trapped sources over 24 hours in a
// HyperLogLog sketch (addresses are hashed in and forgotten). Only telemetry
// exports the estimate, so only the telemetry editions compile it in: the
// community binary links neither internal/sketch nor hyperloglog
// (sources_off.go).
type sourceEstimate struct{ w *sketch.Window }

func newSourceEstimate() sourceEstimate {
	return sourceEstimate{w: sketch.NewWindow(24*time.Hour, 24)}
}

func (s sourceEstimate) add(now time.Time, a netip.Addr) { s.w.AddIP(now, a) }

func (s sourceEstimate) estimate(now time.Time) uint64 { return s.w.Estimate(now) }
