package collector

import (
	"fmt"
	"strconv"
	"time"

	"github.com/alecthomas/kingpin/v2"
)

// Bounds of the collectors' duration flags. Below the minimum a collector
// cannot do its work (every scrape would report it failed); above the
// maximum a hung call would hold a scrape longer than any Prometheus waits.
const (
	minCollectorTimeout = 10 * time.Millisecond
	maxCollectorTimeout = 10 * time.Minute
	minStatTimeout      = 10 * time.Millisecond
	maxStatTimeout      = 10 * time.Minute
	// MinCommercialCollectorTimeout is the shortest --collector.timeout the
	// commercial edition accepts: telemetry is enforced there, and a timeout
	// that blanks every collector would turn it off by other means.
	MinCommercialCollectorTimeout = time.Second

	// Bounds of the per-collector caps on devices and mount points
	// (--collector.filesystem.max-mounts, --collector.netdev.max-devices,
	// --collector.diskstats.max-devices). The minimum is 1 in every
	// edition: 0 would blank the collector, which in the commercial
	// edition would switch a core collector off by other means (and the
	// filesystem collector keeps / and the vault data directory's file
	// system whatever the cap). The maximum keeps one POP's series bounded.
	minMaxDevices = 1
	maxMaxDevices = 65536
	// defaultMaxDevices is far above what a POP has (a few disks, a few
	// interfaces, a few dozen mounts) and below what a container host
	// grows to (a veth per container, a tmpfs per pod).
	defaultMaxDevices = 256
)

// intFlag is a kingpin flag value for an integer within bounds: a value
// out of them is a flag error (exit code 2, naming the flag).
type intFlag struct {
	name     string
	v        *int
	min, max int
}

func (f *intFlag) Set(s string) error {
	v, err := strconv.Atoi(s)
	if err != nil {
		return fmt.Errorf("--%s=%q is not an integer", f.name, s)
	}
	if v < f.min || v > f.max {
		return fmt.Errorf("--%s=%d is out of range: it must be between %d and %d", f.name, v, f.min, f.max)
	}
	*f.v = v
	return nil
}

func (f *intFlag) String() string {
	if f.v == nil {
		return ""
	}
	return strconv.Itoa(*f.v)
}

// AddIntFlag declares an integer flag with a default and bounds; a value
// outside [min, max] fails flag parsing with the flag's name.
func AddIntFlag(app *kingpin.Application, name, help, def string, min, max int) *int {
	v := new(int)
	app.Flag(name, help).Default(def).SetValue(&intFlag{name: name, v: v, min: min, max: max})
	return v
}

// durationFlag is a kingpin flag value for a duration within bounds: a value
// out of them is a flag error (exit code 2, naming the flag).
type durationFlag struct {
	name     string
	d        *time.Duration
	min, max time.Duration
}

func (f *durationFlag) Set(s string) error {
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("--%s: %w", f.name, err)
	}
	return f.check(d)
}

func (f *durationFlag) check(d time.Duration) error {
	if err := checkDuration(f.name, d, f.min, f.max); err != nil {
		return err
	}
	*f.d = d
	return nil
}

func (f *durationFlag) String() string {
	if f.d == nil {
		return ""
	}
	return f.d.String()
}

// checkDuration is the bounds check of a duration flag, for flags declared
// elsewhere too.
func checkDuration(name string, d, min, max time.Duration) error {
	if d < min || d > max {
		return fmt.Errorf("--%s=%s is out of range: it must be between %s and %s", name, d, min, max)
	}
	return nil
}

// AddDurationFlag declares a duration flag with a default and bounds; a value
// outside [min, max] fails flag parsing with the flag's name.
func AddDurationFlag(app *kingpin.Application, name, help, def string, min, max time.Duration) *time.Duration {
	d := new(time.Duration)
	app.Flag(name, help).Default(def).SetValue(&durationFlag{name: name, d: d, min: min, max: max})
	return d
}

// flagValue returns the parsed value of another collector's flag, "" when
// no such flag is declared.
func flagValue(app *kingpin.Application, name string) string {
	f := app.GetFlag(name)
	if f == nil {
		return ""
	}
	return f.Model().Value.String()
}
