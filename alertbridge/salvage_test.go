package alertbridge

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestSalvageRenumbersAttempted: salvage renumbers the ntfy queue 1..n, so
// the marks of the pages whose publish had started (ntfy.attempted, keyed
// by sequence number) must follow their records to the new numbers: kept
// verbatim, the page in flight loses its possible-repeat marking and an
// unrelated page gains it. A mark whose record was not salvaged goes.
func TestSalvageRenumbersAttempted(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	damaged := filepath.Join(dir, "spool.db.corrupt-1")
	s, _, err := OpenSpool(damaged, []string{TargetNtfy})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 7; i++ {
		r := Record{Key: fmt.Sprintf("k%d", i), Accepted: time.Now(), Status: "firing", Labels: map[string]string{"alertname": "A"}}
		if _, err := s.Add([]Entry{{Record: r, Targets: []string{TargetNtfy}}}); err != nil {
			t.Fatal(err)
		}
	}
	// Delivered: 1 and 2. In flight: 4, 5 (whose record is then damaged)
	// and 7. A stray mark 99 has no record.
	if err := s.Done(TargetNtfy, []uint64{1, 2}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.markAttempted([]uint64{4, 5, 7}); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(queueBucket(TargetNtfy)).Put(u64(5), []byte("\x00damaged")); err != nil {
			return err
		}
		return tx.Bucket(bucketNtfyAttempted).Put(u64(99), nil)
	}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	fresh := filepath.Join(dir, "spool.db")
	db, problem, err := openAndCheck(fresh)
	if err != nil || problem != "" {
		t.Fatalf("fresh spool: %v %s", err, problem)
	}
	n := salvage(damaged, db)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if n != 4 {
		t.Fatalf("salvaged %d records, want 4 (k3 k4 k6 k7)", n)
	}
	s, rec, err := OpenSpool(fresh, []string{TargetNtfy})
	if err != nil || rec != nil {
		t.Fatalf("salvaged spool: %v %v", err, rec)
	}
	defer s.Close()
	q, err := s.Peek(TargetNtfy, 10)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	keyOf := map[uint64]string{}
	for _, e := range q {
		seqs = append(seqs, e.Seq)
		keyOf[e.Seq] = e.Record.Key
	}
	if fmt.Sprint(seqs) != "[1 2 3 4]" || keyOf[1] != "k3" || keyOf[2] != "k4" || keyOf[3] != "k6" || keyOf[4] != "k7" {
		t.Fatalf("salvaged queue %v %v, want k3 k4 k6 k7 as 1..4", seqs, keyOf)
	}
	got, err := s.attempted([]uint64{1, 2, 3, 4, 5, 7, 99})
	if err != nil {
		t.Fatal(err)
	}
	var marked []string
	for _, seq := range []uint64{1, 2, 3, 4, 5, 7, 99} {
		if got[seq] {
			marked = append(marked, fmt.Sprintf("%d(%s)", seq, keyOf[seq]))
		}
	}
	if fmt.Sprint(marked) != "[2(k4) 4(k7)]" {
		t.Errorf("possible repeats after salvage: %v, want [2(k4) 4(k7)]: the pages in flight, k4 and k7, under their new numbers", marked)
	}
	// Nothing else is left in the bucket (the stray and the damaged
	// record's marks are gone).
	var keys []uint64
	s.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketNtfyAttempted).ForEach(func(k, _ []byte) error {
			keys = append(keys, u64v(k))
			return nil
		})
	})
	if fmt.Sprint(keys) != "[2 4]" {
		t.Errorf("ntfy.attempted holds %v after salvage, want [2 4]", keys)
	}
}
