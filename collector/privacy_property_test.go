package collector

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"pgregory.net/rapid"

	"github.com/clavitor/clavis-telemetry/privacy"
	"github.com/clavitor/clavis-telemetry/privacy/privacytest"
)

// The privacy property: whatever the access log and the vault directory
// hold, no client address (in any textual form), request path, vault or
// entry identifier, query string, user agent, referrer or vault file name
// appears in any byte of /metrics, in any exposition format, or in the log
// lines the exporter writes. Inputs come from rapid, both as a property
// test and as a fuzz target (rapid.MakeFuzz), and pass through the real
// collectors built from their flags (vault and, once registered, accesslog)
// plus a deliberately leaky collector that puts addresses straight into
// allowed labels, which the gate alone must stop.

// lockedBuffer is a log sink written by the collectors' goroutines and read
// by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// leakySet is a buggy collector: it exports the values it is given as
// label values of allowed families (ones the real collectors in this POP do
// not emit, so help texts do not clash).
type leakySet struct {
	mu     sync.Mutex
	values []string
}

var (
	leakyTarpitDesc = prometheus.NewDesc("clavis_tarpit_rejected_total", "leaky test collector", []string{"reason"}, nil)
	leakyFSDesc     = prometheus.NewDesc("clavis_filesystem_size_bytes", "leaky test collector", []string{"device", "mountpoint", "fstype"}, nil)
)

func (l *leakySet) set(v []string) {
	l.mu.Lock()
	l.values = slices.Clone(v)
	l.mu.Unlock()
}

func (l *leakySet) Update(_ context.Context, ch chan<- prometheus.Metric) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	seen := map[string]bool{}
	for i, v := range l.values {
		if seen[v] {
			continue // the registry refuses duplicate series
		}
		seen[v] = true
		ch <- prometheus.MustNewConstMetric(leakyTarpitDesc, prometheus.CounterValue, 1, v)
		ch <- prometheus.MustNewConstMetric(leakyFSDesc, prometheus.GaugeValue, 1, "sd"+strconv.Itoa(i), v, "ext4")
	}
	return nil
}

// privacyPOP is one exporter under test: real collectors reading a log
// file and a vault directory that grow from check to check.
type privacyPOP struct {
	tb        testing.TB
	inner     *prometheus.Registry
	handler   http.Handler
	gate      *privacy.Gate
	leaky     *leakySet
	logs      *lockedBuffer
	logPath   string
	vaultDir  string
	accesslog bool
	lines     int // written to the access log so far
	vaults    int // vault files created so far
}

func newPrivacyPOP(tb testing.TB) *privacyPOP {
	p := &privacyPOP{tb: tb, leaky: &leakySet{}, logs: &lockedBuffer{}}
	p.vaultDir = tb.TempDir()
	p.logPath = filepath.Join(tb.TempDir(), "access.log")
	if err := os.WriteFile(p.logPath, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(p.logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	enable := []string{"vault"}
	if slices.Contains(Names(), "accesslog") {
		enable = append(enable, "accesslog")
		p.accesslog = true
	}
	app := kingpin.New("clavis-telemetry-privacy-test", "")
	set := NewSet(app)
	args := []string{"--collector.disable-defaults", "--vault.data-dir=" + p.vaultDir}
	for _, n := range enable {
		args = append(args, "--collector."+n)
	}
	if p.accesslog {
		args = append(args, "--accesslog.path="+p.logPath, "--accesslog.from-start",
			"--accesslog.route=vault=^/v1/vaults/", "--accesslog.route=entry=/entries/",
			"--accesslog.client-ip=x-forwarded-for", "--accesslog.trusted-proxies=10.0.0.0/8,fd00::/8")
	}
	if _, err := app.Parse(args); err != nil {
		tb.Fatalf("parse %v: %v", args, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tb.Cleanup(cancel)
	scraper, err := set.Build(Env{Logger: logger, Context: ctx, Settle: 5 * time.Millisecond})
	if err != nil {
		tb.Fatal(err)
	}
	// The exporter's own path: scraper (with the leaky collector among the
	// real ones) in a registry, privacy gate, promhttp. inner is that
	// registry, without the gate.
	named := []Named{{Name: "leaky", Collector: p.leaky}}
	for _, e := range scraper.entries {
		named = append(named, e.Named)
	}
	withLeaky := NewScraper(named, scraper.timeout, logger)
	p.inner = prometheus.NewRegistry()
	p.inner.MustRegister(withLeaky)
	p.gate = privacy.NewGate(p.inner, logger)
	p.handler = promhttp.HandlerFor(prometheus.Gatherers{p.gate}, promhttp.HandlerOpts{EnableOpenMetrics: true, ErrorHandling: promhttp.ContinueOnError})
	return p
}

// exposition fetches /metrics in each format the handler offers and checks
// it was served in that format.
func (p *privacyPOP) exposition(t *rapid.T) map[string][]byte {
	out := map[string][]byte{}
	for name, accept := range map[string]string{
		"text":        "text/plain;version=0.0.4",
		"protobuf":    "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited",
		"openmetrics": "application/openmetrics-text;version=1.0.0",
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		req.Header.Set("Accept", accept)
		rec := httptest.NewRecorder()
		p.handler.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("%s: status %d: %s", name, rec.Code, rec.Body.String())
		}
		ct := rec.Header().Get("Content-Type")
		if !strings.Contains(ct, strings.SplitN(accept, ";", 2)[0]) {
			t.Fatalf("%s: asked for %s, got Content-Type %s", name, accept, ct)
		}
		out[name] = rec.Body.Bytes()
	}
	return out
}

// waitVaults waits until the vault index has seen every vault file made so
// far (it re-checks the names of a burst of events after a settle window).
func (p *privacyPOP) waitVaults(t *rapid.T) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs, err := p.inner.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n, _ := familyValues(mfs, "clavis_vaults")
		if int(n) == p.vaults {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("clavis_vaults %v, %d vault files in the directory", n, p.vaults)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// waitLines waits until the accesslog collector has counted every line
// written so far (parsed, malformed or too long).
func (p *privacyPOP) waitLines(t *rapid.T) {
	if !p.accesslog {
		return
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs, err := p.inner.Gather()
		if err != nil {
			t.Fatal(err)
		}
		n, _ := familyValues(mfs, "clavis_accesslog_lines_total")
		if int(n) == p.lines {
			return
		}
		if int(n) > p.lines || time.Now().After(deadline) {
			t.Fatalf("accesslog counted %v lines, %d written", n, p.lines)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Generators.

const idAlphabet = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"

// secretID is a vault, entry or query identifier: long and random enough
// that finding it in the output cannot be a coincidence.
// It is two draws of 64 bits spelled in base 57, 22 characters: cheap in
// the fuzzer's input bytes, unlike a string drawn character by character.
func secretID(t *rapid.T, label string) string {
	b := make([]byte, 0, 22)
	for range 2 {
		v := rapid.Uint64().Draw(t, label)
		for range 11 {
			b = append(b, idAlphabet[v%uint64(len(idAlphabet))])
			v /= uint64(len(idAlphabet))
		}
	}
	return string(b)
}

func genAddr(t *rapid.T, label string) netip.Addr {
	switch rapid.IntRange(0, 2).Draw(t, label+"_kind") {
	case 0:
		b := rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, label+"_v4")
		return netip.AddrFrom4([4]byte(b))
	case 1:
		b := rapid.SliceOfN(rapid.Byte(), 4, 4).Draw(t, label+"_mapped")
		return netip.AddrFrom16(netip.AddrFrom4([4]byte(b)).As16())
	default:
		var a [16]byte
		// Groups are often zero, so compressed forms ("::") show up.
		for g := range 8 {
			if rapid.Bool().Draw(t, label+"_zero") {
				continue
			}
			v := rapid.Uint16().Draw(t, label+"_group")
			a[2*g], a[2*g+1] = byte(v>>8), byte(v)
		}
		return netip.AddrFrom16(a)
	}
}

// addrText is how a log might spell the address.
func addrText(t *rapid.T, a netip.Addr, label string, allowPort bool) string {
	forms := []string{a.String(), a.StringExpanded()}
	if a.Is4() {
		forms = append(forms, "::ffff:"+a.String())
	}
	if a.Is4In6() {
		forms = append(forms, a.Unmap().String())
	}
	if allowPort {
		port := rapid.Uint16Range(1, 65535).Draw(t, label+"_port")
		forms = append(forms, netip.AddrPortFrom(a, port).String())
	}
	return rapid.SampledFrom(forms).Draw(t, label+"_form")
}

// addrForms is every spelling of a that must never appear in the output.
// Forms shorter than 7 bytes ("::", "::1") are skipped: they occur in
// binary protobuf by chance.
func addrForms(a netip.Addr) []string {
	var forms []string
	for _, x := range []netip.Addr{a, a.Unmap()} {
		forms = append(forms, x.String(), x.StringExpanded())
		if x.Is4() {
			m := netip.AddrFrom16(x.As16())
			forms = append(forms, "::ffff:"+x.String(), m.StringExpanded())
		}
	}
	var out []string
	for _, f := range forms {
		if len(f) >= 7 && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	return out
}

type genRequest struct {
	client     netip.Addr
	clientText string
	xff        []string
	method     string
	path       string
	status     int
	size       int
	duration   float64
	ua         string
	referer    string
	json       bool
	malformed  bool
}

var nginxTime = "02/Jan/2006:15:04:05 -0700"

func (r genRequest) line(now time.Time) string {
	if r.json {
		headers := map[string][]string{"User-Agent": {r.ua}, "Referer": {r.referer}}
		if len(r.xff) > 0 {
			headers["X-Forwarded-For"] = []string{strings.Join(r.xff, ", ")}
		}
		clientIP := r.client.String()
		if len(r.xff) > 0 {
			clientIP = r.xff[0]
		}
		b, _ := json.Marshal(map[string]any{
			"level": "info", "ts": float64(now.UnixNano()) / 1e9, "logger": "http.log.access", "msg": "handled request",
			"request": map[string]any{
				"remote_ip": r.clientText, "remote_port": "51234", "client_ip": clientIP, "proto": "HTTP/1.1",
				"method": r.method, "host": "pop.example", "uri": r.path, "headers": headers,
			},
			"bytes_read": 0, "duration": r.duration, "size": r.size, "status": r.status,
		})
		s := string(b)
		if r.malformed {
			s = s[:len(s)/2]
		}
		return s
	}
	xff := "-"
	if len(r.xff) > 0 {
		xff = strings.Join(r.xff, ", ")
	}
	s := fmt.Sprintf(`%s - - [%s] "%s %s HTTP/1.1" %d %d "%s" "%s" "%s" %.3f`,
		r.clientText, now.Format(nginxTime), r.method, r.path, r.status, r.size, r.referer, r.ua, xff, r.duration)
	if r.malformed {
		s = s[:strings.Index(s, " HTTP/1.1")] // cut inside the quoted request
	}
	return s
}

// checkOnce is the property: add a few requests and vaults, scrape, look
// for every secret in every byte.
func (p *privacyPOP) checkOnce(t *rapid.T) {
	now := time.Now().UTC()
	var secrets []string // must not appear anywhere
	var leak []string    // what the leaky collector exports
	nReq := rapid.IntRange(1, 6).Draw(t, "requests")
	var lines []string
	for i := range nReq {
		label := "req" + strconv.Itoa(i)
		r := genRequest{
			client:   genAddr(t, label+"_client"),
			method:   rapid.SampledFrom([]string{"GET", "POST", "PUT", "DELETE", "PROPFIND", "HEAD"}).Draw(t, label+"_method"),
			status:   rapid.SampledFrom([]int{200, 201, 204, 301, 304, 400, 401, 403, 404, 429, 500, 502, 503}).Draw(t, label+"_status"),
			size:     rapid.IntRange(0, 1<<20).Draw(t, label+"_size"),
			duration: float64(rapid.IntRange(0, 5000).Draw(t, label+"_ms")) / 1000,
			json:     rapid.Bool().Draw(t, label+"_json"),
		}
		r.malformed = rapid.IntRange(0, 9).Draw(t, label+"_bad") == 0
		r.clientText = addrText(t, r.client, label+"_client", false)
		secrets = append(secrets, addrForms(r.client)...)
		leak = append(leak, r.clientText)
		for h := range rapid.IntRange(0, 3).Draw(t, label+"_hops") {
			hop := genAddr(t, label+"_hop"+strconv.Itoa(h))
			text := addrText(t, hop, label+"_hop"+strconv.Itoa(h), true)
			r.xff = append(r.xff, text)
			secrets = append(secrets, addrForms(hop)...)
			leak = append(leak, text)
		}
		vaultID, entryID, query := secretID(t, label+"_vault"), secretID(t, label+"_entry"), secretID(t, label+"_query")
		r.path = rapid.SampledFrom([]string{
			"/v1/vaults/" + vaultID + "/entries/" + entryID + "?token=" + query,
			"/v1/vaults/" + vaultID + "?q=" + query,
			"/" + entryID + "/entries/" + vaultID,
			"/login?next=/v1/vaults/" + vaultID + "&u=" + query,
		}).Draw(t, label+"_path")
		uaToken, refToken := secretID(t, label+"_ua"), secretID(t, label+"_ref")
		r.ua = "Mozilla/5.0 (X11; Linux x86_64; " + uaToken + ") Gecko/20100101"
		r.referer = "https://ref-" + refToken + ".example/v1/vaults/" + vaultID
		secrets = append(secrets, vaultID, entryID, query, r.path, uaToken, r.ua, refToken, r.referer)
		lines = append(lines, r.line(now))
	}
	for i := range rapid.IntRange(0, 3).Draw(t, "vaults") {
		id := secretID(t, "vault_file"+strconv.Itoa(i))
		name := id + rapid.SampledFrom([]string{".db", ".vault", ""}).Draw(t, "vault_ext"+strconv.Itoa(i))
		if err := os.WriteFile(filepath.Join(p.vaultDir, name), []byte(id), 0o600); err != nil {
			if os.IsExist(err) {
				continue
			}
			t.Fatal(err)
		}
		if rapid.Bool().Draw(t, "vault_wal"+strconv.Itoa(i)) {
			if err := os.WriteFile(filepath.Join(p.vaultDir, name+"-wal"), []byte(id), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		secrets = append(secrets, id, name)
	}
	p.vaults = countVaultFiles(t, p.vaultDir)
	p.waitVaults(t)

	if p.accesslog {
		f, err := os.OpenFile(p.logPath, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
			t.Fatal(err)
		}
		f.Close()
		p.lines += len(lines)
		p.waitLines(t)
	}
	// A buggy collector would also export addresses embedded in longer
	// values, spelled and encoded in every way, and e-mail addresses.
	for i := range rapid.IntRange(0, 4).Draw(t, "embedded") {
		text, a := privacytest.Embedded(t, "embedded"+strconv.Itoa(i))
		leak = append(leak, text)
		secrets = append(secrets, privacytest.Forms(a)...)
		if len(text) >= 7 {
			secrets = append(secrets, text)
		}
	}
	for i := range rapid.IntRange(0, 2).Draw(t, "emails") {
		email := secretID(t, "email_user"+strconv.Itoa(i)) + "@" + rapid.SampledFrom([]string{"example.com", "alice-home.example", "mail.example.org"}).Draw(t, "email_domain"+strconv.Itoa(i))
		leak = append(leak, email)
		secrets = append(secrets, email)
	}
	p.leaky.set(leak)

	before := p.redactions(t)
	bodies := p.exposition(t)
	for format, body := range bodies {
		for _, s := range secrets {
			if bytes.Contains(body, []byte(s)) {
				t.Fatalf("%s exposition contains %q", format, s)
			}
		}
	}
	if logs := p.logs.String(); logs != "" {
		for _, s := range secrets {
			if strings.Contains(logs, s) {
				t.Fatalf("the exporter's log contains %q", s)
			}
		}
	}

	// The data did go through: the vault count matches the directory, and
	// the gate dropped every leaked series in each of the three scrapes.
	if want := fmt.Sprintf("\nclavis_vaults %d\n", p.vaults); !bytes.Contains(bodies["text"], []byte(want)) {
		t.Fatalf("text exposition lacks %q:\n%s", want, bodies["text"])
	}
	// Three scrapes for the formats and one to read the counter.
	distinct := len(slices.Compact(slices.Sorted(slices.Values(leak))))
	if got, want := p.redactions(t)-before, float64(4*2*distinct); got < want {
		t.Fatalf("ip_address, email_address and too_long redactions grew by %v, want at least %v", got, want)
	}
}

// redactions gathers through the gate and sums its redaction counter over
// the reasons a leaked value can have.
func (p *privacyPOP) redactions(t *rapid.T) float64 {
	mfs, err := p.gate.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != "clavis_privacy_redactions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			switch m.GetLabel()[0].GetValue() {
			case privacy.ReasonIPAddress, privacy.ReasonEmailAddress, privacy.ReasonTooLong:
				sum += m.GetCounter().GetValue()
			}
		}
	}
	return sum
}

func countVaultFiles(t *rapid.T, dir string) int {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), "-wal") {
			n++
		}
	}
	return n
}

// privacyChecks is how many rapid checks the property test runs unless
// -rapid.checks says otherwise: each check scrapes four times, and the
// access log's sketch estimate is slow under -race (about 20 ms a scrape).
const privacyChecks = 30

// TestPrivacyPropertyNoUserDataInExposition runs the property with rapid.
func TestPrivacyPropertyNoUserDataInExposition(t *testing.T) {
	// Not parallel: it lowers rapid's check count (a process-wide flag) for
	// its own run and restores it after.
	setByUser := false
	flag.Visit(func(f *flag.Flag) { setByUser = setByUser || f.Name == "rapid.checks" })
	if fl := flag.Lookup("rapid.checks"); fl != nil && !setByUser {
		old := fl.Value.String()
		if err := fl.Value.Set(strconv.Itoa(privacyChecks)); err != nil {
			t.Fatal(err)
		}
		defer fl.Value.Set(old)
	}
	p := newPrivacyPOP(t)
	if !p.accesslog {
		t.Log("accesslog collector not registered: checking the vault collector and the leaky collector only")
	}
	rapid.Check(t, p.checkOnce)
	if !p.accesslog {
		return
	}
	// The property is only worth something if the lines were understood:
	// most must parse (about one in ten is cut on purpose), and the route
	// classes must have matched.
	mfs, err := p.inner.Gather()
	if err != nil {
		t.Fatal(err)
	}
	parsed, routes := 0.0, map[string]bool{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			switch mf.GetName() {
			case "clavis_accesslog_lines_total":
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "result" && lp.GetValue() == "parsed" {
						parsed += m.GetCounter().GetValue()
					}
				}
			case "clavis_http_requests_total":
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "route" {
						routes[lp.GetValue()] = true
					}
				}
			}
		}
	}
	t.Logf("%d access log lines written, %v parsed; routes seen: %v", p.lines, parsed, routes)
	if p.lines == 0 || parsed < float64(p.lines)/2 {
		t.Fatalf("only %v of %d generated lines parsed: the generator no longer writes what the collector reads", parsed, p.lines)
	}
	if !routes["vault"] || !routes["entry"] {
		t.Errorf("route classes vault and entry never matched: %v", routes)
	}
}

// FuzzPrivacyExposition is the same property driven by the fuzzer's bytes.
// `make test` runs the seeds in testdata/fuzz/FuzzPrivacyExposition (random
// bytes long enough for rapid to draw a whole check from).
func FuzzPrivacyExposition(f *testing.F) {
	p := newPrivacyPOP(f)
	f.Fuzz(rapid.MakeFuzz(p.checkOnce))
}
