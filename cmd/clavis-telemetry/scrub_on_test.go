//go:build telemetry || commercial

package main

import (
	"testing"

	"github.com/clavitor/clavis-telemetry/internal/logscrub"
	"github.com/clavitor/clavis-telemetry/privacy"
)

// logLines are lines the agent's net/http server, its tarpit and its
// collectors really log, in Go's own address spellings.
var logLines = []string{
	"http: TLS handshake error from 127.0.0.1:44766: EOF",
	"http: TLS handshake error from [::1]:5555: tls: first record does not look like a TLS handshake",
	"http2: server: error reading preface from client 10.0.0.7:46036: bogus greeting",
	"read tcp 127.0.0.1:9745->203.0.113.9:40000: read: connection reset by peer",
	"write tcp [2001:db8::1]:9745->[2001:db8:0:1::42]:51234: write: broken pipe",
	"http: panic serving [fe80::1%eth0]:4000: boom",
	"accept from ::ffff:198.51.100.7 refused",
	"statfs /mnt/nfs (10.0.0.5:/export): timeout",
	"peer 2001:db8:1:2:3:4:5:6 gone",
}

// TestCommunityScrubberMeetsTheGate: the community edition cannot link the
// privacy gate, so it scrubs its log with logscrub.Addresses. On the lines
// the agent logs, what that leaves must pass the gate's detector, and the
// telemetry editions' scrubber (the detector itself) must clean them too.
func TestCommunityScrubberMeetsTheGate(t *testing.T) {
	for _, line := range logLines {
		if !privacy.ContainsAddress(line) {
			t.Errorf("the gate's detector finds no address in %q: the corpus is wrong", line)
		}
		if got := logscrub.Addresses(line); privacy.ContainsAddress(got) {
			t.Errorf("community scrubber leaves an address the gate finds: %q -> %q", line, got)
		}
		if got := scrubAddresses(line); privacy.ContainsAddress(got) {
			t.Errorf("telemetry scrubber leaves an address: %q -> %q", line, got)
		}
	}
}
