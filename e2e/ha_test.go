package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v2"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// The two-host setup of prometheus/ha/, as shipped: ha/prometheus.yml on
// both replicas, ha/alertmanager.yml on both Alertmanagers, gossip over
// mutual TLS (ha/alertmanager-cluster-tls.yml), one alertbridge over
// HTTPS, and every process started by the ExecStart line of its systemd
// drop-in under ha/systemd/. Only host:port pairs, file paths and the
// global intervals are templated.

const (
	haPromUnit = "ha/systemd/prometheus.service.d/clavis-ha.conf"
	haAMUnit   = "ha/systemd/prometheus-alertmanager.service.d/clavis-ha.conf"
)

// quoted renders addresses as a YAML flow list's items: 'a', 'b'.
func quoted(addrs []string) string { return "'" + strings.Join(addrs, "', '") + "'" }

// haPromTemplate adapts prometheus/ha/prometheus.yml: the global intervals
// and the host:port of every peer. `replica: ${CLAVIS_REPLICA}` stays as
// it is: Prometheus expands it from the environment the drop-in gives.
func haPromTemplate(t *testing.T, s *stack, src string, _ int, _ string) string {
	return templated(t, src,
		globalIntervals, shortIntervals,
		"'alertmanager-a.central.example.net:9093', 'alertmanager-b.central.example.net:9093'", quoted(s.amAddrs),
		"'alertbridge.central.example.net:9746'", "'"+s.bridgeAddr+"'",
		"'prometheus-a.central.example.net:9090', 'prometheus-b.central.example.net:9090'", quoted(s.promAddrs),
	)
}

// unitCommand returns the argv of the last non-empty key= line (ExecStart,
// ExecStartPre) of a systemd unit or drop-in, as systemd builds it:
// backslash-newline continuations joined, each old string of repl replaced
// (every one must occur), words split on blanks with '...' and "..."
// quoting, "$$" a literal "$", and ${NAME} replaced by env's value (empty
// when unset, like systemd).
func unitCommand(t *testing.T, path, key string, env map[string]string, repl ...string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var line string
	for _, l := range strings.Split(strings.ReplaceAll(string(b), "\\\n", " "), "\n") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(l), key+"="); ok && strings.TrimSpace(v) != "" {
			line = v
		}
	}
	if line == "" {
		t.Fatalf("%s: no %s= line", path, key)
	}
	line = templated(t, line, repl...)
	var args []string
	var cur strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote == 0 && (c == '\'' || c == '"'):
			quote, inWord = c, true
		case quote == 0 && (c == ' ' || c == '\t'):
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '$' && strings.HasPrefix(line[i:], "$$"):
			cur.WriteByte('$')
			i++
			inWord = true
		case c == '$' && strings.HasPrefix(line[i:], "${"):
			end := strings.IndexByte(line[i:], '}')
			if end < 0 {
				t.Fatalf("%s: unterminated ${ in %s", path, line)
			}
			cur.WriteString(env[line[i+2:i+end]])
			i += end
			inWord = true
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		t.Fatalf("%s: unterminated quote in %s", path, line)
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args
}

// envList renders env as NAME=value entries, after a base environment in
// which none of env's names is set (so that "unset" is tested as unset).
func envList(env map[string]string, unset ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		skip := false
		for _, u := range unset {
			skip = skip || name == u
		}
		if _, ok := env[name]; !ok && !skip {
			out = append(out, kv)
		}
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// runExecStartPre runs a drop-in's ExecStartPre with env (and names in
// unset removed from the environment), as systemd would before ExecStart.
func runExecStartPre(t *testing.T, unit string, env map[string]string, unset ...string) (string, error) {
	t.Helper()
	args := unitCommand(t, unit, "ExecStartPre", env)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Env = envList(env, unset...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// startHAAlertmanagers starts the two clustered Alertmanagers through the
// shipped drop-in, with ha/alertmanager.yml and the gossip TLS config.
func (s *stack) startHAAlertmanagers(t *testing.T, promDir, tokenFile string, cert certPair) {
	t.Helper()
	if len(s.amAddrs) != 2 {
		t.Fatalf("the HA setup has two Alertmanagers, not %d", len(s.amAddrs))
	}
	certPEM, err := os.ReadFile(cert.certFile)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM, err := os.ReadFile(cert.keyFile)
	if err != nil {
		t.Fatal(err)
	}
	bridgeCA := filepath.Join(s.dir, "alertbridge-ca.crt")
	writeFile(t, bridgeCA, certPEM, 0o644)
	amPath := filepath.Join(promDir, "ha", "alertmanager.yml")
	src, err := os.ReadFile(amPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, amPath, []byte(templated(t, string(src),
		"alertbridge.central.example.net:9746", s.bridgeAddr,
		"/etc/alertmanager/alertbridge-token", tokenFile,
		"/etc/alertmanager/alertbridge-ca.crt", bridgeCA,
	)), 0o644)
	// Where ha/alertmanager-cluster-tls.yml looks (relative to itself). One
	// certificate for both loopback peers; on two hosts each has its own.
	writeFile(t, filepath.Join(promDir, "secrets", "alertmanager-cluster.crt"), certPEM, 0o644)
	writeFile(t, filepath.Join(promDir, "secrets", "alertmanager-cluster.key"), keyPEM, 0o600)
	writeFile(t, filepath.Join(promDir, "secrets", "alertmanager-cluster-ca.crt"), certPEM, 0o644)

	unit := filepath.Join(promDir, haAMUnit)
	for i := range s.amAddrs {
		env := map[string]string{"CLAVIS_AM_ADVERTISE": s.clusterAddrs[i], "CLAVIS_AM_PEER": s.clusterAddrs[1-i]}
		if out, err := runExecStartPre(t, unit, env); err != nil {
			t.Fatalf("%s ExecStartPre refused a complete environment: %v\n%s", unit, err, out)
		}
		args := unitCommand(t, unit, "ExecStart", env,
			"/usr/bin/prometheus-alertmanager", s.amBin,
			"/etc/prometheus/clavis", promDir,
			"/var/lib/prometheus/alertmanager/", filepath.Join(s.dir, fmt.Sprintf("alertmanager-%d", i)),
			"0.0.0.0:9093", s.amAddrs[i],
			"0.0.0.0:9094", s.clusterAddrs[i],
		)
		// Loopback gossip settles fast; the defaults are for WANs.
		args = append(args, "--log.level=debug",
			"--cluster.settle-timeout=5s", "--cluster.pushpull-interval=5s", "--cluster.gossip-interval=200ms")
		s.amArgs = append(s.amArgs, args[1:])
		s.amCmds = append(s.amCmds, e2eutil.StartProcessEnv(t, envList(env), args[0], args[1:]...))
	}
}

// startHAPrometheus starts replica i (a, b) through the shipped drop-in.
func (s *stack) startHAPrometheus(t *testing.T, promDir string, i int) {
	t.Helper()
	unit := filepath.Join(promDir, haPromUnit)
	env := map[string]string{"CLAVIS_REPLICA": string(rune('a' + i))}
	if out, err := runExecStartPre(t, unit, env); err != nil {
		t.Fatalf("%s ExecStartPre refused CLAVIS_REPLICA=%s: %v\n%s", unit, env["CLAVIS_REPLICA"], err, out)
	}
	args := unitCommand(t, unit, "ExecStart", env,
		"/usr/bin/prometheus", s.promBin,
		"/etc/prometheus/clavis", promDir,
		"/var/lib/prometheus/metrics2/", filepath.Join(s.dir, fmt.Sprintf("tsdb-%d", i)),
		"0.0.0.0:9090", s.promAddrs[i],
	)
	args = append(args, "--log.level=debug")
	s.promCmds = append(s.promCmds, e2eutil.StartProcessEnv(t, envList(env), args[0], args[1:]...))
}

// TestHAUnitsRefuseToStartWithoutIdentity: the shipped drop-ins stop the
// start, loudly, when a replica's name or an Alertmanager's cluster
// addresses are missing, instead of running with the replica label gone
// (3.x), the literal "${CLAVIS_REPLICA}" (2.x without the feature flag) or
// a guessed advertise address; and systemd accepts them.
func TestHAUnitsRefuseToStartWithoutIdentity(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(e2eutil.RepoRoot(t), "prometheus")
	promUnit, amUnit := filepath.Join(dir, haPromUnit), filepath.Join(dir, haAMUnit)
	for _, c := range []struct {
		unit    string
		env     map[string]string
		unset   []string
		ok      bool
		message string
	}{
		{promUnit, map[string]string{}, []string{"CLAVIS_REPLICA"}, false, "CLAVIS_REPLICA is unset or empty"},
		{promUnit, map[string]string{"CLAVIS_REPLICA": ""}, nil, false, "CLAVIS_REPLICA is unset or empty"},
		{promUnit, map[string]string{"CLAVIS_REPLICA": "a"}, nil, true, ""},
		{amUnit, map[string]string{}, []string{"CLAVIS_AM_ADVERTISE", "CLAVIS_AM_PEER"}, false, "set CLAVIS_AM_ADVERTISE"},
		{amUnit, map[string]string{"CLAVIS_AM_ADVERTISE": "192.0.2.10:9094"}, []string{"CLAVIS_AM_PEER"}, false, "CLAVIS_AM_PEER"},
		{amUnit, map[string]string{"CLAVIS_AM_ADVERTISE": "192.0.2.10:9094", "CLAVIS_AM_PEER": "alertmanager-b.central.example.net:9094"}, nil, true, ""},
	} {
		out, err := runExecStartPre(t, c.unit, c.env, c.unset...)
		if c.ok && err != nil {
			t.Errorf("%s with %v: refused: %v %s", filepath.Base(filepath.Dir(c.unit)), c.env, err, out)
		}
		if !c.ok && (err == nil || !strings.Contains(out, c.message)) {
			t.Errorf("%s with %v: err %v, output %q; want a refusal saying %q", filepath.Base(filepath.Dir(c.unit)), c.env, err, out, c.message)
		}
	}
	// The environment file is required (no "-" before its path): without
	// it systemd does not start the service at all.
	for _, unit := range []string{promUnit, amUnit} {
		b, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), "\nEnvironmentFile=/etc/prometheus/clavis/ha/") {
			t.Errorf("%s: no required EnvironmentFile= under /etc/prometheus/clavis/ha/", unit)
		}
	}
	// systemd's own parser, on each drop-in made a unit of its own.
	analyze := e2eutil.RequireBinary(t, "systemd-analyze")
	for _, unit := range []string{promUnit, amUnit} {
		b, err := os.ReadFile(unit)
		if err != nil {
			t.Fatal(err)
		}
		body := string(b)
		// The binaries' Debian paths, where this machine has them.
		body = strings.ReplaceAll(body, "/usr/bin/prometheus-alertmanager", e2eutil.RequireBinary(t, "prometheus-alertmanager"))
		body = strings.ReplaceAll(body, "/usr/bin/prometheus ", e2eutil.RequireBinary(t, "prometheus")+" ")
		path := filepath.Join(t.TempDir(), "clavis-ha-test.service")
		writeFile(t, path, []byte("[Unit]\nDescription=clavis HA drop-in under test\n"+body), 0o644)
		out, err := exec.Command(analyze, "verify", path).CombinedOutput()
		if err != nil || strings.Contains(string(out), "clavis-ha-test.service:") {
			t.Errorf("systemd-analyze verify %s: %v\n%s", unit, err, out)
		}
	}
}

// TestHAAlertmanagerConfigMatchesSingleHost: ha/alertmanager.yml is
// ../alertmanager.yml but for the webhook's URL (the bridge's host, over
// HTTPS) and the CA that checks it, so routing and inhibition cannot drift
// apart between the single-host and the HA setup.
func TestHAAlertmanagerConfigMatchesSingleHost(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(e2eutil.RepoRoot(t), "prometheus")
	var single, ha map[any]any
	readYAML(t, filepath.Join(dir, "alertmanager.yml"), &single)
	readYAML(t, filepath.Join(dir, "ha", "alertmanager.yml"), &ha)
	receivers, _ := ha["receivers"].([]any)
	n := 0
	for _, r := range receivers {
		hooks, _ := r.(map[any]any)["webhook_configs"].([]any)
		for _, h := range hooks {
			h := h.(map[any]any)
			if h["url"] != "https://alertbridge.central.example.net:9746/webhook" {
				t.Errorf("ha/alertmanager.yml webhook url %v, want the bridge's host over HTTPS", h["url"])
			}
			hc, _ := h["http_config"].(map[any]any)
			tc, _ := hc["tls_config"].(map[any]any)
			if tc["ca_file"] != "/etc/alertmanager/alertbridge-ca.crt" {
				t.Errorf("ha/alertmanager.yml webhook tls_config %v, want ca_file /etc/alertmanager/alertbridge-ca.crt", tc)
			}
			h["url"] = "http://127.0.0.1:9746/webhook"
			delete(hc, "tls_config")
			n++
		}
	}
	if n == 0 {
		t.Fatal("ha/alertmanager.yml has no webhook receivers")
	}
	if !reflect.DeepEqual(single, ha) {
		a, _ := yaml.Marshal(single)
		b, _ := yaml.Marshal(ha)
		t.Errorf("ha/alertmanager.yml differs from alertmanager.yml beyond the webhook URL and CA:\n--- alertmanager.yml\n%s\n--- ha/alertmanager.yml (URL and CA normalised)\n%s", a, b)
	}
}

// TestHAPipelineNotifiesOnce runs the HA setup on loopback, on Debian's
// peers and on the current upstream ones: a POP outage reaches the fake
// ntfy exactly once, and so does a second outage while one Alertmanager is
// stopped; the gossip is mutual TLS; and when one Prometheus replica dies,
// the other pages about it.
func TestHAPipelineNotifiesOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("end to end: real Prometheus and Alertmanager, several minutes")
	}
	t.Parallel()
	forEachPeers(t, func(t *testing.T, peers centralPeers, i int) {
		s := startStack(t, stackOptions{peers: peers, pops: 2, prometheuses: 2, alertmanagers: 2,
			firstLoopback: 10 + 2*i, host: fmt.Sprintf("127.0.2.%d", 1+i),
			promConfig: "ha/prometheus.yml", promTemplate: haPromTemplate, ha: true})
		haPipeline(t, s)
	})
}

func haPipeline(t *testing.T, s *stack) {
	for r, prom := range s.promAddrs {
		eventually(t, 60*time.Second, 500*time.Millisecond, "both POPs and both replicas up on "+prom, func() (bool, string) {
			pops, ok1, err1 := s.promValue(prom, `sum(up{job="clavis-pop"})`)
			proms, ok2, err2 := s.promValue(prom, `sum(up{job="prometheus"})`)
			return ok1 && ok2 && pops == 2 && proms == 2, fmt.Sprintf("POPs up %v, replicas up %v (%v %v)", pops, proms, err1, err2)
		})
		// Both Alertmanagers are known to each replica.
		eventually(t, 30*time.Second, 500*time.Millisecond, "both Alertmanagers discovered by "+prom, func() (bool, string) {
			v, ok, err := s.promValue(prom, `prometheus_notifications_alertmanagers_discovered`)
			return ok && v == 2, fmt.Sprintf("discovered=%v ok=%v err=%v", v, ok, err)
		})
		// The bridge is scraped over HTTPS.
		eventually(t, 30*time.Second, 500*time.Millisecond, "alertbridge scraped over HTTPS by "+prom, func() (bool, string) {
			v, ok, err := s.promValue(prom, `up{job="alertbridge"}`)
			return ok && v == 1, fmt.Sprintf("up=%v ok=%v err=%v", v, ok, err)
		})
		// The replica label came from CLAVIS_REPLICA: federation shows
		// the external labels.
		want := fmt.Sprintf(`replica="%c"`, 'a'+r)
		resp, err := s.client.Get("http://" + prom + `/federate?match[]=up{job="prometheus"}`)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), want) {
			t.Errorf("replica %s: federated series lack %s:\n%s", prom, want, b)
		}
	}
	// The cluster has formed, over mutual TLS.
	for _, am := range s.amAddrs {
		eventually(t, 30*time.Second, 500*time.Millisecond, "Alertmanager cluster of two at "+am, func() (bool, string) {
			resp, err := s.client.Get("http://" + am + "/api/v2/status")
			if err != nil {
				return false, err.Error()
			}
			defer resp.Body.Close()
			var st struct {
				Cluster struct {
					Status string `json:"status"`
					Peers  []any  `json:"peers"`
				} `json:"cluster"`
			}
			if err := decodeJSON(resp.Body, &st); err != nil {
				return false, err.Error()
			}
			return st.Cluster.Status == "ready" && len(st.Cluster.Peers) == 2, fmt.Sprintf("%+v", st.Cluster)
		})
	}
	s.checkGossipTLS(t)

	// Outage 1, with the whole cluster up. Outage 2 starts a minute later;
	// once outage 1 has paged, the first Alertmanager is stopped, so
	// outage 2 is notified by the survivor alone.
	first, second := s.pops[0], s.pops[1]
	first.stop(t)
	time.Sleep(time.Minute)
	second.stop(t)

	eventually(t, 3*time.Minute, time.Second, "outage 1 paged", func() (bool, string) {
		return len(s.ntfyFor("FIRING", "PopDown", first.name)) > 0, fmt.Sprintf("ntfy titles %v", titles(s))
	})
	_ = s.amCmds[0].Process.Signal(os.Interrupt)
	t.Logf("stopped Alertmanager %s", s.amAddrs[0])

	eventually(t, 3*time.Minute, time.Second, "outage 2 paged with one Alertmanager stopped", func() (bool, string) {
		return len(s.ntfyFor("FIRING", "PopDown", second.name)) > 0, fmt.Sprintf("ntfy titles %v", titles(s))
	})
	// Both replicas evaluated the alert: the single page is deduplication,
	// not one replica being silent.
	for _, prom := range s.promAddrs {
		v, ok, err := s.promValue(prom, fmt.Sprintf(`ALERTS{alertname="PopDown", alertstate="firing", pop=%q}`, second.name))
		if !ok || v != 1 {
			t.Errorf("Prometheus %s: PopDown for %s not firing (%v %v %v)", prom, second.name, v, ok, err)
		}
	}
	// The alert Alertmanager holds carries no replica label.
	alerts, err := s.amAlerts(s.amAddrs[1], `alertname="PopDown"`)
	if err != nil || len(alerts) != 2 {
		t.Fatalf("surviving Alertmanager holds %d PopDown alerts (%v), want 2", len(alerts), err)
	}
	for _, a := range alerts {
		if _, ok := a.Labels["replica"]; ok {
			t.Errorf("alert %v kept the replica label", a.Labels)
		}
	}

	// Replica b dies: replica a, scraping it, pages about it (warning)
	// through the surviving Alertmanager. Nothing else would tell: the
	// Watchdog keeps beating from a.
	_ = s.promCmds[1].Process.Signal(os.Interrupt)
	t.Logf("stopped Prometheus replica b at %s", s.promAddrs[1])
	eventually(t, 4*time.Minute, time.Second, "PrometheusReplicaDown paged", func() (bool, string) {
		return len(s.ntfyFor("FIRING", "PrometheusReplicaDown", "")) > 0, fmt.Sprintf("ntfy titles %v", titles(s))
	})
	down := s.ntfyFor("FIRING", "PrometheusReplicaDown", "")[0]
	if !strings.Contains(down.Message, s.promAddrs[1]) {
		t.Errorf("PrometheusReplicaDown page %q does not name the dead replica %s", down.Message, s.promAddrs[1])
	}

	// By now the second Alertmanager of the cluster has long passed its
	// --cluster.peer-timeout (15 s) for both outages' notifications: each
	// reached ntfy once.
	for _, p := range []*pop{first, second} {
		if n := len(s.ntfyFor("FIRING", "PopDown", p.name)); n != 1 {
			t.Errorf("%d PopDown %s pages at ntfy, want exactly 1 (titles: %v)", n, p.name, titles(s))
		}
	}
	if n := len(s.ntfyFor("FIRING", "PrometheusReplicaDown", "")); n != 1 {
		t.Errorf("%d PrometheusReplicaDown pages at ntfy, want exactly 1 (titles: %v)", n, titles(s))
	}
}

// checkGossipTLS proves the cluster port speaks mutual TLS only: a client
// with a certificate from the cluster CA completes a handshake, one without
// is refused, and no UDP gossip port is open (memberlist's plain transport
// binds UDP on the same port; the TLS transport does not).
func (s *stack) checkGossipTLS(t *testing.T) {
	t.Helper()
	promDir := filepath.Join(s.dir, "prometheus", "secrets")
	pair, err := tls.LoadX509KeyPair(filepath.Join(promDir, "alertmanager-cluster.crt"), filepath.Join(promDir, "alertmanager-cluster.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(promDir, "alertmanager-cluster-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	for _, addr := range s.clusterAddrs {
		host, _, _ := net.SplitHostPort(addr)
		handshake := func(certs []tls.Certificate) error {
			d := &net.Dialer{Timeout: 5 * time.Second}
			c, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{RootCAs: pool, ServerName: host, Certificates: certs})
			if err != nil {
				return err
			}
			defer c.Close()
			// TLS 1.3 reports a refused client certificate on the first read.
			_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
			_, err = c.Read(make([]byte, 1))
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				return nil
			}
			return err
		}
		if err := handshake([]tls.Certificate{pair}); err != nil {
			t.Errorf("gossip %s: TLS handshake with the cluster certificate failed: %v", addr, err)
		}
		if err := handshake(nil); err == nil {
			t.Errorf("gossip %s: a client without a certificate was accepted", addr)
		}
		if c, err := net.ListenPacket("udp", addr); err != nil {
			t.Errorf("gossip %s: UDP port in use (%v): plain memberlist transport, not TLS", addr, err)
		} else {
			c.Close()
		}
	}
}
