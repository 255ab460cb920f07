package collector

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
	"github.com/clavitor/clavis-telemetry/privacy"
	"github.com/clavitor/clavis-telemetry/tarpit"
)

type snapshotSource tarpit.Snapshot

func (s snapshotSource) Snapshot() tarpit.Snapshot { return tarpit.Snapshot(s) }

func TestTarpitCollectorWithoutTarpit(t *testing.T) {
	t.Parallel()
	ms, err := collectAll(newTarpitCollector(nil))
	if err != nil {
		t.Fatalf("no tarpit must not be an error: %v", err)
	}
	if len(ms) != 0 {
		t.Fatalf("no tarpit: want no metrics, got %d", len(ms))
	}
}

func TestTarpitCollectorExportsSnapshot(t *testing.T) {
	t.Parallel()
	src := snapshotSource{
		Protocols: map[string]tarpit.ProtocolStats{
			"ssh":  {Connections: 7, Active: 2, TrappedSeconds: 81.5, BytesSent: 1234},
			"http": {Connections: 1, Active: 0, TrappedSeconds: 3, BytesSent: 40},
		},
		Rejected:         map[string]uint64{"max_clients": 4, "per_source": 1},
		UniqueSources24h: 5,
		LogDropped:       2,

		UntrustedProxyHeaders: 3,
	}
	want := `# HELP clavis_tarpit_active_connections Connections trapped right now, by protocol.
# TYPE clavis_tarpit_active_connections gauge
clavis_tarpit_active_connections{protocol="http"} 0
clavis_tarpit_active_connections{protocol="ssh"} 2
# HELP clavis_tarpit_bytes_sent_total Bytes the tarpit has dripped to trapped connections, by protocol.
# TYPE clavis_tarpit_bytes_sent_total counter
clavis_tarpit_bytes_sent_total{protocol="http"} 40
clavis_tarpit_bytes_sent_total{protocol="ssh"} 1234
# HELP clavis_tarpit_connections_total Connections trapped by the tarpit, by protocol (ssh, http).
# TYPE clavis_tarpit_connections_total counter
clavis_tarpit_connections_total{protocol="http"} 1
clavis_tarpit_connections_total{protocol="ssh"} 7
# HELP clavis_tarpit_log_dropped_total Scanner-log lines dropped because the log writer fell behind or failed.
# TYPE clavis_tarpit_log_dropped_total counter
clavis_tarpit_log_dropped_total 2
# HELP clavis_tarpit_proxy_headers_untrusted_total PROXY headers sent by clients that are not a --tarpit.proxy-protocol.trusted balancer: ignored, the client is taken by its own address.
# TYPE clavis_tarpit_proxy_headers_untrusted_total counter
clavis_tarpit_proxy_headers_untrusted_total 3
# HELP clavis_tarpit_rejected_total Connections the tarpit closed at once instead of trapping, by reason (max_clients, per_source, accept_error, proxy_header, shutdown).
# TYPE clavis_tarpit_rejected_total counter
clavis_tarpit_rejected_total{reason="max_clients"} 4
clavis_tarpit_rejected_total{reason="per_source"} 1
# HELP clavis_tarpit_trapped_seconds_total Time scanners have spent trapped, summed over closed and open connections, by protocol.
# TYPE clavis_tarpit_trapped_seconds_total counter
clavis_tarpit_trapped_seconds_total{protocol="http"} 3
clavis_tarpit_trapped_seconds_total{protocol="ssh"} 81.5
# HELP clavis_tarpit_unique_sources_24h Estimated distinct source addresses trapped over the last 24 hours (HyperLogLog; the addresses are not kept).
# TYPE clavis_tarpit_unique_sources_24h gauge
clavis_tarpit_unique_sources_24h 5
` + successHelp + `clavis_scrape_collector_success{collector="tarpit"} 1
`
	compareCollector(t, "tarpit", newTarpitCollector(src), want,
		"clavis_tarpit_active_connections", "clavis_tarpit_bytes_sent_total", "clavis_tarpit_connections_total",
		"clavis_tarpit_log_dropped_total", "clavis_tarpit_proxy_headers_untrusted_total", "clavis_tarpit_rejected_total", "clavis_tarpit_trapped_seconds_total",
		"clavis_tarpit_unique_sources_24h")
}

// TestTarpitSourceAddressesOnlyInScannerLog traps real connections from
// several loopback source addresses and checks that the exposition (through
// the privacy gate, as /metrics serves it) counts them without naming any,
// while the local scanner log names every one.
func TestTarpitSourceAddressesOnlyInScannerLog(t *testing.T) {
	t.Parallel()
	logFile := filepath.Join(t.TempDir(), "tarpit.log")
	cfg := tarpit.DefaultConfig()
	cfg.SSHListenAddresses = []string{"127.0.0.1:0"}
	cfg.Interval = 50 * time.Millisecond
	cfg.LogFile = logFile
	tp, err := tarpit.New(cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- tp.Run(ctx) }()
	defer func() { cancel(); <-runDone }()

	addr := tp.SSHAddrs()[0].String()
	sources := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"}
	var conns []net.Conn
	for _, src := range sources {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 2 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial from %s: %v", src, err)
		}
		conns = append(conns, c)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		line, err := bufio.NewReader(c).ReadString('\n')
		if err != nil {
			t.Fatalf("from %s: no tarpit line: %v", src, err)
		}
		if strings.HasPrefix(line, "SSH-") {
			t.Fatalf("tarpit sent a banner: %q", line)
		}
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(AsPrometheus("tarpit", newTarpitCollector(tp)))
	mfs, err := privacy.NewGate(reg, nil).Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	enc := expfmt.NewEncoder(&buf, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	out := buf.String()
	for _, want := range []string{
		`clavis_tarpit_connections_total{protocol="ssh"} 5`,
		`clavis_tarpit_active_connections{protocol="ssh"} 5`,
		fmt.Sprintf("clavis_tarpit_unique_sources_24h %d", wantUniqueSources(5)),
		`clavis_privacy_redactions_total{reason="ip_address"} 0`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("exposition lacks %q:\n%s", want, out)
		}
	}
	for _, src := range append(sources, "127.0.0.1") {
		if strings.Contains(out, src) {
			t.Errorf("exposition names source address %s:\n%s", src, out)
		}
	}
	if promtool := lookPromtool(t); promtool != "" {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(out)
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, b)
		}
	}

	for _, c := range conns {
		c.Close()
	}
	cancel()
	<-runDone // closes every client and flushes the scanner log
	runDone <- nil

	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	events := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var e struct {
			Event      string `json:"event"`
			Protocol   string `json:"protocol"`
			RemoteAddr string `json:"remote_addr"`
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("scanner log line %q: %v", line, err)
		}
		events[fmt.Sprintf("%s %s %s", e.Event, e.Protocol, e.RemoteAddr)]++
	}
	for _, src := range sources {
		for _, ev := range []string{"open", "close"} {
			if events[ev+" ssh "+src] != 1 {
				t.Errorf("scanner log: want one %s event from %s, got %d (log: %s)", ev, src, events[ev+" ssh "+src], b)
			}
		}
	}
}

func lookPromtool(t *testing.T) string {
	t.Helper()
	return e2eutil.RequireBinary(t, "promtool")
}
