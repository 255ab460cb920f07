//go:build telemetry || commercial

package main

import (
	"fmt"
	"os"
	"slices"

	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/clavitor/clavis-telemetry/internal/bcryptmsg"
	"github.com/clavitor/clavis-telemetry/internal/cliflag"
)

// checkWebConfig reads --web.config.file before anything listens, so a bad
// file is a start-up error (exit 2) that names the file and, for a bad
// password hash, the user. exporter-toolkit would only find out in Serve,
// after logging "Listening on", with an error naming neither.
func checkWebConfig(path string) error {
	if path == "" {
		return nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("--web.config.file: %w", err)
	}
	var users struct {
		Users map[string]string `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(b, &users); err != nil {
		return fmt.Errorf("--web.config.file=%s: not a valid web config: %w", path, err)
	}
	names := make([]string, 0, len(users.Users))
	for name := range users.Users {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if _, err := bcrypt.Cost([]byte(users.Users[name])); err != nil {
			return fmt.Errorf("--web.config.file=%s: basic_auth_users: the password of user %q is not a bcrypt hash (%s); %s", path, name, bcryptmsg.Reason(err), cliflag.HtpasswdHint(name, users.Users[name]))
		}
	}
	// The rest (unknown keys, TLS files, ciphers, headers) as Serve checks it.
	if err := web.Validate(path); err != nil {
		return fmt.Errorf("--web.config.file=%s: %w", path, err)
	}
	return nil
}
