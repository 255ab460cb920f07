package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// TestRegionOutageIsOnePage: 20 POPs of one region go down at once (and one
// POP elsewhere). The repository's alertmanager.yml, in the real
// Alertmanager (Debian's 0.25 and upstream 0.35), groups PopDown by region,
// and alertbridge turns that group into ONE ntfy message,
// "[FIRING:20] PopDown eu-west", listing the 20 POPs; when they come back,
// one "[RESOLVED:20] PopDown eu-west" lists them again. No per-POP page
// reaches the phone. The other region's POP is a group of its own.
//
// The alerts are posted to Alertmanager's API as Prometheus would (the
// whole chain from the simulator is bench/fleet.sh's storm phase); the
// config's routing and timing are as shipped, so this takes the critical
// route's group_wait (10 s) plus a group_interval (1 m) for the resolution.
func TestRegionOutageIsOnePage(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Alertmanager and alertbridge for ~80 s")
	}
	t.Parallel()
	for _, am := range []struct {
		name string
		bin  func(t *testing.T) string
	}{
		{"debian-alertmanager-0.25", func(t *testing.T) string { return e2eutil.RequireBinary(t, "prometheus-alertmanager", "alertmanager") }},
		{"upstream-alertmanager-0.35", func(t *testing.T) string { return e2eutil.Tool(t, "alertmanager") }},
	} {
		t.Run(am.name, func(t *testing.T) {
			t.Parallel()
			regionOutage(t, am.bin(t))
		})
	}
}

func regionOutage(t *testing.T, amBin string) {
	bridgeBin := e2eutil.BuildBinary(t, "./cmd/alertbridge")
	dir := t.TempDir()
	client := &http.Client{Timeout: 5 * time.Second}

	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{Tokens: map[string]bool{ntfyToken: true}})
	kuma := fakenotify.NewKuma(kumaToken)
	fake, err := fakenotify.StartServer(fakenotify.Mux(ntfy, kuma), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Close)
	tokenFile := filepath.Join(dir, "alertbridge-token")
	writeFile(t, tokenFile, []byte(webhookToken+"\n"), 0o600)
	bridgeAddr := e2eutil.FreeAddr(t, "127.0.0.1")
	e2eutil.StartProcess(t, bridgeBin,
		"--web.listen-address="+bridgeAddr,
		"--webhook.token-file="+tokenFile,
		"--spool.path="+filepath.Join(dir, "spool.db"),
		"--ntfy.url="+fake.URL()+"/"+ntfyTopic,
		"--ntfy.token="+ntfyToken,
		"--kuma.push-url="+fake.URL()+"/api/push/"+kumaToken,
		"--delivery.backoff-min=100ms",
	)

	src, err := os.ReadFile(filepath.Join(e2eutil.RepoRoot(t), "prometheus", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, cfg, []byte(templated(t, string(src),
		"http://127.0.0.1:9746/webhook", "http://"+bridgeAddr+"/webhook",
		"/etc/alertmanager/alertbridge-token", tokenFile,
	)), 0o644)
	amAddr := e2eutil.FreeAddr(t, "127.0.0.1")
	e2eutil.StartProcess(t, amBin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "am"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=")
	e2eutil.WaitHTTP(t, client, "http://"+amAddr+"/-/ready", 200, 30*time.Second)
	e2eutil.WaitHTTP(t, client, "http://"+bridgeAddr+"/-/healthy", 200, 30*time.Second)

	// Labels and annotations as the PopDown rule and the file_sd targets
	// give them (job, instance, pop, region, severity).
	var down []string
	for i := 1; i <= 20; i++ {
		down = append(down, fmt.Sprintf("ams%03d", i))
	}
	fired := time.Now()
	popDown := func(pop, region string, n int, ends time.Time) map[string]any {
		a := map[string]any{
			"labels": map[string]string{"alertname": "PopDown", "severity": "critical", "job": "clavis-pop",
				"instance": fmt.Sprintf("127.1.0.%d:9745", n), "pop": pop, "region": region},
			"annotations": map[string]string{"summary": "POP " + pop + " is down",
				"runbook_url": "https://github.com/clavitor/clavis-telemetry/blob/main/docs/runbooks.md#popdown"},
			// Prometheus sends an alert's firing time as startsAt, so the
			// route's group_wait applies from the first one.
			"startsAt":     fired.UTC().Format(time.RFC3339Nano),
			"generatorURL": "http://prometheus.invalid/graph",
		}
		if !ends.IsZero() {
			a["endsAt"] = ends.UTC().Format(time.RFC3339)
		}
		return a
	}
	post := func(alerts []map[string]any) {
		t.Helper()
		body, _ := json.Marshal(alerts)
		resp, err := client.Post("http://"+amAddr+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("posting alerts: %s", resp.Status)
		}
	}
	// Two notifier batches of one rule evaluation (within the critical
	// route's 10 s group_wait), and one POP of another region.
	var batch []map[string]any
	for i, p := range down[:10] {
		batch = append(batch, popDown(p, "eu-west", i+1, time.Time{}))
	}
	post(batch)
	batch = []map[string]any{popDown("iad001", "us-east", 100, time.Time{})}
	for i, p := range down[10:] {
		batch = append(batch, popDown(p, "eu-west", i+11, time.Time{}))
	}
	post(batch)

	find := func(title string) []fakenotify.Message {
		var out []fakenotify.Message
		for _, m := range ntfy.Messages() {
			if m.Title == title {
				out = append(out, m)
			}
		}
		return out
	}
	eventually(t, time.Minute, 200*time.Millisecond, "one page for eu-west's 20 POPs", func() (bool, string) {
		return len(find("[FIRING:20] PopDown eu-west")) > 0, fmt.Sprintf("ntfy has %v", ntfyTitles(ntfy.Messages()))
	})
	listsAll := func(m fakenotify.Message) []string {
		var missing []string
		for _, p := range down {
			if !strings.Contains(m.Message, "\n- "+p) {
				missing = append(missing, p)
			}
		}
		return missing
	}
	if m := find("[FIRING:20] PopDown eu-west")[0]; len(listsAll(m)) > 0 {
		t.Errorf("firing page does not list %v:\n%s", listsAll(m), m.Message)
	} else if !strings.HasPrefix(m.Message, "PopDown is firing for 20 POPs\n") {
		// Not one POP's own summary ("POP ams001 is down") for a region.
		t.Errorf("firing page's summary:\n%s", m.Message)
	}

	// Back up: the resolution is the signal that Alertmanager flushed the
	// group again (group_interval later); any further page for the region
	// would have gone out by then.
	ended := time.Now().Add(-time.Second)
	batch = batch[:0]
	for i, p := range down {
		batch = append(batch, popDown(p, "eu-west", i+1, ended))
	}
	post(batch)
	eventually(t, 2*time.Minute, 200*time.Millisecond, "one resolution for eu-west's 20 POPs", func() (bool, string) {
		return len(find("[RESOLVED:20] PopDown eu-west")) > 0, fmt.Sprintf("ntfy has %v", ntfyTitles(ntfy.Messages()))
	})
	if m := find("[RESOLVED:20] PopDown eu-west")[0]; len(listsAll(m)) > 0 {
		t.Errorf("resolution does not list %v:\n%s", listsAll(m), m.Message)
	}
	var euWest []string
	for _, m := range ntfy.Messages() {
		if strings.Contains(m.Title, "eu-west") || strings.Contains(m.Title, "ams0") {
			euWest = append(euWest, m.Title)
		}
	}
	if len(euWest) != 2 {
		t.Errorf("ntfy messages about eu-west %q, want one page and one resolution", euWest)
	}
	if n := len(find("[FIRING:1] PopDown us-east")); n != 1 {
		t.Errorf("%d pages for us-east's POP, want its own one: %v", n, ntfyTitles(ntfy.Messages()))
	}
}

func ntfyTitles(ms []fakenotify.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.Title)
	}
	return out
}
