package sim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

var (
	captureOnce sync.Once
	captured    []byte
	captureErr  error
)

// realCapture captures the real telemetry-edition exporter once per test
// binary (2 s between the scrapes).
func realCapture(t *testing.T) *Template {
	t.Helper()
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "telemetry")
	captureOnce.Do(func() {
		dir, err := os.MkdirTemp("", "fleet-capture-test-")
		if err != nil {
			captureErr = err
			return
		}
		defer os.RemoveAll(dir)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		captured, captureErr = Capture(ctx, CaptureOptions{Exporter: bin, Dir: dir, Interval: 2 * time.Second})
	})
	if captureErr != nil {
		t.Fatal(captureErr)
	}
	tmpl, err := ParseCapture(captured)
	if err != nil {
		t.Fatal(err)
	}
	return tmpl
}

func testFleet(t *testing.T, n int, opt Options) *Fleet {
	t.Helper()
	opt.POPs = n
	f, err := NewFleet(realCapture(t), opt)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// secondScrape is the exporter's own second exposition of the capture.
func secondScrape(t *testing.T) []byte {
	t.Helper()
	_, second, ok := bytes.Cut(captured, []byte(captureSeparator+"\n"))
	if !ok {
		t.Fatal("capture has no second scrape")
	}
	return second
}

type seriesShape struct{ help, typ string }

// shape maps every series (name and labels) of an exposition to its
// family's help and type.
func shape(t *testing.T, b []byte) map[string]seriesShape {
	t.Helper()
	fams, err := parseText(b)
	if err != nil {
		t.Fatalf("exposition does not parse: %v\n%s", err, b)
	}
	out := map[string]seriesShape{}
	for _, mf := range fams {
		for _, s := range flatten(mf) {
			out[string(s.prefix)] = seriesShape{mf.GetHelp(), mf.GetType().String()}
		}
	}
	return out
}

func TestCaptureHasTheExportersFamilies(t *testing.T) {
	tmpl := realCapture(t)
	// The capture ran the access log, vault and tarpit collectors with
	// traffic: request counters moved and the vault count is what was laid
	// out.
	var sawRequests, sawVaults bool
	for _, f := range tmpl.Families {
		for _, s := range f.Samples {
			if s.Kind == KindCounter && strings.HasPrefix(s.Name, "clavis_http_requests") && s.Rate > 0 {
				sawRequests = true
			}
			if f.Name == "clavis_vaults" && s.Value == 40 {
				sawVaults = true
			}
		}
	}
	if !sawRequests || !sawVaults {
		t.Errorf("capture lacks traffic (request counter moved: %v) or the vault dir (40 vaults: %v)", sawRequests, sawVaults)
	}
	if tmpl.Interval < 2*time.Second {
		t.Errorf("interval %s, want >= 2s", tmpl.Interval)
	}
}

// A simulated POP serves exactly the exporter's series, help and types, and
// the exposition passes promtool's lint as the exporter's does.
func TestServedExpositionMatchesTheExporter(t *testing.T) {
	f := testFleet(t, 3, Options{BurstShare: 1, FillShare: 1, FlapShare: 0})
	want := shape(t, secondScrape(t))
	for _, p := range f.POPs {
		for _, at := range []time.Time{f.T.Captured, f.T.Captured.Add(-6 * time.Hour), f.T.Captured.Add(30 * 24 * time.Hour)} {
			b := f.AppendText(nil, p, at)
			got := shape(t, b)
			if len(got) != len(want) {
				t.Errorf("POP %s at %s: %d series, exporter %d", p.Name, at, len(got), len(want))
			}
			for k, w := range want {
				if g, ok := got[k]; !ok {
					t.Errorf("POP %s: series %s missing", p.Name, k)
				} else if g != w {
					t.Errorf("POP %s: %s: help/type %+v, exporter %+v", p.Name, k, g, w)
				}
			}
		}
	}
	if promtool, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = bytes.NewReader(f.AppendText(nil, f.POPs[0], time.Now()))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	}
}

// Values evolve as on a POP: counters never go back, histograms stay
// cumulative, disks stay within their size, POPs differ.
func TestValuesEvolveConsistently(t *testing.T) {
	f := testFleet(t, 50, Options{BurstShare: 0.5, FillShare: 0.5})
	start := f.T.Captured.Add(-6 * time.Hour)
	distinct := map[float64]bool{}
	for _, p := range f.POPs {
		prev := map[*Sample]float64{}
		for step := 0; step < 24*4; step++ {
			at := start.Add(time.Duration(step) * 15 * time.Minute)
			ts := float64(at.UnixNano()) / 1e9
			for _, fam := range f.T.Families {
				var lastBucket float64
				for _, s := range fam.Samples {
					v := f.Value(p, s, fam, ts)
					if math.IsNaN(v) || v < 0 {
						t.Fatalf("POP %s %s = %v", p.Name, s.prefix, v)
					}
					switch s.Kind {
					case KindCounter, KindBucket, KindHistSum:
						if old, ok := prev[s]; ok && v < old {
							t.Fatalf("POP %s: counter %s went back from %v to %v", p.Name, s.prefix, old, v)
						}
					case KindAvail:
						if s.SizeSample != nil && v > s.SizeSample.Value {
							t.Fatalf("POP %s: %s = %v over size %v", p.Name, s.prefix, v, s.SizeSample.Value)
						}
					}
					if s.Kind == KindBucket {
						if s.Share < 1 && v < lastBucket {
							t.Fatalf("POP %s: bucket %s = %v below the previous bucket %v", p.Name, s.prefix, v, lastBucket)
						}
						lastBucket = v
						if count := f.Value(p, fam.Samples[s.Count], fam, ts); v > count {
							t.Fatalf("POP %s: bucket %s = %v over _count %v", p.Name, s.prefix, v, count)
						}
					} else {
						lastBucket = 0
					}
					if fam.Name == "clavis_vaults" && step == 0 {
						distinct[v] = true
					}
					prev[s] = v
				}
			}
		}
	}
	if len(distinct) < 10 {
		t.Errorf("50 POPs have only %d distinct vault counts", len(distinct))
	}
}

// A bursting POP's 5xx share rises to about a quarter during a burst and
// is (next to) nothing outside it.
func TestFiveXXBurst(t *testing.T) {
	f := testFleet(t, 1, Options{BurstShare: 1, BurstFor: 15 * time.Minute, BurstEvery: time.Hour})
	p := f.POPs[0]
	ratio := func(from float64) float64 {
		var five, all float64
		for _, fam := range f.T.Families {
			for _, s := range fam.Samples {
				if !strings.HasPrefix(s.Name, "clavis_http_requests_total") {
					continue
				}
				d := f.Value(p, s, fam, from+300) - f.Value(p, s, fam, from)
				all += d
				if s.Burst {
					five += d
				}
			}
		}
		return five / all
	}
	x0 := f.ref + p.burstPhase + 3600*100 // start of a burst window
	in, out := ratio(x0+60), ratio(x0+30*60)
	// Outside a burst, within the 99.9 % SLO's budget: the error-budget
	// alerts fire on bursting POPs only.
	if in < 0.2 || in > 0.5 || out > 0.001 {
		t.Errorf("5xx share %.4f in a burst, %.4f outside; want about 0.25+ and under 0.001", in, out)
	}
}

func TestOpenMetricsBackfillsWithPromtool(t *testing.T) {
	promtool := e2eutil.RequireBinary(t, "promtool")
	f := testFleet(t, 4, Options{FlapShare: 0.5, DownFor: 10 * time.Minute, DownEvery: 30 * time.Minute})
	end := f.T.Captured.Truncate(time.Minute)
	var buf bytes.Buffer
	n, err := f.WriteOpenMetrics(&buf, HistoryOptions{From: end.Add(-time.Hour), To: end, Step: 15 * time.Second,
		Drop: regexp.MustCompile(`^go_(gc|memstats)_.*$`), ScrapeSeries: true})
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(buf.Bytes(), []byte("go_memstats_")) {
		t.Error("dropped series written")
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "history.om")
	if err := os.WriteFile(in, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "tsdb", "create-blocks-from", "openmetrics", in, filepath.Join(dir, "data")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool: %v\n%s", err, out)
	}
	list, err := exec.Command(promtool, "tsdb", "list", filepath.Join(dir, "data")).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool tsdb list: %v\n%s", err, list)
	}
	// BLOCK ULID  MIN TIME  MAX TIME  DURATION  NUM SAMPLES  NUM CHUNKS  NUM SERIES ...
	var total int64
	for _, line := range strings.Split(string(list), "\n")[1:] {
		fields := strings.Fields(line)
		if len(fields) < 7 {
			continue
		}
		v, err := strconv.ParseInt(fields[4], 10, 64)
		if err != nil {
			t.Fatalf("promtool tsdb list: %q: %v", line, err)
		}
		total += v
	}
	if total != n {
		t.Errorf("blocks hold %d samples, %d written\n%s", total, n, list)
	}
}

func TestServerTakesPOPsDownAndBack(t *testing.T) {
	f := testFleet(t, 3, Options{Port: freePort(t)})
	srv := NewServer(f)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{}}
	get := func(p *POP) error {
		resp, err := client.Get("http://" + p.Addr.String() + "/metrics")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || len(shape(t, b)) != f.T.SeriesCount() {
			return fmt.Errorf("%s: %d series", resp.Status, len(shape(t, b)))
		}
		return nil
	}
	waitFor(t, func() error { return get(f.POPs[2]) })

	ctl := httptest.NewServer(srv.ControlHandler())
	defer ctl.Close()
	resp, err := http.Post(ctl.URL+"/down?region="+f.POPs[1].Region, "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("down: %v %v", err, resp)
	}
	resp.Body.Close()
	// A down POP refuses connections; the others answer.
	if err := get(f.POPs[1]); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("down POP answered: %v", err)
	}
	if err := get(f.POPs[0]); err != nil {
		t.Errorf("POP in another region: %v", err)
	}
	resp, err = http.Post(ctl.URL+"/up", "", nil)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("up: %v %v", err, resp)
	}
	resp.Body.Close()
	if err := get(f.POPs[1]); err != nil {
		t.Errorf("POP back up: %v", err)
	}
	if srv.Scrapes() < 3 {
		t.Errorf("%d scrapes counted", srv.Scrapes())
	}
	// The targets file names every POP with its labels.
	targets := string(f.Targets())
	for _, p := range f.POPs {
		if !strings.Contains(targets, "'"+p.Addr.String()+"'") || !strings.Contains(targets, "pop: "+p.Name) {
			t.Errorf("targets lack %s:\n%s", p.Name, targets)
		}
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.1.0.1:0")
	if err != nil {
		t.Skipf("127.1.0.1 not usable here: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func waitFor(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func FuzzParseCapture(f *testing.F) {
	f.Add([]byte(WriteCapture([]byte("# TYPE a counter\na_total 1\n"), []byte("# TYPE a counter\na_total 3\n"), time.Unix(1e9, 0), time.Second)))
	f.Add([]byte(captureMagic + " captured=x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tmpl, err := ParseCapture(b)
		if err != nil {
			return
		}
		fl, err := NewFleet(tmpl, Options{POPs: 2})
		if err != nil {
			t.Fatal(err)
		}
		fl.AppendText(nil, fl.POPs[1], tmpl.Captured)
	})
}
