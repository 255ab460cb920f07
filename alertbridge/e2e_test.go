package alertbridge

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// bridgeProc runs the built alertbridge binary.
type bridgeProc struct {
	bin, addr string
	args, env []string
	logPath   string
	cmd       *exec.Cmd
}

func (p *bridgeProc) start(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd = exec.Command(p.bin, append([]string{"--web.listen-address=" + p.addr}, p.args...)...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(os.Environ(), p.env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e2eutil.WaitHTTP(t, nil, "http://"+p.addr+"/-/ready", 200, 20*time.Second)
}

func (p *bridgeProc) kill9() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGKILL)
		p.cmd.Wait()
		p.cmd = nil
	}
}

func (p *bridgeProc) stop() {
	if p.cmd != nil && p.cmd.Process != nil {
		p.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { p.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
		p.cmd = nil
	}
}

func newBridgeProc(t *testing.T, args, env []string) *bridgeProc {
	t.Helper()
	p := &bridgeProc{
		bin:     e2eutil.BuildBinary(t, "./cmd/alertbridge"),
		addr:    e2eutil.FreeAddr(t, "127.0.0.1"),
		args:    args,
		env:     env,
		logPath: filepath.Join(t.TempDir(), "alertbridge.log"),
	}
	t.Cleanup(func() {
		p.stop()
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("alertbridge log:\n%s", tail(string(b), 8000))
		}
	})
	return p
}

// slow delays every request, so delivery is still running when we kill.
type slow struct {
	h http.Handler
	d time.Duration
}

func (s slow) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	time.Sleep(s.d)
	s.h.ServeHTTP(w, r)
}

// TestKill9DuringDelivery kills the bridge process with SIGKILL twice,
// while webhooks still arrive and while notifications are being delivered,
// and restarts it on the same spool. Every alert that was answered 2xx is
// delivered; a webhook that got no answer is retried by the sender (as
// Alertmanager does). Duplicates are allowed only for a message in flight
// at each kill: one ntfy worker, so at most one per kill.
func TestKill9DuringDelivery(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and kills the binary")
	}
	t.Parallel()
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{Tokens: map[string]bool{"tk": true}})
	ns, err := fakenotify.StartServer(slow{fakenotify.Mux(ntfy, nil), 8 * time.Millisecond}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	spool := filepath.Join(t.TempDir(), "spool.db")
	tokenFile := filepath.Join(t.TempDir(), "webhook.token")
	os.WriteFile(tokenFile, []byte("kill9-secret\n"), 0o600)
	p := newBridgeProc(t, []string{"--spool.path=" + spool, "--delivery.backoff-min=20ms", "--delivery.backoff-max=200ms",
		"--webhook.token-file=" + tokenFile, "--ntfy.max-per-minute=100000"},
		[]string{"NTFY_ALERT_URL=" + ns.URL() + "/alerts", "NTFY_ALERT_TOKEN=tk"})
	p.start(t)

	const payloads, perPayload = 40, 10
	var want []string
	var bodies [][]byte
	for i := 0; i < payloads; i++ {
		var as []Alert
		for j := 0; j < perPayload; j++ {
			a := mkAlert("PopDown", fmt.Sprintf("p%03d", i*perPayload+j), "critical", "firing", t0)
			as = append(as, a)
		}
		// One notification per POP group, as group_by [alertname, pop] does.
		for _, a := range as {
			want = append(want, "[FIRING:1] PopDown "+a.Labels["pop"])
			bodies = append(bodies, mkPayload(a))
		}
	}
	// The sender retries each payload until it is answered 2xx, like
	// Alertmanager; it keeps going across the kills.
	var wg sync.WaitGroup
	wg.Go(func() {
		client := &http.Client{Timeout: 5 * time.Second}
		for _, body := range bodies {
			for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				req, _ := http.NewRequest(http.MethodPost, "http://"+p.addr+"/webhook", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", "Bearer kill9-secret")
				resp, err := client.Do(req)
				if err != nil {
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					break
				}
			}
			time.Sleep(4 * time.Millisecond)
		}
	})
	for _, at := range []int{60, 200} {
		waitFor(t, 60*time.Second, fmt.Sprintf("%d deliveries before the kill", at), func() bool { return len(ntfy.Messages()) >= at })
		p.kill9()
		time.Sleep(200 * time.Millisecond)
		p.start(t)
	}
	wg.Wait()
	// Drained: the spool is empty and the dispatcher idle, so nothing more
	// can arrive.
	waitFor(t, 90*time.Second, "spool drained after the restarts", func() bool {
		return scrape(t, p.addr, `clavis_alertbridge_spool_depth{target="ntfy"}`) == "0" && scrape(t, p.addr, "clavis_alertbridge_ntfy_idle") == "1"
	})
	count := map[string]int{}
	for _, m := range ntfy.Messages() {
		count[m.Title]++
	}
	dups := 0
	for _, w := range want {
		if count[w] == 0 {
			t.Errorf("%s lost", w)
		}
		dups += count[w] - 1
	}
	// At most the messages in flight at each kill go out twice.
	if dups > 2*4 {
		t.Errorf("%d duplicates after 2 kills with 4 publishes in flight each; at most 8 allowed", dups)
	}
	t.Logf("%d alerts, %d messages, %d duplicates after 2 kills", len(want), len(ntfy.Messages()), dups)
}

// TestRealAlertmanager runs Debian's Alertmanager against the built bridge:
// an alert injected with amtool reaches the fake ntfy as FIRING and, after
// amtool sets its end time, as RESOLVED; the Watchdog drives Kuma pushes.
// The bridge's /metrics passes promtool check metrics.
func TestRealAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs Alertmanager")
	}
	t.Parallel()
	am := e2eutil.RequireBinary(t, "prometheus-alertmanager", "alertmanager")
	amtool := e2eutil.RequireBinary(t, "amtool")
	promtool := e2eutil.RequireBinary(t, "promtool")

	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{Tokens: map[string]bool{"tk_am": true}})
	kuma := fakenotify.NewKuma("pushtok")
	fs, err := fakenotify.StartServer(fakenotify.Mux(ntfy, kuma), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "webhook.token")
	os.WriteFile(tokenFile, []byte("am-webhook-secret\n"), 0o600)
	p := newBridgeProc(t, []string{"--spool.path=" + filepath.Join(dir, "spool", "ab.db"), "--webhook.token-file=" + tokenFile,
		"--delivery.backoff-min=50ms", "--ntfy.click-url=https://grafana.example/d/clavis"},
		[]string{"NTFY_ALERT_URL=" + fs.URL() + "/clavis-alerts", "NTFY_ALERT_TOKEN=tk_am", "KUMA_PUSH_URL=" + fs.URL() + "/api/push/pushtok"})
	p.start(t)

	amAddr := e2eutil.FreeAddr(t, "127.0.0.1")
	amCfg := filepath.Join(dir, "alertmanager.yml")
	os.WriteFile(amCfg, []byte(fmt.Sprintf(`
route:
  receiver: alertbridge
  group_by: [alertname, pop]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
  routes:
    - matchers: [alertname="Watchdog"]
      receiver: alertbridge
      group_wait: 0s
      group_interval: 1s
      repeat_interval: 2s
receivers:
  - name: alertbridge
    webhook_configs:
      - url: http://%s/webhook
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: %s
`, p.addr, tokenFile)), 0o600)
	e2eutil.StartProcess(t, am, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "am-data"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=", "--web.external-url=http://"+amAddr)
	e2eutil.WaitHTTP(t, nil, "http://"+amAddr+"/-/ready", 200, 30*time.Second)

	amt := func(args ...string) {
		t.Helper()
		out, err := exec.Command(amtool, append(args, "--alertmanager.url=http://"+amAddr)...).CombinedOutput()
		if err != nil {
			t.Fatalf("amtool %v: %v\n%s", args, err, out)
		}
	}
	start := time.Now().UTC().Add(-10 * time.Second).Format(time.RFC3339)
	amt("alert", "add", "alertname=PopDown", "pop=fra1", "severity=critical",
		"--annotation=summary=POP fra1 does not answer", "--annotation=runbook_url=https://runbooks.example/PopDown", "--start="+start)
	amt("alert", "add", "alertname=Watchdog", "severity=none")

	find := func(title string) (fakenotify.Message, bool) {
		for _, m := range ntfy.Messages() {
			if m.Title == title {
				return m, true
			}
		}
		return fakenotify.Message{}, false
	}
	waitFor(t, 30*time.Second, "FIRING at ntfy", func() bool { _, ok := find("[FIRING:1] PopDown fra1"); return ok })
	m, _ := find("[FIRING:1] PopDown fra1")
	if m.Priority != 5 || m.Token != "tk_am" || !strings.HasPrefix(m.Message, "POP fra1 does not answer") || len(m.Actions) != 3 ||
		!strings.HasPrefix(m.Actions[2].URL, "http://"+amAddr+"/#/silences/new?filter=") {
		t.Errorf("firing message %+v", m)
	}
	waitFor(t, 30*time.Second, "Kuma down", func() bool { l, _ := kuma.Last(); return l.Status == "down" && l.Msg == "PopDown fra1" })

	amt("alert", "add", "alertname=PopDown", "pop=fra1", "severity=critical",
		"--annotation=summary=POP fra1 does not answer", "--annotation=runbook_url=https://runbooks.example/PopDown",
		"--start="+start, "--end="+time.Now().UTC().Add(-time.Second).Format(time.RFC3339))
	waitFor(t, 30*time.Second, "RESOLVED at ntfy", func() bool { _, ok := find("[RESOLVED:1] PopDown fra1"); return ok })
	waitFor(t, 30*time.Second, "Kuma up again", func() bool { l, _ := kuma.Last(); return l.Status == "up" })
	// Watchdog repeats every 2 s: each copy is a Kuma heartbeat, never a page.
	n := len(kuma.Pushes())
	waitFor(t, 30*time.Second, "heartbeat pushes", func() bool { return len(kuma.Pushes()) >= n+2 })
	for _, m := range ntfy.Messages() {
		if strings.Contains(m.Title, "Watchdog") {
			t.Errorf("Watchdog reached ntfy: %+v", m)
		}
	}
	count := map[string]int{}
	for _, m := range ntfy.Messages() {
		count[m.Title]++
	}
	if count["[FIRING:1] PopDown fra1"] != 1 || count["[RESOLVED:1] PopDown fra1"] != 1 {
		t.Errorf("notifications %v, want one firing and one resolved", count)
	}

	resp, err := http.Get("http://" + p.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"clavis_alertbridge_webhooks_received_total", `clavis_alertbridge_webhooks_rejected_total{reason="unauthorized"} 0`,
		"clavis_alertbridge_alerts_accepted_total", "clavis_alertbridge_alerts_duplicate_total",
		`clavis_alertbridge_notifications_sent_total{target="ntfy"} 2`, `clavis_alertbridge_notifications_failed_total{target="kuma"} 0`,
		`clavis_alertbridge_notifications_retried_total{target="ntfy"}`, `clavis_alertbridge_notifications_dropped_total{target="kuma"}`,
		`clavis_alertbridge_spool_depth{target="ntfy"} 0`, `clavis_alertbridge_spool_oldest_age_seconds{target="kuma"}`,
		`clavis_alertbridge_delivery_duration_seconds_bucket{target="ntfy"`, "clavis_alertbridge_watchdog_last_seen_timestamp_seconds",
		"clavis_alertbridge_kuma_config_errors_total 0", "clavis_alertbridge_build_info"} {
		if !bytes.Contains(body, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	check := exec.Command(promtool, "check", "metrics")
	check.Stdin = bytes.NewReader(body)
	if out, err := check.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s", err, out)
	}
	// Alertmanager authenticated: nothing was rejected.
	if bytes.Contains(body, []byte(`clavis_alertbridge_webhooks_rejected_total{reason="unauthorized"} 1`)) {
		t.Error("Alertmanager's bearer token was rejected")
	}
}

// TestBinaryBasicAuthAndOutageLog runs the binary with basic auth from
// --web.config.file (exporter-toolkit) and no targets: start-up says only
// the outage log is active, unauthenticated webhooks get 401, and the
// outage log is written even at --log.level=error.
func TestBinaryBasicAuthAndOutageLog(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs the binary")
	}
	t.Parallel()
	dir := t.TempDir()
	hash, err := bcrypt.GenerateFromPassword([]byte("am-password"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webCfg := filepath.Join(dir, "web.yml")
	os.WriteFile(webCfg, []byte("basic_auth_users:\n  alertmanager: "+string(hash)+"\n"), 0o600)
	p := newBridgeProc(t, []string{"--spool.path=" + filepath.Join(dir, "spool.db"), "--web.config.file=" + webCfg, "--log.level=error"},
		[]string{"NTFY_ALERT_URL=", "KUMA_PUSH_URL="})
	// /-/ready is behind basic auth too, so start by hand.
	f, _ := os.Create(p.logPath)
	p.cmd = exec.Command(p.bin, append([]string{"--web.listen-address=" + p.addr}, p.args...)...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.Env = append(os.Environ(), p.env...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	e2eutil.WaitHTTP(t, nil, "http://"+p.addr+"/-/healthy", 401, 20*time.Second)

	body := mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0))
	post := func(user, pass string) int {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.addr+"/webhook", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if user != "" {
			req.SetBasicAuth(user, pass)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := post("", ""); c != 401 {
		t.Errorf("no credentials: %d", c)
	}
	if c := post("alertmanager", "wrong"); c != 401 {
		t.Errorf("wrong password: %d", c)
	}
	if c := post("alertmanager", "am-password"); c != 200 {
		t.Errorf("basic auth: %d", c)
	}
	p.stop()
	log, _ := os.ReadFile(p.logPath)
	for _, want := range []string{"no notification target configured", "msg=alert", "alertname=PopDown", "status=firing", "pop=fra1", "severity=critical"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}

	// Without a token or basic auth it refuses to start, unless told.
	out, err := exec.Command(p.bin, "--spool.path="+filepath.Join(dir, "s3.db"), "--web.listen-address="+e2eutil.FreeAddr(t, "127.0.0.1")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), "refusing to start without authentication") {
		t.Errorf("no auth: %v %s", err, out)
	}

	// Bad flags exit 2 with a message.
	out, err = exec.Command(p.bin, "--spool.max-age=banana").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 || !strings.Contains(string(out), `invalid duration "banana"`) {
		t.Errorf("bad flag: %v %s", err, out)
	}
	out, err = exec.Command(p.bin, "--ntfy.url=http://127.0.0.1:1/x", "--ntfy.priority=critical=9", "--spool.path="+filepath.Join(dir, "s2.db")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
		t.Errorf("bad priority: %v %s", err, out)
	}
}

// scrape returns the value of one sample of the bridge's /metrics ("" if
// absent).
func scrape(t *testing.T, addr, sample string) string {
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, sample+" "); ok {
			return v
		}
	}
	return ""
}

// TestPhoneActionsRealAlertmanager: a group fires through Debian's
// Alertmanager; the "Silence 1h" action URL, taken from the message as the
// fake ntfy received it, is called as the ntfy app calls it; the silence
// exists in Alertmanager with exactly the group's matchers, createdBy
// ntfy; a follow-up says so; no further page for the group arrives; a
// replayed or forged token changes nothing. Ack answers with a follow-up.
//
// It runs on Debian's Alertmanager 0.25 and on upstream 0.35 (tools/, the
// version whose API client the bridge uses); in CI a missing binary of
// either is a failure.
func TestPhoneActionsRealAlertmanager(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: runs Alertmanager")
	}
	t.Parallel()
	for _, peer := range []struct {
		name       string
		am, amtool func(t *testing.T) string
	}{
		{"debian-0.25",
			func(t *testing.T) string { return e2eutil.RequireBinary(t, "prometheus-alertmanager", "alertmanager") },
			func(t *testing.T) string { return e2eutil.RequireBinary(t, "amtool") }},
		{"upstream-0.35",
			func(t *testing.T) string { return e2eutil.Tool(t, "alertmanager") },
			func(t *testing.T) string { return e2eutil.Tool(t, "amtool") }},
	} {
		t.Run(peer.name, func(t *testing.T) {
			t.Parallel()
			testPhoneActions(t, peer.am(t), peer.amtool(t))
		})
	}
}

func testPhoneActions(t *testing.T, am, amtool string) {
	if out, err := exec.Command(am, "--version").CombinedOutput(); err == nil {
		t.Logf("alertmanager: %s", firstLine(string(out), "alertmanager"))
	}
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{Tokens: map[string]bool{"tk_am": true}})
	fs, err := fakenotify.StartServer(fakenotify.Mux(ntfy, nil), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer fs.Close()
	dir := t.TempDir()
	tokenFile, secretFile := filepath.Join(dir, "webhook.token"), filepath.Join(dir, "action.secret")
	os.WriteFile(tokenFile, []byte("am-webhook-secret\n"), 0o600)
	os.WriteFile(secretFile, []byte("action-secret-of-32-bytes-length\n"), 0o600)
	amAddr := e2eutil.FreeAddr(t, "127.0.0.1")
	bridgeAddr := e2eutil.FreeAddr(t, "127.0.0.1")
	p := newBridgeProc(t, []string{"--spool.path=" + filepath.Join(dir, "ab.db"), "--webhook.token-file=" + tokenFile,
		"--web.external-url=http://" + bridgeAddr, "--action.secret-file=" + secretFile, "--alertmanager.url=http://" + amAddr,
		"--delivery.backoff-min=50ms"},
		[]string{"NTFY_ALERT_URL=" + fs.URL() + "/clavis-alerts", "NTFY_ALERT_TOKEN=tk_am", "KUMA_PUSH_URL="})
	p.addr = bridgeAddr
	p.start(t)
	amCfg := filepath.Join(dir, "alertmanager.yml")
	os.WriteFile(amCfg, []byte(fmt.Sprintf(`
route:
  receiver: alertbridge
  group_by: [alertname, pop]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: alertbridge
    webhook_configs:
      - url: http://%s/webhook
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: %s
`, bridgeAddr, tokenFile)), 0o600)
	e2eutil.StartProcess(t, am, "--config.file="+amCfg, "--storage.path="+filepath.Join(dir, "am-data"),
		"--web.listen-address="+amAddr, "--cluster.listen-address=", "--web.external-url=http://"+amAddr)
	e2eutil.WaitHTTP(t, nil, "http://"+amAddr+"/-/ready", 200, 30*time.Second)
	amt := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(amtool, append(args, "--alertmanager.url=http://"+amAddr)...).CombinedOutput(); err != nil {
			t.Fatalf("amtool %v: %v\n%s", args, err, out)
		}
	}
	page := func(title string) (fakenotify.Message, bool) {
		for _, m := range ntfy.Messages() {
			if m.Title == title {
				return m, true
			}
		}
		return fakenotify.Message{}, false
	}
	amt("alert", "add", "alertname=PopDown", "pop=fra1", "severity=critical", "--annotation=runbook_url=https://runbooks.example/PopDown")
	waitFor(t, 30*time.Second, "the page", func() bool { _, ok := page("[FIRING:1] PopDown fra1"); return ok })
	m, _ := page("[FIRING:1] PopDown fra1")
	if len(m.Actions) != 3 || m.Actions[0].Label != "Silence 1h" || m.Actions[1].Label != "Ack" || m.Actions[2].Label != "Runbook" ||
		m.Actions[0].Action != "http" || m.Actions[0].Method != "POST" {
		t.Fatalf("actions as ntfy parsed them: %+v", m.Actions)
	}
	silenceURL := m.Actions[0].URL
	press := func(u string) int { // as the ntfy app does: POST, no body
		resp, err := http.Post(u, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	type amSilence struct {
		ID        string `json:"id"`
		CreatedBy string `json:"createdBy"`
		Comment   string `json:"comment"`
		Status    struct {
			State string `json:"state"`
		} `json:"status"`
		Matchers []struct {
			Name, Value      string
			IsRegex, IsEqual bool
		} `json:"matchers"`
	}
	silences := func() []amSilence {
		resp, err := http.Get("http://" + amAddr + "/api/v2/silences")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ss []amSilence
		json.NewDecoder(resp.Body).Decode(&ss)
		return ss
	}
	// Forged first: nothing happens.
	u, _ := url.Parse(silenceURL)
	q := u.Query()
	tok := q.Get("token")
	// A character inside the MAC, all of whose bits count (the last may
	// carry unused ones).
	i := len(tok) - 10
	forged := byte('A')
	if tok[i] == 'A' {
		forged = 'B'
	}
	q.Set("token", tok[:i]+string(forged)+tok[i+1:])
	u.RawQuery = q.Encode()
	if c := press(u.String()); c != 403 {
		t.Errorf("forged token: %d, want 403", c)
	}
	if c := press(silenceURL); c != 200 {
		t.Fatalf("silence action: %d", c)
	}
	if c := press(silenceURL); c != 409 {
		t.Errorf("replayed token: %d, want 409", c)
	}
	ss := silences()
	if len(ss) != 1 {
		t.Fatalf("%d silences in Alertmanager, want 1: %+v", len(ss), ss)
	}
	s := ss[0]
	got := map[string]string{}
	for _, mt := range s.Matchers {
		if mt.IsRegex || !mt.IsEqual {
			t.Errorf("matcher %+v is not an equality", mt)
		}
		got[mt.Name] = mt.Value
	}
	if fmt.Sprint(got) != "map[alertname:PopDown pop:fra1]" || s.CreatedBy != "ntfy" || !strings.Contains(s.Comment, "Silence 1h") || s.Status.State != "active" {
		t.Errorf("silence %+v", s)
	}
	waitFor(t, 30*time.Second, "the follow-up", func() bool { _, ok := page("[SILENCED] PopDown fra1"); return ok })
	// A new alert of the silenced group: Alertmanager suppresses it. An
	// alert of another group, added after it, pages: by then the silenced
	// group's flush has happened too.
	amt("alert", "add", "alertname=PopDown", "pop=fra1", "instance=fra1-b", "severity=critical")
	waitFor(t, 30*time.Second, "the new alert suppressed by the silence", func() bool {
		resp, err := http.Get("http://" + amAddr + "/api/v2/alerts?silenced=true&filter=instance%3D%22fra1-b%22")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var as []struct {
			Status struct {
				State      string   `json:"state"`
				SilencedBy []string `json:"silencedBy"`
			} `json:"status"`
		}
		json.NewDecoder(resp.Body).Decode(&as)
		return len(as) == 1 && as[0].Status.State == "suppressed" && len(as[0].Status.SilencedBy) == 1 && as[0].Status.SilencedBy[0] == s.ID
	})
	amt("alert", "add", "alertname=PopDown", "pop=ams1", "severity=critical")
	waitFor(t, 30*time.Second, "the other group's page", func() bool { _, ok := page("[FIRING:1] PopDown ams1"); return ok })
	for _, m := range ntfy.Messages() {
		if strings.Contains(m.Title, "PopDown fra1") && m.Title != "[FIRING:1] PopDown fra1" && m.Title != "[SILENCED] PopDown fra1" {
			t.Errorf("page for the silenced group: %q", m.Title)
		}
	}
	if len(silences()) != 1 {
		t.Errorf("forged or replayed tokens created silences: %+v", silences())
	}
	// Ack on the other group.
	m2, _ := page("[FIRING:1] PopDown ams1")
	if c := press(m2.Actions[1].URL); c != 200 {
		t.Errorf("ack: %d", c)
	}
	waitFor(t, 30*time.Second, "the ack follow-up", func() bool { _, ok := page("[ACK] PopDown ams1"); return ok })
	for sample, want := range map[string]string{
		`clavis_alertbridge_actions_total{action="silence",result="ok"}`:       "1",
		`clavis_alertbridge_actions_total{action="silence",result="forged"}`:   "1",
		`clavis_alertbridge_actions_total{action="silence",result="replayed"}`: "1",
		`clavis_alertbridge_actions_total{action="ack",result="ok"}`:           "1",
	} {
		if v := scrape(t, p.addr, sample); v != want {
			t.Errorf("%s = %q, want %s", sample, v, want)
		}
	}
}
