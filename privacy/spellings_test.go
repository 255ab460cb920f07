package privacy

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
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
	// v6 with '-', '_' or '.' for its colons: tunnel interfaces (which
	// cannot hold ':'), wildcard DNS, Kubernetes pod names of v6 pods.
	"wg-2001-db8--1", "gre-fd00--1", "gre_fd00__1", "fe80..1", "2001.db8..1", "2001-db8-0-0-0-0-0-1",
	"/mnt/2a01-4f8-c17-b8f--2.sslip.io", "fd00--1.ns.pod.cluster.local", "2001-db8-1-2-3-4-5-6.dyn.example.net",
	"gre2001-db8--1", "fdab--beef", "2a01-4f8-c17-b8f-0-0-0-2", "FE80--1", "2001...ec2.internal",
	// what IDNA maps to digits or drops: superscripts, subscripts,
	// circled, mathematical and segmented digits, ignored code points;
	// a dot and colons that read as such.
	"¹⁰.0.0.7", "₁₀.0.0.7", "①⓪.0.0.7", "⑩.0.0.7", "𝟏𝟎.0.0.7", "\U0001FBF1\U0001FBF0.0.0.7",
	"10.0.0\u034f.7", "10.0.0\ufe0f.7", "10.0.0\ufe00.7", "10.0.0\u180b.7", "10.0.0\u180f.7", "10.0.0\u2064.7",
	"10.0.0\U0001bca0.7", "10.0.0\U000e0100.7", "10.0.0\U000e01ef.7", "10\u20240\u20240\u20241", "10.0.0.⒎",
	"2001\u2236db8\u2236\u22361", "2001\u02d0db8\u02d0\u02d01", "10.0.0%CD%8F.1", "10.0.0.%F0%9D%9F%8F",
}

// emailSpellings are the e-mail shapes the gate passed.
var emailSpellings = []string{
	"alice@bücher.de", "andré@example.com", "alice@例え.jp", "alice@example.рф", "alice@\u200bexample.com",
	"alice@ex\u00adample.com", "alice＠example.com", "\"alice smith\"@example.com", "alice@my_host.example.com",
	"alice\x00@example.com", "alice%EF%BC%A0example.com", "alice@example。com", "/home/ｂｏｂ＠ｍａｉｌ．ｅｘａｍｐｌｅ．ｏｒｇ",
	"alice@example.comdav.x",
	// an address literal for a domain
	"alice@[10.0.0.1]", "alice@[IPv6:2001:db8::1]", "alice%40%5B10.0.0.1%5D",
}

// operatorValues are label values an operator's POP really has: none may be
// taken for an address or an e-mail.
var operatorValues = []string{
	"/", "/var/lib/docker/overlay2/abc", "/mnt/backup-2024.01.01", "/mnt/backup-2024-01-01", "2024-01-01",
	"/srv/snap-2024-01-15-10-30-00", "/srv/2024-01-01_10_20_30_40", "nvme0n1p1", "sda1", "dm-0", "eth0",
	"enp0s31f6", "veth1a2b3c", "wg0", "br-1a2b3c4d5e6f", "api_v1", "go1.26.0", "v1.2.3", "1-2-3", "md-127",
	"/mnt/café", "/mnt/データ", "pool/ds@snap", "a.b.c.d", "x86_64", "loop0", "tun0", "/run/user/1000",
	"e2e-1", "vault-01-02", "/mnt/ipv6-literal.net",
	// hex groups and dashes, dots or underscores that are no v6 address
	// (substitutedV6): interface, device and kernel names, UUIDs, hashes,
	// LVM's doubled dashes, dates, MAC-48 and EUI-64, hexspeak.
	"veth1234abc", "eno1np0", "6.1.0-28-amd64", "123e4567-e89b-12d3-a456-426614174000", "kube-api-access-xyz",
	"/var/lib/docker/overlay2/3f9c2e7a1bfd00aa2001/merged", "/var/lib/docker/overlay2/3f9c2e7a1b-init",
	"/dev/mapper/ubuntu--vg-ubuntu--lv", "/dev/mapper/vg-snap--2024--01--01", "/dev/mapper/vg-2024--01",
	"/dev/mapper/lvmvg-pvc--fd3a1b2c--2001--4c3d--8e9f--0123456789ab", "/dev/mapper/data--2024-lv", "2026-06-13",
	"/dev/mapper/ceph--eaff26c1--c15b-osd--block--236a88d6", "x3f9c2e7a--1b2c",
	"2001-01-01", "00-1a-2b-3c-4d-5e", "00-1a-2b-ff-fe-3c-4d-5e", "00:1a:2b:3c:4d:5e", "feed--1", "cafe--babe", "1--2",
	"dead..beef", "1.2..3", "__init__", "fd00", "fe80", "max_clients", "per_source",
	// non-ASCII that folds to no address
	"/mnt/x²", "/mnt/①", "/srv/½", "/mnt/ﬁle",
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
		"dev wg-2001-db8--1 up":            "dev wg-<redacted> up",
		"pod fd00--1.ns.pod.cluster.local": "pod <redacted>.ns.pod.cluster.local",
		"from ¹⁰.0.0.7 at":                 "from <redacted> at",
		"from 10.0.0\ufe0f.7 at":           "from <redacted> at",
		"mail alice@[10.0.0.1] now":        "mail <redacted> now",
		"to alice@[IPv6:2001:db8::1].":     "to <redacted>.",
	} {
		if got := ScrubAddresses(in); got != want {
			t.Errorf("ScrubAddresses(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestPrivacyGateDropsSpellings: a series carrying any of the spellings
// is dropped and counted under its reason; one carrying an operator's
// value passes.
func TestPrivacyGateDropsSpellings(t *testing.T) {
	t.Parallel()
	var ms []prometheus.Metric
	for _, v := range append(addressSpellings, emailSpellings...) {
		ms = append(ms, gauge("clavis_http_requests_total", map[string]string{"method": "GET", "code": "2xx", "route": v}))
	}
	for _, v := range operatorValues {
		ms = append(ms, gauge("clavis_filesystem_size_bytes", map[string]string{"device": "sda1", "fstype": "ext4", "mountpoint": v}))
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(leaky{ms})
	fams := gatherGate(t, NewGate(reg, nil))
	for _, m := range fams["clavis_http_requests_total"].GetMetric() {
		t.Errorf("series passed the gate: %v", m.GetLabel())
	}
	if n := len(fams["clavis_filesystem_size_bytes"].GetMetric()); n != len(operatorValues) {
		t.Errorf("%d of %d operator series passed", n, len(operatorValues))
	}
	got := redactions(t, fams)
	if n := got[ReasonIPAddress] + got[ReasonEmailAddress]; n != float64(len(addressSpellings)+len(emailSpellings)) {
		t.Errorf("redactions = %v, want %d", got, len(addressSpellings)+len(emailSpellings))
	}
}

// TestReplaceAddressesLeavesNone: a replacement that joins the text
// around it into a new address ("2001_" and "_" read 2001:: with '_' for
// ':') is read again.
func TestReplaceAddressesLeavesNone(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"2001_10.0.0.1x", "fd00-[::1]-1", "x_2001_10.0.0.1_fd00_"} {
		if got := ReplaceAddresses(v, "_"); ContainsAddress(got) {
			t.Errorf("ReplaceAddresses(%q, \"_\") = %q holds an address", v, got)
		}
	}
}
