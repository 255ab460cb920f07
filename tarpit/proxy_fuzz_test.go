package tarpit

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzParseProxyHeader: whatever a peer sends, the parser never panics,
// never claims more bytes than it was given, and a header it accepts stays
// accepted, with the same result, when more bytes follow it.
func FuzzParseProxyHeader(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.7 127.0.0.1 51000 22\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::7 ::1 40000 22\r\nSSH-2.0-x\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x21\x11\x00\x0c\xc0\x00\x02\x07\x7f\x00\x00\x01\xc7\x38\x00\x16"))
	f.Add([]byte("\r\n\r\n\x00\r\nQUIT\n\x20\x00\x00\x00"))
	f.Add([]byte("SSH-2.0-OpenSSH_9.2p1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, src, err := parseProxyHeader(b)
		if err != nil {
			if n != 0 || src.IsValid() {
				t.Fatalf("error %v with n=%d src=%v", err, n, src)
			}
			if errors.Is(err, errNeedMore) && len(b) >= maxProxyHeader {
				t.Fatalf("asks for more after %d bytes", len(b))
			}
			return
		}
		if n <= 0 || n > len(b) || n > maxProxyHeader {
			t.Fatalf("n=%d for %d bytes", n, len(b))
		}
		longer := append(bytes.Clone(b[:n]), "trailing"...)
		n2, src2, err2 := parseProxyHeader(longer)
		if err2 != nil || n2 != n || src2 != src {
			t.Fatalf("header %q: with trailing bytes n=%d src=%v err=%v, alone n=%d src=%v", b[:n], n2, src2, err2, n, src)
		}
	})
}
