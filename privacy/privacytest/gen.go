// Package privacytest generates, for property and fuzz tests, IP addresses
// and e-mail addresses embedded in text the way they reach a label or a
// log line: in any spelling, with zone or port, bracketed, glued to
// letters, digits or punctuation, with dashes or underscores for dots, in
// fullwidth or ideographic characters, with invisible characters inside,
// percent-encoded in part, in whole, twice or up to five times. No binary
// imports it.
package privacytest

import (
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"

	"pgregory.net/rapid"
)

// Addr draws an address: v4, v4-mapped v6, or v6 with zero groups often
// enough for compressed forms ("::"), sometimes link-local, sometimes in
// a block clients' addresses are in (global unicast, unique local).
func Addr(t *rapid.T, label string) netip.Addr {
	switch rapid.IntRange(0, 4).Draw(t, label+"_kind") {
	case 0:
		b := rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, label+"_v4")
		return netip.AddrFrom4([4]byte(b))
	case 1:
		b := rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, label+"_mapped")
		return netip.AddrFrom16(netip.AddrFrom4([4]byte(b)).As16())
	case 2:
		var a [16]byte
		a[0], a[1] = 0xfe, 0x80
		for i := 8; i < 16; i++ {
			if rapid.Bool().Draw(t, label+"_ll") {
				a[i] = rapid.Byte().Draw(t, label+"_llb")
			}
		}
		return netip.AddrFrom16(a)
	case 3:
		var a [16]byte
		first := rapid.SampledFrom(clientPrefixes).Draw(t, label+"_prefix")
		a[0], a[1] = byte(first>>8), byte(first)
		for g := 1; g < 8; g++ {
			if rapid.Bool().Draw(t, label+"_czero") {
				continue
			}
			v := rapid.Uint16().Draw(t, label+"_cgroup")
			a[2*g], a[2*g+1] = byte(v>>8), byte(v)
		}
		return netip.AddrFrom16(a)
	default:
		var a [16]byte
		for g := range 8 {
			if rapid.Bool().Draw(t, label+"_zero") {
				continue
			}
			v := rapid.Uint16().Draw(t, label+"_group")
			a[2*g], a[2*g+1] = byte(v>>8), byte(v)
		}
		return netip.AddrFrom16(a)
	}
}

// clientPrefixes are first groups of v6 addresses clients have: the
// registries' blocks, 6to4, documentation, unique local, link-local.
var clientPrefixes = []uint16{0x2001, 0x2002, 0x2003, 0x2400, 0x2600, 0x2607, 0x2800, 0x2a01, 0x2a02, 0x2c0f, 0x3fff, 0xfc00, 0xfd00, 0xfdab, 0xfe80}

// ClientV6 reports whether a is an IPv6 address whose first group is in a
// block a client's address is in, as the detector reads the spellings
// with '-', '_' or '.' for colons only then (privacy's clientV6Block: the
// same ranges).
func ClientV6(a netip.Addr) bool {
	if !a.Is6() || a.Is4In6() {
		return false
	}
	b := a.As16()
	v := uint16(b[0])<<8 | uint16(b[1])
	return v >= 0x2001 && v <= 0x2003 || v >= 0x2400 && v <= 0x2fff || v == 0x3ffe || v == 0x3fff ||
		v >= 0xfc00 && v <= 0xfdff || v >= 0xfe80 && v <= 0xfebf || v >= 0xff00
}

// Spelling draws one textual form of a: canonical or expanded, the other
// family's form of a v4-mapped address, octets with leading zeros, upper
// case hex, with a zone (v6), a port, brackets; and for a v4 address or a
// client's v6 address, with '-' or '_' (v6 also '.') for its dots or
// colons, as names that cannot hold ':' write them.
func Spelling(t *rapid.T, a netip.Addr, label string) string {
	var forms []string
	forms = append(forms, a.String(), a.StringExpanded(), strings.ToUpper(a.StringExpanded()))
	if a.Is4() {
		b := a.As4()
		forms = append(forms, "::ffff:"+a.String(), fmt.Sprintf("%03d.%03d.%03d.%03d", b[0], b[1], b[2], b[3]))
	}
	if a.Is4In6() {
		forms = append(forms, a.Unmap().String())
	}
	if a.Is4() {
		// ip-10-0-0-7, 10_0_0_7: Embedded keeps digits and dashes of the
		// glue away from it, as the detector wants exactly four numbers.
		forms = append(forms, strings.ReplaceAll(a.String(), ".", "-"), strings.ReplaceAll(a.String(), ".", "_"))
	}
	if ClientV6(a) {
		// wg-2001-db8--1, gre_fd00__1, fe80..1, 2001-db8-0-0-0-0-0-1:
		// compressed or all eight groups, never mixing separators.
		for _, sep := range []string{"-", "_", "."} {
			forms = append(forms, strings.ReplaceAll(a.String(), ":", sep), strings.ReplaceAll(a.StringExpanded(), ":", sep))
		}
	}
	s := rapid.SampledFrom(forms).Draw(t, label+"_form")
	isV6 := strings.Contains(s, ":")
	if isV6 && rapid.IntRange(0, 3).Draw(t, label+"_haszone") == 0 {
		s += "%" + rapid.SampledFrom([]string{"eth0", "1", "wlan0", "en0"}).Draw(t, label+"_zone")
	}
	port := fmt.Sprint(rapid.Uint16Range(1, 65535).Draw(t, label+"_port"))
	switch rapid.IntRange(0, 4).Draw(t, label+"_wrap") {
	case 1:
		if isV6 {
			s = "[" + s + "]"
		}
	case 2:
		if isV6 {
			s = "[" + s + "]:" + port
		} else {
			s += ":" + port
		}
	case 3:
		s += ":" // "/mnt/10.0.0.7:", an NFS source cut at its path
	}
	return s
}

// glue are the things found around an address in a mount point, a device
// name, a URL or a log line.
var glue = []string{
	"", "", "/", "/mnt/", "/mnt/host", "host", "ip", "nbd", "x", "a", "f", "Z", "0", "7", "42", "_", "-", ".",
	":", "@", "=", "%", "[", "]", ",", ";", " ", "\t", "'", "\"", "://", "ip=", "for=", "addr:",
	".nip.io", ".sslip.io", ".example", ":/x", ":/export", "/data", "/x/", "s3fs#", "user@", "dav.",
}

// Surround draws what comes before and after an address.
func Surround(t *rapid.T, label string) (before, after string) {
	pick := func(name string) string {
		var b strings.Builder
		for i := range rapid.IntRange(0, 3).Draw(t, label+"_"+name+"_n") {
			b.WriteString(rapid.SampledFrom(glue).Draw(t, fmt.Sprint(label, "_", name, i)))
		}
		return b.String()
	}
	return pick("before"), pick("after")
}

// Encode draws a percent-encoding of s: none, its separators ('.', ':',
// '%', brackets) only, a random subset of its bytes, all of it, its
// separators twice, or all of it two to five times (four layers and more
// the detector takes as hostile whatever they hide).
func Encode(t *rapid.T, s, label string) string {
	switch rapid.IntRange(0, 6).Draw(t, label+"_enc") {
	case 5:
		out := encodeIf(s, func(byte, int) bool { return true })
		for range rapid.IntRange(1, 4).Draw(t, label+"_layers") {
			out = encodeIf(out, func(c byte, _ int) bool { return c == '%' })
		}
		return out
	case 1:
		return encodeIf(s, func(c byte, _ int) bool { return strings.IndexByte(".:%[]", c) >= 0 })
	case 2:
		mask := rapid.SliceOfN(rapid.Bool(), len(s), len(s)).Draw(t, label+"_mask")
		return encodeIf(s, func(_ byte, i int) bool { return mask[i] })
	case 3:
		return encodeIf(s, func(byte, int) bool { return true })
	case 4:
		once := encodeIf(s, func(c byte, _ int) bool { return c == '.' || c == ':' })
		return encodeIf(once, func(c byte, _ int) bool { return c == '%' })
	}
	return s
}

func encodeIf(s string, pred func(c byte, i int) bool) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		// A character is encoded whole, all its UTF-8 bytes or none: a
		// label value must stay valid UTF-8.
		size := 1
		if s[i] >= utf8.RuneSelf {
			_, size = utf8.DecodeRuneInString(s[i:])
		}
		if !pred(s[i], i) {
			b.WriteString(s[i : i+size])
			i += size
			continue
		}
		for k := i; k < i+size; k++ {
			if k%2 == 0 {
				fmt.Fprintf(&b, "%%%02X", s[k])
			} else {
				fmt.Fprintf(&b, "%%%02x", s[k])
			}
		}
		i += size
	}
	return b.String()
}

// Widen draws a rewriting of s in the characters browsers, resolvers and
// readers of a log take for ASCII (what IDNA's mapping or NFKC makes
// ASCII): some of its digits in fullwidth, superscript, subscript,
// circled, mathematical or segmented forms, two of them as one circled
// number ("⑩") or a digit and its dot as one character ("⒈"), hex
// letters fullwidth, circled or mathematical, colons and brackets
// fullwidth or as look-alikes, dots fullwidth, ideographic, halfwidth
// ideographic, small or as a one dot leader; and sometimes invisible
// characters (zero-width space, joiners, word joiner, byte-order mark,
// soft hyphen, combining grapheme joiner, variation selectors, invisible
// plus, shorthand format controls, a bidi mark) between its characters.
func Widen(t *rapid.T, s, label string) string {
	if rapid.IntRange(0, 2).Draw(t, label+"_widen") == 0 {
		return s
	}
	mask := rapid.SliceOfN(rapid.Bool(), len(s), len(s)).Draw(t, label+"_widemask")
	invisible := rapid.Bool().Draw(t, label+"_invisible")
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if invisible && i > 0 && rapid.IntRange(0, 3).Draw(t, label+"_invis") == 0 {
			b.WriteRune(rapid.SampledFrom(invisibles).Draw(t, label+"_invisr"))
		}
		if mask[i] && i+1 < len(s) && mask[i+1] && isDigit(r) {
			// Two characters as one: "10" to "20" circled, "1." to "9."
			// with its dot.
			if n := int(r-'0')*10 + int(s[i+1]-'0'); isDigit(rune(s[i+1])) && n >= 10 && n <= 20 {
				b.WriteRune(0x2469 + rune(n-10))
				i += 2
				continue
			}
			if r != '0' && s[i+1] == '.' && rapid.Bool().Draw(t, label+"_digitdot") {
				b.WriteRune(0x2487 + r - '0')
				i += 2
				continue
			}
		}
		switch {
		case !mask[i] || r >= 0x80:
			b.WriteRune(r)
		case r == '.':
			b.WriteRune(rapid.SampledFrom([]rune{0xff0e, 0x3002, 0xff61, 0xfe52, 0x2024}).Draw(t, label+"_dot"))
		case r == ':':
			b.WriteRune(rapid.SampledFrom([]rune{0xff1a, 0xfe55, 0xfe13, 0x2236, 0x02d0, 0xa789}).Draw(t, label+"_colon"))
		case isDigit(r):
			d := r - '0'
			b.WriteRune(rapid.SampledFrom([]rune{
				r + 0xfee0, superscripts[d], 0x2080 + d, circled[d],
				0x1d7ce + d, 0x1d7d8 + d, 0x1d7f6 + d, 0x1fbf0 + d,
			}).Draw(t, label+"_digit"))
		case r >= 'a' && r <= 'f':
			b.WriteRune(rapid.SampledFrom([]rune{r + 0xfee0, 0x24d0 + r - 'a', 0x1d41a + r - 'a'}).Draw(t, label+"_hex"))
		case r >= 'A' && r <= 'F':
			b.WriteRune(rapid.SampledFrom([]rune{r + 0xfee0, 0x24b6 + r - 'A', 0x1d400 + r - 'A'}).Draw(t, label+"_HEX"))
		case r == '[', r == ']', r == '-', r == '_':
			b.WriteRune(r + 0xfee0)
		default:
			b.WriteRune(r)
		}
		i += size
	}
	return b.String()
}

func isDigit(r rune) bool { return r >= '0' && r <= '9' }

var (
	superscripts = [10]rune{0x2070, 0xb9, 0xb2, 0xb3, 0x2074, 0x2075, 0x2076, 0x2077, 0x2078, 0x2079}
	circled      = [10]rune{0x24ea, 0x2460, 0x2461, 0x2462, 0x2463, 0x2464, 0x2465, 0x2466, 0x2467, 0x2468}
	// invisibles are characters IDNA maps to nothing, or a reader does
	// not see.
	invisibles = []rune{0x200b, 0x200c, 0x200d, 0x2060, 0xfeff, 0xad, 0x34f, 0x180b, 0x180d, 0x180f, 0x2064,
		0xfe00, 0xfe0f, 0x1bca0, 0x1bca3, 0xe0100, 0xe01ef, 0x200e}
)

// Embedded draws an address and a text that holds it: a spelling of it,
// widened or not, percent-encoded or not, between glue.
func Embedded(t *rapid.T, label string) (text string, a netip.Addr) {
	a = Addr(t, label)
	spelling := Spelling(t, a, label)
	dashed := strings.ContainsAny(spelling, "-_")
	core := Encode(t, Widen(t, spelling, label), label)
	before, after := Surround(t, label)
	// A client's v6 address has a '.' only when spelled with dots.
	if dotted := ClientV6(a) && strings.Contains(spelling, "."); dashed || dotted {
		before += rapid.SampledFrom([]string{"ip-", "host-", "c-", "x", "/", "wg-", "gre_"}).Draw(t, label+"_dashbefore")
		ends := []string{".", "x", ".hsd1.example.net", ".ec2.internal", "/", ".sslip.io", ".ns.pod.cluster.local"}
		if dotted {
			// A lone '.' after "fe80..1" lets the glue double it again
			// ("fe80..1.."), which the detector reads as an LVM name.
			ends = ends[1:]
		}
		after = rapid.SampledFrom(ends).Draw(t, label+"_dashafter") + after
	}
	return before + core + after, a
}

// EmbeddedEmail draws an e-mail address in one of the shapes that reach a
// label or a log line (non-ASCII, quoted, with a control byte or
// invisible characters, a fullwidth at, an underscore in the domain),
// widened or not, percent-encoded or not, between glue; and the text of its
// local part that must not survive scrubbing.
func EmbeddedEmail(t *rapid.T, label string) (text, secret string) {
	local := rapid.SampledFrom([]string{"alice", "andré", "\"alice smith\"", "alice\x00", "bob.smith", "alice+tag", "ａｌｉｃｅ"}).Draw(t, label+"_local")
	at := rapid.SampledFrom([]string{"@", "@", "＠", "﹫"}).Draw(t, label+"_at")
	domain := rapid.SampledFrom([]string{"example.com", "bücher.de", "例え.jp", "example.рф", "my_host.example.com",
		"ex\u00adample.com", "\u200bexample.com", "mail.example.org", "example。com"}).Draw(t, label+"_domain")
	core := Encode(t, Widen(t, local+at+domain, label), label)
	before, after := Surround(t, label)
	secret = "alice"
	if strings.HasPrefix(local, "bob") {
		secret = "bob.smith"
	} else if strings.HasPrefix(local, "andr") {
		secret = "andré"
	} else if strings.HasPrefix(local, "ａ") {
		secret = "ａｌｉｃｅ"
	}
	return before + core + after, secret
}

// Forms is every plain spelling of a that must never appear in an output:
// canonical, expanded, mapped and unmapped. Forms shorter than 7 bytes
// ("::", "::1") are left out: they occur in binary protobuf by chance.
func Forms(a netip.Addr) []string {
	var forms []string
	for _, x := range []netip.Addr{a.WithZone(""), a.Unmap()} {
		forms = append(forms, x.String(), x.StringExpanded())
		if x.Is4() {
			m := netip.AddrFrom16(x.As16())
			forms = append(forms, "::ffff:"+x.String(), m.StringExpanded())
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, f := range forms {
		if len(f) >= 7 && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out
}
