package alertbridge

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Targets a record can be queued for.
const (
	TargetNtfy = "ntfy"
	TargetKuma = "kuma"
)

var (
	bucketKeys         = []byte("keys") // dedup key -> accepted time (unix nanos)
	bucketKumaState    = []byte("kuma.state")
	bucketKumaFiring   = []byte("kuma.firing")
	bucketKumaResolved = []byte("kuma.resolved")
	keyKumaLast        = []byte("last")
	// bucketMeta holds the queue depths ("n.<target>"): queues are drained
	// out of order (concurrently, per group), so depth is not last-first+1.
	bucketMeta = []byte("meta")
	// bucketResolved maps fingerprint to the startsAt of its latest
	// resolution and the time that resolution was accepted (16 bytes, two
	// big-endian Unix nanos), so a late FIRING copy of that episode is
	// dropped; the entry is forgotten by its acceptance time. Spools of
	// older versions hold 8 bytes, the startsAt alone (see resolvedEntry).
	bucketResolved = []byte("fp.resolved")
	// bucketGroups maps a group ID to what its last page said.
	bucketGroups = []byte("groups")
	// bucketNtfyAttempted holds the sequence numbers of the ntfy pages
	// whose publish was started (written, fsync'd, before the request):
	// after a restart they may have been published and are sent again
	// marked as possible repeats. Done removes them with the page.
	bucketNtfyAttempted = []byte("ntfy.attempted")
)

var allBuckets = [][]byte{bucketKeys, bucketKumaState, bucketKumaFiring, bucketKumaResolved, bucketMeta, bucketResolved, bucketGroups,
	bucketActionsUsed, queueBucket(TargetNtfy), queueBucket(TargetKuma), bucketNtfyAttempted}

func depthKey(target string) []byte { return []byte("n." + target) }

func queueBucket(target string) []byte { return []byte("q." + target) }

// Spool is the durable queue between intake and delivery: an embedded
// bbolt database whose every commit is fsync'd. One bucket per target holds
// records under increasing sequence numbers, so each target drains in
// arrival order; a key bucket remembers which alerts were seen.
type Spool struct {
	// db is replaced by a running compaction: readers hold dbMu for
	// reading (view), the committer swaps it holding dbMu for writing.
	// Every write runs on the committer goroutine, which is also the one
	// that compacts, so no write can slip in while the copy is made.
	dbMu    sync.RWMutex
	db      *bolt.DB
	path    string
	targets []string

	compactions     atomic.Int64
	lastCompactNano atomic.Int64 // duration of the last compaction

	// Group commit: one goroutine runs every write. While a commit (two
	// fsyncs) is in progress, new writes queue up and all of them go into
	// the next commit, so the batch grows with the load and no write waits
	// for a timer. (bbolt's own Batch starts a new batch per timer tick and
	// queues many small commits under load.)
	mu      sync.RWMutex
	closed  bool
	reqs    chan commitReq
	quit    chan struct{}
	stopped chan struct{}
}

type commitReq struct {
	fn   func(*bolt.Tx) error
	done chan error
	// special, when set, runs alone on the committer between commits
	// (compaction); fn is nil then.
	special func() error
}

// maxBatch bounds the writes of one commit.
const maxBatch = 2048

// allocSize is how far ahead of its data bbolt grows the file (its default
// is 16 MiB, so a fresh or freshly compacted spool was 16 MiB of nothing).
// Each growth costs a truncate and an fsync: at 4 MiB, a 100,000-alert
// outage (under 200 MB) adds some 50 of them to thousands of commits.
const allocSize = 4 << 20

// boltOptions are the options the spool is opened with.
func boltOptions() *bolt.Options {
	return &bolt.Options{
		Timeout: 5 * time.Second,
		// Not writing the freelist makes every commit smaller (it is
		// rebuilt by a scan on open); a large initial mmap avoids remaps,
		// which stall every transaction while the spool grows.
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30,
	}
}

// Recovery says what OpenSpool did with a damaged spool file.
type Recovery struct {
	// MovedTo is where the damaged file was moved (kept for inspection).
	MovedTo string
	// Problem is what the check found.
	Problem string
	// Salvaged counts the queued records copied into the fresh spool.
	Salvaged int
}

// OpenSpool opens (creating it and its directory if missing) the spool at
// path, with queues for the given targets. A damaged file (bbolt panics on
// it, or a read of it faults) never crashes the process: it is moved aside,
// what can still be read of its queues is copied into a fresh spool, and
// the returned Recovery says so.
//
// Only a file that is a bbolt database (CheckSpoolPath) is ever moved
// aside: anything else at path (a directory, a FIFO, a device, a text file)
// is refused with a *ConfigError and left as it is.
func OpenSpool(path string, targets []string) (*Spool, *Recovery, error) {
	if err := CheckSpoolPath(path); err != nil {
		return nil, nil, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, nil, fmt.Errorf("spool: %w", err)
	}
	os.Remove(path + ".compact") // a compaction's copy left by a crash: the original is complete
	db, problem, err := openAndCheck(path)
	if err != nil {
		return nil, nil, fmt.Errorf("spool %s: %w", path, err)
	}
	var rec *Recovery
	if problem != "" {
		rec = &Recovery{Problem: problem, MovedTo: fmt.Sprintf("%s.corrupt-%d", path, time.Now().Unix())}
		if err := os.Rename(path, rec.MovedTo); err != nil {
			return nil, nil, fmt.Errorf("spool %s is damaged (%s) and cannot be moved aside: %w", path, problem, err)
		}
		db, problem, err = openAndCheck(path)
		if err != nil || problem != "" {
			return nil, nil, fmt.Errorf("spool %s: fresh file unusable: %v %s", path, err, problem)
		}
		rec.Salvaged = salvage(rec.MovedTo, db)
	}
	if c, err := compactIfMostlyFree(path, db, compactMinBytes); err != nil {
		return nil, nil, fmt.Errorf("spool %s: compaction: %w", path, err)
	} else {
		db = c
	}
	s := &Spool{db: db, path: path, targets: targets, reqs: make(chan commitReq, maxBatch),
		quit: make(chan struct{}), stopped: make(chan struct{})}
	go s.committer()
	return s, rec, nil
}

// Compaction: bbolt never shrinks its file (186 MB after a drained
// 100,000-alert outage). A file of at least compactMinBytes whose live data
// is under a quarter of it is rewritten compactly before intake starts; live
// data over compactMaxLive is left alone so start-up stays quick. While
// running, Spool.Compact does the same under CompactPolicy.
const (
	compactMinBytes = 64 << 20
	compactMaxLive  = 256 << 20
)

// compactIfMostlyFree returns db, or the compacted database reopened at
// path in its place.
func compactIfMostlyFree(path string, db *bolt.DB, minBytes int64) (*bolt.DB, error) {
	size, live := spaceOf(path, db)
	if size < minBytes || live*4 > size || live > compactMaxLive {
		return db, nil
	}
	ndb, err := compactTo(path, db)
	if err != nil {
		return db, err
	}
	if err := db.Close(); err != nil {
		ndb.Close()
		return nil, err
	}
	return ndb, nil
}

// spaceOf returns the file's size and how much of it holds live pages
// (everything below the high-water mark that is not on the freelist).
func spaceOf(path string, db *bolt.DB) (size, live int64) {
	size, live, _ = spaceOf3(path, db)
	return size, live
}

// spaceOf3 also returns the free pages' bytes below the high-water mark
// (bbolt grows the file 16 MiB ahead of it: that tail is not "free").
func spaceOf3(path string, db *bolt.DB) (size, live, free int64) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, 0, 0
	}
	db.View(func(tx *bolt.Tx) error {
		free = int64(db.Stats().FreePageN) * int64(db.Info().PageSize)
		live = tx.Size() - free
		return nil
	})
	return fi.Size(), live, free
}

// compactTo copies db into path+".compact", makes the copy durable and
// renames it over path, then fsyncs the directory; it returns the copy,
// open. The caller must keep every writer off db meanwhile and close db
// after. Crash safety: until the rename, path is the untouched original
// (the temporary file is removed at the next start); the copy is fsync'd
// before the rename, and the directory after it, so whichever file a crash
// leaves at path holds every acknowledged write.
func compactTo(path string, db *bolt.DB) (*bolt.DB, error) {
	tmp := path + ".compact"
	os.Remove(tmp)
	opts := boltOptions()
	opts.NoSync = true // one fsync at the end instead of one per copy transaction
	dst, err := bolt.Open(tmp, 0o600, opts)
	if err != nil {
		return nil, err
	}
	dst.AllocSize = allocSize
	fail := func(err error) (*bolt.DB, error) {
		dst.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := bolt.Compact(dst, db, 4<<20); err != nil {
		return fail(err)
	}
	if err := dst.Sync(); err != nil {
		return fail(err)
	}
	dst.NoSync = false // from now on every commit is fsync'd again
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		dst.Close()
		return nil, err
	}
	err = d.Sync()
	d.Close()
	if err != nil {
		dst.Close()
		return nil, err
	}
	return dst, nil
}

// CompactPolicy says when a running spool is compacted: the file is at
// least MinBytes, at least half (MinFreeShare) of its written pages are free, and its live
// data is at most MaxLive. (Free pages are counted below bbolt's high-water
// mark, so a fresh copy, free of free pages, is not compacted again.)
//
// Compaction holds writes (intake and delivery acknowledgments queue up in
// the committer; reads go on against the old file) for as long as it takes
// to copy the live data and fsync it once. MaxLive bounds that pause:
// BenchmarkSpoolCompact (nice -n 19 go test -run '^$' -bench SpoolCompact
// -benchtime 3x ./alertbridge/) copied 68 MiB of live pages in 0.77 s on the
// shared 2-core machine at load average 11, so the default 32 MiB holds
// intake for under half a second there (under 0.2 s idle), far inside
// Alertmanager's webhook timeout (10 s). It cannot land in an outage: a
// spool with that much queued is not half free, so compaction waits until
// the outage has drained; it runs between two group commits, at the next
// check (every minute) after the spool became mostly free.
type CompactPolicy struct {
	MinBytes int64
	MaxLive  int64
	// MinFreeShare is the share of written pages that must be free (0
	// means 0.5; a negative value compacts whatever is free, for tests).
	MinFreeShare float64
}

// DefaultCompactPolicy is what cmd/alertbridge uses unless told otherwise.
var DefaultCompactPolicy = CompactPolicy{MinBytes: 64 << 20, MaxLive: 32 << 20}

// CompactResult says what one Compact call did.
type CompactResult struct {
	Compacted     bool
	Before, After int64 // file sizes in bytes
	Live          int64
	Duration      time.Duration // time writes were held
	Reason        string        // why not, when not compacted
}

// Compact rewrites the spool file compactly when p says it is mostly free,
// without closing the spool: it runs on the committer between two commits.
func (s *Spool) Compact(p CompactPolicy) (CompactResult, error) {
	var res CompactResult
	done := make(chan error, 1)
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return res, errClosed
	}
	s.reqs <- commitReq{done: done, special: func() error {
		var err error
		res, err = s.compactNow(p)
		return err
	}}
	s.mu.RUnlock()
	err := <-done
	return res, err
}

// compactNow runs on the committer goroutine.
func (s *Spool) compactNow(p CompactPolicy) (CompactResult, error) {
	share := p.MinFreeShare
	if share == 0 {
		share = 0.5
	}
	size, live, free := spaceOf3(s.path, s.db)
	res := CompactResult{Before: size, After: size, Live: live}
	switch {
	case size < p.MinBytes:
		res.Reason = "file below the minimum size"
		return res, nil
	case free < int64(share*float64(live+free)):
		res.Reason = "too few of the written pages are free"
		return res, nil
	case live > p.MaxLive:
		res.Reason = "too much live data to copy quickly"
		return res, nil
	}
	start := time.Now()
	ndb, err := compactTo(s.path, s.db)
	if err != nil {
		return res, err
	}
	s.dbMu.Lock() // waits for the reads still on the old file
	old := s.db
	s.db = ndb
	s.dbMu.Unlock()
	old.Close()
	res.Duration = time.Since(start)
	res.Compacted = true
	res.After = s.FileSize()
	s.compactions.Add(1)
	s.lastCompactNano.Store(int64(res.Duration))
	return res, nil
}

// Compactions returns how many times the running spool was compacted and
// how long the last one held writes.
func (s *Spool) Compactions() (int64, time.Duration) {
	return s.compactions.Load(), time.Duration(s.lastCompactNano.Load())
}

// view runs fn in a read transaction of the current file.
func (s *Spool) view(fn func(*bolt.Tx) error) error {
	s.dbMu.RLock()
	defer s.dbMu.RUnlock()
	return s.db.View(fn)
}

// openAndCheck opens the file and reads every bucket, key and value once,
// with faults turned into panics and every panic recovered: a bbolt panic
// (a damaged freelist, "freepages: failed to get all reachable pages") or a
// SIGBUS (a truncated file under the mmap) becomes a problem report. An
// error is returned only for what is not damage (permissions, a lock held
// by another process).
func openAndCheck(path string) (db *bolt.DB, problem string, err error) {
	if fi, serr := os.Stat(path); serr == nil && fi.Size() > 0 {
		if fi.Size()%int64(os.Getpagesize()) != 0 {
			// bbolt only ever grows the file by whole pages.
			return nil, fmt.Sprintf("file size %d is not a multiple of the page size", fi.Size()), nil
		}
		// First read-only (no freelist rebuild, whose page walk runs on a
		// goroutine of bbolt's where a fault cannot be recovered): every
		// page the write open will visit is visited here first.
		problem, err = guarded(func() (string, error) {
			ro, err := bolt.Open(path, 0o600, &bolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
			if err != nil {
				return damage(err)
			}
			defer ro.Close()
			if err := ro.View(walkAll); err != nil {
				return err.Error(), nil
			}
			return "", nil
		})
		if problem != "" || err != nil {
			return nil, problem, err
		}
	}
	problem, err = guarded(func() (string, error) {
		var err error
		db, err = bolt.Open(path, 0o600, boltOptions())
		if err != nil {
			db = nil
			return damage(err)
		}
		db.AllocSize = allocSize
		if err := db.Update(func(tx *bolt.Tx) error {
			for _, b := range allBuckets {
				if _, err := tx.CreateBucketIfNotExists(b); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			db.Close()
			db = nil
			return err.Error(), nil
		}
		return "", nil
	})
	if problem != "" {
		db = nil // abandoned if the panic came after Open
	}
	return db, problem, err
}

// damage sorts an open error into damage to the file (a problem report)
// and anything else (an error: permissions, a lock held elsewhere).
func damage(err error) (string, error) {
	if errors.Is(err, berrors.ErrInvalid) || errors.Is(err, berrors.ErrChecksum) || errors.Is(err, berrors.ErrVersionMismatch) ||
		strings.Contains(err.Error(), "file size too small") || strings.Contains(err.Error(), "invalid") {
		return err.Error(), nil
	}
	return "", err
}

// guarded runs f on a goroutine of its own with memory faults turned into
// panics (a read of a truncated file's mapping is a SIGBUS), and reports a
// panic as a problem. A DB half-opened when the panic came is abandoned:
// its lock and mapping go with the process, nothing reads it again.
func guarded(f func() (string, error)) (problem string, err error) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		debug.SetPanicOnFault(true)
		defer func() {
			if r := recover(); r != nil {
				problem, err = fmt.Sprint("panic: ", r), nil
			}
		}()
		problem, err = f()
	}()
	<-done
	return problem, err
}

// walkAll touches every page reachable from the root: a read that faults
// or a page bbolt cannot decode surfaces here, at start, not later in a
// delivery worker.
func walkAll(tx *bolt.Tx) error {
	var walk func(b *bolt.Bucket) error
	walk = func(b *bolt.Bucket) error {
		return b.ForEach(func(k, v []byte) error {
			if v == nil {
				if nb := b.Bucket(k); nb != nil {
					return walk(nb)
				}
				return nil
			}
			bytes.IndexByte(v, 0xfe) // reads every byte of the value
			return nil
		})
	}
	return tx.ForEach(func(name []byte, b *bolt.Bucket) error { return walk(b) })
}

// salvage copies what can still be read from the damaged file's queues,
// dedup keys and resolutions into db, in order, stopping at the first
// fault. It returns the number of queued records copied.
func salvage(damaged string, db *bolt.DB) (n int) {
	type kv struct{ k, v []byte }
	got := map[string][]kv{}
	guarded(func() (string, error) {
		src, err := bolt.Open(damaged, 0o600, &bolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			return "", err
		}
		defer src.Close()
		return "", src.View(func(tx *bolt.Tx) error {
			for _, name := range allBuckets {
				b := tx.Bucket(name)
				if b == nil {
					continue
				}
				b.ForEach(func(k, v []byte) error {
					if v != nil {
						got[string(name)] = append(got[string(name)], kv{append([]byte(nil), k...), append([]byte(nil), v...)})
					}
					return nil
				})
			}
			return nil
		})
	})
	db.Update(func(tx *bolt.Tx) error {
		// renumbered maps an ntfy record's old sequence number (its key)
		// to its new one, for the attempted marks.
		renumbered := map[string]uint64{}
		for name, kvs := range got {
			if name == string(bucketMeta) || name == string(bucketNtfyAttempted) {
				continue // depths are recounted, marks renumbered, below
			}
			b := tx.Bucket([]byte(name))
			if !strings.HasPrefix(name, "q.") {
				for _, e := range kvs {
					b.Put(e.k, e.v)
				}
				continue
			}
			// Queue records are renumbered 1..n in their order: a damaged
			// key may read as any number (near 2^64, the next sequence
			// would wrap), and only the order matters. A value that is not
			// JSON is damage, not a record.
			var seq uint64
			for _, e := range kvs {
				if len(e.k) != 8 || !json.Valid(e.v) {
					continue
				}
				seq++
				if b.Put(u64(seq), e.v) == nil {
					n++
					if name == string(queueBucket(TargetNtfy)) {
						renumbered[string(e.k)] = seq
					}
				}
			}
			b.SetSequence(seq)
			tx.Bucket(bucketMeta).Put(depthKey(strings.TrimPrefix(name, "q.")), u64(uint64(b.Stats().KeyN)))
		}
		// A mark names an ntfy record by its sequence number: it follows
		// the record to its new number, and goes with a record not copied
		// (kept as it was, it would mark whichever page now has that
		// number as a possible repeat, and not the one in flight).
		at := tx.Bucket(bucketNtfyAttempted)
		for _, e := range got[string(bucketNtfyAttempted)] {
			if seq, ok := renumbered[string(e.k)]; ok {
				at.Put(u64(seq), nil)
			}
		}
		return nil
	})
	return n
}

// Close commits what is queued, stops the committer and closes the database.
func (s *Spool) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.quit)
	<-s.stopped
	return s.db.Close()
}

// commit runs fn in a write transaction shared with concurrent callers and
// returns once that transaction is fsync'd. fn must compute everything
// from scratch: if the shared commit fails, it runs again alone.
func (s *Spool) commit(fn func(*bolt.Tx) error) error {
	done := make(chan error, 1)
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return errClosed
	}
	s.reqs <- commitReq{fn: fn, done: done}
	s.mu.RUnlock()
	return <-done
}

func (s *Spool) committer() {
	defer close(s.stopped)
	prev, took := 0, time.Duration(0) // size and duration of the last commit
	for {
		var first commitReq
		select {
		case first = <-s.reqs:
		case <-s.quit:
			// No new requests can arrive (closed is set): commit the rest.
			for {
				select {
				case r := <-s.reqs:
					s.run(s.gather(r, 0, 0))
				default:
					return
				}
			}
		}
		batch := s.gather(first, prev, took)
		start := time.Now()
		s.run(batch)
		prev, took = len(batch), time.Since(start)
	}
}

// maxGatherWait caps how long a commit waits for the writers of the
// previous one to come back.
const maxGatherWait = 2 * time.Millisecond

// gather collects the writes of the next commit: first, what is queued,
// and, after a commit of several writers, up to min(2 ms, a fifth of its
// duration) for those writers to come back. Without that wait, writers
// that loop (Alertmanager's 16 senders, each waiting for its 2xx) split
// into two cohorts, each in every other commit, and a commit carries half
// of them: the profile showed 7.7 writes per commit with 16 senders. The
// wait ends as soon as the batch holds what was queued plus the last
// commit's writers, so in steady state it lasts one HTTP round trip.
// (PostgreSQL's commit_delay / commit_siblings do the same.)
func (s *Spool) gather(first commitReq, prev int, took time.Duration) []commitReq {
	batch := []commitReq{first}
	for len(batch) < maxBatch {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
			continue
		default:
		}
		break
	}
	if prev < 2 {
		return batch
	}
	want := min(len(batch)+prev, maxBatch)
	wait := time.NewTimer(min(maxGatherWait, took/5))
	defer wait.Stop()
	for len(batch) < want {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		case <-wait.C:
			return batch
		}
	}
	return batch
}

func (s *Spool) run(all []commitReq) {
	batch := all[:0:0]
	var specials []commitReq
	for _, r := range all {
		if r.special != nil {
			specials = append(specials, r)
		} else {
			batch = append(batch, r)
		}
	}
	if len(batch) > 0 {
		s.runBatch(batch)
	}
	for _, r := range specials {
		r.done <- r.special()
	}
}

func (s *Spool) runBatch(batch []commitReq) {
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, r := range batch {
			if err := r.fn(tx); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		// One failing write must not fail the others: run each alone.
		for _, r := range batch {
			r.done <- s.db.Update(r.fn)
		}
		return
	}
	for _, r := range batch {
		r.done <- err
	}
}

// Entry is an intake item: a record and the targets it must reach. NoDedup
// items (the Watchdog heartbeat, which Alertmanager repeats unchanged on
// purpose) skip the key check.
type Entry struct {
	Record  Record
	Targets []string
	NoDedup bool
}

// SpoolTx is one write transaction of the spool, as intake sees it.
type SpoolTx struct{ tx *bolt.Tx }

// Seen reports whether the dedup key was recorded.
func (t SpoolTx) Seen(key string) bool { return t.tx.Bucket(bucketKeys).Get([]byte(key)) != nil }

// Remember records a dedup key.
func (t SpoolTx) Remember(key string, at time.Time) error {
	return t.tx.Bucket(bucketKeys).Put([]byte(key), u64(uint64(at.UnixNano())))
}

// Enqueue appends v to target's queue.
func (t SpoolTx) Enqueue(target string, v []byte) error {
	q := t.tx.Bucket(queueBucket(target))
	seq, err := q.NextSequence()
	if err != nil {
		return err
	}
	if err := q.Put(u64(seq), v); err != nil {
		return err
	}
	return t.addDepth(target, 1)
}

func (t SpoolTx) addDepth(target string, d int64) error {
	m := t.tx.Bucket(bucketMeta)
	var n int64
	if v := m.Get(depthKey(target)); len(v) == 8 {
		n = int64(binary.BigEndian.Uint64(v))
	}
	n += d
	if n < 0 {
		n = 0
	}
	return m.Put(depthKey(target), u64(uint64(n)))
}

// resolvedEntry decodes a bucketResolved value. An 8-byte value (written
// before acceptance times were kept) has no acceptance time: it is taken
// as its startsAt, which the resolution came after, so it is forgotten no
// later than before.
func resolvedEntry(v []byte) (startsAt, accepted time.Time, ok bool) {
	switch len(v) {
	case 16:
		return time.Unix(0, int64(u64v(v[:8]))), time.Unix(0, int64(u64v(v[8:]))), true
	case 8:
		st := time.Unix(0, int64(u64v(v)))
		return st, st, true
	}
	return time.Time{}, time.Time{}, false
}

// ResolvedAt returns the startsAt of the latest resolution seen for fp. A
// resolution whose startsAt lies more than MaxStartsAtAhead after the
// time it was accepted (or, for an entry of an older version, after now)
// is disregarded: intake refuses such alerts now, and one spooled before
// would keep the fingerprint's genuine firings from paging.
func (t SpoolTx) ResolvedAt(fp string, now time.Time) (time.Time, bool) {
	v := t.tx.Bucket(bucketResolved).Get([]byte(fp))
	st, acc, ok := resolvedEntry(v)
	if !ok {
		return time.Time{}, false
	}
	ref := acc
	if len(v) == 8 {
		ref = now
	}
	if !plausibleStart(st, ref) {
		return time.Time{}, false
	}
	return st, true
}

// SetResolved records a resolution, accepted at accepted, of fp's episode
// that started at startsAt. Both must be storable (DecodePayload checks).
func (t SpoolTx) SetResolved(fp string, startsAt, accepted time.Time) error {
	if !storableTime(startsAt) || !storableTime(accepted) {
		return fmt.Errorf("resolution of %q: time out of the storable range", fp)
	}
	if cur, ok := t.ResolvedAt(fp, accepted); ok && !startsAt.After(cur) {
		return nil
	}
	v := make([]byte, 16)
	binary.BigEndian.PutUint64(v[:8], uint64(startsAt.UnixNano()))
	binary.BigEndian.PutUint64(v[8:], uint64(accepted.UnixNano()))
	return t.tx.Bucket(bucketResolved).Put([]byte(fp), v)
}

// Group returns the stored state of a notification group (nil if none).
func (t SpoolTx) Group(id string) *groupState {
	v := t.tx.Bucket(bucketGroups).Get([]byte(id))
	if v == nil {
		return nil
	}
	var g groupState
	if json.Unmarshal(v, &g) != nil {
		return nil
	}
	return &g
}

// PutGroup stores (or, with nil, deletes) a group's state.
func (t SpoolTx) PutGroup(id string, g *groupState) error {
	if g == nil {
		return t.tx.Bucket(bucketGroups).Delete([]byte(id))
	}
	v, err := json.Marshal(g)
	if err != nil {
		return err
	}
	return t.tx.Bucket(bucketGroups).Put([]byte(id), v)
}

// Update runs fn in one fsync'd write transaction shared with concurrent
// callers. fn must compute everything from scratch: it runs again alone if
// the shared commit fails.
func (s *Spool) Update(fn func(SpoolTx) error) error {
	return s.commit(func(tx *bolt.Tx) error { return fn(SpoolTx{tx}) })
}

// Add writes entries in one fsync'd transaction (shared with concurrent
// callers) and reports for each whether it was new.
// Only when Add returns nil are the new records durable.
func (s *Spool) Add(entries []Entry) ([]bool, error) {
	fresh := make([]bool, len(entries))
	payloads := make([][]byte, len(entries))
	for i := range entries {
		b, err := json.Marshal(&entries[i].Record)
		if err != nil {
			return nil, err
		}
		payloads[i] = b
	}
	err := s.Update(func(t SpoolTx) error {
		for i, e := range entries {
			fresh[i] = false
			if !e.NoDedup {
				if t.Seen(e.Record.Key) {
					continue
				}
				if err := t.Remember(e.Record.Key, e.Record.Accepted); err != nil {
					return err
				}
			}
			fresh[i] = true
			for _, tg := range e.Targets {
				if err := t.Enqueue(tg, payloads[i]); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("spool commit: %w", err)
	}
	return fresh, nil
}

// Queued is a record waiting in a target's queue.
type Queued struct {
	Seq    uint64
	Record Record
}

// rawQueued is a queue item undecoded.
type rawQueued struct {
	Seq uint64
	Val []byte
}

// peekRaw returns up to n items of target's queue with a sequence number
// above after, in order.
func (s *Spool) peekRaw(target string, after uint64, n int) ([]rawQueued, error) {
	var out []rawQueued
	err := s.view(func(tx *bolt.Tx) error {
		c := tx.Bucket(queueBucket(target)).Cursor()
		for k, v := c.Seek(u64(after + 1)); k != nil && len(out) < n; k, v = c.Next() {
			out = append(out, rawQueued{binary.BigEndian.Uint64(k), append([]byte(nil), v...)})
		}
		return nil
	})
	return out, err
}

// Peek returns up to n records at the head of target's queue, oldest first.
// A record that cannot be decoded (should never happen) is returned with a
// zero Record and Key "" so the caller can drop it.
func (s *Spool) Peek(target string, n int) ([]Queued, error) {
	raw, err := s.peekRaw(target, 0, n)
	out := make([]Queued, len(raw))
	for i, r := range raw {
		out[i].Seq = r.Seq
		if json.Unmarshal(r.Val, &out[i].Record) != nil {
			out[i].Record = Record{}
		}
	}
	return out, err
}

// Done removes delivered (or dropped) records from target's queue, in one
// fsync'd transaction (shared with concurrent intake), optionally together
// with extra writes. extra must be idempotent: it may run twice.
func (s *Spool) Done(target string, seqs []uint64, extra func(tx *bolt.Tx) error) error {
	return s.commit(func(tx *bolt.Tx) error {
		q := tx.Bucket(queueBucket(target))
		removed := int64(0)
		for _, seq := range seqs {
			k := u64(seq)
			if q.Get(k) == nil {
				continue
			}
			if err := q.Delete(k); err != nil {
				return err
			}
			removed++
		}
		if err := (SpoolTx{tx}).addDepth(target, -removed); err != nil {
			return err
		}
		if target == TargetNtfy {
			at := tx.Bucket(bucketNtfyAttempted)
			for _, seq := range seqs {
				if err := at.Delete(u64(seq)); err != nil {
					return err
				}
			}
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
}

// markAttempted records, durably, that the publish of these ntfy pages
// starts (see bucketNtfyAttempted).
func (s *Spool) markAttempted(seqs []uint64) error {
	return s.commit(func(tx *bolt.Tx) error {
		at := tx.Bucket(bucketNtfyAttempted)
		for _, seq := range seqs {
			if err := at.Put(u64(seq), nil); err != nil {
				return err
			}
		}
		return nil
	})
}

// attempted reports which of these ntfy pages had a publish started.
func (s *Spool) attempted(seqs []uint64) (map[uint64]bool, error) {
	out := map[uint64]bool{}
	err := s.view(func(tx *bolt.Tx) error {
		at := tx.Bucket(bucketNtfyAttempted)
		if k, _ := at.Cursor().First(); k == nil {
			return nil // the usual case: nothing was in flight
		}
		for _, seq := range seqs {
			if at.Get(u64(seq)) != nil {
				out[seq] = true
			}
		}
		return nil
	})
	return out, err
}

// Stats returns the depth and the accept time of the oldest record of
// target's queue (zero when empty). The depth is a counter kept with the
// queue, so no scan.
func (s *Spool) Stats(target string) (depth int, oldest time.Time, err error) {
	err = s.view(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketMeta).Get(depthKey(target)); len(v) == 8 {
			depth = int(binary.BigEndian.Uint64(v))
		}
		_, v := tx.Bucket(queueBucket(target)).Cursor().First()
		if v != nil {
			var r struct {
				Accepted time.Time `json:"accepted"`
			}
			if json.Unmarshal(v, &r) == nil {
				oldest = r.Accepted
			}
		}
		return nil
	})
	return
}

// FileSize is the spool file's size in bytes.
func (s *Spool) FileSize() int64 {
	fi, err := os.Stat(s.path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// ForgetKeys deletes dedup keys accepted before cutoff, so the key bucket
// does not grow forever. A firing alert still active after that is sent
// once more when Alertmanager repeats it: a reminder, never a loss.
func (s *Spool) ForgetKeys(cutoff time.Time) (int, error) {
	n := 0
	err := s.commit(func(tx *bolt.Tx) error {
		n = 0
		c := tx.Bucket(bucketKeys).Cursor()
		for k, v := c.First(); k != nil; {
			if len(v) == 8 && int64(binary.BigEndian.Uint64(v)) < cutoff.UnixNano() {
				k = append([]byte(nil), k...)
				if err := c.Delete(); err != nil {
					return err
				}
				n++
				k, v = c.Seek(k) // Delete moves the cursor; re-seek to the next key
				continue
			}
			k, v = c.Next()
		}
		// Resolutions are kept as long as keys, by the time they were
		// accepted: a firing copy older than that is dropped by its key
		// anyway. Entries of older versions whose startsAt is implausibly
		// far ahead (ResolvedAt disregards them) go too.
		now := time.Now()
		rc := tx.Bucket(bucketResolved).Cursor()
		for k, v := rc.First(); k != nil; {
			st, acc, ok := resolvedEntry(v)
			if !ok || acc.Before(cutoff) || (len(v) == 8 && !plausibleStart(st, now)) {
				k = append([]byte(nil), k...)
				if err := rc.Delete(); err != nil {
					return err
				}
				k, v = rc.Seek(k)
				continue
			}
			k, v = rc.Next()
		}
		return nil
	})
	return n, err
}

// kumaState is what the Kuma worker keeps between pushes. It is saved
// incrementally: only the fingerprints touched by a batch are written.
type kumaState struct {
	// Firing maps fingerprint to the alert currently counted as an outage.
	Firing map[string]kumaAlert
	// Resolved maps fingerprint to its latest resolution, so a late
	// firing notification of the same episode is ignored; it is forgotten
	// by the time it was accepted.
	Resolved map[string]kumaResolved
	// LastStatus and LastMsg are what the last successful push said.
	LastStatus string
	LastMsg    string

	dirty map[string]bool
	names map[string]int
	// Kept by setFiring, delFiring and expire so that a batch of records
	// costs O(batch), not O(outages): with 18,000 outages (a flood of
	// distinct alerts at 1,500/s) the two scans were 10 % of the bridge's
	// CPU, on the path of every intake commit.
	//   nextExpiry: at or before the earliest Expires in Firing (zero:
	//   none known); expire scans only once it has passed.
	//   first: the smallest summaryNames names, sorted, when firstOK.
	nextExpiry time.Time
	first      []string
	firstOK    bool
}

type kumaAlert struct {
	Name     string    `json:"name"`
	StartsAt time.Time `json:"startsAt"`
	// Expires is when the outage is forgotten unless refreshed.
	Expires time.Time `json:"expires,omitzero"`
}

// kumaResolved is saved as JSON; versions that kept no acceptance time
// saved the startsAt alone, as an RFC 3339 string (see loadKumaState).
type kumaResolved struct {
	StartsAt time.Time `json:"startsAt"`
	Accepted time.Time `json:"accepted"`
}

type kumaLast struct {
	Status string `json:"status"`
	Msg    string `json:"msg"`
}

func newKumaState() *kumaState {
	return &kumaState{Firing: map[string]kumaAlert{}, Resolved: map[string]kumaResolved{}, dirty: map[string]bool{}, names: map[string]int{}}
}

func (s *Spool) loadKumaState() (*kumaState, error) {
	st := newKumaState()
	err := s.view(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketKumaFiring).ForEach(func(k, v []byte) error {
			var a kumaAlert
			if json.Unmarshal(v, &a) == nil {
				st.setFiring(string(k), a)
			}
			return nil
		}); err != nil {
			return err
		}
		now := time.Now()
		if err := tx.Bucket(bucketKumaResolved).ForEach(func(k, v []byte) error {
			var res kumaResolved
			if json.Unmarshal(v, &res) == nil {
				st.Resolved[string(k)] = res
			} else if t, err := time.Parse(time.RFC3339Nano, string(v)); err == nil && plausibleStart(t, now) {
				// An older version's entry: the startsAt alone. The
				// resolution came after it, so it is forgotten no later
				// than before; one implausibly far ahead is dropped (as
				// SpoolTx.ResolvedAt disregards it).
				st.Resolved[string(k)] = kumaResolved{StartsAt: t, Accepted: t}
			} else {
				st.dirty[string(k)] = true // deleted at the next save
			}
			return nil
		}); err != nil {
			return err
		}
		if v := tx.Bucket(bucketKumaState).Get(keyKumaLast); v != nil {
			var l kumaLast
			if json.Unmarshal(v, &l) == nil {
				st.LastStatus, st.LastMsg = l.Status, l.Msg
			}
		}
		return nil
	})
	return st, err
}

// save writes the touched fingerprints and the last push. Idempotent, as
// bbolt's Batch requires; the dirty set is cleared by the caller after the
// commit.
func (st *kumaState) save(tx *bolt.Tx) error {
	fb, rb := tx.Bucket(bucketKumaFiring), tx.Bucket(bucketKumaResolved)
	for fp := range st.dirty {
		k := []byte(fp)
		if a, ok := st.Firing[fp]; ok {
			v, err := json.Marshal(a)
			if err != nil {
				return err
			}
			if err := fb.Put(k, v); err != nil {
				return err
			}
		} else if err := fb.Delete(k); err != nil {
			return err
		}
		if t, ok := st.Resolved[fp]; ok {
			v, err := json.Marshal(t)
			if err != nil {
				return err
			}
			if err := rb.Put(k, v); err != nil {
				return err
			}
		} else if err := rb.Delete(k); err != nil {
			return err
		}
	}
	v, _ := json.Marshal(kumaLast{st.LastStatus, st.LastMsg})
	return tx.Bucket(bucketKumaState).Put(keyKumaLast, v)
}

var errClosed = errors.New("spool closed")

func u64v(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}
