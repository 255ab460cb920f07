package alertbridge

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// FuzzActionToken: an action token arrives in a URL a phone opened, so
// anyone may send any string. Only the exact token alertbridge signed
// verifies; everything else is refused as forged (or expired), without a
// panic, whatever its length or bytes.
func FuzzActionToken(f *testing.F) {
	c := &ActionsConfig{Secret: []byte("fuzz-secret-0123456789abcdef")}
	now := time.Unix(1_800_000_000, 0)
	good := c.sign(actionClaims{Action: "ack", Group: "g", Matchers: map[string]string{"alertname": "PopDown"},
		Expires: now.Add(time.Hour).Unix(), Nonce: "n1", Title: "t", Episode: "e"})
	for _, s := range []string{good, good + "A", good[:len(good)-1] + "B", "." + good, ".", "", "e30.", "e30.AAAA",
		strings.Replace(good, ".", "..", 1), strings.ToUpper(good)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		cl, err := c.verify(tok, now)
		if tok == good {
			if err != nil || cl.Nonce != "n1" {
				t.Fatalf("the signed token: %v, %+v", err, cl)
			}
			return
		}
		if err == nil {
			t.Fatalf("token %q verified (claims %+v): only the signed one may", tok, cl)
		}
		if err != errForged && err != errExpired {
			t.Fatalf("token %q: error %v, want forged or expired", tok, err)
		}
	})
}

// FuzzRetryAfter: a server's Retry-After is any text. It reads as a wait
// that is never negative, and garbage is no wait at all.
func FuzzRetryAfter(f *testing.F) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"120", "0", "-5", " 7 ", "1e3", "99999999999999999999999", "Thu, 03 Dec 2026 12:01:00 GMT",
		"Wed, 02 Dec 2026 12:00:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "soon", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		d := parseRetryAfter(v, now)
		if d < 0 {
			t.Fatalf("Retry-After %q: wait %v", v, d)
		}
		if d > 0 && strings.TrimSpace(v) == "" {
			t.Fatalf("an empty Retry-After waits %v", d)
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			want := time.Duration(math.MaxInt64) // beyond a Duration: as long as possible (the caller caps it)
			if n <= uint64(math.MaxInt64/time.Second) {
				want = time.Duration(n) * time.Second
			}
			if d != want {
				t.Fatalf("Retry-After %q: wait %v, want %v", v, d, want)
			}
		}
	})
}

// FuzzTargetAnswers: the bodies ntfy and Kuma answer with are read for
// their codes; any body, at any status, is read without a panic, and only
// Kuma's exact success shape counts as a push.
func FuzzTargetAnswers(f *testing.F) {
	for _, s := range []string{`{"ok":true}`, `{"ok":false,"msg":"Monitor not found or not active."}`,
		`{"code":42909,"http":429,"error":"limit reached: too many auth failures"}`, `{"code":40017}`,
		`<html>ok</html>`, `{"ok":"true"}`, `{"ok":1}`, `[true]`, `{"ok":true,"ok":false}`, ``} {
		f.Add(s, 429)
		f.Add(s, 400)
		f.Add(s, 200)
	}
	f.Fuzz(func(t *testing.T, body string, status int) {
		if kumaPushOK([]byte(body)) && !strings.Contains(body, "true") {
			t.Fatalf("%q counted as Kuma's {\"ok\":true}", body)
		}
		if msg, ok := kumaErrorMsg(body); ok && kumaPushOK([]byte(body)) {
			t.Fatalf("%q is both Kuma's success and its error %q", body, msg)
		}
		se := &sendError{status: status, body: body}
		if status <= 0 {
			// No answer: a transport error, which always has its cause.
			se = &sendError{err: errors.New(body)}
		}
		limit, refused := ntfyAuthFailureLimit(se), ntfyURLRefused(se)
		if limit && status != http.StatusTooManyRequests {
			t.Fatalf("status %d read as ntfy's auth-failure limit", status)
		}
		if limit && refused {
			t.Fatalf("%d %q is both the auth-failure limit and a refused URL", status, body)
		}
		_ = se.Error()
		_ = se.class()
	})
}
