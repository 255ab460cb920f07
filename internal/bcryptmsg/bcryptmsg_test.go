package bcryptmsg

import (
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// TestReasonQuotesNothingOfTheValue: whatever was pasted, the reason holds
// none of it, though bcrypt's own error quotes its first byte.
func TestReasonQuotesNothingOfTheValue(t *testing.T) {
	for _, v := range []string{"Zebra-horse-battery-staple-" + strings.Repeat("x", 40), "Q",
		"prometheus:$2y$10$abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXY"} {
		_, err := bcrypt.Cost([]byte(v))
		if err == nil {
			t.Fatalf("%q: accepted as a hash", v)
		}
		if r := Reason(err); strings.Contains(r, v[:1]+"'") || r == "" {
			t.Errorf("%q: reason %q quotes the value (bcrypt said %q)", v, r, err)
		}
	}
	_, err := bcrypt.Cost([]byte("Zebra-horse-battery-staple-" + strings.Repeat("x", 40)))
	if !strings.Contains(err.Error(), "'Z'") {
		t.Fatalf("bcrypt no longer quotes the first byte (%q): this package may be unneeded", err)
	}
}
