package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// The harness runs the central pipeline the way an operator deploys it:
// clavis-telemetry POPs over TLS with basic auth, Prometheus and
// Alertmanager from Debian with the repository's own prometheus/ files
// (only addresses, secret paths and the global intervals templated),
// alertbridge, and the fake ntfy and Kuma of internal/fakenotify.

const (
	scrapeUser     = "prometheus"
	scrapePassword = "e2e-scrape-secret"
	webhookToken   = "e2e-webhook-token"
	ntfyToken      = "tk_e2e"
	ntfyTopic      = "clavis-alerts"
	kumaToken      = "e2epush"
)

// pop is one clavis-telemetry process with its own vault dir and access log.
type pop struct {
	name, region string
	addr         string // 127.0.0.x:port
	vaultDir     string
	accessLog    string
	args         []string
	bin          string

	mu  sync.Mutex
	cmd *exec.Cmd
}

func (p *pop) start(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cmd = e2eutil.StartProcess(t, p.bin, p.args...)
}

// stop ends the POP's exporter as systemd would (SIGINT, then wait).
func (p *pop) stop(t *testing.T) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = p.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-done
	}
	p.cmd = nil
}

type certPair struct{ certFile, keyFile string }

// selfSignedCert writes a self-signed certificate (its own CA) valid for the
// loopback addresses the POPs use.
func selfSignedCert(t *testing.T, dir string) certPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "clavis-e2e-pop"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		// Client auth too: the HA Alertmanagers gossip over mutual TLS.
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv6loopback},
	}
	// The POPs on 127.0.0.x; the central services of the parallel tests
	// on 127.0.x.1-4 (alertbridge over HTTPS, gossip TLS in the HA test).
	for i := 1; i <= 20; i++ {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.IPv4(127, 0, 0, byte(i)))
	}
	for n := 1; n <= 9; n++ {
		for i := 1; i <= 4; i++ {
			tmpl.IPAddresses = append(tmpl.IPAddresses, net.IPv4(127, 0, byte(n), byte(i)))
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cp := certPair{filepath.Join(dir, "pop.crt"), filepath.Join(dir, "pop.key")}
	writeFile(t, cp.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
	writeFile(t, cp.keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	return cp
}

func writeFile(t *testing.T, path string, b []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, mode); err != nil {
		t.Fatal(err)
	}
}

// templated returns src with each old string replaced by new; every old
// string must occur, so a change to the repository's config that the test
// no longer matches fails loudly instead of testing something else.
func templated(t *testing.T, src string, pairs ...string) string {
	t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(src, pairs[i]) {
			t.Fatalf("templating: %q not found in the repository's config", pairs[i])
		}
		src = strings.ReplaceAll(src, pairs[i], pairs[i+1])
	}
	return src
}

// centralPeers are the Prometheus and Alertmanager one run of the pipeline
// uses: Debian's packages (what the Debian operator runs) or the current
// upstream releases tools/build.sh builds from their Go modules.
type centralPeers struct {
	name         string // subtest name
	prometheus   string
	alertmanager string
}

// debianPeers: Debian bookworm's Prometheus 2.42 and Alertmanager 0.25.
func debianPeers(t *testing.T) centralPeers {
	return centralPeers{name: "debian-prometheus-2.42-alertmanager-0.25",
		prometheus:   e2eutil.RequireBinary(t, "prometheus"),
		alertmanager: e2eutil.RequireBinary(t, "prometheus-alertmanager", "alertmanager")}
}

// upstreamPeers: Prometheus 3.16 and Alertmanager 0.35 from tools/.
func upstreamPeers(t *testing.T) centralPeers {
	return centralPeers{name: "upstream-prometheus-3.16-alertmanager-0.35",
		prometheus:   e2eutil.Tool(t, "prometheus"),
		alertmanager: e2eutil.Tool(t, "alertmanager")}
}

// forEachPeers runs test once on Debian's peers and once on the current
// upstream ones, in parallel subtests; offset separates their loopback
// addresses (POPs on 127.0.0.x, central services on 127.0.x.1).
func forEachPeers(t *testing.T, test func(t *testing.T, peers centralPeers, offset int)) {
	for i, peers := range []func(*testing.T) centralPeers{debianPeers, upstreamPeers} {
		name := [...]string{"debian", "upstream"}[i]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := peers(t)
			t.Logf("peers: %s (%s, %s)", p.name, p.prometheus, p.alertmanager)
			test(t, p, i)
		})
	}
}

// stackOptions shape one run of the pipeline.
type stackOptions struct {
	peers         centralPeers
	pops          int
	prometheuses  int // replicas, each with the same config plus a replica label
	alertmanagers int // > 1: clustered with --cluster.peer
	// firstLoopback is the last byte of the first POP's 127.0.0.x address,
	// and host the loopback address of the central services, so that
	// parallel tests never compete for the same ports.
	firstLoopback int
	host          string
	// promConfig is the repository's Prometheus config to run, relative to
	// prometheus/ (default prometheus.yml), promTemplate adapts it to the
	// test's addresses (replica i listening on self), promFlags are extra
	// Prometheus flags.
	promConfig   string
	promTemplate func(t *testing.T, s *stack, src string, i int, self string) string
	promFlags    []string
	// ha runs the two-host setup of prometheus/ha/ as shipped: its
	// alertmanager.yml, gossip over mutual TLS, alertbridge over HTTPS,
	// each process started by the ExecStart of its systemd drop-in.
	ha bool
}

// centralPromTemplate adapts prometheus/prometheus.yml: only the global
// intervals (15 s -> 2 s) and the addresses of Alertmanager, the bridge and
// Prometheus itself change; the secrets and targets are in the places the
// file names, and the rules are copied verbatim.
func centralPromTemplate(t *testing.T, s *stack, src string, _ int, self string) string {
	amTargets := "'" + strings.Join(s.amAddrs, "', '") + "'"
	return templated(t, src,
		globalIntervals, shortIntervals,
		"      static_configs:\n        - targets: ['127.0.0.1:9093']\n\nscrape_configs:",
		"      static_configs:\n        - targets: ["+amTargets+"]\n\nscrape_configs:",
		"  - job_name: alertmanager\n    static_configs:\n      - targets: ['127.0.0.1:9093']",
		"  - job_name: alertmanager\n    static_configs:\n      - targets: ["+amTargets+"]",
		"'127.0.0.1:9746'", "'"+s.bridgeAddr+"'",
		"'127.0.0.1:9090'", "'"+self+"'",
	)
}

const (
	globalIntervals = "  scrape_interval: 15s\n  scrape_timeout: 10s\n  evaluation_interval: 15s\n"
	// 2 s scrapes with a 2 s timeout: short enough for a test of minutes,
	// long enough for a POP scrape on a busy 2-core CI machine.
	shortIntervals = "  scrape_interval: 2s\n  scrape_timeout: 2s\n  evaluation_interval: 1s\n"
)

type stack struct {
	t    *testing.T
	dir  string
	pops []*pop

	ntfy *fakenotify.Ntfy
	kuma *fakenotify.Kuma
	fake *fakenotify.Server

	bridgeAddr   string
	bridgeURL    string // http:// or, in the HA setup, https://
	promAddrs    []string
	amAddrs      []string
	clusterAddrs []string
	amCmds       []*exec.Cmd
	promCmds     []*exec.Cmd // in the HA setup
	amArgs       [][]string
	amBin        string
	promBin      string
	peers        centralPeers

	client    *http.Client // plain HTTP to Prometheus, Alertmanager, the bridge
	popClient *http.Client // TLS to the POPs
}

var popNames = []struct{ name, region string }{
	{"fra1", "eu-central"}, {"ams1", "eu-west"}, {"iad1", "us-east"}, {"sin1", "ap-southeast"},
}

func startStack(t *testing.T, o stackOptions) *stack {
	t.Helper()
	promBin, amBin := o.peers.prometheus, o.peers.alertmanager
	if promBin == "" || amBin == "" {
		t.Fatal("startStack: no Prometheus or Alertmanager binary in stackOptions.peers")
	}
	popBin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "telemetry")
	bridgeBin := e2eutil.BuildBinary(t, "./cmd/alertbridge")

	if o.host == "" {
		o.host = "127.0.0.1"
	}
	s := &stack{t: t, dir: t.TempDir(), amBin: amBin, promBin: promBin, peers: o.peers, client: &http.Client{Timeout: 5 * time.Second}}
	root := e2eutil.RepoRoot(t)

	// Secrets, in the places the repository's prometheus.yml names
	// (relative to the config file) and the POPs' web config.
	promDir := filepath.Join(s.dir, "prometheus")
	copyDir(t, filepath.Join(root, "prometheus"), promDir)
	cert := selfSignedCert(t, filepath.Join(s.dir, "tls"))
	caPEM, err := os.ReadFile(cert.certFile)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(promDir, "secrets", "pop-ca.crt"), caPEM, 0o644)
	writeFile(t, filepath.Join(promDir, "secrets", "pop-scrape-password"), []byte(scrapePassword+"\n"), 0o600)
	tokenFile := filepath.Join(s.dir, "alertbridge-token")
	writeFile(t, tokenFile, []byte(webhookToken+"\n"), 0o600)

	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	s.popClient = &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	// The same CA signs alertbridge's certificate in the HA setup.
	s.client.Transport = s.popClient.Transport

	// The POPs: TLS and bcrypt basic auth through exporter-toolkit.
	hash, err := bcrypt.GenerateFromPassword([]byte(scrapePassword), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	webConfig := filepath.Join(s.dir, "pop-web.yml")
	writeFile(t, webConfig, []byte(fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\nbasic_auth_users:\n  %s: %s\n",
		cert.certFile, cert.keyFile, scrapeUser, hash)), 0o600)
	var targets strings.Builder
	for i := 0; i < o.pops; i++ {
		n := popNames[i]
		p := &pop{name: n.name, region: n.region, bin: popBin,
			addr:      e2eutil.FreeAddr(t, fmt.Sprintf("127.0.0.%d", o.firstLoopback+i)),
			vaultDir:  filepath.Join(s.dir, n.name, "vaults"),
			accessLog: filepath.Join(s.dir, n.name, "access.log"),
		}
		for v := 0; v < 3+i; v++ {
			writeFile(t, filepath.Join(p.vaultDir, fmt.Sprintf("vault-%d.db", v)), make([]byte, 1024*(v+1)), 0o600)
		}
		writeFile(t, p.accessLog, nil, 0o644)
		p.args = []string{
			"--web.listen-address=" + p.addr,
			"--web.config.file=" + webConfig,
			"--vault.data-dir=" + p.vaultDir,
			"--accesslog.path=" + p.accessLog,
			"--accesslog.format=combined",
			"--accesslog.route=api=^/api/",
			"--accesslog.route=sync=^/sync",
			"--tarpit.log.file=" + filepath.Join(s.dir, n.name, "tarpit.log"),
			"--log.level=debug",
		}
		p.start(t)
		s.pops = append(s.pops, p)
		fmt.Fprintf(&targets, "- targets: ['%s']\n  labels:\n    pop: %s\n    region: %s\n", p.addr, p.name, p.region)
	}
	// The test's POPs replace the example targets.
	writeFile(t, filepath.Join(promDir, "targets", "pops.yml"), []byte(targets.String()), 0o644)
	s.writeAccessLogs(t)

	// Fake ntfy and Kuma, and the bridge in front of them.
	s.ntfy = fakenotify.NewNtfy(fakenotify.NtfyOptions{Tokens: map[string]bool{ntfyToken: true}})
	s.kuma = fakenotify.NewKuma(kumaToken)
	s.fake, err = fakenotify.StartServer(fakenotify.Mux(s.ntfy, s.kuma), net.JoinHostPort(o.host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.fake.Close)
	s.bridgeAddr = e2eutil.FreeAddr(t, o.host)
	bridgeArgs := []string{
		"--web.listen-address=" + s.bridgeAddr,
		"--webhook.token-file=" + tokenFile,
		"--spool.path=" + filepath.Join(s.dir, "alertbridge", "spool.db"),
		"--ntfy.url=" + s.fake.URL() + "/" + ntfyTopic,
		"--ntfy.token=" + ntfyToken,
		"--kuma.push-url=" + s.fake.URL() + "/api/push/" + kumaToken,
		"--delivery.backoff-min=100ms",
		"--log.level=debug",
	}
	s.bridgeURL = "http://" + s.bridgeAddr
	if o.ha {
		// On its own host the bridge serves HTTPS: the webhook's bearer
		// token crosses the network (prometheus/ha/alertmanager.yml).
		bridgeWeb := filepath.Join(s.dir, "alertbridge-web.yml")
		writeFile(t, bridgeWeb, []byte(fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", cert.certFile, cert.keyFile)), 0o600)
		bridgeArgs = append(bridgeArgs, "--web.config.file="+bridgeWeb)
		s.bridgeURL = "https://" + s.bridgeAddr
		writeFile(t, filepath.Join(promDir, "secrets", "alertbridge-ca.crt"), caPEM, 0o644)
	}
	e2eutil.StartProcess(t, bridgeBin, bridgeArgs...)

	// Addresses first: in the HA pair each replica scrapes both.
	for i := 0; i < o.alertmanagers; i++ {
		s.amAddrs = append(s.amAddrs, e2eutil.FreeAddr(t, o.host))
		if o.alertmanagers > 1 {
			s.clusterAddrs = append(s.clusterAddrs, e2eutil.FreeAddr(t, o.host))
		}
	}
	for i := 0; i < o.prometheuses; i++ {
		s.promAddrs = append(s.promAddrs, e2eutil.FreeAddr(t, o.host))
	}

	if o.ha {
		s.startHAAlertmanagers(t, promDir, tokenFile, cert)
	} else {
		// The repository's alertmanager.yml, with the bridge's address and
		// the token file templated; routing and timing untouched.
		amSrc, err := os.ReadFile(filepath.Join(root, "prometheus", "alertmanager.yml"))
		if err != nil {
			t.Fatal(err)
		}
		amConfig := filepath.Join(s.dir, "alertmanager.yml")
		writeFile(t, amConfig, []byte(templated(t, string(amSrc),
			"http://127.0.0.1:9746/webhook", s.bridgeURL+"/webhook",
			"/etc/alertmanager/alertbridge-token", tokenFile,
		)), 0o644)
		for i := range s.amAddrs {
			args := []string{
				"--config.file=" + amConfig,
				"--storage.path=" + filepath.Join(s.dir, fmt.Sprintf("alertmanager-%d", i)),
				"--web.listen-address=" + s.amAddrs[i],
				"--log.level=debug",
				"--cluster.listen-address=", // no cluster: no gossip port
			}
			s.amArgs = append(s.amArgs, args)
			s.amCmds = append(s.amCmds, e2eutil.StartProcess(t, amBin, args...))
		}
	}

	// Prometheus replica(s): the repository's prometheus.yml and rules,
	// rules copied verbatim; only the global intervals (15 s -> 2 s) and
	// the addresses of Alertmanager, the bridge and itself are templated.
	if o.promConfig == "" {
		o.promConfig, o.promTemplate = "prometheus.yml", centralPromTemplate
	}
	promSrc, err := os.ReadFile(filepath.Join(promDir, o.promConfig))
	if err != nil {
		t.Fatal(err)
	}
	for i, addr := range s.promAddrs {
		cfg := o.promTemplate(t, s, string(promSrc), i, addr)
		if o.ha {
			// The shipped file itself, templated in place, started by the
			// shipped systemd drop-in's ExecStart.
			writeFile(t, filepath.Join(promDir, o.promConfig), []byte(cfg), 0o644)
			s.startHAPrometheus(t, promDir, i)
			continue
		}
		// Next to the original, so its relative paths (rules, targets,
		// secrets) resolve the same way.
		path := filepath.Join(promDir, filepath.Dir(o.promConfig), fmt.Sprintf("e2e-prometheus-%d.yml", i))
		writeFile(t, path, []byte(cfg), 0o644)
		e2eutil.StartProcess(t, promBin, append([]string{
			"--config.file=" + path,
			"--storage.tsdb.path=" + filepath.Join(s.dir, fmt.Sprintf("tsdb-%d", i)),
			"--web.listen-address=" + addr,
			"--log.level=debug",
		}, o.promFlags...)...)
	}

	for _, a := range s.promAddrs {
		e2eutil.WaitHTTP(t, s.client, "http://"+a+"/-/ready", 200, 60*time.Second)
	}
	for _, a := range s.amAddrs {
		e2eutil.WaitHTTP(t, s.client, "http://"+a+"/-/ready", 200, 60*time.Second)
	}
	e2eutil.WaitHTTP(t, s.client, s.bridgeURL+"/-/healthy", 200, 30*time.Second)
	for _, p := range s.pops {
		s.waitPOP(t, p)
	}
	return s
}

// waitPOP waits until the POP answers /-/healthy over TLS with the scrape
// credentials (exporter-toolkit guards every path with basic auth).
func (s *stack) waitPOP(t *testing.T, p *pop) {
	t.Helper()
	eventually(t, 30*time.Second, 50*time.Millisecond, "POP "+p.name+" healthy", func() (bool, string) {
		req, _ := http.NewRequest("GET", "https://"+p.addr+"/-/healthy", nil)
		req.SetBasicAuth(scrapeUser, scrapePassword)
		resp, err := s.popClient.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		return resp.StatusCode == 200, resp.Status
	})
}

// writeAccessLogs keeps appending combined-format lines (with request time)
// to every POP's access log until the test ends: a few requests every
// 200 ms, a few of them 5xx, from documentation-range client addresses.
func (s *stack) writeAccessLogs(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait() })
	for _, p := range s.pops {
		f, err := os.OpenFile(p.accessLog, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.Close()
			rng := mrand.New(mrand.NewPCG(uint64(len(p.name)), 42))
			paths := []string{"/api/v1/items", "/api/v1/sync", "/sync/push", "/", "/favicon.ico"}
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case now := <-tick.C:
					var b strings.Builder
					for i := 0; i < 3; i++ {
						code := 200
						// 0.05% 5xx: within the 99.9% availability
						// SLO, or PopErrorBudgetBurnFast (critical)
						// would page and hold Kuma down.
						if rng.IntN(2000) == 0 {
							code = 503
						}
						fmt.Fprintf(&b, "203.0.113.%d - - [%s] \"GET %s HTTP/1.1\" %d %d \"-\" \"e2e-agent/1.0\" %.3f\n",
							rng.IntN(250)+1, now.UTC().Format("02/Jan/2006:15:04:05 -0700"), paths[rng.IntN(len(paths))],
							code, 200+rng.IntN(2000), 0.001+rng.Float64()*0.2)
					}
					if _, err := io.WriteString(f, b.String()); err != nil {
						return
					}
				}
			}
		}()
	}
}

// trapScanner sends a scanner-like request for an unknown path to every
// POP's listener; the HTTP tarpit holds it until the client gives up.
func (s *stack) trapScanner() {
	for _, p := range s.pops {
		c := &http.Client{Timeout: 1500 * time.Millisecond, Transport: s.popClient.Transport}
		req, _ := http.NewRequest("GET", "https://"+p.addr+"/wp-login.php", nil)
		req.SetBasicAuth(scrapeUser, scrapePassword)
		go func() {
			resp, err := c.Do(req)
			if err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}()
	}
}

// promQuery runs an instant query and returns the number of series (or 1
// for a scalar) and the raw result.
func (s *stack) promQuery(promAddr, q string) (int, string, error) {
	return s.promQueryWith(s.client.Get, promAddr, q)
}

// getPatiently is a GET for the one-shot reads that fail a test at once
// (those inside eventually retry anyway): a loaded CI machine can stall a
// Prometheus past the client's timeout for a few seconds, which says
// nothing of what is tested, so a transport error is tried again, up to
// four times in all, two seconds apart. An answer, whatever its status, is
// returned as it came.
func (s *stack) getPatiently(u string) (*http.Response, error) {
	var err error
	for attempt := range 4 {
		if attempt > 0 {
			s.t.Logf("GET %s: %v; trying again", u, err)
			time.Sleep(2 * time.Second)
		}
		var resp *http.Response
		if resp, err = s.client.Get(u); err == nil {
			return resp, nil
		}
	}
	return nil, err
}

func (s *stack) promQueryWith(get func(string) (*http.Response, error), promAddr, q string) (int, string, error) {
	resp, err := get("http://" + promAddr + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string            `json:"resultType"`
			Result     []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, string(b), fmt.Errorf("decode: %v: %s", err, b)
	}
	if r.Status != "success" {
		return 0, string(b), fmt.Errorf("query %q: %s %s", q, r.Status, r.Error)
	}
	if r.Data.ResultType == "scalar" {
		return 1, string(b), nil
	}
	return len(r.Data.Result), string(b), nil
}

type promAlert struct {
	Labels map[string]string `json:"labels"`
	State  string            `json:"state"`
}

func (s *stack) promAlerts(promAddr string) ([]promAlert, error) {
	resp, err := s.client.Get("http://" + promAddr + "/api/v1/alerts")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	return r.Data.Alerts, json.NewDecoder(resp.Body).Decode(&r)
}

type amAlert struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
}

func (s *stack) amAlerts(amAddr, filter string) ([]amAlert, error) {
	resp, err := s.client.Get("http://" + amAddr + "/api/v2/alerts?filter=" + url.QueryEscape(filter))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var r []amAlert
	return r, json.NewDecoder(resp.Body).Decode(&r)
}

// ntfyFor returns the fake ntfy's messages whose title names the status
// (FIRING, RESOLVED), the alert and, unless empty, the POP.
func (s *stack) ntfyFor(status, alertname, pop string) []fakenotify.Message {
	var out []fakenotify.Message
	for _, m := range s.ntfy.Messages() {
		words := strings.FieldsFunc(m.Title, func(r rune) bool { return strings.ContainsRune(" []():,", r) })
		has := func(w string) bool {
			for _, x := range words {
				if x == w {
					return true
				}
			}
			return false
		}
		if has(status) && has(alertname) && (pop == "" || has(pop) || announces(m.Message, pop)) {
			out = append(out, m)
		}
	}
	return out
}

// announces reports whether a page's body lists pop as news: in its New,
// Firing or Resolved list, not under "Still firing" (a group paged per
// region lists its POPs in the body, and a later page of the same group
// lists the earlier ones again as still firing).
func announces(body, pop string) bool {
	section := ""
	for _, line := range strings.Split(body, "\n") {
		if strings.HasPrefix(line, "**") && strings.HasSuffix(line, ":**") {
			section, _, _ = strings.Cut(strings.Trim(line, "*:"), " (")
			continue
		}
		item, ok := strings.CutPrefix(line, "- ")
		if ok && strings.ReplaceAll(item, `\`, "") == pop && (section == "New" || section == "Firing" || section == "Resolved") {
			return true
		}
	}
	return false
}

// eventually polls cond every interval until it reports true or timeout
// passes, then fails with cond's last explanation.
func eventually(t *testing.T, timeout, interval time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s: %s", what, timeout, last)
		}
		time.Sleep(interval)
	}
}

// promValue runs an instant query and returns the first sample's value.
func (s *stack) promValue(promAddr, q string) (float64, bool, error) {
	_, raw, err := s.promQuery(promAddr, q)
	if err != nil {
		return 0, false, err
	}
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(raw), &r); err != nil || len(r.Data.Result) == 0 {
		return 0, false, err
	}
	str, _ := r.Data.Result[0].Value[1].(string)
	var v float64
	_, err = fmt.Sscan(str, &v)
	return v, err == nil, err
}

// kumaPushes returns the fake Kuma's pushes, oldest first.
func (s *stack) kumaPushes() []fakenotify.Push { return s.kuma.Pushes() }

// bridgeMetric returns the value of one sample line of alertbridge's
// /metrics, e.g. `clavis_alertbridge_notifications_sent_total{target="ntfy"}`.
func (s *stack) bridgeMetric(series string) (float64, bool) {
	resp, err := s.client.Get(s.bridgeURL + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v, true
			}
		}
	}
	return 0, false
}

func decodeJSON(r io.Reader, v any) error { return json.NewDecoder(r).Decode(v) }

func newHTTPClient() *http.Client { return &http.Client{Timeout: 5 * time.Second} }

// promFirstSample returns the timestamp of the earliest raw sample of the
// series selected by sel in the last 15 minutes whose value passes keep
// (nil: any), as Prometheus recorded it (a range-vector query returns the
// stored samples with their own timestamps).
func (s *stack) promFirstSample(t *testing.T, promAddr, sel string, keep func(float64) bool) time.Time {
	t.Helper()
	_, raw, err := s.promQueryWith(s.getPatiently, promAddr, sel+"[15m]")
	if err != nil {
		t.Fatalf("samples of %s: %v", sel, err)
	}
	var r struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal([]byte(raw), &r); err != nil {
		t.Fatal(err)
	}
	var first time.Time
	for _, series := range r.Data.Result {
		for _, v := range series.Values {
			ts, _ := v[0].(float64)
			str, _ := v[1].(string)
			var val float64
			if _, err := fmt.Sscan(str, &val); err != nil || (keep != nil && !keep(val)) {
				continue
			}
			at := time.UnixMilli(int64(ts*1000 + 0.5))
			if first.IsZero() || at.Before(first) {
				first = at
			}
		}
	}
	if first.IsZero() {
		t.Fatalf("no matching sample of %s in the last 15 minutes: %s", sel, raw)
	}
	return first
}

// promActiveAt returns when Prometheus's alert alertname for pop went
// pending (the activeAt of /api/v1/alerts).
func (s *stack) promActiveAt(t *testing.T, promAddr, alertname, pop string) time.Time {
	t.Helper()
	resp, err := s.getPatiently("http://" + promAddr + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Alerts []struct {
				Labels   map[string]string `json:"labels"`
				ActiveAt time.Time         `json:"activeAt"`
			} `json:"alerts"`
		} `json:"data"`
	}
	if err := decodeJSON(resp.Body, &r); err != nil {
		t.Fatal(err)
	}
	for _, a := range r.Data.Alerts {
		if a.Labels["alertname"] == alertname && a.Labels["pop"] == pop {
			return a.ActiveAt
		}
	}
	t.Fatalf("no %s alert for %s in %+v", alertname, pop, r.Data.Alerts)
	return time.Time{}
}
