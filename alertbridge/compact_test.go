package alertbridge

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// fillAndDrain queues n records of about 2 KB for ntfy and removes all
// but those keep says to keep, so most of the written pages become free.
func fillAndDrain(t *testing.T, s *Spool, n int, keep func(i int) bool) []string {
	t.Helper()
	big := strings.Repeat("x", 2000)
	for i := 0; i < n; i += 100 {
		var es []Entry
		for j := i; j < i+100 && j < n; j++ {
			es = append(es, Entry{Record: Record{Key: fmt.Sprintf("k%06d", j), Accepted: time.Now(), Status: "firing",
				Labels: map[string]string{"alertname": big}}, Targets: []string{TargetNtfy}})
		}
		if _, err := s.Add(es); err != nil {
			t.Fatal(err)
		}
	}
	items, err := s.Peek(TargetNtfy, n)
	if err != nil || len(items) != n {
		t.Fatalf("peek %d items: %d, %v", n, len(items), err)
	}
	var done []uint64
	var kept []string
	for i, it := range items {
		if keep(i) {
			kept = append(kept, it.Record.Key)
		} else {
			done = append(done, it.Seq)
		}
	}
	if err := s.Done(TargetNtfy, done, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ForgetKeys(time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return kept
}

func queuedKeys(t *testing.T, s *Spool) []string {
	t.Helper()
	items, err := s.Peek(TargetNtfy, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, it := range items {
		keys = append(keys, it.Record.Key)
	}
	return keys
}

// TestSpoolCompactsWhileOpen: the open spool, mostly free after a burst
// drained, is rewritten small without closing it; what is still queued
// stays in order, new writes continue the sequence, and all of it is there
// after a reopen. Without running compaction the file keeps its size.
func TestSpoolCompactsWhileOpen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "spool.db")
	s, _, err := OpenSpool(path, []string{TargetNtfy})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	kept := fillAndDrain(t, s, 12000, func(i int) bool { return i%1000 == 7 })
	before := s.FileSize()
	// Below the minimum size nothing happens.
	if res, err := s.Compact(CompactPolicy{MinBytes: before + 1, MaxLive: 1 << 30}); err != nil || res.Compacted {
		t.Fatalf("compacted below the minimum size: %+v %v", res, err)
	}
	res, err := s.Compact(CompactPolicy{MinBytes: 1 << 20, MaxLive: 1 << 30})
	if err != nil || !res.Compacted {
		t.Fatalf("not compacted: %+v %v", res, err)
	}
	after := s.FileSize()
	if after*2 > before || after != res.After {
		t.Errorf("file %d bytes after compaction, was %d (result %+v)", after, before, res)
	}
	if n, d := s.Compactions(); n != 1 || d <= 0 {
		t.Errorf("Compactions() = %d, %s", n, d)
	}
	// Compacted once, it is not compacted again.
	if res, err := s.Compact(CompactPolicy{MinBytes: 1, MaxLive: 1 << 30}); err != nil || res.Compacted {
		t.Errorf("compacted again: %+v %v", res, err)
	}
	if got := queuedKeys(t, s); fmt.Sprint(got) != fmt.Sprint(kept) {
		t.Fatalf("queued after compaction: %v, want %v", got, kept)
	}
	if d, _, _ := s.Stats(TargetNtfy); d != len(kept) {
		t.Errorf("depth %d, want %d", d, len(kept))
	}
	if _, err := s.Add([]Entry{{Record: Record{Key: "after"}, Targets: []string{TargetNtfy}}}); err != nil {
		t.Fatal(err)
	}
	items, _ := s.Peek(TargetNtfy, 100)
	if last := items[len(items)-1]; last.Record.Key != "after" || last.Seq != 12001 {
		t.Errorf("write after compaction: seq %d key %q, want 12001 \"after\"", last.Seq, last.Record.Key)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, _, err := OpenSpool(path, []string{TargetNtfy})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if got := queuedKeys(t, s2); fmt.Sprint(got) != fmt.Sprint(append(kept, "after")) {
		t.Errorf("after reopen: %v", got)
	}
	t.Logf("compacted %d -> %d bytes in %s", before, after, res.Duration)
}

// TestSpoolCompactionRacesIntake compacts over and over while writers add
// records, a remover acknowledges some and readers peek: every write that
// was acknowledged is there at the end, and after a reopen. Run with -race.
func TestSpoolCompactionRacesIntake(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "spool.db")
	s, _, err := OpenSpool(path, []string{TargetNtfy})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	const writers, each = 8, 150
	pad := strings.Repeat("p", 3000)
	var (
		wg        sync.WaitGroup
		stop      atomic.Bool
		compacted atomic.Int64
		removed   sync.Map // key -> true: acknowledged as delivered
	)
	for w := 0; w < writers; w++ {
		wg.Go(func() {
			for i := 0; i < each; i++ {
				r := Record{Key: fmt.Sprintf("w%d-%04d", w, i), Accepted: time.Now(), Status: "firing", Labels: map[string]string{"pad": pad}}
				if _, err := s.Add([]Entry{{Record: r, Targets: []string{TargetNtfy}}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	var side sync.WaitGroup
	side.Go(func() { // acknowledges deliveries: the even records of each writer
		for !stop.Load() {
			items, err := s.Peek(TargetNtfy, 200)
			if err != nil {
				t.Error(err)
				return
			}
			var seqs []uint64
			var keys []string
			for _, it := range items {
				if n, _ := strconv.Atoi(it.Record.Key[strings.IndexByte(it.Record.Key, '-')+1:]); n%2 == 0 {
					seqs = append(seqs, it.Seq)
					keys = append(keys, it.Record.Key)
				}
			}
			if err := s.Done(TargetNtfy, seqs, nil); err != nil {
				t.Error(err)
				return
			}
			for _, k := range keys {
				removed.Store(k, true)
			}
		}
	})
	side.Go(func() { // compacts over and over, free pages or not
		for !stop.Load() {
			res, err := s.Compact(CompactPolicy{MinBytes: 1, MaxLive: 1 << 30, MinFreeShare: -1})
			if err != nil {
				t.Error(err)
				return
			}
			if res.Compacted {
				compacted.Add(1)
			}
			s.Stats(TargetNtfy)
			s.FileSize()
		}
	})
	wg.Wait()
	// A last Done and a last compaction after every write.
	stop.Store(true)
	side.Wait()
	if _, err := s.Compact(CompactPolicy{MinBytes: 1, MaxLive: 1 << 30, MinFreeShare: -1}); err != nil {
		t.Fatal(err)
	}
	check := func(s *Spool, when string) {
		got := map[string]bool{}
		for _, k := range queuedKeys(t, s) {
			if got[k] {
				t.Errorf("%s: %s queued twice", when, k)
			}
			got[k] = true
		}
		for w := 0; w < writers; w++ {
			for i := 0; i < each; i++ {
				k := fmt.Sprintf("w%d-%04d", w, i)
				_, gone := removed.Load(k)
				if !got[k] && !gone {
					t.Fatalf("%s: acknowledged record %s lost", when, k)
				}
				if got[k] && gone {
					t.Fatalf("%s: delivered record %s back in the queue", when, k)
				}
			}
		}
		if d, _, _ := s.Stats(TargetNtfy); d != len(got) {
			t.Errorf("%s: depth %d, %d queued", when, d, len(got))
		}
	}
	check(s, "open")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, _, err := OpenSpool(path, []string{TargetNtfy})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	check(s2, "reopened")
	if compacted.Load() == 0 {
		t.Error("no compaction overlapped the writes")
	}
	t.Logf("%d compactions during the writes", compacted.Load())
}

// compactChildEnv makes the test binary the child of
// TestSpoolCompactionKill9: it writes, acknowledges and compacts in a loop
// and reports on stdout every write that returned.
const compactChildEnv = "ALERTBRIDGE_COMPACT_CHILD"

func TestMain(m *testing.M) {
	if path := os.Getenv(compactChildEnv); path != "" {
		compactChild(path)
		return
	}
	os.Exit(m.Run())
}

func compactChild(path string) {
	s, _, err := OpenSpool(path, []string{TargetNtfy})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	out := bufio.NewWriter(os.Stdout)
	say := func(f string, a ...any) {
		fmt.Fprintf(out, f+"\n", a...)
		out.Flush()
	}
	pad := strings.Repeat("c", 1500)
	add := func(prefix string, n int) {
		var es []Entry
		for j := 0; j < n; j++ {
			es = append(es, Entry{Record: Record{Key: fmt.Sprintf("%s-%d", prefix, j), Accepted: time.Now(), Labels: map[string]string{"pad": pad}},
				Targets: []string{TargetNtfy}})
		}
		if _, err := s.Add(es); err != nil {
			say("error %v", err)
			os.Exit(1)
		}
	}
	// Each cycle: a small batch that is never removed ("keep"), then a
	// burst that is delivered (removed) at once, which leaves the file
	// mostly free, then a compaction.
	for c := 0; ; c++ {
		add(fmt.Sprintf("keep%d", c), 5)
		say("acked %d", c) // every record of keep<c> is durable
		for b := 0; b < 10; b++ {
			add(fmt.Sprintf("burst%d.%d", c, b), 50)
		}
		items, _ := s.Peek(TargetNtfy, 1<<20)
		var seqs []uint64
		for _, it := range items {
			if strings.HasPrefix(it.Record.Key, "burst") {
				seqs = append(seqs, it.Seq)
			}
		}
		s.Done(TargetNtfy, seqs, nil)
		s.ForgetKeys(time.Now().Add(time.Hour))
		say("compacting")
		if res, err := s.Compact(CompactPolicy{MinBytes: 1, MaxLive: 1 << 30}); err != nil {
			say("error %v", err)
			os.Exit(1)
		} else if res.Compacted {
			say("compacted")
		}
	}
}

// TestSpoolCompactionKill9 kills a process with SIGKILL while it writes
// and compacts its spool, at several points: every record whose write was
// acknowledged and that was not removed is in the reopened spool, which
// opens without damage (a compaction's leftover copy is discarded).
func TestSpoolCompactionKill9(t *testing.T) {
	t.Parallel()
	for round := 0; round < 4; round++ {
		path := filepath.Join(t.TempDir(), "spool.db")
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), compactChildEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Kill at a point that differs per round: just as a compaction
		// starts (rounds 0, 2: the kill lands during the copy or the swap)
		// or just after a write (rounds 1, 3), after round+1 compactions.
		guard := time.AfterFunc(2*time.Minute, func() { cmd.Process.Signal(syscall.SIGKILL) })
		acked, compactions, killed := -1, 0, false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			f := strings.Fields(sc.Text())
			switch f[0] {
			case "acked":
				acked, _ = strconv.Atoi(f[1])
			case "compacted":
				compactions++
			case "error":
				t.Errorf("child: %s", sc.Text())
			}
			if !killed && compactions > round && (f[0] == "compacting") == (round%2 == 0) && (f[0] == "compacting" || f[0] == "acked") {
				cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		}
		guard.Stop()
		if !killed {
			t.Fatalf("round %d: the child stopped after %d compactions, before the kill", round, compactions)
		}
		cmd.Wait()
		s, rec, err := OpenSpool(path, []string{TargetNtfy})
		if err != nil || rec != nil {
			t.Fatalf("round %d: reopen after kill -9: %v, recovery %+v", round, err, rec)
		}
		got := map[string]bool{}
		for _, k := range queuedKeys(t, s) {
			got[k] = true
		}
		for c := 0; c <= acked; c++ {
			for j := 0; j < 5; j++ {
				if k := fmt.Sprintf("keep%d-%d", c, j); !got[k] {
					t.Fatalf("round %d: acknowledged record %s lost (acked up to batch %d, %d compactions)", round, k, acked, compactions)
				}
			}
		}
		if _, err := os.Stat(path + ".compact"); !os.IsNotExist(err) {
			t.Errorf("round %d: compaction copy left behind: %v", round, err)
		}
		s.Close()
		t.Logf("round %d: killed after batch %d and %d compactions; %d records queued", round, acked, compactions, len(got))
	}
}

// TestBridgeCompactsSpoolAfterDrain: a running bridge whose spool grew
// with a burst of pages shrinks it once they are delivered, without a
// restart, and the page still pending (its ntfy publish refused all along)
// is delivered after the compaction.
func TestBridgeCompactsSpoolAfterDrain(t *testing.T) {
	t.Parallel()
	ntfy := newNtfy(fakenotify.NtfyOptions{})
	// Pending's page is refused until the end; every page is held back
	// while the burst arrives, so the spool grows as in an outage.
	var refusing, holding atomic.Bool
	refusing.Store(true)
	holding.Store(true)
	ntfy.RefuseWhen(func(r *http.Request) (int, string, bool) {
		return http.StatusServiceUnavailable, "", strings.Contains(r.Header.Get("X-Title"), "Pending") && refusing.Load() || holding.Load()
	})
	ns := newServer(t, ntfy)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = ntfyTo(ns)
		c.Compact = CompactPolicy{MinBytes: 1 << 20}
		c.CompactInterval = 20 * time.Millisecond
	})
	tb.mustPost(t, mkPayload(mkAlert("Pending", "pop-x", "critical", "firing", t0)))
	// An outage: 800 groups fire, then resolve, while ntfy holds every
	// page back; then ntfy takes them all.
	long := strings.Repeat("d", 1000)
	const groups = 800
	for _, status := range []string{"firing", "resolved"} {
		for g := 0; g < groups; g++ {
			var as []Alert
			for i := 0; i < 10; i++ {
				as = append(as, mkAlert(fmt.Sprintf("Burst%04d", g), fmt.Sprintf("pop%02d", i), "warning", status, t0))
			}
			var p Payload
			json.Unmarshal(mkPayload(as...), &p)
			p.CommonAnnotations = map[string]string{"summary": long, "description": long} // pages of ~2.5 KB
			body, _ := json.Marshal(p)
			tb.mustPost(t, body)
		}
	}
	peak := tb.spool.FileSize()
	tb.spool.dbMu.RLock()
	size, live, free := spaceOf3(tb.spool.path, tb.spool.db)
	tb.spool.dbMu.RUnlock()
	t.Logf("after the burst: file %d bytes, %d live, %d free", size, live, free)
	holding.Store(false)
	waitFor(t, 60*time.Second, "the burst delivered", func() bool { return len(ntfy.Messages()) == 2*groups })
	// The delivered pages and the resolved groups' state are most of the
	// data; what stays is the dedup keys. Compaction runs once half the
	// written pages are free, mid-drain or after it; either way the file
	// loses more than a MiB (bbolt keeps up to 4 MiB ahead of its data).
	waitFor(t, 30*time.Second, "the file shrunk", func() bool { return tb.spool.FileSize() < peak-1<<20 })
	if n := tb.counter("clavis_alertbridge_spool_compactions_total"); n < 1 {
		t.Errorf("compactions_total %v", n)
	}
	if size := tb.counter("clavis_alertbridge_spool_file_bytes"); size != float64(tb.spool.FileSize()) {
		t.Errorf("spool_file_bytes %v, file %d bytes", size, tb.spool.FileSize())
	}
	if d := tb.counter("clavis_alertbridge_spool_last_compaction_duration_seconds"); d <= 0 {
		t.Errorf("last compaction duration %v", d)
	}
	// Delivered pages leave the spool in batched commits; the refused one
	// stays.
	waitFor(t, 30*time.Second, "only the pending page left in the spool", func() bool {
		return tb.counter("clavis_alertbridge_spool_depth", "target", "ntfy") == 1
	})
	refusing.Store(false)
	waitFor(t, 10*time.Second, "the pending page delivered", func() bool {
		for _, m := range ntfy.Messages() {
			if strings.Contains(m.Title, "Pending") {
				return true
			}
		}
		return false
	})
	tb.waitDrained(t, 10*time.Second)
	t.Logf("file %d bytes at the peak, %d after the drain", peak, tb.spool.FileSize())
}
