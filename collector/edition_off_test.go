//go:build !telemetry && !commercial

package collector

// wantUniqueSources is what the tarpit's unique-source estimate reports for
// n distinct sources: in a build without the telemetry tags the tarpit has
// no sketch and reports 0 (see tarpit/sources_off.go).
func wantUniqueSources(int) int { return 0 }
