//go:build !telemetry && !commercial

package tarpit

import "testing"

// TestUniqueSourcesOffInCommunity: the community edition compiles no sketch,
// so the estimate stays zero however many sources are trapped.
func TestUniqueSourcesOffInCommunity(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	tp, _ := startTarpit(t, cfg)
	dialFrom(t, "127.0.0.24", tp.SSHAddrs()[0].String())
	waitFor(t, "one trapped", func() bool { return tp.Snapshot().Protocols[ProtoSSH].Active == 1 })
	if got := tp.Snapshot().UniqueSources24h; got != 0 {
		t.Fatalf("community edition estimates %d unique sources", got)
	}
}
