// Package collector holds the POP's telemetry collectors, the registry that
// turns them on and off from the command line, and the scraper that runs them
// concurrently under a timeout.
//
// The package is only linked into the telemetry and commercial editions; the
// community edition's main package never imports it (see cmd/clavis-telemetry).
//
// Each collector lives in its own file and registers itself from init() with
// Register, in the shape of node_exporter's registry: a name, whether it is on
// by default, whether the commercial edition enforces it, and a Setup function
// that declares the collector's own flags and returns its constructor.
package collector

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/clavitor/clavis-telemetry/tarpit"
)

// Namespace prefixes every metric the POP exports.
const Namespace = "clavis"

// Collector is one named source of metrics, in the shape of node_exporter's:
// descriptors are built once, in the constructor, and every scrape sends
// fresh const metrics.
type Collector interface {
	// Update sends fresh metrics to ch. It should return promptly once ctx is
	// done: the scrape has then moved on without it. An error marks the
	// collector failed for this scrape (clavis_scrape_collector_success 0);
	// metrics already sent are still exported. ch is never closed while
	// Update runs; Update must not send to it after returning.
	Update(ctx context.Context, ch chan<- prometheus.Metric) error
}

// Paths locates the host's pseudo file systems, so tests and containers can
// point collectors at fixtures or at the host's mounts.
type Paths struct {
	ProcFS string // --path.procfs, default /proc
	SysFS  string // --path.sysfs, default /sys
	RootFS string // --path.rootfs, default /
}

// TarpitSource is what the tarpit collector reads: aggregate counters only.
type TarpitSource interface {
	Snapshot() tarpit.Snapshot
}

// Env is what a collector's constructor gets besides its own flags.
type Env struct {
	Paths  Paths
	Logger *slog.Logger
	// Context lives as long as the process serves metrics. Collectors that
	// work in the background (the access-log follower) stop when it is done.
	Context context.Context
	// Enforced is set in the commercial edition: collectors refuse
	// settings that would blank a core collector.
	Enforced bool
	// Tarpit is nil when no tarpit runs in this process.
	Tarpit TarpitSource
	// Now is the clock; tests replace it.
	Now func() time.Time
	// Settle, if not zero, replaces how long the vault index and the
	// access-log follower gather file events before they look (both 1 s
	// by default, so the agent is not woken per change); tests shorten it.
	Settle time.Duration
}

// Factory builds a collector once flags are parsed.
type Factory func(env Env) (Collector, error)

// Spec describes one collector to the registry.
type Spec struct {
	Name           string
	DefaultEnabled bool
	// Core collectors cannot be disabled in the commercial edition.
	Core bool
	// Setup declares the collector's own flags on app and returns the
	// constructor, which reads those flags once they are parsed. Flags belong
	// to the collector's own namespace (--vault.data-dir, --collector.filesystem.…).
	Setup func(app *kingpin.Application) Factory
}

// specs is the one piece of package-level state: what init() registered.
var specs = map[string]Spec{}

// Register adds a collector to the registry. It is called from init() and
// panics on a programming error (duplicate or empty name), never at run time.
func Register(s Spec) {
	if s.Name == "" || s.Setup == nil {
		panic("collector: Register needs a name and a Setup function")
	}
	if _, dup := specs[s.Name]; dup {
		panic(fmt.Sprintf("collector: %q registered twice", s.Name))
	}
	specs[s.Name] = s
}

// Names lists the registered collectors, sorted.
func Names() []string {
	names := make([]string, 0, len(specs))
	for n := range specs {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Set holds the command-line state of every registered collector.
type Set struct {
	entries         []*flagEntry
	disableDefaults *bool
	disableClause   *kingpin.FlagClause
	timeout         *time.Duration
	paths           Paths
}

type flagEntry struct {
	spec      Spec
	clause    *kingpin.FlagClause
	enabled   *bool
	setByUser bool
	factory   Factory
}

// NewSet declares the flags of every registered collector on app:
// --collector.<name> / --no-collector.<name>, --collector.disable-defaults,
// --collector.timeout, --path.{procfs,sysfs,rootfs} and each collector's own.
func NewSet(app *kingpin.Application) *Set {
	s := &Set{}
	app.Flag("path.procfs", "procfs mountpoint.").Default("/proc").StringVar(&s.paths.ProcFS)
	app.Flag("path.sysfs", "sysfs mountpoint.").Default("/sys").StringVar(&s.paths.SysFS)
	app.Flag("path.rootfs", "Root file system mountpoint (for filesystem paths).").Default("/").StringVar(&s.paths.RootFS)
	s.disableClause = app.Flag("collector.disable-defaults",
		"Disable every collector that is on by default; enable the wanted ones with --collector.<name>.")
	s.disableDefaults = s.disableClause.Default("false").Bool()
	s.timeout = AddDurationFlag(app, "collector.timeout",
		"How long one collector may run during a scrape before it is reported failed and the scrape moves on (10ms to 10m; at least 1s in the commercial edition).",
		"4s", minCollectorTimeout, maxCollectorTimeout)
	for _, name := range Names() {
		spec := specs[name]
		e := &flagEntry{spec: spec}
		state := "disabled"
		if spec.DefaultEnabled {
			state = "enabled"
		}
		help := fmt.Sprintf("Enable the %s collector (default: %s).", name, state)
		if spec.Core {
			help += " A core collector: the commercial edition refuses to disable it."
		}
		e.clause = app.Flag("collector."+name, help)
		e.enabled = e.clause.Default(fmt.Sprint(spec.DefaultEnabled)).IsSetByUser(&e.setByUser).Bool()
		e.factory = spec.Setup(app)
		s.entries = append(s.entries, e)
	}
	return s
}

// Paths returns the parsed --path.* flags.
func (s *Set) Paths() Paths { return s.paths }

// Enabled reports the collectors that the parsed flags turn on, sorted.
func (s *Set) Enabled() []string {
	var out []string
	for _, e := range s.entries {
		if s.isEnabled(e) {
			out = append(out, e.spec.Name)
		}
	}
	return out
}

func (s *Set) isEnabled(e *flagEntry) bool {
	if e.setByUser {
		return *e.enabled
	}
	if *s.disableDefaults {
		return false
	}
	return e.spec.DefaultEnabled
}

// HideCoreSwitches takes the switches that could turn a core collector
// off (--[no-]collector.<core>, --collector.disable-defaults) out of
// --help: the commercial edition, where telemetry is enforced, does not
// offer them. They still parse, so CheckEnforced can refuse them by name.
func (s *Set) HideCoreSwitches() {
	s.disableClause.Hidden()
	for _, e := range s.entries {
		if e.spec.Core {
			e.clause.Hidden()
		}
	}
}

// CheckEnforced returns an error naming every core collector that the flags
// try to turn off. The commercial edition calls it at start-up: there,
// telemetry is enforced and trying to disable it is a configuration error.
func (s *Set) CheckEnforced() error {
	var off []string
	for _, e := range s.entries {
		if e.spec.Core && !s.isEnabled(e) {
			off = append(off, e.spec.Name)
		}
	}
	if len(off) > 0 {
		return fmt.Errorf("the commercial edition enforces telemetry: collector(s) %v cannot be disabled (drop --no-collector.* and --collector.disable-defaults)", off)
	}
	return nil
}

// Timeout is the parsed --collector.timeout.
func (s *Set) Timeout() time.Duration { return *s.timeout }

// CheckTimeout returns an error naming --collector.timeout when it is below
// min. The commercial edition calls it with MinCommercialCollectorTimeout.
func (s *Set) CheckTimeout(min time.Duration) error {
	return checkDuration("collector.timeout", *s.timeout, min, maxCollectorTimeout)
}

// Build constructs the enabled collectors and returns the scraper that runs
// them. env.Paths is filled from the --path.* flags.
func (s *Set) Build(env Env) (*Scraper, error) {
	env.Paths = s.paths
	if env.Now == nil {
		env.Now = time.Now
	}
	if env.Logger == nil {
		env.Logger = slog.New(slog.DiscardHandler)
	}
	if env.Context == nil {
		env.Context = context.Background()
	}
	var named []Named
	for _, e := range s.entries {
		if !s.isEnabled(e) {
			continue
		}
		c, err := e.factory(env)
		if err != nil {
			return nil, fmt.Errorf("collector %s: %w", e.spec.Name, err)
		}
		named = append(named, Named{Name: e.spec.Name, Collector: c})
	}
	return NewScraper(named, *s.timeout, env.Logger), nil
}
