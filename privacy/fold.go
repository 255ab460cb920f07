package privacy

import (
	"net/netip"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// Readings of a text beyond its percent-decodings (detect.go): its folded
// form (what IDNA and NFKC read as ASCII), and the spellings of an address
// with '-', '_' or '.' for its separators, as reverse DNS, cloud
// providers, interface names and Windows write them.

// foldRune maps r to what a browser, a resolver or an IDNA mapping (UTS
// #46) reads it as, when that is ASCII: to is that text, "" for a
// character IDNA drops; ok is false for a character kept as it is. The
// three sources, in order:
//
//   - a table for what NFKC alone does not give: the ideographic and
//     halfwidth ideographic full stops U+3002 and U+FF61 (IDNA label
//     separators), U+1E9E (IDNA's "ss"), and the colon look-alikes U+2236,
//     U+02D0 and U+A789, which no standard maps but which read as ':' in a
//     log. The fullwidth forms U+FF01-U+FF5E, the most common, are in it
//     too, so that they skip the lookups below;
//   - the default-ignorable code points (Unicode's Cf, variation selectors
//     and Other_Default_Ignorable_Code_Point): every character UTS #46
//     ignores (U+00AD, U+034F, U+180B-U+180F, U+200B, U+2060, U+2064,
//     U+FE00-U+FE0F, U+FEFF, U+1BCA0-U+1BCA3, U+E0100-U+E01EF) and the
//     joiners and bidi controls it refuses: a resolver never sees those, but
//     a reader of a log does not see them either, so they are dropped;
//   - the NFKC decomposition, when it is all ASCII: superscripts and
//     subscripts ("¹⁰"), circled and parenthesised numbers ("⑩" is "10",
//     "⒈" "1."), mathematical and segmented digits (U+1D7CE-U+1D7FF,
//     U+1FBF0-U+1FBF9), the one dot leader U+2024, small and vertical forms.
//     UTS #46 maps all of these so, or refuses them (then a person still
//     reads the digits); a decomposition with anything but ASCII ("é" is
//     "e" and a combining accent) keeps the character.
//
// TestFoldCoversIDNA checks, for every code point, that what the IDNA
// Lookup profile maps to ASCII or drops is folded the same way here.
func foldRune(r rune) (to string, ok bool) {
	switch {
	case r < utf8.RuneSelf || r == utf8.RuneError:
		return "", false
	case r >= 0xff01 && r <= 0xff5e:
		return asciiByte[r-0xfee0 : r-0xfee0+1], true
	case r == 0x3002, r == 0xff61:
		return ".", true
	case r == 0x2236, r == 0x02d0, r == 0xa789:
		return ":", true
	case r == 0x1e9e: // capital sharp s: IDNA's only case mapping to ASCII
		return "ss", true
	case unicode.In(r, unicode.Cf, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point):
		return "", true
	}
	var buf [utf8.UTFMax]byte
	dec := norm.NFKC.Properties(buf[:utf8.EncodeRune(buf[:], r)]).Decomposition()
	if len(dec) == 0 {
		return "", false
	}
	for _, c := range dec {
		if c >= utf8.RuneSelf {
			return "", false
		}
	}
	if len(dec) == 1 {
		return asciiByte[dec[0] : dec[0]+1], true
	}
	return string(dec), true
}

// asciiByte holds every ASCII byte once, so that a one-byte mapping is a
// substring of it and costs no allocation.
var asciiByte = func() string {
	var b [utf8.RuneSelf]byte
	for i := range b {
		b[i] = byte(i)
	}
	return string(b[:])
}()

func hasNonASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// fold returns the folded reading of d (see foldRune), keeping where
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
		if to, ok := foldRune(r); ok {
			changed = true
			a, z := from(i, i+size)
			for k := 0; k < len(to); k++ {
				b, start, end = append(b, to[k]), append(start, a), append(end, z)
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

// substitutedV6 finds an IPv6 address written with '-', '_' or '.' for its
// colons, the same one throughout: Linux interface names cannot hold ':',
// so a tunnel named after its peer reads "wg-2001-db8--1" or
// "gre_fd00__1"; wildcard DNS services and Kubernetes pod names for v6
// pods write "2a01-4f8-c17-b8f--2.sslip.io" and
// "fd00--1.ns.pod.cluster.local"; some tools print "fe80..1". The rule:
//
//   - a run of hex groups joined by that separator, where a doubled one
//     stands for "::", is read; a run with two doubled separators or more
//     is not, as an address has one "::" at most while device-mapper names
//     of LVM volumes double every '-' of a name ("ubuntu--vg-ubuntu--lv",
//     "vg-pvc--fd3a1b2c--2001--4c3d--8e9f--0123456789ab"). Three
//     separators or more end a run: a "::" that ends an address, then the
//     separator of a name glued on ("2001...ec2.internal");
//   - from some group of the run on, the groups must read as an address
//     with ':' for the separator (net/netip parses it): one doubled
//     separator and seven groups at most, or eight groups without one;
//   - and that first group must be the first group of an address a client
//     can have, four hex digits in a block that is handed out
//     (clientV6Block). This is what keeps the separator from doubling for
//     a date or a counter: "2024--01" and "1--2" are not addresses, nor is
//     a MAC-48 or EUI-64 with dashes ("00-1a-2b-ff-fe-3c-4d-5e"), nor a
//     UUID (five groups, one of twelve digits). What it loses is an
//     address outside those blocks (loopback, v4-mapped: the latter
//     carries its v4 with dashes, which dashedV4 finds).
//
// The first group may be glued to the hex letters that end a word
// ("gre2001-db8--1": 'e' is a hex digit, 'r' is not), not to other hex
// digits: that is a hash ("ceph--eaff26c1--c15b", about one in sixteen of
// which ends in four digits of those blocks).
func substitutedV6(s string) []span {
	var out []span
	for _, sep := range [...]byte{'-', '_', '.'} {
		if strings.IndexByte(s, sep) < 0 {
			continue
		}
		for i := 0; i < len(s); {
			if !isHexDigit(s[i]) {
				i++
				continue
			}
			j, seps := i, 0
			for j < len(s) && (isHexDigit(s[j]) || s[j] == sep) {
				if s[j] == sep {
					seps++
				}
				j++
			}
			countWork(j - i)
			for a := i; seps >= 2 && a < j; { // a doubled separator, or seven
				var found []span
				found, a = v6InSubstitutedRun(s, a, j, sep)
				out = append(out, found...)
			}
			i = j
		}
	}
	return out
}

// v6InSubstitutedRun reads s[from:to], hex digits and sep, starting with
// a digit, for substitutedV6, up to its end or the first three separators
// in a row; next is where it stopped.
func v6InSubstitutedRun(s string, from, to int, sep byte) (found []span, next int) {
	// Groups of the run, and whether a doubled separator follows each.
	type group struct {
		a, z   int
		double bool
	}
	var groups []group
	doubles, k := 0, from
	for k < to {
		a := k
		for k < to && s[k] != sep {
			k++
		}
		g := group{a: a, z: k}
		n := 0
		for k < to && s[k] == sep {
			k++
			n++
		}
		if n >= 2 {
			g.double = true
			doubles++
		}
		groups = append(groups, g)
		if n >= 3 {
			// A doubled separator that ends an address, then the one that
			// glues a name on: "2001...ec2.internal" is 2001:: there.
			// What follows is read as a run of its own.
			break
		}
	}
	if doubles > 1 {
		return nil, k
	}
	var out []span
	var parts []string
	for f := 0; f < len(groups); f++ {
		first, start := s[groups[f].a:groups[f].z], groups[f].a
		if f == 0 && len(first) > 4 && wordEnd(s, groups[f].a, groups[f].z-4) {
			first, start = first[len(first)-4:], groups[f].z-4
		}
		if !clientV6Block(first) {
			continue
		}
		// The groups from f on, up to eight, or seven once a doubled
		// separator is read; a group of more than four digits ends them.
		parts = append(parts[:0], first)
		compressed, last := groups[f].double, f
		for m := f + 1; m < len(groups) && len(parts) < 8 && !(compressed && len(parts) == 7); m++ {
			grp := s[groups[m].a:groups[m].z]
			if len(grp) > 4 {
				break
			}
			parts = append(parts, grp)
			last = m
			compressed = compressed || groups[m].double
		}
		if !compressed && len(parts) < 8 {
			continue
		}
		var b strings.Builder
		for m, p := range parts {
			b.WriteString(p)
			if groups[f+m].double {
				b.WriteString("::")
			} else if m < len(parts)-1 {
				b.WriteByte(':')
			}
		}
		countWork(b.Len())
		if a, err := netip.ParseAddr(b.String()); err != nil || !a.Is6() {
			continue
		}
		end := groups[last].z
		if groups[last].double {
			end += 2 // the "::" that ends it
		}
		out = append(out, span{start, end})
		f = last
	}
	return out, k
}

// wordEnd reports whether s[a:z] is one to three hex letters after a
// letter that is no hex digit: the end of a word, "gre" of "gre2001".
func wordEnd(s string, a, z int) bool {
	if a == 0 || z-a > 3 {
		return false
	}
	if c := s[a-1] | 0x20; c < 'g' || c > 'z' {
		return false
	}
	for i := a; i < z; i++ {
		if c := s[i] | 0x20; c < 'a' || c > 'f' {
			return false
		}
	}
	return true
}

// clientV6Block reports whether g, the first group of an IPv6 address, is
// four hex digits in a block a client's address is in: 2001-2003 (the
// first allocations to the registries, 6to4) and 2400-2fff (the /12s the
// registries have, and room beside them), 3ffe and 3fff (6bone,
// documentation), fc00-fdff (unique local), fe80-febf (link-local) and
// ff00-ffff (multicast). 2004-23ff is left out: nothing there is handed
// out, and years are written so ("vg-2024--01", a volume named after a
// month); so are the unassigned fe00-fe7f and the retired site-local
// fec0-feff, which hold words ("feed--1").
func clientV6Block(g string) bool {
	if len(g) != 4 {
		return false
	}
	v, ok := parseHex(g)
	return ok && (v >= 0x2001 && v <= 0x2003 || v >= 0x2400 && v <= 0x2fff || v == 0x3ffe || v == 0x3fff ||
		v >= 0xfc00 && v <= 0xfdff || v >= 0xfe80 && v <= 0xfebf || v >= 0xff00)
}
