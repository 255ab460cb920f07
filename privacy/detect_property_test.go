package privacy

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"pgregory.net/rapid"

	"github.com/clavitor/clavis-telemetry/privacy/privacytest"
)

// embeddedProperty: an address in any spelling, glued to anything,
// percent-encoded or not, is found; scrubbing leaves no spelling of it and
// no address at all; and the gate drops a series that carries it in any
// label, counting it.
func embeddedProperty(t *rapid.T) {
	text, a := privacytest.Embedded(t, "value")
	if !ContainsAddress(text) {
		t.Fatalf("ContainsAddress(%q) = false; it holds %s", text, a)
	}
	scrubbed := ScrubAddresses(text)
	if ContainsAddress(scrubbed) {
		t.Fatalf("ScrubAddresses(%q) = %q still holds an address", text, scrubbed)
	}
	for _, form := range privacytest.Forms(a) {
		if strings.Contains(scrubbed, form) {
			t.Fatalf("ScrubAddresses(%q) = %q keeps %s", text, scrubbed, form)
		}
	}
	label := rapid.SampledFrom([]string{"route", "method", "code"}).Draw(t, "label")
	labels := map[string]string{"method": "GET", "code": "2xx", "route": "api"}
	labels[label] = text
	reg := prometheus.NewRegistry()
	reg.MustRegister(leaky{[]prometheus.Metric{gauge("clavis_http_requests_total", labels)}})
	gate := NewGate(reg, nil)
	mfs, err := gate.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "clavis_http_requests_total" {
			t.Fatalf("the gate let %s=%q through", label, text)
		}
		if mf.GetName() == redactionsFamily {
			total := 0.0
			for _, m := range mf.GetMetric() {
				total += m.GetCounter().GetValue()
			}
			if total != 1 {
				t.Fatalf("redactions total %v after dropping one series", total)
			}
		}
	}
}

func TestEmbeddedAddressesProperty(t *testing.T) {
	t.Parallel()
	rapid.Check(t, embeddedProperty)
}

// FuzzEmbeddedAddresses is the same property driven by the fuzzer's bytes.
func FuzzEmbeddedAddresses(f *testing.F) {
	f.Fuzz(rapid.MakeFuzz(embeddedProperty))
}

// emailProperty: an e-mail address in any of the shapes privacytest draws,
// glued to anything, widened or encoded, is found; scrubbing leaves no
// e-mail and not its local part; the gate drops a series carrying it.
func emailProperty(t *rapid.T) {
	text, secret := privacytest.EmbeddedEmail(t, "email")
	if !IsEmailShaped(text) && !ContainsAddress(text) {
		t.Fatalf("IsEmailShaped(%q) = false", text)
	}
	scrubbed := ScrubAddresses(text)
	if IsEmailShaped(scrubbed) || strings.Contains(scrubbed, secret) {
		t.Fatalf("ScrubAddresses(%q) = %q keeps the address", text, scrubbed)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(leaky{[]prometheus.Metric{gauge("clavis_http_requests_total", map[string]string{"method": "GET", "code": "2xx", "route": text})}})
	mfs, err := NewGate(reg, nil).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "clavis_http_requests_total" {
			t.Fatalf("the gate let route=%q through", text)
		}
	}
}

func TestEmbeddedEmailsProperty(t *testing.T) {
	t.Parallel()
	rapid.Check(t, emailProperty)
}

// FuzzEmbeddedEmails is the same property driven by the fuzzer's bytes.
func FuzzEmbeddedEmails(f *testing.F) {
	f.Fuzz(rapid.MakeFuzz(emailProperty))
}

// The examples of issue 13 §3, in a mount point, a device and an interface
// name: each is found, and a series carrying it is dropped.
func TestIssueExamplesAreAddresses(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"/mnt/10.0.0.7:", "/mnt/host10.0.0.5", "ip10.0.0.21", "nbd10.0.0.30",
		"/mnt/10.0.0.6.nip.io", "/mnt/10%2E0%2E0%2E9", "/10.0.0.8:/x", "/mnt/10%252E0%252E0%252E9",
		"/mnt/fe80::1%25eth0", "/mnt/%5B2001%3Adb8%3A%3A1%5D", "wg2001:db8::1x", "/srv/x::ffff:10.0.0.1y"} {
		if !ContainsAddress(v) {
			t.Errorf("ContainsAddress(%q) = false", v)
		}
		if s := ScrubAddresses(v); ContainsAddress(s) || strings.Contains(s, "10.0.0") {
			t.Errorf("ScrubAddresses(%q) = %q", v, s)
		}
	}
	for _, v := range []string{"alice@example.com", "/home/bob.smith@mail.example.org/x", "u%40h.example",
		"carol@mail.example.1", "dave@10.example", "erin@例え.jp"} {
		if !IsEmailShaped(v) {
			t.Errorf("IsEmailShaped(%q) = false", v)
		}
	}
	// A version after '@' (npm, snap, pinned package paths) has an
	// all-numeric last label, which no domain has.
	for _, v := range []string{"pool/ds@snap", "@", "a@b", "user@localhost", "sda1", "/var/lib",
		"node@18.19.0", "/snap/pkg@1.2.3/x", "lib@2.0", "/opt/app@2026.12.03/bin"} {
		if IsEmailShaped(v) {
			t.Errorf("IsEmailShaped(%q) = true", v)
		}
	}
}

func TestLooksLikeAddress(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"0x0a000001", "3232235777", "c0a80101", "10_0_0_1", "ip10_0_0_1", "vault_3232235777",
		"20010db8000000000000000000000001", "0x7f000001", "16777216"} {
		if !LooksLikeAddress(v) {
			t.Errorf("LooksLikeAddress(%q) = false", v)
		}
	}
	for _, v := range []string{"api", "vault", "entry", "login", "v1", "404", "2xx", "health_check", "static", "ws", "12345"} {
		if LooksLikeAddress(v) {
			t.Errorf("LooksLikeAddress(%q) = true", v)
		}
	}
}
