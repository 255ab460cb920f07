package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/e2eutil"
	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// syncBuffer collects a process's output for concurrent reading.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestMakeStack runs scripts/stack.sh (what `make stack` runs) as a person
// would, on free loopback ports: it must print its URLs, each of which
// opens the page it promises; get every POP scraped and the Watchdog
// heartbeat to the fake Kuma it prints; page through the fake ntfy when the
// printed outage drill is followed, with every URL in that notification
// opening a working page; and stop everything on Ctrl-C (SIGINT).
func TestMakeStack(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the whole central stack")
	}
	t.Parallel()
	e2eutil.RequireBinary(t, "prometheus")
	e2eutil.RequireBinary(t, "openssl")
	e2eutil.RequireBinary(t, "curl")
	// stack.sh builds it itself (a no-op once built); here so that a
	// failed build fails the test in CI.
	e2eutil.Tool(t, "alertmanager-webui")
	pop := e2eutil.BuildBinary(t, "./cmd/clavis-telemetry", "telemetry")
	e2eutil.BuildBinary(t, "./cmd/alertbridge")
	e2eutil.BuildBinary(t, "./internal/fakenotify/cmd/fakenotify")
	bin := filepath.Dir(pop)

	// Loopback addresses no other test uses, so a port picked here cannot
	// be taken by a parallel test before the script binds it.
	const host, popNet = "127.0.5.1", "127.0.5"
	prom, am, bridge, fake := e2eutil.FreeAddr(t, host), e2eutil.FreeAddr(t, host), e2eutil.FreeAddr(t, host), e2eutil.FreeAddr(t, host)
	_, popPort, _ := net.SplitHostPort(e2eutil.FreeAddr(t, popNet+".2"))
	cmd := exec.Command("bash", filepath.Join(e2eutil.RepoRoot(t), "scripts", "stack.sh"))
	stackDir := filepath.Join(t.TempDir(), "stack")
	cmd.Env = append(os.Environ(), "BIN="+bin, "PROM_ADDR="+prom, "AM_ADDR="+am, "BRIDGE_ADDR="+bridge,
		"FAKE_ADDR="+fake, "POP_PORT="+popPort, "POP_NET="+popNet, "STACK_DIR="+stackDir)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Signal(os.Interrupt)
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = cmd.Process.Kill()
			}
		}
		if t.Failed() {
			t.Logf("stack.sh output:\n%s", out.String())
			logs, _ := filepath.Glob(filepath.Join(stackDir, "logs", "*.log"))
			for _, l := range logs {
				if b, err := os.ReadFile(l); err == nil {
					t.Logf("--- %s (last 3000 bytes):\n%s", filepath.Base(l), tail(b, 3000))
				}
			}
		}
	})

	eventually(t, 3*time.Minute, 200*time.Millisecond, "stack ready", func() (bool, string) {
		return strings.Contains(out.String(), "stack: ready"), "no 'stack: ready' yet"
	})
	// The banner stack.sh prints (the fakes print their own start-up lines
	// into the same terminal before it).
	banner := out.String()
	banner = banner[:strings.Index(banner, "stack: ready")]
	if i := strings.Index(banner, "Clavis central stack"); i >= 0 {
		banner = banner[i:]
	} else {
		t.Fatalf("no banner in stack.sh's output:\n%s", banner)
	}

	// Every URL printed opens the page it promises. The POPs' need the
	// printed user and password, and trust in the stack's own CA.
	caPEM, err := os.ReadFile(filepath.Join(stackDir, "prometheus", "secrets", "pop-ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	browser := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	password := regexp.MustCompile(`user prometheus, password (\S+);`).FindStringSubmatch(banner)
	if password == nil {
		t.Fatalf("stack.sh prints no POP password:\n%s", banner)
	}
	// What each printed URL must show: a marker of the page it is.
	pages := []struct{ url, marker string }{
		{"http://" + prom, "<html"}, // the Grafana datasource: its root opens the graph page
		{"http://" + prom + "/classic/targets", "clavis-pop"},
		{"http://" + prom + "/classic/alerts", "PopDown"},
		{"http://" + am + "/#/alerts", "script.js"},
		{"http://" + am + "/#/silences", "script.js"},
		{"http://" + bridge + "/metrics", "clavis_alertbridge_"},
		{"http://" + fake + "/-/fake/ntfy/messages", "["},
		{"http://" + fake + "/-/fake/kuma/pushes", "["},
	}
	for _, p := range []string{".2", ".3", ".4"} {
		pages = append(pages, struct{ url, marker string }{fmt.Sprintf("https://%s%s:%s/metrics", popNet, p, popPort), "clavis_build_info"})
	}
	printed := regexp.MustCompile(`https?://[^\s()]+`).FindAllString(banner, -1)
	for _, u := range printed {
		found := false
		for _, p := range pages {
			found = found || p.url == u
		}
		if !found {
			t.Errorf("stack.sh prints %s, which this test does not know to check", u)
		}
	}
	for _, p := range pages {
		if !slices.Contains(printed, p.url) {
			t.Errorf("stack.sh does not print %s", p.url)
			continue
		}
		eventually(t, 60*time.Second, time.Second, p.url+" shows its page", func() (bool, string) {
			code, body, err := fetchPage(browser, p.url, "prometheus", password[1])
			return err == nil && code == 200 && strings.Contains(body, p.marker),
				fmt.Sprintf("status %d, err %v, %q not in %.300q", code, err, p.marker, body)
		})
	}

	s := &stack{client: newHTTPClient()}
	eventually(t, 60*time.Second, time.Second, "three POPs scraped by the stack's Prometheus", func() (bool, string) {
		v, ok, err := s.promValue(prom, `sum(up{job="clavis-pop"})`)
		return ok && v == 3, fmt.Sprintf("sum(up)=%v ok=%v err=%v", v, ok, err)
	})
	eventually(t, 90*time.Second, time.Second, "Watchdog heartbeat printed by the fake Kuma", func() (bool, string) {
		return strings.Contains(out.String(), `kuma {`) && strings.Contains(out.String(), `"status":"up"`), "no kuma line yet"
	})

	// The printed outage drill: kill the POP, and PopDown pages. Every URL
	// in the page opens a working page: loopback ones answer 200 with
	// HTML, the runbook is a heading of docs/runbooks.md.
	drill := regexp.MustCompile(`Outage drill: kill (\d+)`).FindStringSubmatch(banner)
	if drill == nil {
		t.Fatalf("stack.sh prints no outage drill:\n%s", banner)
	}
	pid, _ := strconv.Atoi(drill[1])
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		t.Fatalf("kill %d (the printed drill): %v", pid, err)
	}
	var page fakenotify.Message
	eventually(t, 4*time.Minute, 2*time.Second, "PopDown ams1 paged at the fake ntfy", func() (bool, string) {
		var msgs []fakenotify.Message
		_, body, err := fetchPage(browser, "http://"+fake+"/-/fake/ntfy/messages", "", "")
		if err == nil {
			err = json.Unmarshal([]byte(body), &msgs)
		}
		for _, m := range msgs {
			if strings.Contains(m.Title, "FIRING") && strings.Contains(m.Title, "PopDown") && (strings.Contains(m.Title, "ams1") || announces(m.Message, "ams1")) {
				page = m
				return true, ""
			}
		}
		return false, fmt.Sprintf("messages %+v err %v", msgs, err)
	})
	urls := []string{page.Click}
	for _, a := range page.Actions {
		if a.Action == "view" {
			urls = append(urls, a.URL)
		} else if !strings.HasPrefix(a.URL, "http://"+bridge+"/") {
			// http actions are the phone calling the bridge back.
			t.Errorf("action %+v does not call alertbridge at %s", a, bridge)
		}
	}
	runbooks, err := os.ReadFile(filepath.Join(e2eutil.RepoRoot(t), "docs", "runbooks.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, u := range urls {
		switch {
		case u == "":
			t.Errorf("notification %+v has an empty link", page)
		case strings.HasPrefix(u, "https://github.com/clavitor/clavis-telemetry/blob/main/docs/runbooks.md#"):
			anchor := u[strings.Index(u, "#")+1:]
			if !regexp.MustCompile(`(?mi)^## ` + regexp.QuoteMeta(anchor) + `\s*$`).Match(runbooks) {
				t.Errorf("runbook link %s: no such heading in docs/runbooks.md", u)
			}
		case strings.HasPrefix(u, "http://"+prom+"/"), strings.HasPrefix(u, "http://"+am+"/"):
			code, body, err := fetchPage(browser, u, "", "")
			if err != nil || code != 200 || !strings.Contains(body, "<html") {
				t.Errorf("link %s in the notification: status %d, err %v, not a page: %.300q", u, code, err, body)
			}
		default:
			t.Errorf("link %s in the notification points outside the stack", u)
		}
	}
	t.Logf("notification links checked: %v", urls)

	// Ctrl-C stops everything.
	_ = cmd.Process.Signal(os.Interrupt)
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("stack.sh did not stop within 30 s of SIGINT")
	}
	stopped = true
	if !strings.Contains(out.String(), "stack: stopped") {
		t.Error("stack.sh did not report stopping")
	}
	for _, a := range []string{prom, am, bridge, fake, popNet + ".2:" + popPort, popNet + ".3:" + popPort} {
		eventually(t, 10*time.Second, 200*time.Millisecond, a+" released", func() (bool, string) {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err != nil {
				return true, ""
			}
			c.Close()
			return false, "still listening"
		})
	}
}

// fetchPage GETs url as a browser would (following redirects), with basic
// auth when user is set, and returns the status and body.
func fetchPage(c *http.Client, url, user, password string) (int, string, error) {
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		return 0, "", err
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, string(b), err
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
