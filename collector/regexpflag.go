package collector

import (
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"sync/atomic"

	"github.com/alecthomas/kingpin/v2"
)

// regexpFlag is a kingpin flag value holding a regular expression compiled
// once, when the flag is parsed. A bad expression is therefore a flag error
// (exit code 2 with the flag's name), and no scrape ever compiles a regexp.
// An empty value means "no expression" (Regexp returns nil).
type regexpFlag struct {
	name    string
	src     string
	re      *regexp.Regexp
	userSet bool
}

func (f *regexpFlag) Set(s string) error {
	if s == "" {
		f.src, f.re = "", nil
		return nil
	}
	re, err := regexp.Compile(s)
	if err != nil {
		return fmt.Errorf("--%s: not a valid regular expression: %w", f.name, err)
	}
	f.src, f.re = s, re
	return nil
}

func (f *regexpFlag) String() string { return f.src }

// Regexp returns the compiled expression, nil when the flag is empty.
func (f *regexpFlag) Regexp() *regexp.Regexp { return f.re }

// addRegexpFlag declares a regular-expression flag with a default.
func addRegexpFlag(app *kingpin.Application, name, help, def string) *regexpFlag {
	f := &regexpFlag{name: name}
	app.Flag(name, help).Default(def).IsSetByUser(&f.userSet).SetValue(f)
	return f
}

// deviceFilter keeps the names an include expression matches (all when there
// is none) and drops those an exclude expression matches.
type deviceFilter struct {
	include, exclude *regexp.Regexp
}

func (f deviceFilter) ignored(name string) bool {
	if f.include != nil && !f.include.MatchString(name) {
		return true
	}
	return f.exclude != nil && f.exclude.MatchString(name)
}

// newIncludeExcludeFilter applies node_exporter's rule for paired flags: an
// include set on the command line replaces the default exclude, and setting
// both is a configuration error because their combination is ambiguous.
func newIncludeExcludeFilter(include, exclude *regexpFlag, includeName, excludeName string) (deviceFilter, error) {
	if include.userSet && exclude.userSet && include.re != nil && exclude.re != nil {
		return deviceFilter{}, fmt.Errorf("--%s and --%s are mutually exclusive", includeName, excludeName)
	}
	if include.re != nil {
		return deviceFilter{include: include.re}, nil
	}
	return deviceFilter{exclude: exclude.re}, nil
}

// deviceCap bounds the devices one collector reports, so that a container
// host (a veth per container, a mount per pod) cannot grow a POP's series
// without bound. It keeps the first max names in byte order, so the same
// ones are kept from scrape to scrape, and logs once when it first drops
// some: the count and the flag, never a name.
type deviceCap struct {
	max    int
	flag   string
	logger *slog.Logger
	logged atomic.Bool
}

func newDeviceCap(max int, flag string, logger *slog.Logger) *deviceCap {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &deviceCap{max: max, flag: flag, logger: logger}
}

// apply sorts names and returns the ones kept and how many were dropped.
func (c *deviceCap) apply(names []string) ([]string, int) {
	return c.applyPreferring(names, nil)
}

// applyPreferring is apply, except that when names must be dropped the ones
// for which prefer is true are kept first (then the first by name). prefer
// is only called when the cap is exceeded, so its cost is paid by the hosts
// that need it. The names kept are returned sorted.
func (c *deviceCap) applyPreferring(names []string, prefer func(string) bool) ([]string, int) {
	sort.Strings(names)
	if len(names) <= c.max {
		return names, 0
	}
	dropped := len(names) - c.max
	if prefer != nil {
		first := make([]string, 0, c.max)
		var rest []string
		for _, n := range names {
			if len(first) < c.max && prefer(n) {
				first = append(first, n)
			} else {
				rest = append(rest, n)
			}
		}
		kept := append(first, rest[:c.max-len(first)]...)
		sort.Strings(kept)
		names = kept
	}
	if c.logged.CompareAndSwap(false, true) {
		c.logger.Warn("more devices than "+c.flag+"; reporting "+c.order(prefer != nil), "max", c.max, "dropped", dropped)
	}
	return names[:c.max], dropped
}

func (c *deviceCap) order(preferring bool) string {
	if preferring {
		return "physical devices first, then the first by name"
	}
	return "the first by name"
}
