package privacy

import (
	"strings"
	"unicode/utf8"
)

// Readings of a text beyond its percent-decodings (detect.go): its
// width-folded form, and the spellings of an address with '-' or '_' for
// its separators, as reverse DNS, cloud providers and Windows write them.

// foldRune maps the characters a browser, a resolver or an IDNA mapping
// reads as ASCII: the fullwidth forms U+FF01-U+FF5E ("１０．０．０．１",
// "alice＠example.com"), the ideographic and halfwidth ideographic full
// stops U+3002 and U+FF61 and the small full stop, colon and at sign
// (U+FE52, U+FE55, U+FE6B). drop is true for the invisible characters
// IDNA maps to nothing and a reader does not see: zero-width space,
// non-joiner and joiner (U+200B-U+200D), word joiner (U+2060), the
// byte-order mark (U+FEFF) and the soft hyphen (U+00AD). ok is false for
// everything else, which is kept as it is.
func foldRune(r rune) (b byte, drop, ok bool) {
	switch {
	case r >= 0xff01 && r <= 0xff5e:
		return byte(r - 0xfee0), false, true
	case r == 0x3002, r == 0xff61, r == 0xfe52:
		return '.', false, true
	case r == 0xfe55:
		return ':', false, true
	case r == 0xfe6b:
		return '@', false, true
	case r == 0x3000:
		return ' ', false, true
	case r >= 0x200b && r <= 0x200d, r == 0x2060, r == 0xfeff, r == 0xad:
		return 0, true, true
	}
	return 0, false, false
}

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// fold returns the width-folded reading of d (see foldRune), keeping where
// each byte came from; ok is false when nothing changed.
func fold(d decoded) (decoded, bool) {
	s := d.s
	countWork(len(s))
	if !hasNonASCII(s) {
		return d, false
	}
	var b []byte
	var start, end []int
	from := func(i, j int) (int, int) { // bytes i..j-1 of d.s
		if d.start == nil {
			return i, j
		}
		return d.start[i], d.end[j-1]
	}
	changed := false
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if s[i] >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		if c, drop, ok := foldRune(r); ok {
			changed = true
			if !drop {
				a, z := from(i, i+size)
				b, start, end = append(b, c), append(start, a), append(end, z)
			}
			i += size
			continue
		}
		for k := i; k < i+size; k++ {
			a, z := from(k, k+1)
			b, start, end = append(b, s[k]), append(start, a), append(end, z)
		}
		i += size
	}
	if !changed {
		return d, false
	}
	if len(b) == 0 {
		return decoded{s: ""}, true // nothing left to map; no address either
	}
	return decoded{s: string(b), start: start, end: end}, true
}

// dashedV4 finds four numbers of one to three decimal digits, each at most
// 255, joined by a single '-' or by a single '_' (the same one throughout):
// "ip-10-0-0-7" (EC2), "host-203-0-113-9", "c-73-15-200-12.hsd1.example.net"
// (reverse DNS of ISPs), "10_0_0_7". The whole run of numbers joined by
// single dashes or underscores must have exactly four: dates ("2024-01-01",
// three), timestamps written with dashes ("2024-01-15-10-30-00",
// "2024-01-01_10_20_30_40") and version triples pass, and so do device and
// interface names ("dm-0", "br-1a2b3c4d5e6f": a number glued to letters
// ends the run). What this rule loses is a four-number value that is not an
// address ("12-30-45-123"); none of the POP's label values is written so.
func dashedV4(s string) []span {
	var out []span
	var nums [4]span
	for i := 0; i < len(s); {
		if !isDigit(s[i]) {
			i++
			continue
		}
		// A maximal run: numbers joined by single '-' or '_'.
		n, j, sep, same, octets := 0, i, byte(0), true, true
		for {
			a := j
			for j < len(s) && isDigit(s[j]) {
				j++
			}
			if n < len(nums) {
				nums[n] = span{a, j}
			}
			n++
			octets = octets && j-a <= 3 && (j-a < 3 || s[a:j] <= "255")
			if j+1 >= len(s) || (s[j] != '-' && s[j] != '_') || !isDigit(s[j+1]) {
				break
			}
			if sep == 0 {
				sep = s[j]
			}
			same = same && s[j] == sep
			j++
		}
		countWork(j - i)
		if n == 4 && same && octets {
			out = append(out, span{nums[0].start, nums[3].end})
		}
		i = j
	}
	return out
}

// literalV6 finds Microsoft's IPv6 literal names, an address with '-' for
// its colons and 's' for the zone's '%' before ".ipv6-literal.net"
// ("2001-db8--1.ipv6-literal.net", "fe80--1s4.ipv6-literal.net"). Any
// label before that domain is taken for an address: the domain exists for
// nothing else.
func literalV6(s string) []span {
	const suffix = ".ipv6-literal.net"
	var out []span
	for i := 0; i+len(suffix) <= len(s); i++ {
		if s[i] != '.' || !strings.EqualFold(s[i:i+len(suffix)], suffix) {
			continue
		}
		a := i
		for a > 0 && (isAlnum(s[a-1]) || s[a-1] == '-') {
			a--
		}
		countWork(i - a + len(suffix))
		if a < i {
			out = append(out, span{a, i + len(suffix)})
		}
		i += len(suffix) - 1
	}
	return out
}

// minNibbles is the shortest run of dot-separated single hex digits taken
// for a reverse-DNS IPv6 name (ip6.arpa): 16 nibbles are a /64, which
// names one subscriber's network; 32 are a whole address.
const minNibbles = 16

// nibbleV6 finds ip6.arpa names, "b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.
// 0.0.0.0.0.0.0.1.2.3.4.ip6.arpa": a run of at least minNibbles single hex
// digits separated by dots, anywhere, glued to letters or not.
func nibbleV6(s string) []span {
	var out []span
	for i := 0; i < len(s); {
		if !isHexDigit(s[i]) {
			i++
			continue
		}
		j, n := i, 1
		for j+2 < len(s) && s[j+1] == '.' && isHexDigit(s[j+2]) {
			j += 2
			n++
		}
		countWork(j - i + 1)
		if n >= minNibbles {
			out = append(out, span{i, j + 1})
		}
		i = j + 1
	}
	return out
}
