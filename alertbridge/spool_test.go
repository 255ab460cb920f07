package alertbridge

import (
	"errors"
	"fmt"
	"path/filepath"
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
