//go:build !linux

package memtrim

// ReleaseExecutablePages is not implemented here.
func ReleaseExecutablePages() (int, error) { return 0, ErrUnsupported }
