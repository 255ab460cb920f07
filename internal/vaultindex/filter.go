package vaultindex

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
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
	// filepath.Match checks the whole pattern's syntax whatever the name.
	if _, err := filepath.Match(pattern, ""); err != nil {
		return Filter{}, fmt.Errorf("file pattern %q: %w", pattern, err)
	}
	return Filter{pattern: pattern}, nil
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
