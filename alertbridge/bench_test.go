package alertbridge

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

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
