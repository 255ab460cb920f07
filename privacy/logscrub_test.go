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
