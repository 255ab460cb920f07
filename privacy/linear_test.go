package privacy

import (
	"strings"
	"testing"
)

// hostileInputs are texts built to make a detector rescan or recurse once
// per byte: nested or stray brackets, their escapes, runs of separators.
func hostileInputs(n int) map[string]string {
	rep := func(unit string) string { return strings.Repeat(unit, n/len(unit)) }
	return map[string]string{
		"open brackets":     rep("[") + "1",
		"bracket pairs":     rep("[]") + "1",
		"escaped brackets":  rep("%5B") + "1",
		"escaped pairs":     rep("%5B%5D") + "1",
		"bracket digit":     rep("[1"),
		"bracket colon":     rep("[:"),
		"escaped percent":   rep("%25"),
		"nested escapes":    rep("%2525"),
		"percent":           rep("%") + "1",
		"dotted digits":     rep("1."),
		"colons":            rep(":"),
		"digit colons":      rep("1:"),
		"zones":             rep("::1%"),
		"hex":               rep("0x"),
		"at signs":          rep("@"),
		"local parts":       rep("a@"),
		"domains":           rep("a@b."),
		"dashes":            rep("1-"),
		"underscores":       rep("1_"),
		"nibbles":           rep("a."),
		"fullwidth dots":    rep("1\uff0e"),
		"ideographic dots":  rep("1\u3002"),
		"zero width":        rep("\u200b"),
		"escaped fullwidth": rep("%EF%BC%8E1"),
		"quotes":            rep("\"@"),
		"literal suffixes":  rep("-.ipv6-literal.net"),
		"dashed groups":     rep("2001-"),
		"dashed doubles":    rep("fd00--1-"),
		"dotted doubles":    rep("fe80..1."),
		"triple dots":       rep("2001..."),
		"superscripts":      rep("¹\u2024"),
		"circled numbers":   rep("⑩."),
		"selectors":         rep("1\ufe0f"),
		"address literals":  rep("a@[1.2.3.4"),
		"mixed":             rep("[%5B1.%2E:%3A]"),
	}
}

// TestDetectorWorkIsLinear: on hostile text, every reader together
// examines a bounded number of bytes per input byte. Counted, not timed: a
// quadratic reader would count about 10^11 on the megabyte inputs, so the
// count is cut short as soon as it passes the limit.
func TestDetectorWorkIsLinear(t *testing.T) {
	type tooMuch struct{}
	var work, limit int
	workCounter = func(k int) {
		if work += k; work > limit {
			panic(tooMuch{})
		}
	}
	defer func() { workCounter = nil }()
	check := func(name, in string) {
		work, limit = 0, 200*len(in)
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(tooMuch); !ok {
					panic(r)
				}
				t.Errorf("%s: over %d bytes examined for %d bytes of input", name, limit, len(in))
			}
		}()
		ContainsAddress(in)
		IsEmailShaped(in)
		ScrubAddresses(in)
		t.Logf("%s: %.1f bytes examined per input byte", name, float64(work)/float64(len(in)))
	}
	// The red team's three at a megabyte, the rest at 64 KiB: the ratio
	// does not depend on the size.
	big := hostileInputs(1 << 20)
	for _, name := range []string{"open brackets", "bracket pairs", "escaped brackets"} {
		check(name, big[name])
	}
	for name, in := range hostileInputs(1 << 16) {
		check(name, in)
	}
}
