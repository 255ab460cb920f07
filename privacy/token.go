package privacy

import (
	"iter"
	"net/netip"
	"strings"
)

// ipTokens yields the bounds of every token of s (a run of isIPTokenByte
// bytes) that tokenIsIP flags: the spellings of an address that stand on
// their own between separators. They are one of the three readings
// addressSpans combines (see detect.go):
//
//   - s is cut into tokens at every byte that cannot be part of an address
//     (anything but letters, digits, '.', ':', '%', '[' and ']');
//   - a token is an address if net/netip parses it (v4, v6, v4-mapped, with
//     zone, even an empty or cut one), with a port (1.2.3.4:80, [::1]:443),
//     bracketed ([::1]), behind a URL-encoded separator (ip%3D10.0.0.1), or in
//     the spellings net/netip refuses but inet_aton(3) and people accept:
//     four parts with leading zeros, octal or hex (010.0.0.1, 0x7f.0.0.1),
//     v6 groups with extra leading zeros, a v6 tail with such a v4 part, a
//     single 0x-prefixed 32-bit number from 0x01000000 on, a trailing dot.
func ipTokens(s string) iter.Seq2[int, int] {
	return func(yield func(start, end int) bool) {
		start := -1
		for i := 0; i <= len(s); i++ {
			if i < len(s) && isIPTokenByte(s[i]) {
				if start < 0 {
					start = i
				}
				continue
			}
			if start >= 0 {
				if tokenIsIP(s[start:i]) && !yield(start, i) {
					return
				}
				start = -1
			}
		}
	}
}

func isIPTokenByte(c byte) bool {
	switch {
	case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		return true
	case c == '.', c == ':', c == '%', c == '[', c == ']':
		return true
	}
	return false
}

// tokenIsIP decides for one token. It runs in time linear in len(t): the
// pieces between brackets are disjoint and each is read a bounded number
// of times by plainTokenIsIP, which never recurses into brackets.
func tokenIsIP(t string) bool {
	countWork(len(t))
	hasDigit, hasColon, hasPunct, hasBracket := false, false, false, false
	for i := 0; i < len(t); i++ {
		switch c := t[i]; {
		case c >= '0' && c <= '9':
			hasDigit = true
		case c == ':':
			hasColon = true
		case c == '[', c == ']':
			hasPunct, hasBracket = true, true
		case c == '.', c == '%':
			hasPunct = true
		}
	}
	if !hasDigit && !hasColon {
		return false // "GET", "sda", "other": the common case ends here
	}
	if !hasColon && !hasPunct {
		// Letters and digits only ("0", "sda1", "2xx"): of all the forms
		// below, only 0x-hex can match.
		return hexV4(t)
	}
	if plainTokenIsIP(t) {
		return true
	}
	if !hasBracket {
		return false
	}
	// [v6], [v6]:port, [v6%zone]:port, sloppy [v4]:port, a bracket cut at
	// a separator ("[::1"), stray brackets ("[fe80::1%my zone]:443" cut at
	// the space): the address is one of the pieces between brackets.
	for piece := range strings.FieldsFuncSeq(t, func(r rune) bool { return r == '[' || r == ']' }) {
		if plainTokenIsIP(piece) {
			return true
		}
	}
	return false
}

// plainTokenIsIP is tokenIsIP without the bracket rules: a bare candidate,
// with a zone, a port or URL-encoded separators. Its recursion is bounded:
// the part before the first '%' holds none, and the pieces between escapes
// hold no escape.
func plainTokenIsIP(t string) bool {
	countWork(len(t))
	if t == "" {
		return false
	}
	if isIPCore(t) {
		return true
	}
	if i := strings.IndexByte(t, '%'); i >= 0 {
		// A zone may be anything, even empty or cut at a separator
		// ("fe80::1%", "fe80::1%my zone"): the address before it decides.
		if plainTokenIsIP(t[:i]) {
			return true
		}
		// URL-encoded separators ("ip%3D10.0.0.1", "%2F192.0.2.1%2F").
		for _, piece := range splitPercentEncoded(t) {
			if piece != t && plainTokenIsIP(piece) {
				return true
			}
		}
	}
	// v4:port, and the sloppy unbracketed v6:port some logs write.
	if i := strings.LastIndexByte(t, ':'); i > 0 && isPort(t[i+1:]) && isIPCore(t[:i]) {
		return true
	}
	return false
}

// isIPCore decides for one bare candidate (no brackets, no port).
func isIPCore(t string) bool {
	countWork(len(t))
	if t == "" {
		return false
	}
	if t[len(t)-1] == '.' && len(t) > 1 {
		t = t[:len(t)-1] // "1.2.3.4." (absolute-name spelling)
	}
	if i := strings.IndexByte(t, '%'); i > 0 && isIPCore(t[:i]) {
		return true // any zone, even empty: "fe80::1%", "[::%]"
	}
	if hexV4(t) {
		return true
	}
	if strings.IndexByte(t, '.') < 0 && strings.IndexByte(t, ':') < 0 {
		return false // every other form has a dot or a colon ("cpu0", "2xx")
	}
	if lenientV4(t) || lenientV6(t) {
		return true
	}
	// The lenient parsers accept a superset of net/netip's syntax; asking
	// netip too costs little and guards against a gap in them.
	_, err := netip.ParseAddr(t)
	return err == nil
}

// splitPercentEncoded cuts t at every %XX escape (two hex digits).
func splitPercentEncoded(t string) []string {
	var pieces []string
	start := 0
	for i := 0; i+2 < len(t); i++ {
		if t[i] == '%' && isHexDigit(t[i+1]) && isHexDigit(t[i+2]) {
			pieces = append(pieces, t[start:i])
			start = i + 3
			i += 2
		}
	}
	return append(pieces, t[start:])
}

func isHexDigit(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func isPort(p string) bool {
	if len(p) == 0 || len(p) > 5 {
		return false
	}
	for i := 0; i < len(p); i++ {
		if p[i] < '0' || p[i] > '9' {
			return false
		}
	}
	return true
}

// lenientV4 accepts exactly four dot-separated parts, each a number from 0
// to 255 written in decimal (any number of leading zeros), octal (leading
// 0) or hex (0x).
func lenientV4(t string) bool {
	parts := 0
	for len(t) > 0 {
		i := strings.IndexByte(t, '.')
		part := t
		if i >= 0 {
			part, t = t[:i], t[i+1:]
			if t == "" {
				return false // "1.2.3." with nothing after the dot
			}
		} else {
			t = ""
		}
		if !v4Part(part) {
			return false
		}
		parts++
		if parts > 4 {
			return false
		}
	}
	return parts == 4
}

func v4Part(p string) bool {
	if p == "" || len(p) > 12 {
		return false
	}
	if len(p) > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'X') {
		v, ok := parseHex(p[2:])
		return ok && v <= 0xff
	}
	dec, octal := uint64(0), uint64(0)
	octalOK := p[0] == '0'
	for i := 0; i < len(p); i++ {
		c := p[i]
		if c < '0' || c > '9' {
			return false
		}
		dec = dec*10 + uint64(c-'0')
		if c > '7' {
			octalOK = false
		}
		octal = octal*8 + uint64(c-'0')
	}
	return dec <= 255 || (octalOK && octal <= 255)
}

func parseHex(h string) (uint64, bool) {
	if h == "" || len(h) > 16 {
		return 0, false
	}
	var v uint64
	for i := 0; i < len(h); i++ {
		c := h[i]
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// hexV4 is inet_aton's one-part hex spelling, 0x7f000001, from 0x01000000
// (1.0.0.0) on: what is below is 0.0.0.0/8, "this network", never a
// client's source address, and it is what Go's panic stacks and error
// texts are full of ("+0x1d", "{0x9a3b60?, ...}", "errno 0x16",
// "mode=0x1ff"). The same floor holds for decimal integers
// (bareIntegerAddress).
func hexV4(t string) bool {
	if len(t) < 3 || t[0] != '0' || (t[1] != 'x' && t[1] != 'X') {
		return false
	}
	v, ok := parseHex(t[2:])
	return ok && v >= 1<<24 && v <= 0xffffffff
}

// lenientV6 accepts v6 text that net/netip refuses for cosmetic reasons:
// groups with more than four digits of leading zeros, a trailing v4 part
// spelled leniently, an unusual zone. The structure must still be an
// address: eight groups, or fewer with exactly one "::".
func lenientV6(t string) bool {
	if i := strings.IndexByte(t, '%'); i >= 0 {
		if i == len(t)-1 {
			return false
		}
		t = t[:i]
	}
	if len(t) < 2 || strings.IndexByte(t, ':') < 0 {
		return false
	}
	groups, doubles := 0, 0
	for i := 0; i < len(t); {
		if t[i] == ':' {
			if i+1 < len(t) && t[i+1] == ':' {
				doubles++
				if doubles > 1 {
					return false
				}
				i += 2
				continue
			}
			if i == 0 || i == len(t)-1 {
				return false // single leading or trailing colon
			}
			i++
			continue
		}
		j := i
		for j < len(t) && t[j] != ':' {
			j++
		}
		g := t[i:j]
		if j == len(t) && strings.IndexByte(g, '.') >= 0 {
			if !lenientV4(g) {
				return false
			}
			groups += 2
		} else {
			v, ok := parseHex(trimLeadingZeros(g))
			if !ok || v > 0xffff {
				return false
			}
			groups++
		}
		i = j
	}
	if doubles == 1 {
		return groups <= 7
	}
	return groups == 8
}

func trimLeadingZeros(g string) string {
	for len(g) > 1 && g[0] == '0' {
		g = g[1:]
	}
	return g
}
