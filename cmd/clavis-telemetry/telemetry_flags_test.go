//go:build telemetry || commercial

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestTelemetryFlagValuesExit2: a bad value of a telemetry flag is a usage
// error, exit 2 naming the flag, like every other flag error.
func TestTelemetryFlagValuesExit2(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ arg, flag string }{
		{"--vault.file-pattern=[", "--vault.file-pattern"},
		{"--vault.file-pattern=a/b", "--vault.file-pattern"},
		{"--vault.rescan-interval=1s", "--vault.rescan-interval"},
		{"--web.max-requests=-5", "--web.max-requests"},
		{"--web.max-requests=100000", "--web.max-requests"},
	} {
		var out bytes.Buffer
		// Accepted by mistake, run would serve: the context ends it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := run(ctx, []string{tc.arg, "--web.listen-address=127.0.0.1:0", "--no-collector.accesslog"}, &out, &out)
		cancel()
		if code != 2 || !strings.Contains(out.String(), tc.flag) {
			t.Errorf("%s: exit %d, want 2 naming %s; output:\n%s", tc.arg, code, tc.flag, out.String())
		}
	}
}
