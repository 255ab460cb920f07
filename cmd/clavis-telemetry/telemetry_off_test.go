//go:build !telemetry && !commercial

package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// TestCommunityNamesTelemetryOnlyFlags: every flag the README marks as one
// of the telemetry editions is refused by the community build with a hint
// at the build that has it; a flag no edition has gets no such hint.
func TestCommunityNamesTelemetryOnlyFlags(t *testing.T) {
	community := readmeFlags(t, "community", nil)
	telemetryOnly := readmeFlags(t, "telemetry", []string{"cpu", "vault"})
	n := 0
	for name := range telemetryOnly {
		if _, ok := community[name]; ok {
			continue
		}
		n++
		for _, arg := range []string{"--" + name, "--no-" + name} {
			if strings.HasPrefix(name, "collector.") && strings.Count(name, ".") > 1 && arg == "--no-"+name {
				continue // not a switch
			}
			var stderr bytes.Buffer
			code := run(context.Background(), []string{arg + "=x"}, io.Discard, &stderr)
			if code != 2 || !strings.Contains(stderr.String(), "telemetry editions") || !strings.Contains(stderr.String(), "-tags telemetry") {
				t.Errorf("%s: exit %d, want 2 with a hint at the telemetry build:\n%s", arg, code, stderr.String())
			}
		}
	}
	if n < 10 {
		t.Fatalf("only %d telemetry-only flags in the README: the test reads the wrong tables", n)
	}
	var stderr bytes.Buffer
	if code := run(context.Background(), []string{"--no-such-flag"}, io.Discard, &stderr); code != 2 || strings.Contains(stderr.String(), "telemetry editions") {
		t.Errorf("--no-such-flag: exit %d, want 2 without the edition hint:\n%s", code, stderr.String())
	}
}
