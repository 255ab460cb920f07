package collector

import (
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// logrotateDebianConf is Debian's /etc/logrotate.d/nginx stanza (daily,
// run here by forcing it), with nginx reopening its logs in postrotate
// as invoke-rc.d nginx rotate does. rotate 3 with more rotations than
// that: the oldest generation is deleted too.
const logrotateDebianConf = `%[1]s/access.log %[1]s/access.json {
	daily
	missingok
	rotate 3
	compress
	delaycompress
	notifempty
	create 0640
	sharedscripts
	postrotate
		%[2]s -p %[1]s -c %[1]s/nginx.conf -s reopen
	endscript
}
`

// logrotateCopytruncateConf is the copytruncate variant: nginx is never
// told; it keeps writing through its O_APPEND descriptor into the
// truncated file. rotate 10 keeps every generation, so the test can read
// all the lines that exist anywhere.
const logrotateCopytruncateConf = `%[1]s/access.log %[1]s/access.json {
	daily
	missingok
	rotate 10
	compress
	delaycompress
	notifempty
	copytruncate
}
`

// TestAccesslogAgainstLogrotate rotates a real nginx's two access logs
// (combined and JSON) with the real logrotate, several times, while
// requests keep flowing and the collectors are scraped as Prometheus
// would, and checks that the request counts exported equal what was sent.
//
// create: exactly what was sent, by method, code and route, and the
// response bytes.
//
// copytruncate: logrotate copies the file and then truncates it; what
// nginx writes between the two is in neither the copy nor the live file
// (logrotate's own loss, not the follower's: the test lists those
// requests and shows they are in no file). So the counts are checked
// against the lines that exist in the files (every generation, gunzipped,
// plus the live file): at least those, and at most those plus the lost
// ones the follower may have read before the truncate. Before the
// follower read the unread rest from the copy, every line written since
// its last read (up to a second of requests per rotation) was lost.
func TestAccesslogAgainstLogrotate(t *testing.T) {
	nginx := e2eutil.RequireBinary(t, "nginx")
	logrotate := e2eutil.RequireBinary(t, "logrotate")
	t.Parallel()
	t.Run("create", func(t *testing.T) {
		t.Parallel()
		testLogrotate(t, nginx, logrotate, logrotateDebianConf, false)
	})
	t.Run("copytruncate", func(t *testing.T) {
		t.Parallel()
		testLogrotate(t, nginx, logrotate, logrotateCopytruncateConf, true)
	})
}

// sentReq is what one request of the stream should count as.
type sentReq struct {
	method, code, route string
	body                int
}

func testLogrotate(t *testing.T, nginx, logrotate, confTmpl string, copytruncate bool) {
	dir := t.TempDir()
	lrConf, lrState := filepath.Join(dir, "logrotate.conf"), filepath.Join(dir, "logrotate.state")
	rig := startNginxRig(t, nginx, dir, "/r/ok?seq=0", func() {
		// logrotate refuses a config that others can write to.
		if err := os.WriteFile(lrConf, []byte(fmt.Sprintf(confTmpl, dir, nginx)), 0o644); err != nil {
			t.Fatal(err)
		}
	})
	addr, combinedLog, jsonLog := rig.addr, rig.combinedLog, rig.jsonLog
	fromCombined, fromJSON, regCombined, regJSON := rig.fromCombined, rig.fromJSON, rig.regCombined, rig.regJSON

	// The follower looks at the path at most a second (the settle) after
	// nginx created the file: a file rotated away before that look is
	// never known. Not what this test is about: the first rotation comes
	// once both followers follow.
	waitLines(t, regCombined, 1)
	waitLines(t, regJSON, 1)

	// Every request carries its sequence number in the query, so the lines
	// in the files can be told apart (copytruncate).
	var mu sync.Mutex
	sent := map[int]sentReq{0: {"GET", "2xx", "r", len("hello")}} // the readiness probe
	var seq atomic.Int64

	type req struct{ method, path string }
	mix := []req{
		{"GET", "/r/ok"}, {"HEAD", "/r/ok"}, {"POST", "/r/created"}, {"PUT", "/r/created"},
		{"PATCH", "/r/ok"}, {"DELETE", "/r/empty"}, {"OPTIONS", "/r/ok"}, {"GET", "/r/moved"},
		{"GET", "/r/missing"}, {"GET", "/r/broken"}, {"BREW", "/r/ok"},
		{"GET", "/api/v1/vault/8f3a9c2e1b7d4f60"}, {"POST", "/api/v1/vault/0b1c2d3e/entries"},
		{"GET", "/nowhere.php"},
	}
	sources := []string{"127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var stopOnce sync.Once
	stopStream := func() { stopOnce.Do(func() { close(stop) }); wg.Wait() }
	t.Cleanup(stopStream) // a test that fails early
	streamErr := make(chan error, len(sources))
	for i, src := range sources {
		d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
		c := &http.Client{
			Timeout:   10 * time.Second,
			Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := i; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				r := mix[j%len(mix)]
				n := int(seq.Add(1))
				hr, err := http.NewRequest(r.method, "http://"+addr+r.path+"?seq="+strconv.Itoa(n), nil)
				if err != nil {
					streamErr <- err
					return
				}
				resp, err := c.Do(hr)
				if err != nil {
					streamErr <- err
					return
				}
				body, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					streamErr <- err
					return
				}
				mu.Lock()
				sent[n] = sentReq{methodLabel(r.method), codeClass(resp.StatusCode), routeOf(r.path), len(body)}
				mu.Unlock()
				time.Sleep(time.Millisecond) // a steady stream, not a load test
			}
		}()
	}

	// Prometheus meanwhile: every scrape succeeds and no counter goes back.
	scrapeStop := make(chan struct{})
	scrapeDone := make(chan struct{})
	var scrapeOnce sync.Once
	stopScrapes := func() { scrapeOnce.Do(func() { close(scrapeStop) }); <-scrapeDone }
	t.Cleanup(stopScrapes)
	var scrapes atomic.Int64
	go func() {
		defer close(scrapeDone)
		last := map[string]map[string]float64{}
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-scrapeStop:
				return
			case <-tick.C:
			}
			for name, reg := range map[string]prometheus.Gatherer{"combined": regCombined, "json": regJSON} {
				got, err := gatherCounters(reg)
				if err != nil {
					t.Errorf("%s: scrape: %v", name, err)
					return
				}
				for k, v := range got {
					if v < last[name][k] {
						t.Errorf("%s: %s went back from %v to %v", name, k, last[name][k], v)
					}
				}
				last[name] = got
			}
			scrapes.Add(1)
		}
	}()

	const rotations = 4
	time.Sleep(800 * time.Millisecond)
	for i := range rotations {
		out, err := exec.Command(logrotate, "-f", "-s", lrState, lrConf).CombinedOutput()
		if err != nil {
			t.Fatalf("logrotate (rotation %d): %v\n%s", i+1, err, out)
		}
		// The next rotation once both followers have seen this one (and
		// so follow the new file: one rotated away unseen is the case
		// above), however slow the machine; then some lines in it.
		for name, reg := range map[string]prometheus.Gatherer{"combined": regCombined, "json": regJSON} {
			waitRotations(t, name, dir, reg, float64(i+1))
		}
		time.Sleep(700 * time.Millisecond)
	}
	stopStream()
	select {
	case err := <-streamErr:
		t.Fatalf("request stream: %v", err)
	default:
	}
	// Rotation 2 on gzipped rotation 1's file (delaycompress); with rotate
	// 3, rotation 4 removed the oldest.
	for _, p := range []string{combinedLog, jsonLog} {
		for _, gen := range []string{".1", ".2.gz", ".3.gz"} {
			if _, err := os.Stat(p + gen); err != nil {
				t.Errorf("generation %s: %v", gen, err)
			}
		}
		if _, err := os.Stat(p + ".4.gz"); !copytruncate && err == nil {
			t.Errorf("%s.4.gz kept, with rotate 3", p)
		}
	}
	// nginx writes a line after its response: the last ones are in the
	// files once the followers read nothing more.
	waitCaughtUp(t, regCombined, fromCombined, 0)
	waitCaughtUp(t, regJSON, fromJSON, 0)

	total := len(sent)
	t.Logf("sent %d requests during %d logrotate runs", total, rotations)

	for name, f := range map[string]struct {
		reg  prometheus.Gatherer
		c    *accesslogCollector
		path string
	}{"combined": {regCombined, fromCombined, combinedLog}, "json": {regJSON, fromJSON, jsonLog}} {
		want := map[[3]string]float64{}
		var wantBytes float64
		for _, r := range sent {
			want[[3]string{r.method, r.code, r.route}]++
			wantBytes += float64(r.body)
		}
		// slack: lines the follower may have counted that exist in no file.
		slack := map[[3]string]float64{}
		wantLines := float64(total)
		if copytruncate {
			// logrotate copies the file, then truncates it: what nginx
			// writes in between is in neither the copy nor the live file,
			// lost by logrotate itself. Count against the lines that exist.
			inFiles := seqsInFiles(t, f.path)
			want, wantBytes, wantLines = map[[3]string]float64{}, 0, 0
			var lost []int
			for n, r := range sent {
				k := [3]string{r.method, r.code, r.route}
				switch inFiles[n] {
				case 0:
					lost = append(lost, n)
					slack[k]++ // the follower may have read it before the truncate
				case 1:
					want[k]++
					wantBytes += float64(r.body)
					wantLines++
				default:
					t.Errorf("%s: request %d is in the files %d times", name, n, inFiles[n])
				}
			}
			for n := range inFiles {
				if _, ok := sent[n]; !ok {
					t.Errorf("%s: request %d in the files was never sent", name, n)
				}
			}
			sort.Ints(lost)
			t.Logf("%s: %d requests lost by logrotate's copy-then-truncate (in no file): %v", name, len(lost), lost)
		}
		got := waitCaughtUp(t, f.reg, f.c, wantLines)
		var sum float64
		for k, v := range got {
			if strings.HasPrefix(k, "clavis_http_requests_total{") {
				sum += v
			}
		}
		keys := map[[3]string]bool{}
		for k := range want {
			keys[k] = true
		}
		for k := range slack {
			keys[k] = true
		}
		for k := range keys {
			key := fmt.Sprintf(`clavis_http_requests_total{method=%q,code=%q,route=%q}`, k[0], k[1], k[2])
			if got[key] < want[k] || got[key] > want[k]+slack[k] {
				t.Errorf("%s: %s = %v, want %v (+%v in no file)", name, key, got[key], want[k], slack[k])
			}
		}
		var slackLines float64
		for _, v := range slack {
			slackLines += v
		}
		if sum < wantLines || sum > wantLines+slackLines {
			t.Errorf("%s: %v requests counted, want %v (+%v in no file)", name, sum, wantLines, slackLines)
		}
		if slackLines == 0 && got["clavis_http_response_size_bytes_total"] != wantBytes {
			t.Errorf("%s: response bytes %v, want %v", name, got["clavis_http_response_size_bytes_total"], wantBytes)
		}
		for _, k := range []string{`clavis_accesslog_lines_total{result="malformed"}`, `clavis_accesslog_lines_total{result="too_long"}`} {
			if got[k] != 0 {
				t.Errorf("%s: %s = %v", name, k, got[k])
			}
		}
		if r := got["clavis_accesslog_rotations_total"]; r != rotations {
			t.Errorf("%s: %v rotations noticed, want %d", name, r, rotations)
		}
		if u := got["clavis_unique_ips_24h"]; u != float64(len(sources)) {
			t.Errorf("%s: %v unique IPs, want %d", name, u, len(sources))
		}
		if got["clavis_accesslog_following"] != 1 {
			t.Errorf("%s: not following", name)
		}
	}
	stopScrapes()
	if n := scrapes.Load(); n < 20 {
		t.Errorf("only %d scrapes during the run", n)
	}
}

// waitRotations waits until the collector has noticed n rotations; if it
// does not, the failure lists the log directory (which rotations
// logrotate made, how big each file is).
func waitRotations(t *testing.T, name, dir string, g prometheus.Gatherer, n float64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := gatherMap(t, g)["clavis_accesslog_rotations_total"]
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			var files []string
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if info, err := e.Info(); err == nil && strings.HasPrefix(e.Name(), "access.") {
					files = append(files, fmt.Sprintf("%s %d B", e.Name(), info.Size()))
				}
			}
			t.Fatalf("%s: %v rotations noticed after 15 s, want %v; the files: %s", name, got, n, strings.Join(files, ", "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitCaughtUp waits until the collector has parsed at least n lines and
// its follower reads nothing more for two poll passes (each reads every
// open file to its end), and returns the scrape then.
func waitCaughtUp(t *testing.T, g prometheus.Gatherer, c *accesslogCollector, n float64) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		b, p := c.follower.BytesRead(), c.follower.Polls()
		for c.follower.Polls() < p+2 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		got := gatherMap(t, g)
		parsed := got[`clavis_accesslog_lines_total{result="parsed"}`]
		if c.follower.BytesRead() == b && parsed >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("parsed lines %v, want %v (%d polls, %d bytes read)", parsed, n, c.follower.Polls(), c.follower.BytesRead())
		}
	}
}

// gatherCounters is gatherMap for another goroutine than the test's: the
// counters only, and an error instead of t.Fatal.
func gatherCounters(g prometheus.Gatherer) (map[string]float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			if m.GetCounter() == nil {
				continue
			}
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	return out, nil
}

// seqsInFiles counts, for each request sequence number, the lines that
// carry it in path and its rotated generations (gzipped or not).
func seqsInFiles(t *testing.T, path string) map[int]int {
	t.Helper()
	files, err := filepath.Glob(path + "*")
	if err != nil {
		t.Fatal(err)
	}
	out := map[int]int{}
	for _, p := range files {
		if p != path && !strings.HasPrefix(p, path+".") {
			continue
		}
		f, err := os.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		var r io.Reader = f
		if strings.HasSuffix(p, ".gz") {
			if r, err = gzip.NewReader(f); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
		br := bufio.NewReader(r)
		for {
			line, err := br.ReadString('\n')
			if err == io.EOF {
				// A line logrotate copied half of (the front was writing
				// it): the follower drops it, and it is in no file whole.
				if line != "" {
					t.Logf("%s ends in a part of a line: %q", p, line)
				}
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			k := strings.Index(line, "seq=")
			if k < 0 {
				t.Errorf("%s: a line without seq=: %q", p, line)
				continue
			}
			end := k + 4
			for end < len(line) && line[end] >= '0' && line[end] <= '9' {
				end++
			}
			n, err := strconv.Atoi(line[k+4 : end])
			if err != nil {
				t.Errorf("%s: %q: %v", p, line, err)
				continue
			}
			out[n]++
		}
		f.Close()
	}
	return out
}
