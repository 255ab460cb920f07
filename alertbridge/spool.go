package alertbridge

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Targets a record can be queued for.
const (
	TargetNtfy = "ntfy"
	TargetKuma = "kuma"
)

var (
	bucketKeys      = []byte("keys") // dedup key -> accepted time (unix nanos)
	bucketKumaState = []byte("kuma.state")
	keyKumaFiring   = []byte("firing")
)

func queueBucket(target string) []byte { return []byte("q." + target) }

// Spool is the durable queue between intake and delivery: an embedded
// bbolt database whose every commit is fsync'd. One bucket per target holds
// records under increasing sequence numbers, so each target drains in
// arrival order; a key bucket remembers which alerts were seen.
type Spool struct {
	db      *bolt.DB
	targets []string
}

// OpenSpool opens (creating it and its directory if missing) the spool at
// path, with queues for the given targets. batchDelay bounds how long an
// intake commit waits to share its fsync with concurrent ones.
func OpenSpool(path string, targets []string, batchDelay time.Duration) (*Spool, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	if batchDelay > 0 {
		db.MaxBatchDelay = batchDelay
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range [][]byte{bucketKeys, bucketKumaState, queueBucket(TargetNtfy), queueBucket(TargetKuma)} {
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
	return &Spool{db: db, targets: targets}, nil
}

// Close closes the database.
func (s *Spool) Close() error { return s.db.Close() }

// Entry is an intake item: a record and the targets it must reach. NoDedup
// items (the Watchdog heartbeat, which Alertmanager repeats unchanged on
// purpose) skip the key check.
type Entry struct {
	Record  Record
	Targets []string
	NoDedup bool
}

// Add writes entries in one fsync'd transaction (shared with concurrent
// callers through bbolt's Batch) and reports for each whether it was new.
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
	err := s.db.Batch(func(tx *bolt.Tx) error {
		// Batch may run this function again alone after a failure of the
		// shared transaction: compute everything from scratch.
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
// fsync'd transaction, optionally together with extra writes.
func (s *Spool) Done(target string, seqs []uint64, extra func(tx *bolt.Tx) error) error {
	return s.db.Update(func(tx *bolt.Tx) error {
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
// target's queue (zero when empty).
func (s *Spool) Stats(target string) (depth int, oldest time.Time, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(queueBucket(target))
		depth = b.Stats().KeyN
		_, v := b.Cursor().First()
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

// kumaState is what the Kuma worker keeps between pushes.
type kumaState struct {
	// Firing maps fingerprint to the alert currently counted as an outage.
	Firing map[string]kumaAlert `json:"firing"`
	// Resolved maps fingerprint to the startsAt of its latest resolution,
	// so a late firing notification of the same episode is ignored.
	Resolved map[string]time.Time `json:"resolved"`
	// Last is the status and message of the last successful push.
	LastStatus string `json:"lastStatus"`
	LastMsg    string `json:"lastMsg"`
}

type kumaAlert struct {
	Name     string    `json:"name"`
	StartsAt time.Time `json:"startsAt"`
}

func (s *Spool) loadKumaState() (kumaState, error) {
	st := kumaState{Firing: map[string]kumaAlert{}, Resolved: map[string]time.Time{}}
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketKumaState).Get(keyKumaFiring); v != nil {
			if err := json.Unmarshal(v, &st); err != nil {
				return err
			}
		}
		return nil
	})
	if st.Firing == nil {
		st.Firing = map[string]kumaAlert{}
	}
	if st.Resolved == nil {
		st.Resolved = map[string]time.Time{}
	}
	return st, err
}

func saveKumaState(tx *bolt.Tx, st kumaState) error {
	b, err := json.Marshal(st)
	if err != nil {
		return err
	}
	return tx.Bucket(bucketKumaState).Put(keyKumaFiring, b)
}

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}
