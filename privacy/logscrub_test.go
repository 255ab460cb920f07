package privacy

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/clavitor/clavis-telemetry/internal/logscrub"
)

// TestTelemetryLogScrubsEmailsAndSpellings: the telemetry editions log
// through logscrub's handler with ScrubAddresses; e-mail addresses and the
// new address spellings are cut from the message, values, keys and groups.
func TestTelemetryLogScrubsEmailsAndSpellings(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	logger := slog.New(logscrub.NewHandler(slog.NewTextHandler(&buf, nil), ScrubAddresses, "address"))
	logger.WithGroup("alice@example.com").Info("login by andré@bücher.de from １０．０．０．１",
		"peer", "ip-10-0-0-7.ec2.internal", "bob@mail.example.org", "v", slog.Group("client", "address", "10。0。0。2"))
	out := buf.String()
	for _, leak := range []string{"alice", "andré", "bob", "１０．", "10-0-0-7", "10。0"} {
		if strings.Contains(out, leak) {
			t.Errorf("%q reached the log: %s", leak, out)
		}
	}
}

// goPanic is a handler's panic as net/http logs it, with its stack: the
// frame offsets and small arguments are hex integers below 0x01000000
// (0.0.0.0/8, no client's address), the pointers longer than 32 bits.
const goPanic = `http: panic serving <redacted>: runtime error: index out of range [3] with length 3
goroutine 18 [running]:
net/http.(*conn).serve.func1()
	/usr/local/go/src/net/http/server.go:1947 +0xbe
panic({0x9a3b60?, 0xc00009e0a0?})
	/usr/local/go/src/runtime/panic.go:792 +0x132
main.handler({0xb0c1e8?, 0xc0000f80e0?}, 0x0?)
	/src/clavis/main.go:14 +0x1d
net/http.HandlerFunc.ServeHTTP(0xc0000a4000?, {0xb0c1e8?, 0xc0000f80e0?}, 0xc0000b2000?)
	/usr/local/go/src/net/http/server.go:2294 +0x29
created by net/http.(*Server).Serve in goroutine 1
	/usr/local/go/src/net/http/server.go:3454 +0x485`

// TestScrubKeepsSmallHexIntegers: the telemetry editions' scrubber keeps
// a panic's stack and the hex integers of error texts, and still cuts a
// one-part hex spelling of a real address.
func TestScrubKeepsSmallHexIntegers(t *testing.T) {
	t.Parallel()
	for _, keep := range []string{goPanic, "open /x: errno 0x16", "chmod /x mode=0x1ff", "close fd 0x3: bad file descriptor",
		"limit 0x00ffffff", "flags=0X1D"} {
		if got := ScrubAddresses(keep); got != keep {
			t.Errorf("ScrubAddresses(%q) = %q, want it unchanged", keep, got)
		}
	}
	for in, want := range map[string]string{
		"peer 0x0a000001 refused": "peer <redacted> refused",
		"from 0xc0a80101:443":     "from <redacted>",
		"lowest 0x01000000 on":    "lowest <redacted> on",
	} {
		if got := ScrubAddresses(in); got != want {
			t.Errorf("ScrubAddresses(%q) = %q, want %q", in, got, want)
		}
	}
}
