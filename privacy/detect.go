// Package privacy is the POP agent's last line against leaking user data:
// the detector of IP addresses and e-mail-shaped values, the scrubber that
// every log line of the agent passes, and the Gate, a prometheus.Gatherer
// wrapper that every metric family the POP exposes passes before it is
// written.
//
// It is linked into the telemetry and commercial editions only.
package privacy

import (
	"slices"
	"strings"
	"unicode/utf8"
)

// Redacted replaces an address in ScrubAddresses' output.
const Redacted = "<redacted>"

// ContainsAddress reports whether s holds an IP address anywhere inside it,
// whatever surrounds it: v4, v6, v4-mapped, with zone or port, bracketed,
// glued to letters or digits ("host10.0.0.5", "10.0.0.6.nip.io",
// "nbd10.0.0.30"), percent-encoded once or more ("10%2E0%2E0%2E9"), in
// the spellings inet_aton(3) accepts (0x7f.0.0.1, 0x7f000001, 010.0.0.1),
// in any characters IDNA or NFKC read as ASCII ("１０．０．０．１",
// "10。0。0。1", "¹⁰.0.0.7", "𝟏𝟎.0.0.7": see foldRune) or with invisible
// ones inside, with dashes or underscores for its dots ("ip-10-0-0-7",
// "10_0_0_7": see dashedV4 for what passes), a v6 with dashes, underscores
// or dots for its colons ("wg-2001-db8--1", "fd00--1.ns.pod.cluster.local",
// "fe80..1": see substitutedV6), as a Microsoft IPv6 literal name or an
// ip6.arpa name. A text still percent-encoded after maxDecodings layers
// counts as one. It errs on the side of finding one: it is the backstop of
// a gate, and a dropped series costs far less than a leaked address. Its
// work is linear in len(s).
//
// Not caught, on purpose: one-, two- and three-part dotted numbers (1.2.3
// is a version string far more often than the inet_aton spelling of
// 1.2.0.3; four parts, "app-1.10.0.4", are an address and caught), plain
// decimal integers (CPU numbers), hex integers below 0x01000000 (offsets
// in a stack: see hexV4), runs of more or fewer than four dashed numbers
// (dates), and v6 with substitutes for its colons outside the blocks
// clients are in (see clientV6Block). Route names, which an operator
// picks, are held to the stricter LooksLikeAddress.
func ContainsAddress(s string) bool {
	return len(addressSpans(s)) > 0
}

// ScrubAddresses returns s with every embedded IP address (as
// ContainsAddress finds them) and every e-mail address (as IsEmailShaped
// finds them) replaced by Redacted. Logs pass it, so no log line of the POP
// agent carries a client address.
func ScrubAddresses(s string) string {
	return replaceSpans(s, merge(append(addressSpans(s), emailAddressSpans(s)...)), Redacted)
}

// emailAddressSpans is emailSpans over every reading of s, as spans of s.
func emailAddressSpans(s string) []span {
	if strings.IndexByte(s, '@') < 0 && !hasNonASCII(s) && strings.IndexByte(s, '%') < 0 {
		return nil
	}
	var spans []span
	ds, _ := decodings(s)
	for _, d := range ds {
		for _, sp := range emailSpans(d.s, false) {
			spans = append(spans, d.orig(sp))
		}
	}
	return spans
}

// ReplaceAddresses returns s with every embedded IP address replaced by
// with. A percent-encoded address is replaced together with its escapes.
// The text around an address can join with its replacement into a new
// one ("2001_" before it and "_" for it make "2001__", 2001:: with '_'
// for ':'), so the result is read again, up to maxReplacePasses times; a
// text that still holds one after that is left to the gate, which drops
// it.
func ReplaceAddresses(s, with string) string {
	for range maxReplacePasses {
		spans := addressSpans(s)
		if len(spans) == 0 {
			break
		}
		s = replaceSpans(s, spans, with)
	}
	return s
}

// maxReplacePasses bounds ReplaceAddresses' readings, so that its work
// stays linear however the replacements join.
const maxReplacePasses = 3

func replaceSpans(s string, spans []span, with string) string {
	if len(spans) == 0 {
		return s
	}
	var b strings.Builder
	last := 0
	for _, sp := range spans {
		b.WriteString(s[last:sp.start])
		b.WriteString(with)
		last = sp.end
	}
	b.WriteString(s[last:])
	return b.String()
}

// LooksLikeAddress reports whether a name an operator chose (a route class)
// reads as an address in any spelling: everything ContainsAddress finds,
// plus the bare 32-bit integers a resolver accepts as an IPv4 address
// (3232235777, 0x0a000001, c0a80101: eight hex digits), 32 hex digits (an
// IPv6 address without colons), and a v4 with '_' or '-' for its dots
// even inside a longer run of numbers (ContainsAddress wants exactly four).
// Such a name would be dropped by the gate at every scrape, so it is
// refused at start-up instead.
func LooksLikeAddress(name string) bool {
	if ContainsAddress(name) || ContainsAddress(strings.NewReplacer("_", ".", "-", ".").Replace(name)) {
		return true
	}
	for piece := range strings.FieldsFuncSeq(name, func(r rune) bool { return r == '_' || r == '-' }) {
		if bareIntegerAddress(piece) {
			return true
		}
	}
	return bareIntegerAddress(name)
}

func bareIntegerAddress(s string) bool {
	if h, ok := strings.CutPrefix(strings.ToLower(s), "0x"); ok {
		_, valid := parseHex(h)
		return valid && len(h) <= 8
	}
	if len(s) == 8 || len(s) == 32 {
		if _, ok := parseHex(s[:8]); ok && allHex(s) {
			return true
		}
	}
	if s == "" || len(s) > 10 {
		return false
	}
	var v uint64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
		v = v*10 + uint64(s[i]-'0')
	}
	// 1.0.0.0 and above: smaller numbers are counts, ports, status codes.
	return v >= 1<<24 && v <= 1<<32-1
}

func allHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexDigit(s[i]) {
			return false
		}
	}
	return true
}

// IsEmailShaped reports whether s holds something shaped like an e-mail
// address (local@domain.tld) anywhere inside it, percent-encoded or not,
// in fullwidth forms or with invisible characters (fold.go), with a
// non-ASCII local part or domain ("andré@example.com", "alice@例え.jp"), a
// quoted local part or one that ends in a control byte.
func IsEmailShaped(s string) bool {
	if strings.IndexByte(s, '@') < 0 && !hasNonASCII(s) && strings.IndexByte(s, '%') < 0 {
		return false
	}
	ds, _ := decodings(s)
	for _, v := range ds {
		if len(emailSpans(v.s, true)) > 0 {
			return true
		}
	}
	return false
}

// maxLocalPart is the longest local part (RFC 5321) a scrubbed address is
// cut back to: the text before it is not part of the address.
const maxLocalPart = 64

// emailSpans finds local@domain.tld: a local part ending in anything but
// white space (a quote, a control byte, a letter of any script), and a
// domain of at least two labels of letters (any byte of a non-ASCII
// character counts as one), digits, '-' and '_', the last of at least two
// bytes, or an address literal ("alice@[10.0.0.1]"). A span covers the
// local part back to white space, another '@' or maxLocalPart bytes, or
// back to its opening quote. With first, it stops at the first one.
func emailSpans(s string, first bool) []span {
	var out []span
	for i := 0; i < len(s); i++ {
		if s[i] != '@' {
			continue
		}
		if i == 0 || !isLocalPartByte(s[i-1]) {
			continue
		}
		end, ok := emailDomain(s, i+1)
		if !ok {
			end, ok = addressLiteral(s, i+1)
		}
		if !ok {
			continue
		}
		start := i - 1
		if s[start] == '"' {
			for k := start - 1; k >= 0 && k >= i-maxLocalPart && s[k] != '@'; k-- {
				if s[k] == '"' {
					start = k
					break
				}
			}
		}
		for start > 0 && start > i-maxLocalPart && isLocalPartByte(s[start-1]) {
			start--
		}
		countWork(end - start)
		out = append(out, span{start, end})
		if first {
			return out
		}
		i = end - 1
	}
	return out
}

// emailDomain reads the domain starting at j: the end of its last label,
// and whether it has the shape of one: two labels or more, one of them
// after the first of two bytes or more and not all digits. A top-level
// domain is never all-numeric (RFC 3696, 2), so a version such as
// "node@18.19.0" or "pkg@1.2.3" is not an address; an address written
// with digits only is an IP address, which the address reader finds.
func emailDomain(s string, j int) (int, bool) {
	labels, cur, lastEnd, from, ok, digits := 0, 0, 0, j, false, true
	for ; j <= len(s); j++ {
		if j < len(s) && isDomainByte(s[j]) {
			cur++
			digits = digits && isDigit(s[j])
			continue
		}
		if cur == 0 {
			break
		}
		labels++
		lastEnd = j
		// Any label after the first of two bytes or more may end it: what
		// follows is glued text ("alice@example.comdav.x").
		ok = ok || labels >= 2 && cur >= 2 && !digits
		if j < len(s) && s[j] == '.' {
			cur, digits = 0, true
			continue
		}
		break
	}
	countWork(j - from)
	return lastEnd, ok
}

// maxAddressLiteral is the longest address literal read after an '@':
// "[IPv6:" and the longest v6 text with a zone fit.
const maxAddressLiteral = 80

// addressLiteral reads, at j, an address literal for a domain (RFC 5321,
// 4.1.3): "[10.0.0.1]", "[IPv6:2001:db8::1]", any spelling the token
// reader takes for an address between the brackets. It returns the end of
// the closing bracket. The address inside is found by the address readers
// anyway; this is what makes the scrubber cut the local part with it
// ("alice@[10.0.0.1]" would leave "alice@<redacted>").
func addressLiteral(s string, j int) (int, bool) {
	if j >= len(s) || s[j] != '[' {
		return 0, false
	}
	k := j + 1
	for k < len(s) && k <= j+maxAddressLiteral && s[k] != ']' && isIPTokenByte(s[k]) {
		k++
	}
	countWork(k - j)
	if k >= len(s) || s[k] != ']' {
		return 0, false
	}
	lit := s[j+1 : k]
	if len(lit) > 5 && strings.EqualFold(lit[:5], "IPv6:") {
		lit = lit[5:]
	}
	return k + 1, plainTokenIsIP(lit)
}

func isAlnum(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isDomainByte(c byte) bool {
	return isAlnum(c) || c == '-' || c == '_' || c >= utf8.RuneSelf
}

// isLocalPartByte is what may end a local part: anything but white space
// and '@'. RFC 5322 allows less unquoted, but a quoted local part allows
// nearly everything ("alice smith"@, "alice\x00"@), and a gate errs
// towards finding one.
func isLocalPartByte(c byte) bool {
	switch c {
	case ' ', '\t', '\n', '\r', '\v', '\f', '@':
		return false
	}
	return true
}

// workCounter, set by tests only, is told how many bytes each step of the
// readers examines, so that a test can check the work stays linear in the
// input on hostile text without measuring time.
var workCounter func(n int)

func countWork(n int) {
	if workCounter != nil {
		workCounter(n)
	}
}

// span is a half-open byte range of the original string.
type span struct{ start, end int }

// decoded is one reading of a string: its bytes, and for each byte the range
// of the original string it came from.
type decoded struct {
	s          string
	start, end []int // nil for the original itself
}

func (d decoded) orig(sp span) span {
	if d.start == nil {
		return sp
	}
	return span{d.start[sp.start], d.end[sp.end-1]}
}

// maxDecodings bounds how many layers of percent-encoding are peeled off
// (%252E is "." encoded twice). A text that still holds an escape after
// that many layers is hostile: no client, browser or log writes four
// layers, and the address behind them is not looked for. Its escapes are
// taken for addresses instead (see deepEscapes), so the gate drops it and
// the scrubber cuts it out.
const maxDecodings = 3

// decodings returns s and its percent-decoded readings, one per layer, in
// three ways: every %XX escape decoded, only the escapes of bytes an
// address is written with (digits, '.', ':', brackets), and only the
// escapes of its separators. The last two keep a '%' glued in front of an
// encoded address from swallowing its first digits: "%10%2E0%2E0%2E1" is
// "\x10.0.0.1" to a URL decoder, but it also reads "%10.0.0.1", and
// "%25%2E0%2E0%2E1" reads "%25.0.0.1". Each reading that holds non-ASCII
// text is also read folded (fold.go): "１０．０．０．１", "¹⁰.0.0.1" and
// "10%E3%80%820%E3%80%820%E3%80%821" read 10.0.0.1. deep holds the spans of
// s still encoded after maxDecodings layers.
func decodings(s string) (out []decoded, deep []span) {
	out = []decoded{{s: s}}
	for _, only := range []func(byte) bool{nil, isAddressByte, isSeparatorByte} {
		cur, layers := out[0], 0
		for range maxDecodings {
			next, ok := percentDecode(cur, only)
			if !ok {
				break
			}
			out = append(out, next)
			cur = next
			layers++
		}
		if only == nil && layers == maxDecodings {
			deep = deepEscapes(cur)
		}
	}
	for _, d := range out[:len(out):len(out)] {
		if f, ok := fold(d); ok {
			out = append(out, f)
		}
	}
	return out, deep
}

// deepEscapes returns, as spans of the original, every run of token bytes
// around an escape d still holds.
func deepEscapes(d decoded) []span {
	s := d.s
	var out []span
	for i := 0; i+2 < len(s); i++ {
		if s[i] != '%' || !isHexDigit(s[i+1]) || !isHexDigit(s[i+2]) {
			continue
		}
		a, z := i, i+3
		for a > 0 && isDeepByte(s[a-1]) {
			a--
		}
		for z < len(s) && isDeepByte(s[z]) {
			z++
		}
		countWork(z - a)
		out = append(out, d.orig(span{a, z}))
		i = z - 1
	}
	return out
}

func isDeepByte(c byte) bool {
	return isIPTokenByte(c) || c == '-' || c == '_' || c >= utf8.RuneSelf
}

func isSeparatorByte(c byte) bool { return c == '.' || c == ':' || c == '[' || c == ']' }

func isAddressByte(c byte) bool {
	return isDigit(c) || isSeparatorByte(c)
}

// percentDecode decodes the %XX escapes of d (those whose byte only accepts,
// or all when only is nil), keeping where each byte came from; ok is false
// when there was none.
func percentDecode(d decoded, only func(byte) bool) (decoded, bool) {
	s := d.s
	countWork(len(s))
	if strings.IndexByte(s, '%') < 0 {
		return d, false
	}
	var b []byte
	var start, end []int
	from := func(i int) (int, int) {
		if d.start == nil {
			return i, i + 1
		}
		return d.start[i], d.end[i]
	}
	changed := false
	for i := 0; i < len(s); i++ {
		if only != nil && s[i] == '%' {
			// The escapes of a character that folds to address bytes or
			// to nothing (%EF%BC%8E is U+FF0E, a fullwidth '.'; %E2%91%A9
			// U+2469, a circled "10"; %E2%80%8B a zero-width space):
			// decoded to the folded text, so that a '%' glued before them
			// cannot swallow a digit either.
			if to, z, ok := escapedFold(s, i); ok && allBytes(to, only) {
				a, _ := from(i)
				_, e := from(z - 1)
				for k := 0; k < len(to); k++ {
					b, start, end = append(b, to[k]), append(start, a), append(end, e)
				}
				i = z - 1
				changed = true
				continue
			}
			// An escape of a separator, itself encoded any number of times
			// (%2E, %252E, %25252E): decoded to the separator in one step.
			j := i + 1
			for j+4 <= len(s) && s[j:j+2] == "25" && isHexDigit(s[j+2]) && isHexDigit(s[j+3]) {
				j += 2
			}
			if j > i+1 && j+2 <= len(s) && isHexDigit(s[j]) && isHexDigit(s[j+1]) {
				if v, _ := parseHex(s[j : j+2]); only(byte(v)) && isSeparatorByte(byte(v)) {
					a, _ := from(i)
					_, z := from(j + 1)
					b, start, end = append(b, byte(v)), append(start, a), append(end, z)
					i = j + 1
					changed = true
					continue
				}
			}
		}
		if s[i] == '%' && i+2 < len(s) && isHexDigit(s[i+1]) && isHexDigit(s[i+2]) {
			v, _ := parseHex(s[i+1 : i+3])
			if only != nil && !only(byte(v)) {
				a, z := from(i)
				b, start, end = append(b, s[i]), append(start, a), append(end, z)
				continue
			}
			a, _ := from(i)
			_, z := from(i + 2)
			b, start, end = append(b, byte(v)), append(start, a), append(end, z)
			i += 2
			changed = true
			continue
		}
		a, z := from(i)
		b, start, end = append(b, s[i]), append(start, a), append(end, z)
	}
	if !changed {
		return d, false
	}
	return decoded{s: string(b), start: start, end: end}, true
}

// allBytes reports whether every byte of to is one only accepts; true for
// "", a character folded to nothing.
func allBytes(to string, only func(byte) bool) bool {
	for k := 0; k < len(to); k++ {
		if !only(to[k]) {
			return false
		}
	}
	return true
}

// escapedFold reads the escaped UTF-8 character at s[i:] ("%EF%BC%8E"):
// what foldRune makes of it, and the end of its escapes; ok is false if
// there is none or foldRune keeps it.
func escapedFold(s string, i int) (to string, end int, ok bool) {
	var buf [utf8.UTFMax]byte
	n := 0
	for j := i; n < len(buf) && j+2 < len(s) && s[j] == '%' && isHexDigit(s[j+1]) && isHexDigit(s[j+2]); j += 3 {
		v, _ := parseHex(s[j+1 : j+3])
		if n == 0 && v < 0xc0 {
			return "", 0, false // ASCII or a continuation byte
		}
		buf[n] = byte(v)
		n++
		if r, size := utf8.DecodeRune(buf[:n]); r != utf8.RuneError || size > 1 {
			to, ok = foldRune(r)
			return to, i + 3*n, ok
		}
	}
	return "", 0, false
}

// addressSpans returns the merged, sorted ranges of s that hold an address,
// found in s and in each of its percent-decoded and folded readings
// by these readers: embedded v4 (four dotted numbers anywhere), embedded v6
// (a "::" or eight colon-separated hex groups anywhere), the token reader
// of token.go for the spellings the first two do not know (inet_aton
// forms), and the readers of fold.go for v4 with dashes or underscores,
// v6 with dashes, underscores or dots, Microsoft's IPv6 literal names and
// ip6.arpa names; and the spans still percent-encoded after maxDecodings
// layers.
func addressSpans(s string) []span {
	if !mayHoldAddress(s) {
		return nil
	}
	ds, spans := decodings(s)
	for _, d := range ds {
		for _, find := range []func(string) []span{embeddedV4, embeddedV6, dashedV4, substitutedV6, literalV6, nibbleV6} {
			for _, sp := range find(d.s) {
				spans = append(spans, d.orig(sp))
			}
		}
		for a, z := range ipTokens(d.s) {
			spans = append(spans, d.orig(span{a, z}))
		}
	}
	return merge(spans)
}

// mayHoldAddress is the fast path: every form needs a digit, a colon, a
// dot (ip6.arpa and literal names may have no digit), a dash or an
// underscore ("fdab--beef" is a v6 address without a digit), an escape or
// a non-ASCII character that may fold to one of those.
func mayHoldAddress(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= '0' && c <= '9' || c == ':' || c == '.' || c == '-' || c == '_' || c == '%' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

func merge(spans []span) []span {
	if len(spans) < 2 {
		return spans
	}
	slices.SortFunc(spans, func(a, b span) int { return a.start - b.start })
	out := spans[:1]
	for _, sp := range spans[1:] {
		last := &out[len(out)-1]
		if sp.start <= last.end {
			last.end = max(last.end, sp.end)
			continue
		}
		out = append(out, sp)
	}
	return out
}

// embeddedV4 finds four dot-separated numbers anywhere in s. The two inner
// numbers must be octets (0-255, any leading zeros, or octal); the outer
// ones may be glued to more digits, whose last or first digits then form
// the octet ("1234.5.6.78901" holds 234.5.6.78): an address glued to
// digits is still an address.
func embeddedV4(s string) []span {
	var out []span
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		// A run of digits and dots.
		j := i
		for j < len(s) && (isDigit(s[j]) || s[j] == '.') {
			j++
		}
		countWork(j - i)
		out = append(out, v4InRun(s, i, j)...)
		i = j
	}
	return out
}

func v4InRun(s string, from, to int) []span {
	// Parts of the run, as [start, end) ranges; an empty part (two dots)
	// breaks a window.
	type part struct{ a, z int }
	var parts []part
	a := from
	for k := from; k <= to; k++ {
		if k == to || s[k] == '.' {
			parts = append(parts, part{a, k})
			a = k + 1
		}
	}
	var out []span
	for k := 0; k+3 < len(parts); k++ {
		w := parts[k : k+4]
		ok := true
		for n, p := range w {
			if p.z == p.a {
				ok = false
				break
			}
			if (n == 1 || n == 2) && !v4Part(s[p.a:p.z]) {
				ok = false
				break
			}
		}
		if ok {
			out = append(out, span{w[0].a, w[3].z})
		}
	}
	return out
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// embeddedV6 finds, anywhere in s, a "::" (the shortest v6 address, and part
// of every compressed one) or eight colon-separated groups of hex digits
// whose six inner groups are at most 0xffff (the outer ones may be glued to
// more hex digits, like a v4 to digits). The span covers the whole run of
// hex digits, colons and dots around it, and a zone after it.
func embeddedV6(s string) []span {
	var out []span
	for i := 0; i < len(s); {
		if !isV6Byte(s[i]) {
			i++
			continue
		}
		j := i
		for j < len(s) && isV6Byte(s[j]) {
			j++
		}
		run := s[i:j]
		countWork(len(run))
		if strings.Contains(run, "::") || eightGroups(run) {
			end := j
			if end < len(s) && s[end] == '%' { // zone: fe80::1%eth0
				end++
				for end < len(s) && (isAlnum(s[end]) || s[end] == '_' || s[end] == '-' || s[end] == '.') {
					end++
				}
			}
			out = append(out, span{i, end})
		}
		i = j
	}
	return out
}

func isV6Byte(c byte) bool { return isHexDigit(c) || c == ':' || c == '.' }

func eightGroups(run string) bool {
	if strings.Count(run, ":") < 7 {
		return false
	}
	groups := strings.Split(run, ":")
	for k := 0; k+7 < len(groups); k++ {
		ok := true
		for n, g := range groups[k : k+8] {
			if g == "" {
				ok = false
				break
			}
			if n == 0 || n == 7 {
				continue // any glued hex digits; dots in the last: a v4 tail
			}
			if v, valid := parseHex(trimLeadingZeros(g)); !valid || v > 0xffff {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
