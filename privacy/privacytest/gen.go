// Package privacytest generates, for property and fuzz tests, IP addresses
// embedded in text the way they reach a label or a log line: in any
// spelling, with zone or port, bracketed, glued to letters, digits or
// punctuation, percent-encoded in part, in whole or twice. No binary
// imports it.
package privacytest

import (
	"fmt"
	"net/netip"
	"strings"

	"pgregory.net/rapid"
)

// Addr draws an address: v4, v4-mapped v6, or v6 with zero groups often
// enough for compressed forms ("::"), sometimes link-local.
func Addr(t *rapid.T, label string) netip.Addr {
	switch rapid.IntRange(0, 3).Draw(t, label+"_kind") {
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

// Spelling draws one textual form of a: canonical or expanded, the other
// family's form of a v4-mapped address, octets with leading zeros, upper
// case hex, with a zone (v6), a port, brackets.
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
// '%', brackets) only, a random subset of its bytes, all of it, or all of it
// twice.
func Encode(t *rapid.T, s, label string) string {
	switch rapid.IntRange(0, 5).Draw(t, label+"_enc") {
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
	for i := 0; i < len(s); i++ {
		if pred(s[i], i) {
			if i%2 == 0 {
				fmt.Fprintf(&b, "%%%02X", s[i])
			} else {
				fmt.Fprintf(&b, "%%%02x", s[i])
			}
			continue
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// Embedded draws an address and a text that holds it: a spelling of it,
// percent-encoded or not, between glue.
func Embedded(t *rapid.T, label string) (text string, a netip.Addr) {
	a = Addr(t, label)
	core := Encode(t, Spelling(t, a, label), label)
	before, after := Surround(t, label)
	return before + core + after, a
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
