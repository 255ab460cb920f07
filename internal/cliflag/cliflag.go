// Package cliflag holds what both commands need to make kingpin's errors
// say which flag is wrong, and to describe what stands at a path a flag
// names. kingpin passes on what a value's Set said ("strconv.ParseFloat:
// parsing \"abc\"", "enum value must be one of low,drop"), which names no
// flag, and truncates numbers given to its integer flags.
package cliflag

import (
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"

	"github.com/alecthomas/kingpin/v2"
)

// NameError puts the flag (and where its value came from) in front of a
// kingpin parse error. The flag is found by setting each value given on
// the command line, then each taken from an environment variable, again
// until one fails the same way: the process exits right after, so the
// values' state does not matter. A switch given a value
// (`--collector.cpu=false`, which kingpin reads as a stray argument) is
// named with the fix. An error that names a flag already is returned as
// it is.
func NameError(app *kingpin.Application, args []string, err error) error {
	if bad, ok := strings.CutPrefix(err.Error(), "unexpected "); ok {
		for _, a := range args {
			name, value, hasValue := strings.Cut(strings.TrimPrefix(a, "--"), "=")
			if f := app.GetFlag(name); hasValue && value == bad && f != nil && f.Model().IsBoolFlag() {
				return fmt.Errorf("--%s=%s: a switch takes no value; use --%s or --no-%s", name, value, name, name)
			}
		}
		return err
	}
	if strings.Contains(err.Error(), "--") {
		return err // ours, or kingpin's "unknown long flag '--x'"
	}
	if ctx, perr := app.ParseContext(args); perr == nil && ctx != nil {
		for _, el := range ctx.Elements {
			f, ok := el.Clause.(*kingpin.FlagClause)
			if !ok || el.Value == nil {
				continue
			}
			m := f.Model()
			if serr := m.Value.Set(*el.Value); serr != nil && serr.Error() == err.Error() {
				return fmt.Errorf("--%s=%q: %w", m.Name, *el.Value, err)
			}
		}
	}
	for _, m := range app.Model().Flags {
		if m.Envar == "" || os.Getenv(m.Envar) == "" {
			continue
		}
		if serr := m.Value.Set(os.Getenv(m.Envar)); serr != nil && serr.Error() == err.Error() {
			return fmt.Errorf("--%s (from $%s): %w", m.Name, m.Envar, err)
		}
	}
	return err
}

// CheckWholeNumbers refuses a fraction or an out-of-range number given on
// the command line to one of kingpin's integer flags: kingpin parses them
// as floats and truncates (3.9 is 3, 1e30 wraps to a negative number), so
// the value would not be the one asked for.
func CheckWholeNumbers(app *kingpin.Application, args []string) error {
	ctx, err := app.ParseContext(args)
	if err != nil || ctx == nil {
		return nil
	}
	for _, el := range ctx.Elements {
		f, ok := el.Clause.(*kingpin.FlagClause)
		if !ok || el.Value == nil {
			continue
		}
		m := f.Model()
		switch fmt.Sprintf("%T", m.Value) {
		case "*kingpin.intValue", "*kingpin.int64Value", "*kingpin.uintValue", "*kingpin.uint64Value":
			if _, err := strconv.ParseInt(strings.TrimSpace(*el.Value), 10, 64); err != nil {
				return fmt.Errorf("--%s=%q: want a whole number", m.Name, *el.Value)
			}
		}
	}
	return nil
}

// DescribeMode names what a path is when it is not the regular file a flag
// wants, for error messages.
func DescribeMode(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file (" + m.Type().String() + ")"
}

// HtpasswdHint tells how to fix a basic_auth_users entry that is not a
// bcrypt hash: how to make one, and, when the value is htpasswd's whole
// output line (`user:$2y$...`, as an operator pastes it), to keep only the
// hash. It never repeats the value.
func HtpasswdHint(user, value string) string {
	if strings.HasPrefix(value, user+":$2") {
		return fmt.Sprintf("it is htpasswd's whole line: drop the leading %q and keep only the hash after it", user+":")
	}
	return fmt.Sprintf("make one with: htpasswd -nBC 10 %q (Debian package apache2-utils) and put in only what it prints after %q", user, user+":")
}
