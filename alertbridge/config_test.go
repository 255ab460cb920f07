package alertbridge

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSpoolPathRefusesWhatIsNotASpool: a mistyped --spool.path must never
// have a directory, a FIFO or somebody's file moved aside as a "damaged
// spool" and replaced: it is refused (a ConfigError naming --spool.path and
// what is there) and left exactly as it was.
func TestSpoolPathRefusesWhatIsNotASpool(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mk := func(name string, f func(p string) error) string {
		p := filepath.Join(dir, name)
		if err := f(p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	textFile := mk("important.conf", func(p string) error { return os.WriteFile(p, []byte("listen = 1\n"), 0o600) })
	// 8 KiB of zeroes: page-sized, but no bbolt magic anywhere.
	zeroes := mk("zeroes.bin", func(p string) error { return os.WriteFile(p, make([]byte, 8192), 0o600) })
	subdir := mk("somedir", func(p string) error {
		if err := os.Mkdir(p, 0o750); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(p, "keep"), []byte("x"), 0o600)
	})
	fifo := mk("fifo", func(p string) error { return syscall.Mkfifo(p, 0o600) })
	linkDir := mk("link-dir", func(p string) error { return os.Symlink(subdir, p) })
	linkText := mk("link-text", func(p string) error { return os.Symlink(textFile, p) })
	dangling := mk("link-dangling", func(p string) error { return os.Symlink(filepath.Join(dir, "nowhere"), p) })

	for _, c := range []struct{ path, what string }{
		{textFile, "not a bbolt spool"},
		{zeroes, "not a bbolt spool"},
		{subdir, "a directory"},
		{fifo, "named pipe"},
		{linkDir, "a symlink to " + subdir + ", which is a directory"},
		{linkText, "not a bbolt spool"},
		{dangling, "does not exist"},
	} {
		before, _ := os.Lstat(c.path)
		done := make(chan struct{})
		var err error
		go func() {
			defer close(done)
			var s *Spool
			s, _, err = OpenSpool(c.path, []string{TargetNtfy})
			if s != nil {
				s.Close()
			}
		}()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			t.Fatalf("%s: OpenSpool hangs", c.path)
		}
		if err == nil || !IsConfigError(err) {
			t.Errorf("%s: OpenSpool = %v, want a ConfigError", c.path, err)
			continue
		}
		if !strings.Contains(err.Error(), "--spool.path="+c.path) || !strings.Contains(err.Error(), c.what) {
			t.Errorf("%s: error %q does not name --spool.path and %q", c.path, err, c.what)
		}
		after, lerr := os.Lstat(c.path)
		if lerr != nil || !os.SameFile(before, after) || after.Size() != before.Size() {
			t.Errorf("%s was touched: %v", c.path, lerr)
		}
		if moved, _ := filepath.Glob(c.path + ".corrupt-*"); len(moved) > 0 {
			t.Errorf("%s moved aside: %v", c.path, moved)
		}
		// New says the same, before creating anything.
		if _, err := New(Config{SpoolPath: c.path}); !IsConfigError(err) {
			t.Errorf("%s: New = %v, want a ConfigError", c.path, err)
		}
	}
	if b, _ := os.ReadFile(textFile); string(b) != "listen = 1\n" {
		t.Errorf("text file changed: %q", b)
	}
	if _, err := os.Stat(filepath.Join(subdir, "keep")); err != nil {
		t.Errorf("directory content gone: %v", err)
	}
}

// TestSpoolPathDamagedBboltStillRecovered: a file that is a bbolt spool
// (its magic in a meta page) but fails the checks is still moved aside and
// replaced, as before; a missing or empty file is created.
func TestSpoolPathDamagedBboltStillRecovered(t *testing.T) {
	t.Parallel()
	for _, damage := range []string{"trunc100", "first-meta-zeroed"} {
		t.Run(damage, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool.db")
			s, _, err := OpenSpool(path, []string{TargetNtfy})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			switch damage {
			case "trunc100":
				os.Truncate(path, 100)
			case "first-meta-zeroed":
				f, _ := os.OpenFile(path, os.O_WRONLY, 0)
				f.WriteAt(make([]byte, 1024), 0)
				f.Close()
			}
			if err := CheckSpoolPath(path); err != nil {
				t.Fatalf("a damaged bbolt file is refused as not a spool: %v", err)
			}
			s, rec, err := OpenSpool(path, []string{TargetNtfy})
			if err != nil {
				t.Fatal(err)
			}
			s.Close()
			if damage == "trunc100" && rec == nil {
				t.Fatal("truncated spool not recovered")
			}
			if rec != nil {
				if moved, _ := filepath.Glob(path + ".corrupt-*"); len(moved) != 1 {
					t.Errorf("damaged file not kept: %v", moved)
				}
			}
		})
	}
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty.db")
	os.WriteFile(empty, nil, 0o600)
	for _, p := range []string{empty, filepath.Join(dir, "new", "spool.db")} {
		s, rec, err := OpenSpool(p, []string{TargetNtfy})
		if err != nil || rec != nil {
			t.Fatalf("%s: %v %v", p, err, rec)
		}
		s.Close()
	}
}

// TestStartupErrorsCarryNoSecret: a bad URL or token is a ConfigError that
// names the flag and environment variable, and never quotes a push token,
// a password or the token itself.
func TestStartupErrorsCarryNoSecret(t *testing.T) {
	t.Parallel()
	spool := filepath.Join(t.TempDir(), "spool.db")
	for _, c := range []struct {
		name, flag string
		cfg        Config
	}{
		{"kuma scheme", "--kuma.push-url (KUMA_PUSH_URL)", Config{Kuma: &KumaConfig{PushURL: "ftp://kuma/api/push/PUSHSECRET"}}},
		{"kuma no host", "KUMA_PUSH_URL", Config{Kuma: &KumaConfig{PushURL: "kuma.example/api/push/PUSHSECRET"}}},
		{"kuma opaque", "KUMA_PUSH_URL", Config{Kuma: &KumaConfig{PushURL: "kuma:api/push/PUSHSECRET"}}},
		{"kuma unparsable", "KUMA_PUSH_URL", Config{Kuma: &KumaConfig{PushURL: "https://kuma:x/api/push/PUSHSECRET"}}},
		{"kuma control char", "KUMA_PUSH_URL", Config{Kuma: &KumaConfig{PushURL: "https://kuma/api/push/PUSHSECRET\n"}}},
		{"kuma not a push URL", "KUMA_PUSH_URL", Config{Kuma: &KumaConfig{PushURL: "https://u:SECRETPW@kuma/push/PUSHSECRET"}}},
		{"kuma no token", "KUMA_PUSH_URL", Config{Kuma: &KumaConfig{PushURL: "https://kuma/api/push/"}}},
		{"kuma token and more", "KUMA_PUSH_URL", Config{Kuma: &KumaConfig{PushURL: "https://kuma/api/push/PUSHSECRET/x"}}},
		{"ntfy no topic", "NTFY_ALERT_URL", Config{Ntfy: &NtfyConfig{URL: "https://user:SECRETPW@ntfy.example/"}}},
		{"ntfy no path", "NTFY_ALERT_URL", Config{Ntfy: &NtfyConfig{URL: "https://ntfy.example?auth=SECRETPW"}}},
		{"ntfy scheme", "--ntfy.url (NTFY_ALERT_URL)", Config{Ntfy: &NtfyConfig{URL: "ftp://user:SECRETPW@ntfy/x"}}},
		{"ntfy unparsable", "NTFY_ALERT_URL", Config{Ntfy: &NtfyConfig{URL: "https://user:SECRETPW@ntfy x/%zz"}}},
		{"ntfy query", "NTFY_ALERT_URL", Config{Ntfy: &NtfyConfig{URL: "ntfy/x?auth=SECRETPW"}}},
		{"ntfy token", "--ntfy.token (NTFY_ALERT_TOKEN)", Config{Ntfy: &NtfyConfig{URL: "https://ntfy/x", Token: "tk_SECRETPW\n"}}},
		{"ntfy token DEL", "NTFY_ALERT_TOKEN", Config{Ntfy: &NtfyConfig{URL: "https://ntfy/x", Token: "tk_SECRETPW\x7f"}}},
		{"webhook token", "--webhook.token-file", Config{WebhookToken: "SECRETPW\r"}},
		{"alertmanager url", "--alertmanager.url", Config{Ntfy: &NtfyConfig{URL: "https://ntfy/x"},
			Actions: &ActionsConfig{ExternalURL: "https://ab", AlertmanagerURL: "ftp://am:SECRETPW@am", Secret: []byte("0123456789abcdef")}}},
		{"priority", "--ntfy.default-priority", Config{Ntfy: &NtfyConfig{URL: "https://ntfy/x", DefaultPriority: 9}}},
		{"resolved priority", "--ntfy.resolved-priority", Config{Ntfy: &NtfyConfig{URL: "https://ntfy/x", ResolvedPriority: -1}}},
	} {
		c.cfg.SpoolPath = spool
		_, err := New(c.cfg)
		if err == nil || !IsConfigError(err) {
			t.Errorf("%s: New = %v, want a ConfigError", c.name, err)
			continue
		}
		msg := fmt.Sprint(err)
		if strings.Contains(msg, "SECRET") {
			t.Errorf("%s: the error carries the secret: %s", c.name, msg)
		}
		if !strings.Contains(msg, c.flag) {
			t.Errorf("%s: the error does not name %s: %s", c.name, c.flag, msg)
		}
	}
	if _, err := os.Stat(spool); err == nil {
		t.Error("a refused configuration created the spool")
	}
}

func TestRedactURLForms(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"https://kuma/api/push/PUSHSECRET?status=up": "https://kuma/api/push/REDACTED?status=up",
		"kuma/api/push/PUSHSECRET":                   "kuma/api/push/REDACTED",
		"api/push/PUSHSECRET":                        "api/push/REDACTED",
		"kuma:api/push/PUSHSECRET":                   "kuma:REDACTED",
		"https://u:PUSHSECRET@ntfy/x#PUSHSECRET":     "https://REDACTED@ntfy/x",
		"https://ntfy/x?auth=PUSHSECRET":             "https://ntfy/x?auth=REDACTED",
		"https://a b/api/push/PUSHSECRET":            "(unparsable URL)",
	} {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
