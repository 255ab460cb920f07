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
	"fmt"
	"log"
	"log/slog"
	"regexp"
	"strings"
)

// Handler scrubs records before its inner handler writes them.
type Handler struct {
	inner slog.Handler
	scrub func(string) string
	keep  map[string]bool
}

// NewHandler returns a handler that scrubs the message and every string,
// error, Stringer or other non-numeric attribute value (in groups too)
// with scrub, then hands the record to inner. Attributes named in keep are
// passed as they are: they must only ever carry the agent's own addresses
// (exporter-toolkit and the tarpit log their listen addresses as
// "address"), never a client's.
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
		out.AddAttrs(h.attr(a))
		return true
	})
	return h.inner.Handle(ctx, out)
}

func (h *Handler) WithAttrs(attrs []slog.Attr) slog.Handler {
	scrubbed := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		scrubbed[i] = h.attr(a)
	}
	return &Handler{inner: h.inner.WithAttrs(scrubbed), scrub: h.scrub, keep: h.keep}
}

func (h *Handler) WithGroup(name string) slog.Handler {
	return &Handler{inner: h.inner.WithGroup(name), scrub: h.scrub, keep: h.keep}
}

func (h *Handler) attr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if h.keep[a.Key] && v.Kind() != slog.KindGroup {
		return slog.Attr{Key: a.Key, Value: v}
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, h.scrub(v.String()))
	case slog.KindGroup:
		group := v.Group()
		scrubbed := make([]any, len(group))
		for i, g := range group {
			scrubbed[i] = h.attr(g)
		}
		return slog.Group(a.Key, scrubbed...)
	case slog.KindAny:
		// errors, Stringers, structs: what the inner handler would print,
		// scrubbed. Their structure is lost, their text is what counts.
		return slog.String(a.Key, h.scrub(fmt.Sprint(v.Any())))
	}
	return slog.Attr{Key: a.Key, Value: v} // numbers, bools, times, durations
}

// quoted matches a Go-quoted string (%q), which in net/http's messages is
// what the client sent.
var quoted = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)

// clientNoise are net/http messages about one client's bad connection:
// logged at debug level, as any client can produce as many as it likes (a
// flood of half-open TLS connections makes one each).
var clientNoise = []string{
	"http: TLS handshake error",
	"http2: server: error reading preface",
	"http2: server connection error",
	"http2: timeout waiting for SETTINGS frames",
	"http2: received GOAWAY",
	"http: URL query contains semicolon",
}

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

func (w errorWriter) Write(p []byte) (int, error) {
	msg := StripClientBytes(strings.TrimRight(string(p), "\n"))
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
