package alertbridge

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
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
)

func queueBucket(target string) []byte { return []byte("q." + target) }

// Spool is the durable queue between intake and delivery: an embedded
// bbolt database whose every commit is fsync'd. One bucket per target holds
// records under increasing sequence numbers, so each target drains in
// arrival order; a key bucket remembers which alerts were seen.
type Spool struct {
	db      *bolt.DB
	targets []string

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
}

// maxBatch bounds the writes of one commit.
const maxBatch = 2048

// OpenSpool opens (creating it and its directory if missing) the spool at
// path, with queues for the given targets.
func OpenSpool(path string, targets []string) (*Spool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{
		Timeout: 5 * time.Second,
		// Not writing the freelist makes every commit smaller (it is
		// rebuilt by a scan on open); a large initial mmap avoids remaps,
		// which stall every transaction while the spool grows.
		NoFreelistSync:  true,
		FreelistType:    bolt.FreelistMapType,
		InitialMmapSize: 1 << 30,
	})
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketKumaState, bucketKumaFiring, bucketKumaResolved, queueBucket(TargetNtfy), queueBucket(TargetKuma)} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	s := &Spool{db: db, targets: targets, reqs: make(chan commitReq, maxBatch),
		quit: make(chan struct{}), stopped: make(chan struct{})}
	go s.committer()
	return s, nil
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
	s.reqs <- commitReq{fn, done}
	s.mu.RUnlock()
	return <-done
}

func (s *Spool) committer() {
	defer close(s.stopped)
	for {
		var first commitReq
		select {
		case first = <-s.reqs:
		case <-s.quit:
			// No new requests can arrive (closed is set): commit the rest.
			for {
				select {
				case r := <-s.reqs:
					s.run(s.gather(r))
				default:
					return
				}
			}
		}
		s.run(s.gather(first))
	}
}

func (s *Spool) gather(first commitReq) []commitReq {
	batch := []commitReq{first}
	for len(batch) < maxBatch {
		select {
		case r := <-s.reqs:
			batch = append(batch, r)
		default:
			return batch
		}
	}
	return batch
}

func (s *Spool) run(batch []commitReq) {
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
	err := s.commit(func(tx *bolt.Tx) error {
		// This may run again alone after a failure of the shared
		// transaction: compute everything from scratch.
		keys := tx.Bucket(bucketKeys)
		for i, e := range entries {
			fresh[i] = false
			k := []byte(e.Record.Key)
			if !e.NoDedup {
				if keys.Get(k) != nil {
					continue
				}
				if err := keys.Put(k, u64(uint64(e.Record.Accepted.UnixNano()))); err != nil {
					return err
				}
			}
			fresh[i] = true
			for _, t := range e.Targets {
				q := tx.Bucket(queueBucket(t))
				seq, err := q.NextSequence()
				if err != nil {
					return err
				}
				if err := q.Put(u64(seq), payloads[i]); err != nil {
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

// Peek returns up to n records at the head of target's queue, oldest first.
// A record that cannot be decoded (should never happen) is returned with a
// zero Record and Key "" so the caller can drop it.
func (s *Spool) Peek(target string, n int) ([]Queued, error) {
	var out []Queued
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(queueBucket(target)).Cursor()
		for k, v := c.First(); k != nil && len(out) < n; k, v = c.Next() {
			q := Queued{Seq: binary.BigEndian.Uint64(k)}
			if err := json.Unmarshal(v, &q.Record); err != nil {
				q.Record = Record{}
			}
			out = append(out, q)
		}
		return nil
	})
	return out, err
}

// Done removes delivered (or dropped) records from target's queue, in one
// fsync'd transaction (shared with concurrent intake), optionally together
// with extra writes. extra must be idempotent: it may run twice.
func (s *Spool) Done(target string, seqs []uint64, extra func(tx *bolt.Tx) error) error {
	return s.commit(func(tx *bolt.Tx) error {
		q := tx.Bucket(queueBucket(target))
		for _, seq := range seqs {
			if err := q.Delete(u64(seq)); err != nil {
				return err
			}
		}
		if extra != nil {
			return extra(tx)
		}
		return nil
	})
}

// Stats returns the depth and the accept time of the oldest record of
// target's queue (zero when empty). Records are appended with increasing
// sequence numbers and removed only from the head, so the queue is
// contiguous and its depth is last-first+1: no scan.
func (s *Spool) Stats(target string) (depth int, oldest time.Time, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(queueBucket(target)).Cursor()
		k, v := c.First()
		if k != nil {
			last, _ := c.Last()
			depth = int(binary.BigEndian.Uint64(last) - binary.BigEndian.Uint64(k) + 1)
		}
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

// ForgetKeys deletes dedup keys accepted before cutoff, so the key bucket
// does not grow forever. A firing alert still active after that is sent
// once more when Alertmanager repeats it: a reminder, never a loss.
func (s *Spool) ForgetKeys(cutoff time.Time) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
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
		return nil
	})
	return n, err
}

// kumaState is what the Kuma worker keeps between pushes. It is saved
// incrementally: only the fingerprints touched by a batch are written.
type kumaState struct {
	// Firing maps fingerprint to the alert currently counted as an outage.
	Firing map[string]kumaAlert
	// Resolved maps fingerprint to the startsAt of its latest resolution,
	// so a late firing notification of the same episode is ignored.
	Resolved map[string]time.Time
	// LastStatus and LastMsg are what the last successful push said.
	LastStatus string
	LastMsg    string

	dirty map[string]bool
	names map[string]int
}

type kumaAlert struct {
	Name     string    `json:"name"`
	StartsAt time.Time `json:"startsAt"`
}

type kumaLast struct {
	Status string `json:"status"`
	Msg    string `json:"msg"`
}

func newKumaState() *kumaState {
	return &kumaState{Firing: map[string]kumaAlert{}, Resolved: map[string]time.Time{}, dirty: map[string]bool{}, names: map[string]int{}}
}

func (s *Spool) loadKumaState() (*kumaState, error) {
	st := newKumaState()
	err := s.db.View(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketKumaFiring).ForEach(func(k, v []byte) error {
			var a kumaAlert
			if json.Unmarshal(v, &a) == nil {
				st.setFiring(string(k), a)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := tx.Bucket(bucketKumaResolved).ForEach(func(k, v []byte) error {
			if t, err := time.Parse(time.RFC3339Nano, string(v)); err == nil {
				st.Resolved[string(k)] = t
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
			if err := rb.Put(k, []byte(t.UTC().Format(time.RFC3339Nano))); err != nil {
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

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}
