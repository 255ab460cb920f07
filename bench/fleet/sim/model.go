package sim

import (
	"fmt"
	"math"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"
)

// Options shape a simulated fleet. Every POP's behaviour is a pure function
// of its index, the options and the time, so a live run and a backfilled
// history of the same fleet agree.
type Options struct {
	POPs int
	// Regions the POPs are spread over, round robin (default: five).
	Regions []string
	// Port every POP listens on, each on its own loopback address
	// 127.1.x.y (x = i/254, y = i%254+1).
	Port int
	// FlapShare of the POPs go down for DownFor every DownEvery (each at
	// its own phase) and come back.
	FlapShare float64
	DownFor   time.Duration
	DownEvery time.Duration
	// BurstShare of the POPs answer a quarter of their requests with 5xx
	// for BurstFor every BurstEvery.
	BurstShare float64
	BurstFor   time.Duration
	BurstEvery time.Duration
	// FillShare of the POPs fill a disk within FastFill (then it is
	// cleaned up and fills again); the others take SlowFill.
	FillShare float64
	FastFill  time.Duration
	SlowFill  time.Duration
	// Seed varies every per-POP draw.
	Seed uint64
}

// DefaultRegions has a code per region for the POP names.
var DefaultRegions = []string{"eu-central", "eu-west", "us-east", "us-west", "ap-southeast"}

var regionCodes = map[string]string{
	"eu-central": "fra", "eu-west": "ams", "us-east": "iad", "us-west": "sjc", "ap-southeast": "sin",
}

func (o *Options) defaults() {
	if len(o.Regions) == 0 {
		o.Regions = DefaultRegions
	}
	if o.Port == 0 {
		o.Port = 9745
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&o.DownFor, 5*time.Minute)
	def(&o.DownEvery, 2*time.Hour)
	def(&o.BurstFor, 15*time.Minute)
	def(&o.BurstEvery, 3*time.Hour)
	def(&o.FastFill, 36*time.Hour)
	def(&o.SlowFill, 60*24*time.Hour)
}

// POP is one simulated POP.
type POP struct {
	Index        int
	Name, Region string
	Addr         netip.AddrPort
	seed         uint64
	// scale multiplies traffic and work (request, byte and CPU counters);
	// vaults the captured vault count and storage.
	scale, vaults           float64
	flaps, bursts, fastFill bool
	downPhase, burstPhase   float64 // seconds into the cycle at the reference time
	forcedDown              atomic.Bool
}

// Fleet is a template plus the POPs that serve it.
type Fleet struct {
	T    *Template
	POPs []*POP
	Opt  Options
	// ref is the time the simulated POPs started: a week before the
	// capture, so counters are well above zero over any backfilled range.
	ref float64
}

// NewFleet lays out opt.POPs POPs over the template.
func NewFleet(t *Template, opt Options) (*Fleet, error) {
	opt.defaults()
	if opt.POPs < 1 || opt.POPs > 254*256 {
		return nil, fmt.Errorf("POPs must be 1..%d, not %d", 254*256, opt.POPs)
	}
	f := &Fleet{T: t, Opt: opt, ref: float64(t.Captured.Unix()) - 7*86400}
	for i := 0; i < opt.POPs; i++ {
		region := opt.Regions[i%len(opt.Regions)]
		code := regionCodes[region]
		if code == "" {
			code = strings.ReplaceAll(region, "-", "")
		}
		seed := mix(opt.Seed ^ uint64(i+1)*0x9e3779b97f4a7c15)
		p := &POP{
			Index: i, Region: region,
			Name: fmt.Sprintf("%s%03d", code, i/len(opt.Regions)+1),
			Addr: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 1, byte(i / 254), byte(i%254 + 1)}), uint16(opt.Port)),
			seed: seed,
			// Log-uniform over 0.25..4: POPs differ by an order of
			// magnitude in traffic, as a real fleet does.
			scale:      math.Exp2(4*unit(mix(seed+1)) - 2),
			vaults:     math.Exp2(6 * unit(mix(seed+2))),
			flaps:      unit(mix(seed+3)) < opt.FlapShare,
			bursts:     unit(mix(seed+4)) < opt.BurstShare,
			fastFill:   unit(mix(seed+5)) < opt.FillShare,
			downPhase:  unit(mix(seed+6)) * opt.DownEvery.Seconds(),
			burstPhase: unit(mix(seed+7)) * opt.BurstEvery.Seconds(),
		}
		f.POPs = append(f.POPs, p)
	}
	return f, nil
}

// SetForcedDown takes a POP down (or brings it back) regardless of its
// schedule: the alert-storm switch.
func (p *POP) SetForcedDown(down bool) { p.forcedDown.Store(down) }

// Down reports whether the POP is down at t: forced, or in one of its
// scheduled outages.
func (f *Fleet) Down(p *POP, t time.Time) bool {
	if p.forcedDown.Load() {
		return true
	}
	return p.flaps && inWindow(float64(t.UnixNano())/1e9-f.ref, p.downPhase, f.Opt.DownEvery.Seconds(), f.Opt.DownFor.Seconds())
}

// inWindow reports whether x (seconds since the reference) lies in a window
// of length w that opens at phase and every period after it.
func inWindow(x, phase, period, w float64) bool {
	r := math.Mod(x-phase, period)
	if r < 0 {
		r += period
	}
	return r < w
}

// windowTime is the time spent in such windows between 0 and x.
func windowTime(x, phase, period, w float64) float64 {
	y := x - phase
	if y <= 0 {
		return 0
	}
	n := math.Floor(y / period)
	return n*w + math.Min(y-n*period, w)
}

// Value is sample s of POP p at time t (Unix seconds).
func (f *Fleet) Value(p *POP, s *Sample, fam *Family, t float64) float64 {
	x := t - f.ref // seconds since the POP started
	if x < 0 {
		x = 0
	}
	own := mix(p.seed ^ s.seed)
	switch s.Kind {
	case KindCounter:
		return f.counter(p, s, x)
	case KindBucket:
		count := fam.Samples[s.Count]
		return math.Floor(f.counter(p, count, x) * s.Share)
	case KindHistSum:
		return f.counter(p, fam.Samples[s.Count], x) * s.Mean
	case KindGauge:
		period := 600 + 3000*unit(own)
		v := s.Value * (1 + 0.1*math.Sin(2*math.Pi*(x/period+unit(mix(own)))))
		if s.Value == math.Trunc(s.Value) {
			v = math.Round(v)
		}
		return v
	case KindGrowing:
		// 1% a day on top of the POP's size.
		v := s.Value * p.vaults * (1 + 0.01*x/86400)
		if s.Value == math.Trunc(s.Value) {
			v = math.Floor(v)
		}
		return v
	case KindTimestamp:
		if s.Value == 0 {
			return 0
		}
		return t - (float64(f.T.Captured.UnixNano())/1e9 - s.Value)
	case KindAvail:
		size := s.Value
		if s.SizeSample != nil && s.SizeSample.Value > 0 {
			size = s.SizeSample.Value
		}
		if size <= 0 {
			return s.Value
		}
		f0 := s.Value / size
		const lo = 0.02
		if f0 <= lo {
			return s.Value
		}
		cycle := f.Opt.SlowFill.Seconds()
		if p.fastFill {
			cycle = f.Opt.FastFill.Seconds()
		}
		// The same mount fills at the same phase whether it is read as
		// free or as available space.
		phase := unit(mix(p.seed ^ hash64(strings.Join(s.Labels, "\x00"))))
		c := math.Mod(x/cycle+phase, 1)
		return math.Floor(size * (lo + (f0-lo)*(1-c)))
	}
	return s.Value
}

func (f *Fleet) counter(p *POP, s *Sample, x float64) float64 {
	scale := p.scale
	// CPU idle time is what is left of the POP's CPU: it does not scale
	// with the POP's load.
	if m := labelValue(s.Labels, "mode"); m == "idle" || m == "iowait" {
		scale = 1
	}
	v := s.Value + s.Rate*scale*x
	if s.Burst && p.bursts && s.BurstRate > 0 {
		v += s.BurstRate * scale * windowTime(x, p.burstPhase, f.Opt.BurstEvery.Seconds(), f.Opt.BurstFor.Seconds())
	}
	if s.Integral {
		v = math.Floor(v)
	}
	return v
}

// Targets is the file_sd file listing the POPs with their pop and region
// labels, as prometheus/targets/*.yml does for real POPs.
func (f *Fleet) Targets() []byte {
	var b strings.Builder
	b.WriteString("# Generated by bench/fleet: the simulated POPs.\n")
	for _, p := range f.POPs {
		fmt.Fprintf(&b, "- targets: ['%s']\n  labels:\n    pop: %s\n    region: %s\n", p.Addr, p.Name, p.Region)
	}
	return []byte(b.String())
}
