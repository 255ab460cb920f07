package alertbridge

import (
	"fmt"
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
