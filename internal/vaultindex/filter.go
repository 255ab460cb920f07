package vaultindex

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"unicode/utf8"
)

// companionSuffixes are companions of a vault file (SQLite journals, write
// ahead logs, shared memory, atomic-write temp files), never vaults.
var companionSuffixes = []string{".tmp", "-journal", "-wal", "-shm"}

// Filter decides from a directory entry's name alone whether it can be a
// vault file; the entry must also be a regular file (not a symlink, not a
// directory), which only lstat can tell.
type Filter struct {
	pattern string
}

// NewFilter checks pattern (path.Match syntax, names only). Errors quote the
// pattern, which is operator configuration, never a file name.
func NewFilter(pattern string) (Filter, error) {
	if pattern == "" {
		return Filter{}, errors.New("the file pattern is empty")
	}
	if strings.ContainsRune(pattern, '/') {
		return Filter{}, fmt.Errorf("file pattern %q: a pattern matches file names, it cannot contain '/'", pattern)
	}
	// filepath.Match checks the rest of a pattern's syntax only on the way
	// to a mismatch, and not all of it ("x*[" passes with "" and fails
	// with "xa"); Match swallows the error and counts nothing. checkSyntax
	// reads the whole pattern as path.Match's grammar does.
	if err := checkSyntax(pattern); err != nil {
		return Filter{}, fmt.Errorf("file pattern %q: %w", pattern, err)
	}
	if _, err := filepath.Match(pattern, ""); err != nil {
		return Filter{}, fmt.Errorf("file pattern %q: %w", pattern, err)
	}
	return Filter{pattern: pattern}, nil
}

// checkSyntax reports filepath.ErrBadPattern if any part of pattern is
// malformed under filepath.Match's grammar (its getEsc and character
// classes): a trailing '\\', an unterminated or empty class, a class
// bound that is '-', ']' or invalid UTF-8.
func checkSyntax(pattern string) error {
	for p := pattern; len(p) > 0; {
		switch p[0] {
		case '\\':
			if len(p) < 2 {
				return filepath.ErrBadPattern
			}
			p = p[2:]
		case '[':
			p = p[1:]
			if len(p) > 0 && p[0] == '^' {
				p = p[1:]
			}
			for n := 0; ; n++ {
				if len(p) > 0 && p[0] == ']' && n > 0 {
					p = p[1:]
					break
				}
				var err error
				if p, err = classBound(p); err != nil {
					return err
				}
				if p[0] == '-' {
					if p, err = classBound(p[1:]); err != nil {
						return err
					}
				}
			}
		default:
			p = p[1:]
		}
	}
	return nil
}

// classBound consumes one bound of a character class range as
// filepath.Match's getEsc does; a bound must be followed by more pattern.
func classBound(p string) (string, error) {
	if len(p) == 0 || p[0] == '-' || p[0] == ']' {
		return "", filepath.ErrBadPattern
	}
	if p[0] == '\\' {
		p = p[1:]
		if len(p) == 0 {
			return "", filepath.ErrBadPattern
		}
	}
	r, n := utf8.DecodeRuneInString(p)
	if r == utf8.RuneError && n == 1 {
		return "", filepath.ErrBadPattern
	}
	p = p[n:]
	if len(p) == 0 {
		return "", filepath.ErrBadPattern
	}
	return p, nil
}

// Match reports whether name can be a vault: not hidden, not a companion,
// matching the pattern.
func (f Filter) Match(name string) bool {
	if name == "" || name[0] == '.' || strings.ContainsRune(name, '/') {
		return false // ".", "..", hidden files and dot-prefixed temp files
	}
	for _, s := range companionSuffixes {
		if strings.HasSuffix(name, s) {
			return false
		}
	}
	ok, _ := filepath.Match(f.pattern, name) // syntax checked by NewFilter
	return ok
}
