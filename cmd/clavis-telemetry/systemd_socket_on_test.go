//go:build telemetry || commercial

package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

// TestSystemdSocketWithoutSocketsSaysWhatToDo: --web.systemd-socket outside
// socket activation is a configuration error (exit 2, before anything
// listens) naming the flag and the two ways out.
func TestSystemdSocketWithoutSocketsSaysWhatToDo(t *testing.T) {
	os.Unsetenv("LISTEN_FDS")
	os.Unsetenv("LISTEN_PID")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var stderr bytes.Buffer
	code := run(ctx, []string{"--web.systemd-socket", "--vault.data-dir=" + t.TempDir(), "--tarpit.log.file=", "--no-collector.tarpit", "--runtime.gomaxprocs=0"}, io.Discard, &stderr)
	if ctx.Err() != nil {
		t.Fatalf("still running after 20 s:\n%s", stderr.String())
	}
	out := stderr.String()
	if code != 2 || !strings.Contains(out, "--web.systemd-socket") || !strings.Contains(out, ".socket unit") {
		t.Errorf("exit %d, want 2 (a configuration error) naming --web.systemd-socket and what to do:\n%s", code, out)
	}
}
