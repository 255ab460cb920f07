// Package logscrub keeps client addresses and client-sent bytes out of the
// POP agent's log (hard rule 4: only the scanner log holds addresses).
//
// Handler wraps any slog.Handler and passes the message and every attribute
// value through a scrub function before the inner handler sees them; the
// telemetry editions pass the privacy gate's own detector, the community
// edition (which must not link the gate) passes Addresses. ServerErrorLog
// routes net/http's error log through such a logger, after removing what
// net/http quotes from the client (an HTTP/2 "bogus greeting", for one).
//
// This package imports nothing but the standard library, so the community
// edition can link it.
package logscrub

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"os"
	"regexp"
	"strings"
	"syscall"
)

// Handler scrubs records before its inner handler writes them.
type Handler struct {
	inner slog.Handler
	scrub func(string) string
	keep  map[string]bool
	// grouped is set once WithGroup opened a group: no attribute is at the
	// top level any more, so none is kept.
	grouped bool
}

// NewHandler returns a handler that scrubs the message, every attribute
// key, every group name (WithGroup's too) and every string, error,
// Stringer or other non-numeric attribute value (in groups too) with
// scrub, then hands the record to inner. Top-level attributes named in
// keep are passed as they are: they must only ever carry the agent's own
// addresses (exporter-toolkit and the tarpit log their listen addresses as
// "address"), never a client's. The same key inside a group
// (slog.Group("client", "address", ip), WithGroup("peer")) is scrubbed:
// the agent's own address is only ever logged at the top level.
func NewHandler(inner slog.Handler, scrub func(string) string, keep ...string) *Handler {
	h := &Handler{inner: inner, scrub: scrub, keep: map[string]bool{}}
	for _, k := range keep {
		h.keep[k] = true
	}
	return h
}

func (h *Handler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.inner.Enabled(ctx, level)
}

func (h *Handler) Handle(ctx context.Context, r slog.Record) error {
	out := slog.NewRecord(r.Time, r.Level, h.scrub(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		out.AddAttrs(h.attr(a, !h.grouped))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	scrubbed := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		scrubbed[i] = h.attr(a, !h.grouped)
	}
	return &Handler{inner: h.inner.WithAttrs(scrubbed), scrub: h.scrub, keep: h.keep, grouped: h.grouped}
}

func (h *Handler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h // as slog does: an empty group is no group
	}
	return &Handler{inner: h.inner.WithGroup(h.scrub(name)), scrub: h.scrub, keep: h.keep, grouped: true}
}

// attr scrubs a; top is whether it sits at the top level of the record,
// the only place a kept key is honoured.
func (h *Handler) attr(a slog.Attr, top bool) slog.Attr {
	v := a.Value.Resolve()
	if top && h.keep[a.Key] && v.Kind() != slog.KindGroup {
		return slog.Attr{Key: a.Key, Value: v}
	}
	key := h.scrub(a.Key)
	switch v.Kind() {
	case slog.KindString:
		return slog.String(key, h.scrub(v.String()))
	case slog.KindGroup:
		group := v.Group()
		scrubbed := make([]any, len(group))
		for i, g := range group {
			// Even an inlined group (empty key) is not the top level: a
			// kept key hidden in one is a client's, not the agent's.
			scrubbed[i] = h.attr(g, false)
		}
		return slog.Group(key, scrubbed...)
	case slog.KindAny:
		// errors, Stringers, structs: what the inner handler would print,
		// scrubbed. Their structure is lost, their text is what counts.
		return slog.String(key, h.scrub(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: key, Value: v} // numbers, bools, times, durations
}

// quoted matches a Go-quoted string (%q), which in net/http's messages is
// what the client sent.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// clientNoise are net/http messages about one client's bad connection:
// logged at debug level, as any client can produce as many as it likes (a
// flood of half-open TLS connections makes one each). Some of Go's HTTP/2
// server messages have no "http2: " prefix.
var clientNoise = []string{
	"http: TLS handshake error",
	"http: URL query contains semicolon",
	"http2: server: error reading preface",
	"http2: server connection error",
	"http2: server closing client connection",
	"http2: timeout waiting for SETTINGS frames",
	"http2: received GOAWAY",
	"timeout waiting for SETTINGS frames",
	"timeout waiting for PING response",
}

// MaxErrorLine bounds a line of the server error log, before it is
// scrubbed: a TLS error quotes every cipher suite the client offered
// ("client offered: %x", up to 32k of them), a panic its value. The line
// is cut back to the last white space before the bound, so no piece of a
// cut address is left for the scrubber to miss, and marked.
const MaxErrorLine = 512

const clientBytes = `"[client bytes removed]"`

// StripClientBytes removes from a net/http error message the text it
// quotes from the client; an unterminated quote is cut to the end.
func StripClientBytes(msg string) string {
	out := quoted.ReplaceAllString(msg, clientBytes)
	for i := 0; i < len(out); {
		j := strings.IndexByte(out[i:], '"')
		if j < 0 {
			break
		}
		j += i
		if strings.HasPrefix(out[j:], clientBytes) {
			i = j + len(clientBytes)
			continue
		}
		return out[:j] + clientBytes
	}
	return out
}

// ServerErrorLog is an http.Server.ErrorLog that writes to logger (which
// scrubs addresses, being built on Handler): client bytes removed, one
// client's connection errors at debug level, anything else at warn.
func ServerErrorLog(logger *slog.Logger) *log.Logger {
	return log.New(errorWriter{logger}, "", 0)
}

type errorWriter struct{ logger *slog.Logger }

// serverPanics start a handler's panic, over HTTP/1 or HTTP/2: a bug of
// the agent's, logged at error with its stack (up to MaxPanicLine) under
// either protocol, so the client does not pick its level by its protocol.
var serverPanics = []string{"http: panic serving", "http2: panic serving"}

// MaxPanicLine bounds a panic's line, stack included: enough for the
// frames that locate the bug, not a megabyte of a panic value.
const MaxPanicLine = 16 << 10

func (w errorWriter) Write(p []byte) (int, error) {
	raw := StripClientBytes(strings.TrimRight(string(p), "\n"))
	for _, prefix := range serverPanics {
		if strings.HasPrefix(raw, prefix) {
			w.logger.Log(context.Background(), slog.LevelError, boundTo(raw, MaxPanicLine))
			return len(p), nil
		}
	}
	msg := bound(raw)
	level := slog.LevelWarn
	for _, prefix := range clientNoise {
		if strings.HasPrefix(msg, prefix) {
			level = slog.LevelDebug
			break
		}
	}
	w.logger.Log(context.Background(), level, msg)
	return len(p), nil
}

// ScrapeErrorLog is promhttp's HandlerOpts.ErrorLog (it has the Println
// of promhttp.Logger) writing to logger, which scrubs addresses. A scraper
// that hangs up mid-body makes one "error encoding and sending metric
// family" line per family left, since ContinueOnError goes on to the next:
// any client can make as many as it likes, so write errors on the
// client's connection go to debug, as net/http's client noise does
// (promhttp_metric_handler_errors_total{cause="encoding"} still counts
// them). Anything else (a family that cannot be encoded, a gather error)
// is the agent's own and is logged at error. Every line is bounded.
func ScrapeErrorLog(logger *slog.Logger) scrapeErrorLog { return scrapeErrorLog{logger} }

type scrapeErrorLog struct{ logger *slog.Logger }

func (l scrapeErrorLog) Println(v ...any) {
	level := slog.LevelError
	for _, x := range v {
		if err, ok := x.(error); ok && isClientWriteError(err) {
			level = slog.LevelDebug
		}
	}
	l.logger.Log(context.Background(), level, bound(strings.TrimSuffix(fmt.Sprintln(v...), "\n")))
}

// isClientWriteError tells a failed write to the client (reset, closed,
// timed out: the peer's doing) from an error of the agent's.
func isClientWriteError(err error) bool {
	var op *net.OpError
	switch {
	case errors.As(err, &op) && op.Op == "write", errors.Is(err, syscall.EPIPE), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, net.ErrClosed), errors.Is(err, os.ErrDeadlineExceeded):
		return true
	}
	// net/http's HTTP/2 server answers writes to a stream the client reset
	// or left with errors that have no exported value.
	msg := err.Error()
	return strings.HasPrefix(msg, "client disconnected") || strings.HasPrefix(msg, "http2: stream closed")
}

// bound cuts msg to MaxErrorLine bytes at most, back to white space.
func bound(msg string) string { return boundTo(msg, MaxErrorLine) }

func boundTo(msg string, max int) string {
	if len(msg) <= max {
		return msg
	}
	cut := strings.LastIndexAny(msg[:max+1], " \t\n")
	if cut < 0 {
		cut = 0
	}
	kept := strings.TrimRight(msg[:cut], " \t\n")
	if kept == "" {
		return fmt.Sprintf("[%d bytes cut]", len(msg))
	}
	return fmt.Sprintf("%s [%d bytes cut]", kept, len(msg)-len(kept))
}
