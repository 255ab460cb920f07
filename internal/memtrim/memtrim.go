// Package memtrim returns to the kernel the pages of the executable that a
// long-running process touched while starting and will not touch again.
//
// A Go binary's code and read-only data (about 12 MB here) are mapped from
// the file. Starting up runs every package's init code, spread across the
// whole text, and the kernel maps pages in 64 kB runs around each fault
// ("fault-around"). So after start-up nearly the whole binary counts in
// the process's RSS, although a scrape runs a small part of it. Dropping
// those mappings once start-up is over costs nothing: the pages stay in the
// page cache, and what the process runs afterwards faults back in from
// there (no disk read). RSS then shows what the exporter actually uses.
//
// Only read-only, file-backed mappings of the executable are released:
// their contents are the file's, so dropping and refaulting them is
// invisible to the program. Writable mappings (data, bss, heap) are never
// touched.
package memtrim

import "errors"

// ErrUnsupported is returned where releasing pages is not implemented.
var ErrUnsupported = errors.New("memtrim: not supported on this platform")
