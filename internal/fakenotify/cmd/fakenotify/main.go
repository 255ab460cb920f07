// Command fakenotify runs the fake ntfy server and fake Uptime Kuma push
// endpoint of internal/fakenotify on one loopback address, for scripts
// (make stack) and end-to-end tests. It prints every accepted ntfy message
// and Kuma push as a line "ntfy {json}" / "kuma {json}" on stdout.
//
//	fakenotify --listen=127.0.0.1:9747 --ntfy.token=tk_secret --kuma.token=pushtoken
//
// ntfy topic URL: http://127.0.0.1:9747/<topic>; Kuma push URL:
// http://127.0.0.1:9747/api/push/<token>.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9747", "loopback address to listen on")
	ntfyTokens := flag.String("ntfy.token", "", "comma-separated ntfy access tokens with write access; empty = anonymous publishing allowed")
	ntfyReadOnly := flag.String("ntfy.read-only-token", "", "comma-separated ntfy access tokens without write access (publishing answers 403)")
	burst := flag.Int("ntfy.rate-burst", 0, "ntfy visitor request burst (0 = no rate limit; ntfy's default is 60)")
	replenish := flag.Duration("ntfy.rate-replenish", 5*time.Second, "ntfy visitor request replenish interval")
	attachments := flag.Bool("ntfy.attachments", false, "turn messages over 4096 bytes into attachments instead of rejecting them")
	kumaTokens := flag.String("kuma.token", "", "comma-separated known Kuma push tokens")
	failRatio := flag.Float64("ntfy.fail-ratio", 0, "fraction of publishes answered 503 at random (a flaky ntfy)")
	quiet := flag.Bool("quiet", false, "do not print every message and push")
	flag.Parse()

	tokens := map[string]bool{}
	for _, t := range split(*ntfyTokens) {
		tokens[t] = true
	}
	for _, t := range split(*ntfyReadOnly) {
		tokens[t] = false
	}
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{
		Tokens: tokens, RateBurst: *burst, RateReplenish: *replenish, AttachmentsEnabled: *attachments, FailRatio: *failRatio,
	})
	kuma := fakenotify.NewKuma(split(*kumaTokens)...)

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(os.Stderr, "fakenotify: ntfy on http://%s/<topic>, kuma on http://%s/api/push/<token>\n", *listen, *listen)
	var out io.Writer = os.Stdout
	if *quiet {
		out = io.Discard
	}
	if err := fakenotify.Serve(ctx, *listen, ntfy, kuma, out); err != nil {
		fmt.Fprintln(os.Stderr, "fakenotify:", err)
		os.Exit(1)
	}
}

func split(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
