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

// shippedAlertmanager runs amBin on the repository's alertmanager.yml, its
// webhook pointed at a test server that checks the bearer token from the
// credentials file and records each payload; post sends alerts to its API
// as Prometheus would (startsAt now, so every route's group_wait applies).
type shippedAlertmanager struct {
	t       *testing.T
	addr    string
	client  *http.Client
	mu      sync.Mutex
	got     []webhookPayload
	badAuth []string
}

func startShippedAlertmanager(t *testing.T, amBin string) *shippedAlertmanager {
	t.Helper()
	dir := t.TempDir()
	am := &shippedAlertmanager{t: t, client: &http.Client{Timeout: 5 * time.Second}}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/webhook" || r.Method != http.MethodPost {
			http.NotFound(w, r)
			return
		}
		b, _ := io.ReadAll(r.Body)
		am.mu.Lock()
		defer am.mu.Unlock()
		if h := r.Header.Get("Authorization"); h != "Bearer "+webhookToken {
			am.badAuth = append(am.badAuth, h)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		var p webhookPayload
		if err := json.Unmarshal(b, &p); err != nil {
			t.Errorf("webhook body: %v: %s", err, b)
		}
		am.got = append(am.got, p)
	}))
	t.Cleanup(hook.Close)

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
	am.addr = e2eutil.FreeAddr(t, "127.0.3.1")
	e2eutil.StartProcess(t, amBin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+am.addr, "--cluster.listen-address=")
	e2eutil.WaitHTTP(t, am.client, "http://"+am.addr+"/-/ready", 200, 30*time.Second)
	return am
}

func (am *shippedAlertmanager) post(labels ...map[string]string) {
	t := am.t
	t.Helper()
	var alerts []map[string]any
	for _, l := range labels {
		alerts = append(alerts, map[string]any{"labels": l, "annotations": map[string]string{"summary": "test"},
			"startsAt": time.Now().UTC().Format(time.RFC3339), "generatorURL": "http://prometheus.invalid/graph"})
	}
	body, _ := json.Marshal(alerts)
	resp, err := am.client.Post("http://"+am.addr+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("posting alerts: %s", resp.Status)
	}
}

// payloads is a copy of what reached the webhook so far.
func (am *shippedAlertmanager) payloads() []webhookPayload {
	am.mu.Lock()
	defer am.mu.Unlock()
	return append([]webhookPayload(nil), am.got...)
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
	am := startShippedAlertmanager(t, e2eutil.RequireBinary(t, "prometheus-alertmanager", "alertmanager"))
	addr, client, post := am.addr, am.client, am.post

	// PopDown goes first, as it would in an outage (its `for:` is the
	// shortest), so the inhibitor knows it before the POP's other alerts
	// arrive.
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
		n := len(am.payloads())
		return n >= 3, fmt.Sprintf("%d payloads so far", n)
	})
	am.mu.Lock()
	if len(am.badAuth) > 0 {
		t.Errorf("webhook calls without the bearer token from the credentials file: %q", am.badAuth)
	}
	am.mu.Unlock()
	seen := map[string]string{} // alertname/pop -> receiver
	for _, p := range am.payloads() {
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

// amAlertStatus is an alert of Alertmanager's API v2 with what holds it back.
type amAlertStatus struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State       string   `json:"state"`
		SilencedBy  []string `json:"silencedBy"`
		InhibitedBy []string `json:"inhibitedBy"`
	} `json:"status"`
}

// TestFleetSilenceDoesNotMuteRegions: Alertmanager inhibits even while the
// source alert is silenced, so whatever FleetPopsDown inhibits stays muted
// for as long as it fires, silenced from the phone or not. In the shipped
// alertmanager.yml it holds back only the per-POP pages, never
// RegionPopsDown. A two-region outage fires FleetPopsDown and each
// region's RegionPopsDown; on-call silences FleetPopsDown the way the
// phone's "Silence 1h" does (the group's labels: alertname only); then
// ap-south goes down too. Its RegionPopsDown pages, naming the region,
// and holds its own POP's PopDown back; a POP down in a region under half
// is held back by FleetPopsDown while it fires (part of the fleet event).
// On Debian's Alertmanager 0.25 and upstream 0.35.
func TestFleetSilenceDoesNotMuteRegions(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Alertmanager for ~25 s")
	}
	t.Parallel()
	for _, bin := range []struct {
		name string
		bin  func(t *testing.T) string
	}{
		{"debian-alertmanager-0.25", func(t *testing.T) string { return e2eutil.RequireBinary(t, "prometheus-alertmanager", "alertmanager") }},
		{"upstream-alertmanager-0.35", func(t *testing.T) string { return e2eutil.Tool(t, "alertmanager") }},
	} {
		t.Run(bin.name, func(t *testing.T) {
			t.Parallel()
			fleetSilence(t, startShippedAlertmanager(t, bin.bin(t)))
		})
	}
}

func fleetSilence(t *testing.T, am *shippedAlertmanager) {
	crit := func(kv ...string) map[string]string {
		l := map[string]string{"severity": "critical"}
		for i := 0; i < len(kv); i += 2 {
			l[kv[i]] = kv[i+1]
		}
		return l
	}
	// eu-west and us-east down: the fleet alert and both regions'. Sources
	// first, then the POPs they hold back, as Prometheus's `for:` orders
	// them.
	am.post(crit("alertname", "FleetPopsDown"),
		crit("alertname", "RegionPopsDown", "region", "eu-west"),
		crit("alertname", "RegionPopsDown", "region", "us-east"))
	time.Sleep(time.Second)
	am.post(crit("alertname", "PopDown", "pop", "ams1", "region", "eu-west"),
		crit("alertname", "PopDown", "pop", "fra1", "region", "eu-central"))

	// The phone's "Silence 1h" on the FleetPopsDown page.
	now := time.Now().UTC()
	body, _ := json.Marshal(map[string]any{
		"matchers":  []map[string]any{{"name": "alertname", "value": "FleetPopsDown", "isRegex": false, "isEqual": true}},
		"startsAt":  now.Format(time.RFC3339),
		"endsAt":    now.Add(time.Hour).Format(time.RFC3339),
		"createdBy": "e2e", "comment": "Silence 1h from the phone",
	})
	resp, err := am.client.Post("http://"+am.addr+"/api/v2/silences", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("creating the silence: %s", resp.Status)
	}

	// A new region outage while the fleet alert fires, silenced.
	am.post(crit("alertname", "RegionPopsDown", "region", "ap-south"))
	time.Sleep(time.Second)
	am.post(crit("alertname", "PopDown", "pop", "bom1", "region", "ap-south"))

	key := func(l map[string]string) string { return l["alertname"] + "/" + l["region"] + "/" + l["pop"] }
	want := map[string]string{ // alertname/region/pop -> how it is held back: "", "silenced", "inhibited"
		"FleetPopsDown//":         "silenced",
		"RegionPopsDown/eu-west/": "", "RegionPopsDown/us-east/": "", "RegionPopsDown/ap-south/": "",
		"PopDown/eu-west/ams1": "inhibited", "PopDown/ap-south/bom1": "inhibited", "PopDown/eu-central/fra1": "inhibited",
	}
	eventually(t, 15*time.Second, 200*time.Millisecond, "alert states", func() (bool, string) {
		resp, err := am.client.Get("http://" + am.addr + "/api/v2/alerts")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		var alerts []amAlertStatus
		if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
			return false, err.Error()
		}
		got := map[string]string{}
		for _, a := range alerts {
			switch {
			case a.Status.State == "active":
				got[key(a.Labels)] = ""
			case len(a.Status.SilencedBy) > 0 && len(a.Status.InhibitedBy) == 0:
				got[key(a.Labels)] = "silenced"
			case len(a.Status.InhibitedBy) > 0 && len(a.Status.SilencedBy) == 0:
				got[key(a.Labels)] = "inhibited"
			default:
				got[key(a.Labels)] = fmt.Sprintf("%s silenced by %v inhibited by %v", a.Status.State, a.Status.SilencedBy, a.Status.InhibitedBy)
			}
		}
		for k, v := range want {
			if g, ok := got[k]; !ok || g != v {
				return false, fmt.Sprintf("got %q, want %q", got, want)
			}
		}
		return len(got) == len(want), fmt.Sprintf("got %q, want %q", got, want)
	})

	// What pages (critical route: group_wait 10 s): the three regions,
	// each its own group named by its region; nothing else.
	regions := func() map[string]bool {
		r := map[string]bool{}
		for _, p := range am.payloads() {
			for _, a := range p.Alerts {
				if a.Labels["alertname"] == "RegionPopsDown" && p.GroupLabels["region"] == a.Labels["region"] {
					r[a.Labels["region"]] = true
				}
			}
		}
		return r
	}
	eventually(t, 30*time.Second, 200*time.Millisecond, "a page for each region, ap-south's included", func() (bool, string) {
		r := regions()
		return r["eu-west"] && r["us-east"] && r["ap-south"], fmt.Sprintf("regions paged %v", r)
	})
	// bom1's group was posted a second after ap-south's and has the same
	// group_wait: give it that second before looking for stray pages.
	time.Sleep(2 * time.Second)
	for _, p := range am.payloads() {
		for _, a := range p.Alerts {
			if a.Labels["alertname"] != "RegionPopsDown" {
				t.Errorf("%s reached the webhook (receiver %s, group %v), want only RegionPopsDown pages", key(a.Labels), p.Receiver, p.GroupLabels)
			}
		}
	}
}
