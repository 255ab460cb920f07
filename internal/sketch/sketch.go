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
	"encoding/binary"
	"fmt"
	"math"
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

	mu    sync.Mutex
	slots []slot

	// merged caches, for Estimate, the union of every slot in the window of
	// epoch mergedEpoch except slot mergedIdx (the current one) and all the
	// states of slot mergedIdx merged in since. Merging 24 slots of 64 KiB
	// on every scrape was 18 % of the POP agent's CPU in bench/pop.sh; with
	// the cache a scrape merges one slot. HyperLogLog registers only grow
	// between resets, so merging the current slot again on top of its
	// earlier state gives exactly the fresh union. The cache is dropped
	// (mergedOK false) when the epoch moves, when any slot is reset, and
	// when a slot other than mergedIdx is written (a late line).
	merged      *hyperloglog.Sketch
	regs        []byte // w.merged's dense encoding, reused by Estimate
	mergedOK    bool
	mergedEpoch int64
	mergedIdx   int

	// last is the estimate of the cached union while lastOK: no item has
	// been added since (the tarpit's window is rarely written).
	last   uint64
	lastOK bool
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
	i := w.index(epoch)
	s := &w.slots[i]
	w.lastOK = false
	switch {
	case s.sk == nil:
		s.sk = newSketch()
		s.epoch = epoch
	case s.epoch < epoch:
		s.sk.Reset()
		s.epoch = epoch
		w.mergedOK = false // a reset slot must leave the union
	}
	if i != w.mergedIdx {
		w.mergedOK = false // a closed slot changed
	}
	// When the clock stepped back (s.epoch > epoch) the item goes into the
	// newer slot: it is still counted, and nothing is thrown away early.
	return s.sk
}

// Estimate returns the estimated number of distinct items added during the
// window ending at now (to the precision of one slot).
//
// It costs one 64 KiB merge (the current slot into the cached union of the
// others) while the cache holds, and a merge per slot after the window slid
// or a late item went into an older slot.
func (w *Window) Estimate(now time.Time) uint64 {
	epoch := w.epoch(now)
	oldest := epoch - int64(len(w.slots)) + 1
	cur := w.index(epoch)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.mergedOK || w.mergedEpoch != epoch || w.mergedIdx != cur {
		if w.merged == nil {
			w.merged = newSketch()
		} else {
			w.merged.Reset()
		}
		for i := range w.slots {
			if i != cur {
				w.mergeSlot(i, oldest)
			}
		}
		w.mergedOK, w.mergedEpoch, w.mergedIdx = true, epoch, cur
		w.lastOK = false
	}
	if !w.lastOK {
		w.mergeSlot(cur, oldest)
		w.last, w.regs = estimate(w.merged, w.regs)
		w.lastOK = true
	}
	return w.last
}

// estimate returns sk's estimate, encoding it into buf (reused, returned).
func estimate(sk *hyperloglog.Sketch, buf []byte) (uint64, []byte) {
	buf, err := sk.AppendBinary(buf[:0])
	if err != nil {
		panic(err) // a valid constant precision always encodes
	}
	if n, ok := estimateDense(buf); ok {
		return n, buf
	}
	return sk.Estimate(), buf
}

// mergeSlot merges slot i into w.merged when it lies in the window starting
// at epoch oldest; w.mu is held.
func (w *Window) mergeSlot(i int, oldest int64) {
	s := &w.slots[i]
	// Slots from the future (the clock stepped back) still count.
	if s.sk == nil || s.epoch < oldest {
		return
	}
	// Same precision, both dense: Merge cannot fail.
	if err := w.merged.Merge(s.sk); err != nil {
		panic(err)
	}
}

// denseHeader is the layout of hyperloglog's dense encoding (AppendBinary):
// version, precision, bias, sparse flag 0, the big-endian register count,
// then one byte per register.
const denseHeader = 8

// estimateDense estimates the cardinality of a dense precision-16 sketch
// from its encoding with Ertl's improved raw estimator ("New cardinality
// estimation algorithms for HyperLogLog sketches", 2017, algorithm 6), which
// needs only the histogram of register values. hyperloglog's own Estimate
// computes math.Pow once per register: 2.8 ms for 65,536 registers holding
// 100,000 items (BenchmarkEstimateLibrary), and the POP agent estimates three
// windows per scrape, while the target of issue 13 section 5 is a whole
// scrape at half of node_exporter's CPU (5 ms in bench/pop.sh). This costs
// one pass of byte counting, 66 µs (BenchmarkEstimateDense).
// ok is false for an encoding it does not know; the caller then falls back
// to the library.
func estimateDense(enc []byte) (n uint64, ok bool) {
	const m = 1 << precision
	const q = 64 - precision // register values are 0..q+1
	if len(enc) != denseHeader+m || enc[1] != precision || enc[2] != 0 || enc[3] != 0 ||
		binary.BigEndian.Uint32(enc[4:8]) != m {
		return 0, false
	}
	var c [q + 2]float64
	var hist [256]uint32
	for _, v := range enc[denseHeader:] {
		hist[v]++
	}
	for v, k := range hist {
		if k == 0 {
			continue
		}
		if v > q+1 {
			return 0, false
		}
		c[v] = float64(k)
	}
	if c[0] == m {
		return 0, true
	}
	z := m * ertlTau(1-c[q+1]/m)
	for k := q; k >= 1; k-- {
		z = 0.5 * (z + c[k])
	}
	z += m * ertlSigma(c[0]/m)
	const alphaInf = 1 / (2 * math.Ln2)
	return uint64(alphaInf*m*m/z + 0.5), true
}

// ertlSigma is σ(x) = x + Σ_{k≥1} x^(2^k) 2^(k-1), for 0 ≤ x < 1.
func ertlSigma(x float64) float64 {
	y, z := 1.0, x
	for {
		x *= x
		prev := z
		z += x * y
		y *= 2
		if z == prev {
			return z
		}
	}
}

// ertlTau is τ(x) = (1 - x - Σ_{k≥1} (1 - x^(2^-k))² 2^-k) / 3, for 0 ≤ x ≤ 1.
func ertlTau(x float64) float64 {
	if x == 0 || x == 1 {
		return 0
	}
	y, z := 1.0, 1-x
	for {
		x = math.Sqrt(x)
		prev := z
		y *= 0.5
		z -= (1 - x) * (1 - x) * y
		if z == prev {
			return z / 3
		}
	}
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
