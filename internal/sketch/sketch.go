// Package sketch counts distinct items (client IP addresses, scanner
// sources) over a sliding time window in bounded memory, with HyperLogLog
// sketches (github.com/axiomhq/hyperloglog).
//
// An item is hashed into a sketch register and then forgotten: nothing here
// keeps an address, and the registers cannot be turned back into one.
//
// This package is linked into the community edition through the tarpit, so it
// must never import a Prometheus package.
package sketch

import (
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/axiomhq/hyperloglog"
	metro "github.com/dgryski/go-metro"
)

// precision is the HyperLogLog precision: 2^16 registers of one byte each,
// 64 KiB per sketch. The standard error is 1.04/sqrt(2^16) ≈ 0.41 %, so the
// required bound of 2 % relative error is about five standard errors away at
// any cardinality; precision 14 (0.81 %) would leave only 2.5 standard errors.
const precision = 16

// Window estimates the number of distinct items seen over a sliding window.
//
// The window is cut into slots of window/slots each; every slot has its own
// dense sketch, reused when its time comes round again. Memory is therefore
// fixed at slots+1 sketches of 64 KiB, whatever the number of items, and the
// window slides in steps of one slot: Estimate covers the current slot and
// the slots-1 before it.
//
// A Window is safe for concurrent use.
type Window struct {
	slotNanos int64

	mu      sync.Mutex
	slots   []slot
	scratch *hyperloglog.Sketch // merge target of Estimate, reused
}

type slot struct {
	epoch int64               // now/slotNanos of the items in sk
	sk    *hyperloglog.Sketch // nil until the slot is first used
}

// NewWindow returns a window of the given length cut into slots steps, e.g.
// 24h with 24 slots or 1h with 12 slots. It panics when window or slots is
// not positive or window is shorter than slots nanoseconds: those are
// programming errors, not run-time input.
func NewWindow(window time.Duration, slots int) *Window {
	if window <= 0 || slots <= 0 || int64(window) < int64(slots) {
		panic(fmt.Sprintf("sketch: NewWindow(%v, %d): need a positive window of at least one nanosecond per slot", window, slots))
	}
	return &Window{
		slotNanos: int64(window) / int64(slots),
		slots:     make([]slot, slots),
	}
}

func newSketch() *hyperloglog.Sketch {
	// Dense from the start: inserting is a hash and one register update, with
	// no allocation, and the size is known up front. The error cannot happen
	// with a constant, valid precision.
	sk, err := hyperloglog.NewSketch(precision, false)
	if err != nil {
		panic(err)
	}
	return sk
}

// HashIP returns the sketch hash of an address, normalised as AddIP does,
// for AddHashes: callers that feed several windows hash once.
func HashIP(ip netip.Addr) uint64 {
	b := ip.Unmap().WithZone("").As16()
	return metro.Hash64(b[:], hashSeed)
}

// hashSeed is the axiomhq/hyperloglog Insert seed, so AddHashes(HashIP(ip))
// and AddIP(ip) count the same item once.
const hashSeed = 1337

// AddHashes counts items given by their HashIP (or hyperloglog) hashes, under
// one lock: the cheap way to add a batch. The slice is not retained.
func (w *Window) AddHashes(now time.Time, hashes []uint64) {
	if len(hashes) == 0 {
		return
	}
	w.mu.Lock()
	sk := w.slotFor(w.epoch(now))
	for _, h := range hashes {
		sk.InsertHash(h)
	}
	w.mu.Unlock()
}

// AddIP counts one address. A v4-mapped v6 address is unmapped and a zone is
// dropped first, so 192.0.2.1 and ::ffff:192.0.2.1 count once. An invalid
// (zero) address is ignored.
func (w *Window) AddIP(now time.Time, ip netip.Addr) {
	if !ip.IsValid() {
		return
	}
	// As16 of an unmapped v4 address is its v4-mapped form again: one byte
	// layout per host, whichever way it was written.
	b := ip.Unmap().WithZone("").As16()
	w.AddBytes(now, b[:])
}

// AddBytes counts one item given as bytes. b is hashed and not retained.
func (w *Window) AddBytes(now time.Time, b []byte) {
	epoch := w.epoch(now)
	w.mu.Lock()
	w.slotFor(epoch).Insert(b)
	w.mu.Unlock()
}

// slotFor returns the sketch of the slot of epoch, made fresh when its
// previous turn has left the window; w.mu is held.
func (w *Window) slotFor(epoch int64) *hyperloglog.Sketch {
	s := &w.slots[w.index(epoch)]
	switch {
	case s.sk == nil:
		s.sk = newSketch()
		s.epoch = epoch
	case s.epoch < epoch:
		s.sk.Reset()
		s.epoch = epoch
	}
	// When the clock stepped back (s.epoch > epoch) the item goes into the
	// newer slot: it is still counted, and nothing is thrown away early.
	return s.sk
}

// Estimate returns the estimated number of distinct items added during the
// window ending at now (to the precision of one slot).
func (w *Window) Estimate(now time.Time) uint64 {
	epoch := w.epoch(now)
	oldest := epoch - int64(len(w.slots)) + 1
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.scratch == nil {
		w.scratch = newSketch()
	} else {
		w.scratch.Reset()
	}
	merged := false
	for i := range w.slots {
		s := &w.slots[i]
		// Slots from the future (the clock stepped back) still count.
		if s.sk == nil || s.epoch < oldest {
			continue
		}
		// Same precision, both dense: Merge cannot fail.
		if err := w.scratch.Merge(s.sk); err != nil {
			panic(err)
		}
		merged = true
	}
	if !merged {
		return 0
	}
	return w.scratch.Estimate()
}

func (w *Window) epoch(now time.Time) int64 {
	ns := now.UnixNano()
	e := ns / w.slotNanos
	if ns < 0 && ns%w.slotNanos != 0 {
		e-- // floor, so slots stay contiguous before 1970 too
	}
	return e
}

func (w *Window) index(epoch int64) int {
	i := epoch % int64(len(w.slots))
	if i < 0 {
		i += int64(len(w.slots))
	}
	return int(i)
}
