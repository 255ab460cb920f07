package alertbridge

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// ConfigError is a configuration the bridge refuses (a bad URL, token,
// priority or spool path): cmd/alertbridge exits 2 on it. Its message names
// the flag and never carries a secret (URLs are redacted, tokens left out).
type ConfigError struct{ msg string }

func (e *ConfigError) Error() string { return e.msg }

func configErrorf(format string, args ...any) error {
	return &ConfigError{msg: fmt.Sprintf(format, args...)}
}

// IsConfigError reports whether err is (or wraps) a ConfigError.
func IsConfigError(err error) bool {
	var ce *ConfigError
	return errors.As(err, &ce)
}

// Flag names used in configuration errors.
const (
	flagNtfyURL     = "--ntfy.url (NTFY_ALERT_URL)"
	flagNtfyToken   = "--ntfy.token (NTFY_ALERT_TOKEN)"
	flagKumaURL     = "--kuma.push-url (KUMA_PUSH_URL)"
	flagExternalURL = "--web.external-url"
	flagAMURL       = "--alertmanager.url"
	flagSpoolPath   = "--spool.path"
)

// Validate checks cfg as New does, without opening anything: URLs,
// priorities, tokens and what is at the spool path. Every error is a
// *ConfigError.
func (c Config) Validate() error {
	if c.Ntfy != nil {
		if err := checkURLRedacted(flagNtfyURL, c.Ntfy.URL, RedactNtfyURL); err != nil {
			return err
		}
		if u, _ := url.Parse(c.Ntfy.URL); strings.Trim(u.Path, "/") == "" {
			// ntfy answers a plain publish to its root 400 (it takes JSON
			// there): every page would be held.
			return configErrorf("%s=%s names no topic: want the topic's URL, https://ntfy.example/<topic>", flagNtfyURL, RedactURL(c.Ntfy.URL))
		}
		if err := CheckToken(flagNtfyToken, c.Ntfy.Token); err != nil {
			return err
		}
		for sev, p := range c.Ntfy.Priorities {
			if p < 1 || p > 5 {
				return configErrorf("--ntfy.priority: priority %d for severity %q is outside 1..5", p, sev)
			}
		}
		// Zero takes the default (3).
		if p := c.Ntfy.DefaultPriority; p < 0 || p > 5 {
			return configErrorf("--ntfy.default-priority=%d: must be between 1 and 5", p)
		}
		if p := c.Ntfy.ResolvedPriority; p < 0 || p > 5 {
			return configErrorf("--ntfy.resolved-priority=%d: must be between 1 and 5", p)
		}
		if a := c.Actions; a != nil {
			if err := checkURL(flagExternalURL, a.ExternalURL); err != nil {
				return err
			}
			if err := checkURL(flagAMURL, a.AlertmanagerURL); err != nil {
				return err
			}
			if len(a.Secret) < 16 {
				return configErrorf("--action.secret-file: the secret must be at least 16 bytes")
			}
		}
	}
	if c.Kuma != nil {
		if err := checkURL(flagKumaURL, c.Kuma.PushURL); err != nil {
			return err
		}
		if u, _ := url.Parse(c.Kuma.PushURL); !kumaPushPath(u.Path) {
			// Kuma answers every other GET with its web app, 200. Where
			// the token is in such a URL is unknown: its path is not shown.
			shown := url.URL{Scheme: u.Scheme, Host: u.Host, Path: "/REDACTED"}
			return configErrorf("%s=%s is not an Uptime Kuma push URL: want the push monitor's URL, https://kuma.example/api/push/<token>", flagKumaURL, shown.String())
		}
	}
	if err := CheckToken("--webhook.token-file", c.WebhookToken); err != nil {
		return err
	}
	if c.SpoolPath == "" {
		return configErrorf("%s is empty", flagSpoolPath)
	}
	return CheckSpoolPath(c.SpoolPath)
}

// kumaPushPath reports whether path ends in Kuma's push route,
// /api/push/<token> (a trailing slash allowed, as Express routes it).
func kumaPushPath(path string) bool {
	i := strings.LastIndex(path, "/api/push/")
	if i < 0 {
		return false
	}
	tok := strings.TrimSuffix(path[i+len("/api/push/"):], "/")
	return tok != "" && !strings.Contains(tok, "/")
}

// checkURL wants an absolute http(s) URL. Its error shows the URL redacted
// (RedactURL) and never the parser's message whole, which quotes the URL.
func checkURL(name, s string) error { return checkURLRedacted(name, s, RedactURL) }

// checkURLRedacted is checkURL showing the URL as redact does.
func checkURLRedacted(name, s string, redact func(string) string) error {
	if s == "" {
		return configErrorf("%s is empty: want an absolute http:// or https:// URL", name)
	}
	u, err := url.Parse(s)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return configErrorf("%s=%s: %v: want an absolute http:// or https:// URL", name, redact(s), err)
	}
	if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return configErrorf("%s=%s: want an absolute http:// or https:// URL", name, redact(s))
	}
	return nil
}

// CheckToken refuses a token that cannot go into an HTTP header or never
// matches what a sender sends: one with a control character (a newline, a
// tab, DEL). Go refuses such a header at every request ("invalid header
// field value"), so every delivery would fail forever. The error names
// where the token came from and where the character is, never the token.
func CheckToken(name, tok string) error {
	for i := 0; i < len(tok); i++ {
		if b := tok[i]; b < 0x20 || b == 0x7f {
			return configErrorf("%s: the token contains a control character (byte 0x%02x at offset %d of %d); a token is one line of printable characters", name, b, i, len(tok))
		}
	}
	return nil
}
