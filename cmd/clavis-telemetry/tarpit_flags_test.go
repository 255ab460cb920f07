package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"
)

// TestTarpitFlagBoundsExit2: a tarpit flag out of bounds is a usage error:
// exit 2 with the flag's name, before anything listens.
func TestTarpitFlagBoundsExit2(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ arg, flag string }{
		{"--tarpit.max-line-length=2", "--tarpit.max-line-length"},
		{"--tarpit.interval=-1s", "--tarpit.interval"},
		{"--tarpit.interval=0s", "--tarpit.interval"},
		{"--tarpit.proxy-protocol", "--tarpit.proxy-protocol.trusted"},
	} {
		var out bytes.Buffer
		// Accepted by mistake, run would serve: the context ends it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		code := run(ctx, []string{tc.arg, "--web.listen-address=127.0.0.1:0"}, &out, &out)
		cancel()
		if code != 2 || !strings.Contains(out.String(), tc.flag) {
			t.Errorf("%s: exit %d, want 2 naming %s; output:\n%s", tc.arg, code, tc.flag, out.String())
		}
	}
}
