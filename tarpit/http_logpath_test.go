package tarpit

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestLoggable(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("a", 255) + "é" // é's two bytes straddle the 256-byte cut
	for _, c := range []struct{ in, want string }{
		{"/wp-login.php?x=1", "/wp-login.php?x=1"},
		{"/%E2%80%AE/%00", "/%E2%80%AE/%00"}, // percent-encoded as sent: kept
		{"/caf\u00e9/\u65e5\u672c/\U0001F600", "/caf\u00e9/\u65e5\u672c/\U0001F600"},
		{"/a\u202eb", "/a%E2%80%AEb"},
		{"/\u2066\u2067\u2068\u2069", "/%E2%81%A6%E2%81%A7%E2%81%A8%E2%81%A9"},
		{"/\u0085\u009b", "/%C2%85%C2%9B"},
		{"/\u200b\u200e\ufeff\u00ad", "/%E2%80%8B%E2%80%8E%EF%BB%BF%C2%AD"},
		{"/\u2028\u2029\u00a0", "/%E2%80%A8%E2%80%A9%C2%A0"},
		{"/\x1b[31m\x7f\t", "/%1B[31m%7F%09"},
		{"/\xff\xc3(", "/%FF%C3("},
		{"/\ue000\U000E0041", "/%EE%80%80%F3%A0%81%81"}, // private use, tag character
		{long, strings.Repeat("a", 255)},
		{strings.Repeat("a", 254) + "\u202e", strings.Repeat("a", 254)}, // no half escape either
		{strings.Repeat("a", 300), strings.Repeat("a", 256)},
	} {
		got := loggable(c.in, maxLoggedPath)
		if got != c.want {
			t.Errorf("loggable(%q) = %q, want %q", c.in, got, c.want)
		}
		if len(got) > maxLoggedPath || !utf8.ValidString(got) {
			t.Errorf("loggable(%q) = %q: over %d bytes or not UTF-8", c.in, got, maxLoggedPath)
		}
	}
}

// TestHTTPLoggedPathIsInert: a request target with a bidi override,
// isolates, C1 controls and a character cut by the length limit reaches
// the scanner log percent-encoded and cut whole, never raw or as U+FFFD.
func TestHTTPLoggedPathIsInert(t *testing.T) {
	t.Parallel()
	cfg := testConfig(t)
	cfg.SSHListenAddresses = nil
	tp, stop := startTarpit(t, cfg)
	addr := serveMux(t, tp)
	target := "/admin\u202egnp.php\u2066x\u2069\u0085\u009b" + strings.Repeat("b", 200) + "\u00e9\u00e9\u00e9"
	c, r := rawGet(t, "127.0.0.14", addr, target)
	defer c.Close()
	if status, err := r.ReadString('\n'); err != nil || status != "HTTP/1.1 200 OK\r\n" {
		t.Fatalf("status line %q, %v", status, err)
	}
	stop()
	raw, err := os.ReadFile(cfg.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"\u202e", "\u2066", "\u2069", "\u0085", "\u009b", "\ufffd", `\ufffd`, `\u202e`, `\u0085`} {
		if bytes.Contains(raw, []byte(bad)) {
			t.Errorf("scanner log holds %q: %s", bad, raw)
		}
	}
	want := loggable(target, maxLoggedPath)
	if !strings.HasPrefix(want, "/admin%E2%80%AEgnp.php%E2%81%A6x%E2%81%A9%C2%85%C2%9Bbbb") || !strings.HasSuffix(want, "b\u00e9") {
		t.Fatalf("loggable path %q", want)
	}
	recs := readLog(t, cfg.LogFile)
	if len(recs) != 2 {
		t.Fatalf("want open and close records, got %+v", recs)
	}
	for _, rec := range recs {
		if rec.Path != want {
			t.Errorf("logged path %q, want %q", rec.Path, want)
		}
	}
}
