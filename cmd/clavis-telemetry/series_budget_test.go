package main

// The series budget: what one POP costs the central Prometheus. The real
// telemetry-edition binary runs with its default collectors against the
// fixture host of the collector package (collector/testdata: a 2-vCPU VM's
// /proc, its mounts), a vault dir and an access log that uses every method
// and status class, so the access-log families reach the most series their
// bounded labels allow. The number of series it serves must stay at or under
// seriesBudget; docs/scaling.md shows the budget, the series per collector
// (printed by this test with -v) and what they cost centrally.
//
//	go test ./cmd/clavis-telemetry/ -run TestSeriesBudget -v

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
)

// seriesBudget is the most series one POP may serve with the default
// collectors, the exporter's own metrics included, on the fixture host.
// Measured 284 on 2026-12-01 (276 before the vault index metrics): see docs/scaling.md ("Series per POP"). Raise it only
// with the central cost in mind (series x POPs x replicas).
const seriesBudget = 290

// budgetMethods and budgetStatuses cover every method and status class an
// access log can hold, the unknown ones included, so the request families
// reach their most series.
var (
	budgetMethods  = []string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE", "PROPFIND", "BREW"}
	budgetStatuses = []int{101, 200, 204, 301, 304, 400, 404, 429, 500, 503, 600}
)

func TestSeriesBudget(t *testing.T) {
	t.Parallel()
	bin := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "telemetry")
	fixtures := filepath.Join(e2eutil.RepoRoot(t), "collector", "testdata")
	dir := t.TempDir()
	vaults := filepath.Join(dir, "vaults")
	if err := os.MkdirAll(vaults, 0o700); err != nil {
		t.Fatal(err)
	}
	const nVaults = 5
	for i := 0; i < nVaults; i++ {
		if err := os.WriteFile(filepath.Join(vaults, fmt.Sprintf("vault-%d.db", i)), make([]byte, 1024*(i+1)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	var log bytes.Buffer
	when := time.Now().UTC().Format("02/Jan/2006:15:04:05 -0700")
	for i, m := range budgetMethods {
		for j, code := range budgetStatuses {
			fmt.Fprintf(&log, "192.0.2.%d - - [%s] \"%s /api/v1/item/%d HTTP/1.1\" %d %d \"-\" \"budget/1\" 0.%03d\n",
				1+i, when, m, j, code, 100*j, 1+i*j)
		}
	}
	lines := len(budgetMethods) * len(budgetStatuses)
	accessLog := filepath.Join(dir, "access.log")
	if err := os.WriteFile(accessLog, log.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	base := []string{
		"--path.procfs=" + filepath.Join(fixtures, "proc"),
		"--path.sysfs=" + filepath.Join(fixtures, "sys"),
		"--path.rootfs=" + filepath.Join(fixtures, "rootfs"),
		"--vault.data-dir=" + vaults,
		"--accesslog.path=" + accessLog,
		"--accesslog.from-start",
		"--tarpit.log.file=" + filepath.Join(dir, "tarpit.log"),
	}
	ready := func(body string) bool {
		// The access log has been read to its end and the vault scan has
		// run, when those collectors are on.
		if strings.Contains(body, "clavis_accesslog_lines_total") &&
			!strings.Contains(body, `clavis_accesslog_lines_total{result="parsed"} `+strconv.Itoa(lines)+"\n") {
			return false
		}
		if strings.Contains(body, "\nclavis_vaults ") && !strings.Contains(body, "\nclavis_vaults "+strconv.Itoa(nVaults)+"\n") {
			return false
		}
		return true
	}

	full := seriesOf(t, bin, append(base, "--web.listen-address="+e2eutil.FreeAddr(t, "127.0.0.1")), ready)
	total := 0
	for _, n := range full {
		total += n
	}

	// Per collector: each alone, minus what the exporter serves with none.
	none := seriesOf(t, bin, append(base, "--web.listen-address="+e2eutil.FreeAddr(t, "127.0.0.1"), "--collector.disable-defaults"), ready)
	own := 0
	for _, n := range none {
		own += n
	}
	var rows []string
	sum := own
	for _, c := range defaultCollectors(t, bin) {
		alone := seriesOf(t, bin, append(base, "--web.listen-address="+e2eutil.FreeAddr(t, "127.0.0.1"), "--collector.disable-defaults", "--collector."+c), ready)
		n := 0
		var fams []string
		for f, k := range alone {
			n += k
			if none[f] == 0 {
				fams = append(fams, f)
			}
		}
		n -= own
		sum += n
		sort.Strings(fams)
		rows = append(rows, fmt.Sprintf("| %s | %d | %s |", c, n, strings.Join(fams, ", ")))
	}
	var owns []string
	for f := range none {
		owns = append(owns, f)
	}
	sort.Strings(owns)
	t.Logf("series per POP, default collectors on the fixture host: %d (budget %d)\n| collector | series | families |\n|---|---:|---|\n%s\n| (exporter itself, no collector) | %d | %s |",
		total, seriesBudget, strings.Join(rows, "\n"), own, strings.Join(owns, ", "))
	if sum != total {
		t.Errorf("collectors alone add up to %d series, all together serve %d: a family depends on two collectors", sum, total)
	}
	if total > seriesBudget {
		t.Errorf("one POP serves %d series, over the budget of %d (docs/scaling.md): every series costs the central Prometheus once per POP and replica", total, seriesBudget)
	}
}

// defaultCollectors lists the collectors on by default, from --help.
func defaultCollectors(t *testing.T, bin string) []string {
	t.Helper()
	out, err := exec.Command(bin, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%s --help: %v\n%s", bin, err, out)
	}
	re := regexp.MustCompile(`--\[no-\]collector\.([a-z0-9_]+)\s+Enable the [a-z0-9_]+ collector \(default: enabled\)`)
	var names []string
	for _, m := range re.FindAllStringSubmatch(strings.Join(strings.Fields(string(out)), " "), -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("no default collector found in --help:\n%s", out)
	}
	return names
}

// seriesOf runs the exporter with args until ready(exposition) and returns
// the number of series of each family it serves.
func seriesOf(t *testing.T, bin string, args []string, ready func(string) bool) map[string]int {
	t.Helper()
	var addr string
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--web.listen-address="); ok {
			addr = v
		}
	}
	cmd := e2eutil.StartProcess(t, bin, args...)
	defer func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }()
	client := &http.Client{Timeout: 10 * time.Second}
	e2eutil.WaitHTTP(t, client, "http://"+addr+"/-/ready", http.StatusOK, 20*time.Second)
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + addr + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("/metrics: %v %s", err, resp.Status)
		}
		if ready(string(body)) {
			return familySeries(string(body))
		}
		if time.Now().After(deadline) {
			t.Fatalf("%v: access log or vault dir not read within 20 s:\n%s", args, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// familySeries counts the samples (series) per family of a text exposition;
// a histogram's buckets, _sum and _count count for its family.
func familySeries(body string) map[string]int {
	out := map[string]int{}
	family := ""
	sc := bufio.NewScanner(strings.NewReader(body))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			family, _, _ = strings.Cut(rest, " ")
			continue
		}
		if line == "" || line[0] == '#' {
			continue
		}
		name := line[:strings.IndexAny(line, "{ ")]
		if !strings.HasPrefix(name, family) {
			family = name
		}
		out[family]++
	}
	return out
}
