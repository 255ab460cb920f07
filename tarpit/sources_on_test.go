//go:build telemetry || commercial

package tarpit

import (
	"testing"
)

// TestUniqueSourcesEstimate: in the telemetry editions the snapshot carries
// the sketch's estimate of distinct trapped sources, counting a source once
// however often it comes back.
func TestUniqueSourcesEstimate(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	tp, _ := startTarpit(t, cfg)
	addr := tp.SSHAddrs()[0].String()
	for _, src := range []string{"127.0.0.21", "127.0.0.22", "127.0.0.23", "127.0.0.21", "127.0.0.22"} {
		dialFrom(t, src, addr)
	}
	waitFor(t, "five trapped", func() bool { return tp.Snapshot().Protocols[ProtoSSH].Active == 5 })
	if got := tp.Snapshot().UniqueSources24h; got != 3 {
		t.Fatalf("unique sources %d, want 3", got)
	}
}
