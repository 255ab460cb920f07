package tarpit

import (
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzLoggable: whatever a scanner sends as its request target, the logged
// form fits its bound, is valid UTF-8 holding only printable characters
// (no newline to forge a log line, no escape or bidi control to rewrite
// the text around it), and a target that needs no escaping is kept as
// sent, cut to the bound on a character boundary.
func FuzzLoggable(f *testing.F) {
	for _, s := range []string{"/wp-login.php?x=1", "/a\u202eb", "/\x1b[31m\r\nX-Forged: 1", "/\xff\xc3(",
		strings.Repeat("é", 200), "/%0A%0D", "/\u2028", ""} {
		f.Add(s, maxLoggedPath)
	}
	f.Fuzz(func(t *testing.T, s string, n int) {
		if n < 0 || n > 4096 {
			n = maxLoggedPath
		}
		got := loggable(s, n)
		if len(got) > n || !utf8.ValidString(got) {
			t.Fatalf("loggable(%q, %d) = %q: over the bound or not UTF-8", s, n, got)
		}
		for _, r := range got {
			if !unicode.IsPrint(r) {
				t.Fatalf("loggable(%q, %d) = %q keeps %U", s, n, got, r)
			}
		}
		printable := utf8.ValidString(s)
		for _, r := range s {
			if !unicode.IsPrint(r) {
				printable = false
			}
		}
		if printable {
			if !strings.HasPrefix(s, got) || (len(got) < len(s) && len(got)+utf8.UTFMax <= n) {
				t.Fatalf("loggable(%q, %d) = %q: a printable target is kept, cut only at the bound", s, n, got)
			}
		}
	})
}
