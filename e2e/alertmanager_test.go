package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// webhookPayload is the part of Alertmanager's webhook (version 4) the test
// reads.
type webhookPayload struct {
	Version     string            `json:"version"`
	Receiver    string            `json:"receiver"`
	Status      string            `json:"status"`
	GroupLabels map[string]string `json:"groupLabels"`
	Alerts      []struct {
		Status string            `json:"status"`
		Labels map[string]string `json:"labels"`
	} `json:"alerts"`
}

// TestAlertmanagerRoutingAndInhibition loads the repository's
// alertmanager.yml into the real Alertmanager, posts alerts to it, and
// checks what reaches the webhook: the bearer token from the credentials
// file, one group per alertname and pop (per region for PopDown), Watchdog
// on its own receiver at once, and a POP's other alerts inhibited while
// PopDown fires for it.
func TestAlertmanagerRoutingAndInhibition(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Alertmanager for ~35 s")
	}
	t.Parallel()
	amBin := e2eutil.RequireBinary(t, "prometheus-alertmanager", "alertmanager")
	dir := t.TempDir()

	var mu sync.Mutex
	var got []webhookPayload
	var badAuth []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/webhook" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if h := r.Header.Get("Authorization"); h != "Bearer "+webhookToken {
			badAuth = append(badAuth, h)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var p webhookPayload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("webhook body: %v: %s", err, b)
		}
		got = append(got, p)
	}))
	defer hook.Close()

	tokenFile := filepath.Join(dir, "token")
	writeFile(t, tokenFile, []byte(webhookToken+"\n"), 0o600)
	src, err := os.ReadFile(filepath.Join(e2eutil.RepoRoot(t), "prometheus", "alertmanager.yml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "alertmanager.yml")
	writeFile(t, cfg, []byte(templated(t, string(src),
		"http://127.0.0.1:9746/webhook", hook.URL+"/webhook",
		"/etc/alertmanager/alertbridge-token", tokenFile,
	)), 0o644)
	addr := e2eutil.FreeAddr(t, "127.0.3.1")
	e2eutil.StartProcess(t, amBin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	client := &http.Client{Timeout: 5 * time.Second}
	e2eutil.WaitHTTP(t, client, "http://"+addr+"/-/ready", 200, 30*time.Second)

	// startsAt now, so every route's group_wait applies, as with alerts
	// fresh from Prometheus. PopDown goes first, as it would in an outage
	// (its `for:` is the shortest), so the inhibitor knows it before the
	// POP's other alerts arrive.
	post := func(labels ...map[string]string) {
		t.Helper()
		var alerts []map[string]any
		for _, l := range labels {
			alerts = append(alerts, map[string]any{"labels": l, "annotations": map[string]string{"summary": "test"},
				"startsAt": time.Now().UTC().Format(time.RFC3339), "generatorURL": "http://prometheus.invalid/graph"})
		}
		body, _ := json.Marshal(alerts)
		resp, err := client.Post("http://"+addr+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("posting alerts: %s", resp.Status)
		}
	}
	post(map[string]string{"alertname": "Watchdog", "severity": "none"},
		map[string]string{"alertname": "PopDown", "severity": "critical", "pop": "fra1", "region": "eu-central"})
	time.Sleep(time.Second)
	post(map[string]string{"alertname": "PopHighCPU", "severity": "warning", "pop": "fra1", "region": "eu-central"},
		map[string]string{"alertname": "PopHighCPU", "severity": "warning", "pop": "ams1", "region": "eu-west"})

	s := &stack{client: client}
	eventually(t, 10*time.Second, 200*time.Millisecond, "fra1's PopHighCPU inhibited by PopDown", func() (bool, string) {
		alerts, err := s.amAlerts(addr, `alertname="PopHighCPU"`)
		states := map[string]string{}
		for _, a := range alerts {
			states[a.Labels["pop"]] = a.Status.State
		}
		return states["fra1"] == "suppressed" && states["ams1"] == "active", fmt.Sprintf("states %v err %v", states, err)
	})

	// Watchdog at once (group_wait 0s), PopDown after 10 s, the warning
	// after 30 s; never the inhibited one.
	eventually(t, 60*time.Second, 500*time.Millisecond, "three notification groups at the webhook", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 3, fmt.Sprintf("%d payloads so far", len(got))
	})
	mu.Lock()
	defer mu.Unlock()
	if len(badAuth) > 0 {
		t.Errorf("webhook calls without the bearer token from the credentials file: %q", badAuth)
	}
	seen := map[string]string{} // alertname/pop -> receiver
	for _, p := range got {
		if p.Version != "4" || len(p.Alerts) != 1 {
			t.Errorf("payload version %s with %d alerts, want version 4 with one alert per group", p.Version, len(p.Alerts))
			continue
		}
		a := p.Alerts[0]
		key := a.Labels["alertname"] + "/" + a.Labels["pop"]
		seen[key] = p.Receiver
		// PopDown is grouped per region (a region's outage is one page,
		// TestRegionOutageIsOnePage), the rest per POP.
		by := "pop"
		if a.Labels["alertname"] == "PopDown" {
			by = "region"
		}
		if p.GroupLabels["alertname"] != a.Labels["alertname"] || p.GroupLabels[by] != a.Labels[by] || len(p.GroupLabels) > 2 {
			t.Errorf("group labels %v for alert %v, want grouping by alertname and %s", p.GroupLabels, a.Labels, by)
		}
	}
	want := map[string]string{"Watchdog/": "alertbridge-heartbeat", "PopDown/fra1": "alertbridge", "PopHighCPU/ams1": "alertbridge"}
	for k, r := range want {
		if seen[k] != r {
			t.Errorf("%s: receiver %q, want %q (seen %v)", k, seen[k], r, seen)
		}
	}
	if _, ok := seen["PopHighCPU/fra1"]; ok {
		t.Error("fra1's PopHighCPU was notified although PopDown fra1 fires")
	}
}
