package privacy

import (
	"strings"
	"testing"
)

// addressSpellings are the red team's address spellings the gate passed:
// fullwidth and ideographic dots and digits (browsers map them to ASCII),
// their escapes, dashes and underscores for dots, four layers of
// percent-encoding, Microsoft's IPv6 literal names and ip6.arpa names.
var addressSpellings = []string{
	"１０．０．０．１", "10。0。0。1", "10．0．0．1", "10｡0｡0｡1", "10%E3%80%820%E3%80%820%E3%80%821",
	"10%EF%BC%8E0%EF%BC%8E0%EF%BC%8E1", "/mnt/host１０．０．０．１x", "２００１：ｄｂ８：：１", "10.0.\u200b0.1", "10.0\u00ad.0.1",
	"ip-10-0-0-7", "host-203-0-113-9", "c-73-15-200-12.hsd1.example.net", "10_0_0_7", "/mnt/ip-10-0-0-7/x",
	"ip-10-0-0-7.ec2.internal", "010-000-000-007", "10%2D0%2D0%2D7",
	"%2525252531%252525252E0%252525252E0%252525252E1", "10%252525252E0%252525252E0%252525252E1",
	"2001-db8--1.ipv6-literal.net", "fe80--1s4.IPV6-LITERAL.NET", "/mnt/2001-db8--1.ipv6-literal.net/x",
	"b.a.9.8.7.6.5.0.4.0.0.0.3.0.0.0.2.0.0.0.1.0.0.0.0.0.0.0.1.2.3.4.ip6.arpa",
	"x4.3.2.1.0.0.0.0.8.b.d.0.1.0.0.2",
	// found by the property test: a '%' glued before an address whose
	// last octet is an escaped fullwidth digit.
	"%10\u200b.\u200b0\u200b.０\u00ad．%EF%bc%90",
}

// emailSpellings are the e-mail shapes the gate passed.
var emailSpellings = []string{
	"alice@bücher.de", "andré@example.com", "alice@例え.jp", "alice@example.рф", "alice@\u200bexample.com",
	"alice@ex\u00adample.com", "alice＠example.com", "\"alice smith\"@example.com", "alice@my_host.example.com",
	"alice\x00@example.com", "alice%EF%BC%A0example.com", "alice@example。com", "/home/ｂｏｂ＠ｍａｉｌ．ｅｘａｍｐｌｅ．ｏｒｇ",
	"alice@example.comdav.x",
}

// operatorValues are label values an operator's POP really has: none may be
// taken for an address or an e-mail.
var operatorValues = []string{
	"/", "/var/lib/docker/overlay2/abc", "/mnt/backup-2024.01.01", "/mnt/backup-2024-01-01", "2024-01-01",
	"/srv/snap-2024-01-15-10-30-00", "/srv/2024-01-01_10_20_30_40", "nvme0n1p1", "sda1", "dm-0", "eth0",
	"enp0s31f6", "veth1a2b3c", "wg0", "br-1a2b3c4d5e6f", "api_v1", "go1.26.0", "v1.2.3", "1-2-3", "md-127",
	"/mnt/café", "/mnt/データ", "pool/ds@snap", "a.b.c.d", "x86_64", "loop0", "tun0", "/run/user/1000",
	"e2e-1", "vault-01-02", "/mnt/ipv6-literal.net",
}

func TestAddressSpellings(t *testing.T) {
	t.Parallel()
	for _, v := range addressSpellings {
		if !ContainsAddress(v) {
			t.Errorf("ContainsAddress(%q) = false", v)
		}
		if s := ScrubAddresses(v); ContainsAddress(s) || strings.Contains(s, "10-0-0") || strings.Contains(s, "0.0.1") {
			t.Errorf("ScrubAddresses(%q) = %q", v, s)
		}
	}
	for _, v := range emailSpellings {
		if !IsEmailShaped(v) {
			t.Errorf("IsEmailShaped(%q) = false", v)
		}
		if s := ScrubAddresses(v); IsEmailShaped(s) || strings.Contains(s, "alice") || strings.Contains(s, "ｂｏｂ") {
			t.Errorf("ScrubAddresses(%q) = %q", v, s)
		}
	}
	for _, v := range operatorValues {
		if ContainsAddress(v) || IsEmailShaped(v) {
			t.Errorf("%q taken for an address (ContainsAddress %v, IsEmailShaped %v)", v, ContainsAddress(v), IsEmailShaped(v))
		}
		if s := ScrubAddresses(v); s != v {
			t.Errorf("ScrubAddresses(%q) = %q, want it unchanged", v, s)
		}
	}
}

// TestScrubKeepsTextAroundSpellings: only the address is cut, and a
// folded or dashed one is cut whole, not its ASCII neighbours.
func TestScrubKeepsTextAroundSpellings(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"from １０．０．０．１ at":                 "from <redacted> at",
		"host ip-10-0-0-7.ec2.internal up": "host ip-<redacted>.ec2.internal up",
		"mail alice@bücher.de now":         "mail <redacted> now",
		"by \"alice smith\"@example.com.":  "by <redacted>.",
		"key=%25252525252E1 rest":          "key=<redacted> rest",
		"on 2001-db8--1.ipv6-literal.net:": "on <redacted>:",
	} {
		if got := ScrubAddresses(in); got != want {
			t.Errorf("ScrubAddresses(%q) = %q, want %q", in, got, want)
		}
	}
}
