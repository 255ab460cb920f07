package sketch

import (
	"bytes"
	"encoding/binary"
	"math"
	"net/netip"
	"sync"
	"testing"
	"time"

	"pgregory.net/rapid"
)

var t0 = time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)

// nthIP returns the i-th of a sequence of distinct addresses: v4 while they
// last, then v6, so the accuracy tests mix both families.
func nthIP(i uint64) netip.Addr {
	if i < 1<<32 && i%3 != 0 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(i))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	b[0], b[1] = 0x20, 0x01
	binary.BigEndian.PutUint64(b[8:], i)
	return netip.AddrFrom16(b)
}

// mixedIP returns the i-th of a sequence of distinct addresses for the
// accuracy tests: two in three IPv4 (spread over the whole v4 space), one in
// three IPv6 in 2001:db8::/32, different sets for different seeds. Both
// scramblings multiply by an odd constant, a bijection, so no two indices
// give the same address.
func mixedIP(i, seed uint64) netip.Addr {
	if i%3 != 0 {
		k := uint32(i - i/3 - 1) // the k-th IPv4 index
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], k*2654435761+uint32(seed)*0x9e3779b9)
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	b[0], b[1], b[2], b[3] = 0x20, 0x01, 0x0d, 0xb8
	binary.BigEndian.PutUint32(b[4:], uint32(seed))
	binary.BigEndian.PutUint64(b[8:], i*0x9e3779b97f4a7c15)
	return netip.AddrFrom16(b)
}

// TestMixedIPIsAMix: the accuracy tests' input really is a mix of distinct
// IPv4 and IPv6 hosts.
func TestMixedIPIsAMix(t *testing.T) {
	t.Parallel()
	for seed := uint64(0); seed <= 3; seed++ {
		const n = 30_000
		seen := make(map[netip.Addr]bool, n)
		var v4 int
		octets := map[byte]bool{}
		for i := range uint64(n) {
			ip := mixedIP(i, seed)
			if ip.Is4In6() || seen[ip] {
				t.Fatalf("seed %d: address %d (%v) is v4-mapped or repeated", seed, i, ip)
			}
			seen[ip] = true
			if ip.Is4() {
				v4++
				octets[ip.As4()[0]] = true
			}
		}
		if v4 != n-n/3 || len(octets) < 250 {
			t.Fatalf("seed %d: %d IPv4 of %d (want %d), first octets %d distinct", seed, v4, n, n-n/3, len(octets))
		}
	}
}

func relErr(got uint64, want int) float64 {
	return math.Abs(float64(got)-float64(want)) / float64(want)
}

func checkAccuracy(t *testing.T, n int, seed uint64) {
	t.Helper()
	w := NewWindow(24*time.Hour, 24)
	// Spread the items over the whole window so the merge is exercised, and
	// add each one twice (an IPv4 host the second time in its v4-mapped
	// form, as a dual-stack socket reports it) so duplicates are exercised
	// too: they must count once.
	step := (23 * time.Hour) / time.Duration(n)
	for i := 0; i < n; i++ {
		now := t0.Add(time.Duration(i) * step)
		ip := mixedIP(uint64(i), seed)
		w.AddIP(now, ip)
		if ip.Is4() {
			w.AddIP(now, netip.AddrFrom16(ip.As16()))
		} else {
			w.AddIP(now, ip)
		}
	}
	got := w.Estimate(t0.Add(23 * time.Hour))
	if e := relErr(got, n); e > 0.02 {
		t.Errorf("n=%d seed=%d: estimate %d, relative error %.4f > 2%%", n, seed, got, e)
	} else {
		t.Logf("n=%d seed=%d: estimate %d, relative error %.4f", n, seed, got, e)
	}
}

func TestWindowAccuracy(t *testing.T) {
	t.Parallel()
	for _, n := range []int{1_000, 3_000, 10_000, 100_000, 1_000_000} {
		checkAccuracy(t, n, 0)
	}
	// Other sets of addresses: the bound is not luck of one input.
	for seed := uint64(1); seed <= 3; seed++ {
		for _, n := range []int{1_000, 30_000, 300_000} {
			checkAccuracy(t, n, seed)
		}
	}
}

// TestWindowAccuracy10M is the top of the required range. It runs in plain
// `go test` (about a second) but not with -short or under the race detector,
// where it would take most of CI's budget for this package.
func TestWindowAccuracy10M(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("10,000,000 items: skipped with -short and -race")
	}
	t.Parallel()
	checkAccuracy(t, 10_000_000, 0)
}

func TestWindowSameHostCountsOnce(t *testing.T) {
	t.Parallel()
	w := NewWindow(time.Hour, 12)
	forms := []string{"192.0.2.7", "::ffff:192.0.2.7", "::ffff:c000:207", "2001:db8::1", "2001:db8::1%eth0", "2001:0db8:0:0::1"}
	for _, f := range forms {
		w.AddIP(t0, netip.MustParseAddr(f))
	}
	w.AddIP(t0, netip.Addr{}) // invalid: ignored
	if got := w.Estimate(t0); got != 2 {
		t.Fatalf("estimate %d, want 2 (one v4 host in three forms, one v6 host in three)", got)
	}
}

func TestWindowSlides(t *testing.T) {
	t.Parallel()
	w := NewWindow(time.Hour, 12) // 5-minute slots
	if got := w.Estimate(t0); got != 0 {
		t.Fatalf("empty window: %d", got)
	}
	for i := 0; i < 100; i++ {
		w.AddIP(t0, nthIP(uint64(i)))
	}
	for i := 100; i < 150; i++ {
		w.AddIP(t0.Add(30*time.Minute), nthIP(uint64(i)))
	}
	if got := w.Estimate(t0.Add(30 * time.Minute)); got != 150 {
		t.Fatalf("after 30m: %d, want 150", got)
	}
	// t0 sits at the start of its slot; an hour later that slot has left.
	if got := w.Estimate(t0.Add(time.Hour)); got != 50 {
		t.Fatalf("after 60m: %d, want 50", got)
	}
	if got := w.Estimate(t0.Add(95 * time.Minute)); got != 0 {
		t.Fatalf("after 95m: %d, want 0", got)
	}
	// The slot of t0 comes round again: it starts afresh.
	w.AddIP(t0.Add(2*time.Hour), nthIP(1000))
	if got := w.Estimate(t0.Add(2 * time.Hour)); got != 1 {
		t.Fatalf("after 2h: %d, want 1", got)
	}
	// A clock that steps back still counts what it adds.
	w.AddIP(t0.Add(2*time.Hour-time.Minute), nthIP(1001))
	if got := w.Estimate(t0.Add(2 * time.Hour)); got != 2 {
		t.Fatalf("after step back: %d, want 2", got)
	}
}

func TestWindowBeforeEpoch(t *testing.T) {
	t.Parallel()
	w := NewWindow(time.Hour, 12)
	old := time.Unix(-1, 0)
	w.AddIP(old, nthIP(1))
	w.AddBytes(old, []byte("scanner"))
	if got := w.Estimate(old); got != 2 {
		t.Fatalf("estimate %d, want 2", got)
	}
}

func TestNewWindowRejectsNonsense(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		w time.Duration
		n int
	}{{0, 1}, {time.Hour, 0}, {-time.Hour, 4}, {3, 4}} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("NewWindow(%v, %d) did not panic", c.w, c.n)
				}
			}()
			NewWindow(c.w, c.n)
		}()
	}
}

func TestWindowConcurrent(t *testing.T) {
	t.Parallel()
	w := NewWindow(24*time.Hour, 24)
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				w.AddIP(t0, nthIP(uint64(g*2000+i)))
				if i%500 == 0 {
					w.Estimate(t0)
				}
			}
		}()
	}
	wg.Wait()
	if got := w.Estimate(t0); relErr(got, 8000) > 0.02 {
		t.Fatalf("estimate %d, want ~8000", got)
	}
}

func TestAddIPDoesNotAllocate(t *testing.T) {
	w := NewWindow(time.Hour, 12)
	ip := netip.MustParseAddr("2001:db8::1")
	w.AddIP(t0, ip)
	if n := testing.AllocsPerRun(1000, func() { w.AddIP(t0, ip) }); n != 0 {
		t.Fatalf("AddIP allocates %.1f times per call", n)
	}
}

func BenchmarkAddIP(b *testing.B) {
	w := NewWindow(24*time.Hour, 24)
	b.ReportAllocs()
	i := uint64(0)
	for b.Loop() {
		w.AddIP(t0, nthIP(i))
		i++
	}
}

func BenchmarkEstimate24h(b *testing.B) {
	w := NewWindow(24*time.Hour, 24)
	for h := 0; h < 24; h++ {
		for i := 0; i < 1000; i++ {
			w.AddIP(t0.Add(time.Duration(h)*time.Hour), nthIP(uint64(h*1000+i)))
		}
	}
	now := t0.Add(23 * time.Hour)
	for b.Loop() {
		w.Estimate(now)
	}
}

func TestAddHashesMatchesAddIP(t *testing.T) {
	t.Parallel()
	a, b := NewWindow(time.Hour, 12), NewWindow(time.Hour, 12)
	var hs []uint64
	for i := 0; i < 5000; i++ {
		ip := nthIP(uint64(i))
		a.AddIP(t0, ip)
		hs = append(hs, HashIP(ip))
	}
	b.AddHashes(t0, hs)
	b.AddIP(t0, nthIP(7)) // already in the batch: counts once
	b.AddHashes(t0, nil)
	if ea, eb := a.Estimate(t0), b.Estimate(t0); ea != eb {
		t.Fatalf("AddIP estimate %d, AddHashes estimate %d", ea, eb)
	}
	if HashIP(netip.MustParseAddr("192.0.2.1")) != HashIP(netip.MustParseAddr("::ffff:192.0.2.1")) {
		t.Fatal("v4 and v4-mapped hash differently")
	}
}

// freshEstimate is Estimate without the cache: a new sketch, every slot of
// the window merged in. It returns the estimate and the merged registers.
func freshEstimate(t *rapid.T, w *Window, now time.Time) (uint64, []byte) {
	epoch := w.epoch(now)
	oldest := epoch - int64(len(w.slots)) + 1
	w.mu.Lock()
	defer w.mu.Unlock()
	sk := newSketch()
	for i := range w.slots {
		s := &w.slots[i]
		if s.sk == nil || s.epoch < oldest {
			continue
		}
		if err := sk.Merge(s.sk); err != nil {
			t.Fatal(err)
		}
	}
	return estimate(sk, nil)
}

// TestWindowCachedEstimateIsFresh: after any mix of inserts into the current
// slot, late inserts into older slots, inserts from a clock that stepped
// back, slides of the window (rotations) and estimates, the cached Estimate
// gives the same registers and the same number as a full merge made afresh.
func TestWindowCachedEstimateIsFresh(t *testing.T) {
	t.Parallel()
	rapid.Check(t, func(t *rapid.T) {
		const slots = 6
		slot := 10 * time.Minute
		w := NewWindow(slots*slot, slots)
		now := t0.Add(time.Duration(rapid.Int64Range(0, int64(slot)).Draw(t, "start")))
		next := uint64(0)
		actions := map[string]func(*rapid.T){
			"add": func(t *rapid.T) {
				// Mostly the current slot; sometimes a late line up to a
				// whole window back and beyond, or a line from the future.
				back := rapid.SampledFrom([]int{0, 0, 0, 1, 2, slots - 1, slots, slots + 2, -1, -slots}).Draw(t, "back")
				at := now.Add(-time.Duration(back) * slot)
				n := rapid.IntRange(1, 300).Draw(t, "n")
				if rapid.Bool().Draw(t, "batch") {
					hs := make([]uint64, n)
					for i := range hs {
						hs[i] = HashIP(nthIP(next))
						next++
					}
					w.AddHashes(at, hs)
					return
				}
				for range n {
					w.AddIP(at, nthIP(next))
					next++
				}
			},
			"again": func(t *rapid.T) { // an address seen before
				if next > 0 {
					w.AddIP(now, nthIP(rapid.Uint64Range(0, next-1).Draw(t, "i")))
				}
			},
			"tick": func(t *rapid.T) {
				d := rapid.SampledFrom([]time.Duration{time.Second, slot / 2, slot, 3 * slot, slots * slot, -slot / 3, -slot}).Draw(t, "d")
				now = now.Add(d)
			},
			"estimate": func(t *rapid.T) {
				got := w.Estimate(now)
				want, regs := freshEstimate(t, w, now)
				w.mu.Lock()
				cached, err := w.merged.MarshalBinary()
				w.mu.Unlock()
				if err != nil {
					t.Fatal(err)
				}
				if got != want || !bytes.Equal(cached, regs) {
					t.Fatalf("cached estimate %d, fresh merge %d (registers equal: %v)", got, want, bytes.Equal(cached, regs))
				}
			},
		}
		names := []string{"add", "again", "tick", "estimate"}
		// Each estimate merges six 64 KiB sketches twice: under the race
		// detector (make test) the runs are kept shorter.
		steps := 60
		if raceEnabled {
			steps = 12
		}
		for range rapid.IntRange(1, steps).Draw(t, "steps") {
			actions[rapid.SampledFrom(names).Draw(t, "action")](t)
		}
		actions["estimate"](t)
	})
}

// BenchmarkEstimate24hScrape is the POP's case: lines keep arriving in the
// current hour between two scrapes of the 24 h window.
func BenchmarkEstimate24hScrape(b *testing.B) {
	w := NewWindow(24*time.Hour, 24)
	for h := 0; h < 24; h++ {
		for i := 0; i < 1000; i++ {
			w.AddIP(t0.Add(time.Duration(h)*time.Hour), nthIP(uint64(h*1000+i)))
		}
	}
	now := t0.Add(23 * time.Hour)
	i := uint64(1 << 20)
	for b.Loop() {
		for range 100 {
			w.AddIP(now, nthIP(i))
			i++
		}
		w.Estimate(now)
	}
}

// TestEstimateDenseAgreesWithLibrary: the histogram estimator Estimate uses
// gives what hyperloglog's own Estimate gives, within a fraction of the
// standard error (0.41 %), from an empty sketch to ten million items, and
// falls back to the library for an encoding it does not know.
func TestEstimateDenseAgreesWithLibrary(t *testing.T) {
	t.Parallel()
	sk := newSketch()
	var buf []byte
	if n, _ := estimate(sk, buf); n != 0 {
		t.Fatalf("empty sketch: %d", n)
	}
	i := uint64(0)
	for _, n := range []uint64{1, 10, 100, 1_000, 10_000, 50_000, 200_000, 1_000_000, 10_000_000} {
		if raceEnabled && n > 1_000_000 {
			break
		}
		for ; i < n; i++ {
			sk.InsertHash(HashIP(mixedIP(i, 7)))
		}
		var got uint64
		got, buf = estimate(sk, buf)
		lib := sk.Estimate()
		if d := math.Abs(float64(got)-float64(lib)) / float64(lib); d > 0.002 {
			t.Errorf("n=%d: histogram estimator %d, library %d (%.4f apart)", n, got, lib, d)
		}
	}
	if _, ok := estimateDense(buf[:len(buf)-1]); ok {
		t.Error("a truncated encoding was accepted")
	}
	bad := append([]byte(nil), buf...)
	bad[denseHeader] = 64 - precision + 2 // beyond the largest register value
	if _, ok := estimateDense(bad); ok {
		t.Error("an impossible register value was accepted")
	}
}

// BenchmarkEstimateLibrary is what Estimate cost per window before it
// counted registers itself.
func BenchmarkEstimateLibrary(b *testing.B) {
	sk := newSketch()
	for i := range uint64(100_000) {
		sk.InsertHash(HashIP(nthIP(i)))
	}
	for b.Loop() {
		sk.Estimate()
	}
}

func BenchmarkEstimateDense(b *testing.B) {
	sk := newSketch()
	for i := range uint64(100_000) {
		sk.InsertHash(HashIP(nthIP(i)))
	}
	var buf []byte
	for b.Loop() {
		_, buf = estimate(sk, buf)
	}
}
