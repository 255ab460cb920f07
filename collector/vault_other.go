//go:build !linux

package collector

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// scanVaultDir is the portable version of the Linux getdents64 scan: the
// directory entries' types come from the listing, sizes from lstat; no
// entry is ever opened.
func scanVaultDir(ctx context.Context, dir string, isVault func(string) bool, _ int) (vaultStats, error) {
	var st vaultStats
	f, err := os.Open(dir)
	if err != nil {
		return st, &os.PathError{Op: "open vault data directory", Path: dir, Err: errors.Unwrap(err)}
	}
	defer f.Close()
	seen := 0
	for {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("vault data directory %s: counting stopped after %d entries: %w", dir, seen, err)
		}
		entries, err := f.ReadDir(vaultCtxCheckEvery)
		for _, e := range entries {
			seen++
			if !e.Type().IsRegular() || !isVault(e.Name()) {
				continue
			}
			fi, err := os.Lstat(filepath.Join(dir, e.Name()))
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			if err != nil {
				return st, &os.PathError{Op: "lstat an entry of vault data directory", Path: dir, Err: errors.Unwrap(err)}
			}
			if fi.Mode().IsRegular() {
				st.count++
				st.bytes += fi.Size()
			}
		}
		if err == io.EOF {
			return st, nil
		}
		if err != nil {
			return st, &os.PathError{Op: "read vault data directory", Path: dir, Err: errors.Unwrap(err)}
		}
	}
}
