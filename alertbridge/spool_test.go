package alertbridge

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestSpoolGroupCommit writes from many goroutines at once: every write is
// acknowledged exactly once, queues stay contiguous and in order, and a
// write after Close fails cleanly instead of hanging.
func TestSpoolGroupCommit(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "spool.db")
	s, _, err := OpenSpool(path, []string{TargetNtfy})
	if err != nil {
		t.Fatal(err)
	}
	const writers, each = 16, 50
	var wg sync.WaitGroup
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				r := Record{Key: fmt.Sprintf("fp%d-%d|firing|x", w, i), Accepted: time.Now(), Status: "firing", Fingerprint: "x", Labels: map[string]string{"alertname": "A"}}
				fresh, err := s.Add([]Entry{{Record: r, Targets: []string{TargetNtfy}}, {Record: r, Targets: []string{TargetNtfy}}})
				if err != nil {
					t.Error(err)
					return
				}
				if !fresh[0] || fresh[1] {
					t.Errorf("fresh = %v, want the second copy a duplicate", fresh)
				}
			}
		})
	}
	wg.Wait()
	depth, oldest, err := s.Stats(TargetNtfy)
	if err != nil || depth != writers*each || oldest.IsZero() {
		t.Fatalf("stats: depth %d oldest %v err %v", depth, oldest, err)
	}
	items, err := s.Peek(TargetNtfy, 10)
	if err != nil || len(items) != 10 {
		t.Fatalf("peek: %d %v", len(items), err)
	}
	for i := 1; i < len(items); i++ {
		if items[i].Seq != items[i-1].Seq+1 {
			t.Fatalf("queue not contiguous: %d after %d", items[i].Seq, items[i-1].Seq)
		}
	}
	if err := s.Done(TargetNtfy, []uint64{items[0].Seq, items[1].Seq}, nil); err != nil {
		t.Fatal(err)
	}
	if depth, _, _ := s.Stats(TargetNtfy); depth != writers*each-2 {
		t.Fatalf("depth after Done = %d", depth)
	}
	if n, err := s.ForgetKeys(time.Now().Add(time.Hour)); err != nil || n != writers*each {
		t.Fatalf("ForgetKeys = %d, %v", n, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add([]Entry{{Record: Record{Key: "late"}}}); !errors.Is(err, errClosed) {
		t.Fatalf("Add after Close: %v", err)
	}
	// Reopened, the records are still there.
	s2, _, err := OpenSpool(path, []string{TargetNtfy})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if depth, _, _ := s2.Stats(TargetNtfy); depth != writers*each-2 {
		t.Fatalf("depth after reopen = %d", depth)
	}
}

// TestSpoolCompaction: a spool that is mostly free after a drained outage
// is rewritten small, with what was still queued intact.
func TestSpoolCompaction(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "spool.db")
	s, _, err := OpenSpool(path, []string{TargetNtfy})
	if err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 2000)
	var seqs []uint64
	for i := 0; i < 3000; i++ {
		r := Record{Key: fmt.Sprintf("k%05d", i), Accepted: time.Now(), Status: "firing", Labels: map[string]string{"alertname": big}}
		if _, err := s.Add([]Entry{{Record: r, Targets: []string{TargetNtfy}}}); err != nil {
			t.Fatal(err)
		}
	}
	items, _ := s.Peek(TargetNtfy, 3000)
	for _, it := range items[:2990] {
		seqs = append(seqs, it.Seq)
	}
	if err := s.Done(TargetNtfy, seqs, nil); err != nil {
		t.Fatal(err)
	}
	s.ForgetKeys(time.Now().Add(time.Hour))
	before := s.FileSize()
	db := s.db
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.quit)
	<-s.stopped
	db2, err := compactIfMostlyFree(path, db, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	db2.Close()
	fi, _ := os.Stat(path)
	if fi.Size()*2 > before { // bbolt keeps up to allocSize (4 MiB) ahead of the data
		t.Errorf("file %d bytes after compaction, was %d", fi.Size(), before)
	}
	s2, _, err := OpenSpool(path, []string{TargetNtfy})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if d, _, _ := s2.Stats(TargetNtfy); d != 10 {
		t.Errorf("depth %d after compaction, want 10", d)
	}
	if items, _ := s2.Peek(TargetNtfy, 20); len(items) != 10 || items[0].Record.Key != "k02990" {
		t.Errorf("queue after compaction: %d items", len(items))
	}
	t.Logf("compacted %d -> %d bytes", before, fi.Size())
}
