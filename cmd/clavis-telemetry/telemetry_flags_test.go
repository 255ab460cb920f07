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
	for _, tc := range []struct {
		args []string
		flag string
	}{
		{[]string{"--vault.file-pattern=["}, "--vault.file-pattern"},
		{[]string{"--vault.file-pattern=a/b"}, "--vault.file-pattern"},
		{[]string{"--vault.rescan-interval=1s"}, "--vault.rescan-interval"},
		{[]string{"--web.max-requests=-5"}, "--web.max-requests"},
		{[]string{"--web.max-requests=100000"}, "--web.max-requests"},
		{[]string{"--web.max-requests=2.5"}, "--web.max-requests"},
		// Errors found when the collectors are built: exit 2 as well.
		{[]string{"--collector.filesystem.mount-points-include=^/$", "--collector.filesystem.mount-points-exclude=^/boot"}, "--collector.filesystem.mount-points-exclude"},
		{[]string{"--vault.data-dir="}, "--vault.data-dir"},
		{[]string{"--collector.accesslog", "--accesslog.path="}, "--accesslog.path"},
		{[]string{"--collector.timeout=5m", "--web.write-timeout=1s"}, "--web.write-timeout"},
		{[]string{"--collector.loadavg=false"}, "--no-collector.loadavg"},
		{[]string{"--accesslog.format=xml"}, "--accesslog.format"},
		{[]string{"--accesslog.caddy-duration-format=milliseconds"}, "--accesslog.caddy-duration-format"},
	} {
		var out bytes.Buffer
		// Accepted by mistake, run would serve: the context ends it.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		args := append([]string{"--web.listen-address=127.0.0.1:0", "--tarpit.log.file="}, tc.args...)
		// Keep the access log collector (and its log-path warning) out of
		// the way; the commercial edition refuses to switch it off, so
		// there it runs without a log.
		if tc.args[0] != "--collector.accesslog" && edition != "commercial" {
			args = append(args, "--no-collector.accesslog")
		}
		code := run(ctx, args, &out, &out)
		cancel()
		if code != 2 || !strings.Contains(out.String(), tc.flag) {
			t.Errorf("%s: exit %d, want 2 naming %s; output:\n%s", tc.args, code, tc.flag, out.String())
		}
	}
}
