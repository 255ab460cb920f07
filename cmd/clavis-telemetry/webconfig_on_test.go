//go:build telemetry || commercial

package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestWebConfigBadHashQuotesNothing: a plain password pasted where the
// bcrypt hash belongs is refused naming the user, without any of the
// password (bcrypt's own error quotes its first byte).
func TestWebConfigBadHashQuotesNothing(t *testing.T) {
	p := filepath.Join(t.TempDir(), "web.yml")
	if err := os.WriteFile(p, []byte("basic_auth_users:\n  prometheus: Wplain-password-pasted-as-is-"+strings.Repeat("x", 40)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := checkWebConfig(p)
	if err == nil {
		t.Fatal("a plain password accepted")
	}
	if msg := err.Error(); !strings.Contains(msg, `"prometheus"`) || strings.Contains(msg, "'W'") || strings.Contains(msg, "Wplain") {
		t.Errorf("error %q: want the user named and nothing of the password", msg)
	}
}
