package collector

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// AsPrometheus wraps a single collector so tests can register it on a
// registry and use testutil.GatherAndCompare on its output alone. The
// scrape duration and success series are included.
func AsPrometheus(name string, c Collector) prometheus.Collector {
	return NewScraper([]Named{{Name: name, Collector: c}}, 5*time.Second, nil)
}

// readSalvaging returns procfs' reading (read) of the /proc file named
// file. When procfs cannot parse the file (an error that is not the
// operating system's), it is read again from procRoot by salvage, line by
// line, and what parses is returned with an error that says how many
// lines did not: one malformed line costs only its own series. Nothing is
// returned (the zero value) when nothing could be read, or when procRoot
// is empty (a test's procfs.FS without a tree to read again).
func readSalvaging[T any](file, procRoot string, read func() (T, error), salvage func(path string) (T, int, error)) (T, error) {
	v, err := read()
	if err == nil {
		return v, nil
	}
	var none T
	if _, osErr := errors.AsType[*fs.PathError](err); osErr || procRoot == "" {
		return none, procfsError(file, err)
	}
	salvaged, bad, serr := salvage(filepath.Join(procRoot, file))
	if serr != nil {
		return none, procfsError(file, serr)
	}
	if bad == 0 {
		return salvaged, procfsError(file, err)
	}
	return salvaged, fmt.Errorf("reading %s: %d malformed lines skipped", file, bad)
}
