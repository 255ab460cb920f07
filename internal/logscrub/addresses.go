package logscrub

import (
	"net/netip"
	"regexp"
	"strings"
)

// Redacted replaces an address in a scrubbed log line, as privacy.Redacted
// does in the telemetry editions.
const Redacted = "<redacted>"

var (
	// dotted quads anywhere, glued to letters or not, with an optional port.
	ipv4 = regexp.MustCompile(`(?:\d{1,3}\.){3}\d{1,3}(?::\d{1,5})?`)
	// e-mail addresses: a local part (up to 64 bytes, anything but white
	// space and delimiters), and a domain of two labels or more of letters
	// of any script, digits, '-' and '_'; the last label is checked apart.
	email = regexp.MustCompile(`[^\s@<>(),;]{1,64}@[\pL\pN_-]+(?:\.[\pL\pN_-]+)+`)
	// e-mail addresses whose domain is an address literal (RFC 5321,
	// 4.1.3): "alice@[10.0.0.1]", "alice@[IPv6:2001:db8::1]"; the literal
	// is checked by netip. Without this the address rules below cut the
	// literal and leave the local part ("alice@[<redacted>]").
	emailLiteral = regexp.MustCompile(`[^\s@<>(),;\[\]]{1,64}@\[(?:[Ii][Pp][Vv]6:)?[0-9A-Fa-f:.]{2,45}(?:%[0-9A-Za-z._-]+)?\]`)
	// candidate IPv6 forms (checked by netip): hex groups and colons, an
	// optional embedded IPv4 tail and zone, optionally bracketed with a port.
	ipv6 = regexp.MustCompile(`\[?[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?:(?:\d{1,3}\.){3}\d{1,3})?(?:%[0-9A-Za-z._-]+)?\]?(?::\d{1,5})?`)
)

// Addresses replaces every IPv4 and IPv6 address (bracketed, with a port
// or zone, v4-mapped, glued to letters) and every e-mail address in s with
// Redacted. It is the
// community edition's scrubber: that edition must not link the privacy
// gate (hard rule 3), and what it logs are net/http's and the tarpit's
// errors, where addresses appear in Go's canonical forms, all covered
// here. The telemetry editions scrub with the gate's own detector.
func Addresses(s string) string {
	if !strings.ContainsAny(s, ".:") {
		return s
	}
	if strings.IndexByte(s, '@') >= 0 {
		s = emailLiteral.ReplaceAllStringFunc(s, func(m string) string {
			lit := m[strings.LastIndexByte(m, '[')+1 : len(m)-1]
			if len(lit) > 5 && strings.EqualFold(lit[:5], "IPv6:") {
				lit = lit[5:]
			}
			if _, err := netip.ParseAddr(lit); err != nil {
				return m
			}
			return Redacted
		})
		s = email.ReplaceAllStringFunc(s, func(m string) string {
			if len(m)-strings.LastIndexByte(m, '.') <= 2 {
				return m // a one-letter last label: no domain name
			}
			return Redacted
		})
	}
	s = ipv4.ReplaceAllString(s, Redacted)
	if strings.Count(s, ":") < 2 {
		return s
	}
	return ipv6.ReplaceAllStringFunc(s, func(m string) string {
		// The candidate may start with text glued before the address
		// ("peer:2001:db8::1" matches from the colon, "x::" + an address
		// gives a second "::"): try it from each colon on as well.
		for rest := m; strings.Count(rest, ":") >= 2; {
			if isIPv6(rest) {
				return m[:len(m)-len(rest)] + Redacted
			}
			i := strings.IndexByte(rest, ':')
			rest = rest[i+1:]
		}
		return m
	})
}

// isIPv6 reports whether a candidate match is an IPv6 address, allowing
// brackets, a port, a zone and leftover delimiters around it.
func isIPv6(m string) bool {
	if ap, err := netip.ParseAddrPort(m); err == nil && ap.Addr().Is6() {
		return true
	}
	core := strings.Trim(m, "[]")
	if i := strings.LastIndex(m, "]:"); i >= 0 {
		core = strings.TrimPrefix(m[:i], "[")
	}
	if a, err := netip.ParseAddr(core); err == nil && a.Is6() {
		return true
	}
	// "::1:9745"-like text where the regexp took a port as a group, or a
	// trailing colon of a message: shorten from the right until it parses.
	for t := core; strings.Count(t, ":") >= 2; {
		i := strings.LastIndexByte(t, ':')
		t = t[:i]
		if a, err := netip.ParseAddr(strings.TrimSuffix(t, ":")); err == nil && a.Is6() && strings.Count(t, ":") >= 2 {
			return true
		}
	}
	return false
}
