package alertbridge

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// BenchmarkWebhookIntake posts single-alert payloads from parallel senders
// to an in-process bridge with ntfy and Kuma targets (fake, accepting).
// Each alert is new, so each is a durable (batched) spool write.
// bench/alertbridge.sh measures the built binary over loopback.
func BenchmarkWebhookIntake(b *testing.B) {
	for _, targets := range []bool{false, true} {
		b.Run(fmt.Sprintf("targets=%v", targets), func(b *testing.B) {
			t := &testing.T{}
			_ = t
			ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{})
			kuma := fakenotify.NewKuma("tok")
			fs, err := fakenotify.StartServer(fakenotify.Mux(ntfy, kuma), "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			defer fs.Close()
			cfg := Config{SpoolPath: b.TempDir() + "/spool.db"}
			if targets {
				cfg.Ntfy = &NtfyConfig{URL: fs.URL() + "/bench"}
				cfg.Kuma = &KumaConfig{PushURL: fs.URL() + "/api/push/tok"}
			}
			br, err := New(cfg)
			if err != nil {
				b.Fatal(err)
			}
			defer br.Close()
			var n atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					p, err := DecodePayload(mkPayload(mkAlert("PopDown", fmt.Sprintf("p%d", i), "critical", "firing", t0)))
					if err != nil {
						b.Error(err)
						return
					}
					recs := p.Records(time.Now())
					if _, err := br.spool.Add([]Entry{{Record: recs[0], Targets: br.targets}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "alerts/s")
		})
	}
}

// BenchmarkSpoolCompact measures how long a running compaction holds the
// spool's writes at the default live-data bound (32 MiB of queued records
// left after a drain): the bound stated at CompactPolicy.
//
//	nice -n 19 go test -run '^$' -bench SpoolCompact -benchtime 3x ./alertbridge/
func BenchmarkSpoolCompact(b *testing.B) {
	pad := strings.Repeat("x", 1000)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		path := filepath.Join(b.TempDir(), "spool.db")
		s, _, err := OpenSpool(path, []string{TargetNtfy})
		if err != nil {
			b.Fatal(err)
		}
		// ~80 MB of records; 60 % delivered leaves ~32 MiB live, 60 % free.
		for j := 0; j < 80; j++ {
			var es []Entry
			for i := 0; i < 1000; i++ {
				es = append(es, Entry{Record: Record{Key: fmt.Sprint(j, "-", i), Accepted: time.Now(), Labels: map[string]string{"a": pad}}, Targets: []string{TargetNtfy}})
			}
			if _, err := s.Add(es); err != nil {
				b.Fatal(err)
			}
		}
		items, _ := s.Peek(TargetNtfy, 1<<20)
		var seqs []uint64
		for _, it := range items[:len(items)*3/5] { // delivered from the head
			seqs = append(seqs, it.Seq)
		}
		s.Done(TargetNtfy, seqs, nil)
		s.ForgetKeys(time.Now().Add(time.Hour))
		b.StartTimer()
		res, err := s.Compact(CompactPolicy{MinBytes: 1, MaxLive: 1 << 30})
		b.StopTimer()
		if err != nil || !res.Compacted {
			b.Fatalf("%+v %v", res, err)
		}
		b.ReportMetric(float64(res.Live)/(1<<20), "live-MiB")
		b.ReportMetric(res.Duration.Seconds(), "pause-s")
		s.Close()
	}
}

// BenchmarkDurableWriteCeiling measures what 16 looping writers, each
// waiting for its write to be durable (as Alertmanager's senders wait for
// the 2xx), can reach on this disk, with one-alert-sized records:
//
//   - spool: our Spool.Add (group commit, bbolt, ntfy + Kuma targets);
//   - bolt-batch: bbolt's own group commit (DB.Batch), one Put per write;
//   - wal-floor: the best any durable store could do: the batch appended
//     to a file and made durable by one fdatasync (bbolt needs two per
//     commit: data pages, then the meta page).
//
// By Little's law the intake rate is writers / latency: 5,000 alerts/s
// from 16 senders needs a mean of 3.2 ms per request, HTTP included.
//
//	nice -n 19 go test -run '^$' -bench DurableWriteCeiling -benchtime 5s ./alertbridge/
func BenchmarkDurableWriteCeiling(b *testing.B) {
	const writers = 16
	rec := []byte(strings.Repeat("r", 600)) // a one-alert record's size
	run := func(b *testing.B, write func(i int64) error) {
		var n atomic.Int64
		b.SetParallelism((writers + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := write(n.Add(1)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	}
	b.Run("spool", func(b *testing.B) {
		s, _, err := OpenSpool(filepath.Join(b.TempDir(), "spool.db"), []string{TargetNtfy, TargetKuma})
		if err != nil {
			b.Fatal(err)
		}
		defer s.Close()
		p, err := DecodePayload(mkPayload(mkAlert("PopDown", "p", "critical", "firing", t0)))
		if err != nil {
			b.Fatal(err)
		}
		proto := p.Records(time.Now())[0]
		run(b, func(i int64) error {
			r := proto
			r.Key = fmt.Sprintf("%s-%d", proto.Key, i)
			_, err := s.Add([]Entry{{Record: r, Targets: []string{TargetNtfy, TargetKuma}}})
			return err
		})
	})
	b.Run("bolt-batch", func(b *testing.B) {
		db, err := bolt.Open(filepath.Join(b.TempDir(), "b.db"), 0o600, nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		bucket := []byte("q")
		run(b, func(i int64) error {
			return db.Batch(func(tx *bolt.Tx) error {
				q, err := tx.CreateBucketIfNotExists(bucket)
				if err != nil {
					return err
				}
				return q.Put(binary.BigEndian.AppendUint64(nil, uint64(i)), rec)
			})
		})
	})
	b.Run("wal-floor", func(b *testing.B) {
		f, err := os.OpenFile(filepath.Join(b.TempDir(), "wal"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		reqs := make(chan chan error, writers)
		quit := make(chan struct{})
		defer close(quit)
		go func() {
			buf := make([]byte, 0, writers*len(rec))
			for {
				var batch []chan error
				select {
				case r := <-reqs:
					batch = append(batch, r)
				case <-quit:
					return
				}
			more:
				for {
					select {
					case r := <-reqs:
						batch = append(batch, r)
					default:
						break more
					}
				}
				buf = buf[:0]
				for range batch {
					buf = append(buf, rec...)
				}
				_, err := f.Write(buf)
				if err == nil {
					err = syscall.Fdatasync(int(f.Fd()))
				}
				for _, r := range batch {
					r <- err
				}
			}
		}()
		run(b, func(int64) error {
			done := make(chan error, 1)
			reqs <- done
			return <-done
		})
	})
}

// BenchmarkNtfyDrain measures how fast the ntfy dispatcher empties a spool
// of b.N pages (distinct groups, storm guard off, --ntfy.concurrency 4)
// into an accepting fake ntfy over loopback, with 16 webhook senders
// writing to the spool meanwhile (intake/s is what they reached).
func BenchmarkNtfyDrain(b *testing.B) {
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{})
	fs, err := fakenotify.StartServer(ntfy, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer fs.Close()
	var got atomic.Int64
	ntfy.OnMessage(func(m fakenotify.Message) {
		if strings.Contains(m.Title, "PopDown") {
			got.Add(1)
		}
	})
	br, err := New(Config{SpoolPath: b.TempDir() + "/spool.db",
		Ntfy: &NtfyConfig{URL: fs.URL() + "/bench", PerMinute: 1 << 30}})
	if err != nil {
		b.Fatal(err)
	}
	defer br.Close()
	for i := 0; i < b.N; i++ {
		p, err := DecodePayload(mkPayload(mkAlert("PopDown", fmt.Sprintf("p%d", i), "critical", "firing", t0)))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := br.accept(p, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	stop := make(chan struct{})
	var intake atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 16; w++ {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				p, _ := DecodePayload(mkPayload(mkAlert("Intake", fmt.Sprintf("w%d-%d", w, i), "critical", "resolved", t0)))
				if _, err := br.accept(p, time.Now()); err != nil {
					b.Error(err)
					return
				}
				intake.Add(1)
			}
		})
	}
	b.ResetTimer()
	start := time.Now()
	go func() { br.Run(ctx); close(done) }()
	for got.Load() < int64(b.N) {
		time.Sleep(time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	close(stop)
	wg.Wait()
	cancel()
	<-done
	b.ReportMetric(float64(b.N)/el.Seconds(), "pages/s")
	b.ReportMetric(float64(intake.Load())/el.Seconds(), "intake/s")
}

// BenchmarkDecodePayload decodes and validates a group of 5,000 alerts
// (about 4 MB), the size --webhook.max-body-bytes is set for.
func BenchmarkDecodePayload(b *testing.B) {
	alerts := make([]Alert, 5000)
	for i := range alerts {
		alerts[i] = mkAlert("PopDown", fmt.Sprintf("pop%04d", i), "critical", "firing", t0)
		alerts[i].Annotations["description"] = strings.Repeat("d", 200)
	}
	body := mkPayload(alerts...)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		if _, err := DecodePayload(body); err != nil {
			b.Fatal(err)
		}
	}
}
