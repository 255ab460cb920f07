package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"

	"github.com/clavitor/clavis-telemetry/alertbridge"
	"github.com/clavitor/clavis-telemetry/internal/bcryptmsg"
	"github.com/clavitor/clavis-telemetry/internal/cliflag"
)

// durationValue is a duration flag with bounds: a value outside them (or
// one that does not parse) fails flag parsing with the flag's name and the
// bounds, exit 2. zeroOff allows 0 as "off" besides [min, max].
type durationValue struct {
	name     string
	d        *time.Duration
	min, max time.Duration
	zeroOff  bool
}

func (v *durationValue) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("--%s=%s: not a duration (%v); %s", v.name, s, err, v.bounds())
	}
	if !(v.zeroOff && d == 0) && (d < v.min || d > v.max) {
		return fmt.Errorf("--%s=%s is out of range: %s", v.name, s, v.bounds())
	}
	*v.d = d
	return nil
}

func (v *durationValue) String() string {
	if v.d == nil {
		return ""
	}
	return fmtDuration(*v.d)
}

func (v *durationValue) bounds() string {
	b := "between " + fmtDuration(v.min) + " and " + fmtDuration(v.max)
	if v.zeroOff {
		return "it must be 0 (off) or " + b
	}
	return "it must be " + b
}

// fmtDuration writes 24h and 1m, not 24h0m0s and 1m0s.
func fmtDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

func durationFlag(app *kingpin.Application, name, help, def string, min, max time.Duration, zeroOff bool) *time.Duration {
	v := &durationValue{name: name, d: new(time.Duration), min: min, max: max, zeroOff: zeroOff}
	bounds := fmtDuration(min) + " to " + fmtDuration(max)
	if zeroOff {
		bounds = "0 or " + bounds
	}
	app.Flag(name, withRange(help, bounds)).Default(def).SetValue(v)
	return v.d
}

// withRange appends a flag's bounds to its help.
func withRange(help, bounds string) string {
	return help + " Range: " + bounds + "."
}

// intValue is an integer flag with bounds, as durationValue.
type intValue[T int | int64] struct {
	name     string
	n        *T
	min, max T
}

func (v *intValue[T]) Set(s string) error {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return fmt.Errorf("--%s=%s: not an integer; it must be between %d and %d", v.name, s, v.min, v.max)
	}
	if n < int64(v.min) || n > int64(v.max) {
		return fmt.Errorf("--%s=%s is out of range: it must be between %d and %d", v.name, s, v.min, v.max)
	}
	*v.n = T(n)
	return nil
}

func (v *intValue[T]) String() string {
	if v.n == nil {
		return ""
	}
	return strconv.FormatInt(int64(*v.n), 10)
}

func intFlag[T int | int64](app *kingpin.Application, name, help, def string, min, max T) *T {
	v := &intValue[T]{name: name, n: new(T), min: min, max: max}
	app.Flag(name, withRange(help, fmt.Sprintf("%d to %d", min, max))).Default(def).SetValue(v)
	return v.n
}

// sizeFlag is an intFlag in bytes whose help also shows the bounds in MiB.
func sizeFlag(app *kingpin.Application, name, help, def string, min, max int64) *int64 {
	v := &intValue[int64]{name: name, n: new(int64), min: min, max: max}
	app.Flag(name, withRange(help, fmt.Sprintf("%d to %d bytes (%s to %s)", min, max, fmtBytes(min), fmtBytes(max)))).Default(def).SetValue(v)
	return v.n
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// checkListenAddresses refuses an empty address or port: net.Listen would
// take a random port on every interface, which nobody asks for on purpose.
// An explicit port 0 (tests) is allowed.
func checkListenAddresses(addresses []string) error {
	if len(addresses) == 0 {
		return errors.New("--web.listen-address: no address given")
	}
	for _, a := range addresses {
		if a == "" {
			return fmt.Errorf("--web.listen-address is empty: give host:port or :port (e.g. %s)", DefaultListenAddress)
		}
		hp := strings.TrimPrefix(a, "vsock://")
		if _, port, err := net.SplitHostPort(hp); err != nil || port == "" {
			return fmt.Errorf("--web.listen-address=%q: want host:port or :port (e.g. %s)", a, DefaultListenAddress)
		}
	}
	return nil
}

// readConfigFile reads a small file a flag names without hanging on a FIFO
// (opened non-blocking, refused unless regular) or reading a huge file.
func readConfigFile(flag, path string, maxBytes int64) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s=%s is %s, not a regular file", flag, path, cliflag.DescribeMode(fi.Mode()))
	}
	if fi.Size() > maxBytes {
		return nil, fmt.Errorf("%s=%s is %d bytes; at most %d expected", flag, path, fi.Size(), maxBytes)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", flag, err)
	}
	if int64(len(b)) > maxBytes {
		return nil, fmt.Errorf("%s=%s is more than %d bytes", flag, path, maxBytes)
	}
	return b, nil
}

// readTokenFile reads a bearer token: white space around it (line ends, as
// editors and echo write, blank lines) is dropped, as Alertmanager trims
// its credentials_file, so a file Alertmanager takes works here too. A
// token with a control character inside is refused, never echoed.
func readTokenFile(flag, path string) (string, error) {
	b, err := readConfigFile(flag, path, 64<<10)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("%s=%s is empty", flag, path)
	}
	if err := alertbridge.CheckToken(flag+"="+path, s); err != nil {
		return "", err
	}
	return s, nil
}

// checkWebConfig reads --web.config.file before anything listens, so a bad
// file is a start-up error (exit 2) that names the file and, for a bad
// password hash, the user; exporter-toolkit would only find out in Serve,
// after logging "Listening on", with an error naming neither. It reports
// whether the file sets basic_auth_users (exporter-toolkit then checks
// every request before it reaches the webhook handler).
func checkWebConfig(path string) (basicAuth bool, err error) {
	if path == "" {
		return false, nil
	}
	b, err := readConfigFile("--web.config.file", path, 1<<20)
	if err != nil {
		return false, err
	}
	var c struct {
		Users yaml.MapSlice `yaml:"basic_auth_users"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		return false, fmt.Errorf("--web.config.file=%s: not a valid web config: %w", path, err)
	}
	for _, u := range c.Users {
		name := fmt.Sprint(u.Key)
		hash, _ := u.Value.(string)
		if _, err := bcrypt.Cost([]byte(hash)); err != nil {
			return false, fmt.Errorf("--web.config.file=%s: basic_auth_users: the password of user %q is not a bcrypt hash (%s); %s", path, name, bcryptmsg.Reason(err), cliflag.HtpasswdHint(name, hash))
		}
	}
	// The rest (unknown keys, TLS files, ciphers, headers) as Serve checks it.
	if err := web.Validate(path); err != nil {
		return false, fmt.Errorf("--web.config.file=%s: %w", path, err)
	}
	return len(c.Users) > 0, nil
}
