package privacy

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/net/idna"
)

// TestFoldCoversIDNA: every code point that IDNA's Lookup profile (UTS
// #46, what a browser applies to a host name) maps to ASCII text or to
// nothing without refusing it is folded by foldRune to that same text,
// compared without case (IDNA lowers it, NFKC keeps it). What IDNA refuses
// a resolver never sees; foldRune may fold it anyway.
func TestFoldCoversIDNA(t *testing.T) {
	t.Parallel()
	missed := 0
	for r := rune(utf8.RuneSelf); r <= utf8.MaxRune; r++ {
		if !utf8.ValidRune(r) {
			continue
		}
		want, err := idna.Lookup.ToUnicode(string(r))
		if err != nil || !isASCII(want) || want == string(r) {
			continue
		}
		if got, ok := foldRune(r); !ok || !strings.EqualFold(got, want) {
			if missed++; missed <= 20 {
				t.Errorf("foldRune(%U) = %q, %v; IDNA maps it to %q", r, got, ok, want)
			}
		}
	}
	if missed > 20 {
		t.Errorf("and %d more", missed-20)
	}
}

func isASCII(s string) bool { return !hasNonASCII(s) }

// TestFoldLeavesTextAlone: the characters of real label values and log
// lines that are no address are not folded, and so add no reading.
func TestFoldLeavesTextAlone(t *testing.T) {
	t.Parallel()
	for _, r := range "éüßデータ例え日本語рф½€→✓\ufffd" {
		if to, ok := foldRune(r); ok {
			t.Errorf("foldRune(%q) = %q", r, to)
		}
	}
}
