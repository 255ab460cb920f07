package alertbridge

import (
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/clavitor/clavis-telemetry/internal/fakenotify"
)

// TestKill9AfterPublishMarksRepeat: the bridge is killed (SIGKILL) the
// moment ntfy has published a page, before the page's settlement can be
// committed. After the restart the page goes out again, marked as a
// possible repeat (tag and note), as README promises; a page that was not
// in flight is not marked.
func TestKill9AfterPublishMarksRepeat(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end: builds and kills the binary")
	}
	t.Parallel()
	ntfy := fakenotify.NewNtfy(fakenotify.NtfyOptions{Tokens: map[string]bool{"tk": true}})
	ns, err := fakenotify.StartServer(fakenotify.Mux(ntfy, nil), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	spool := filepath.Join(t.TempDir(), "spool.db")
	tokenFile := filepath.Join(t.TempDir(), "webhook.token")
	os.WriteFile(tokenFile, []byte("kill9-secret\n"), 0o600)
	p := newBridgeProc(t, []string{"--spool.path=" + spool, "--webhook.token-file=" + tokenFile, "--ntfy.concurrency=1"},
		[]string{"NTFY_ALERT_URL=" + ns.URL() + "/alerts", "NTFY_ALERT_TOKEN=tk"})
	p.start(t)
	var once sync.Once
	killed := make(chan struct{})
	ntfy.OnMessage(func(fakenotify.Message) { once.Do(func() { p.kill9(); close(killed) }) })
	post := func(a Alert) {
		req, _ := http.NewRequest(http.MethodPost, "http://"+p.addr+"/webhook", bytes.NewReader(mkPayload(a)))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer kill9-secret")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("webhook: %d", resp.StatusCode)
		}
	}
	// The hook runs before the fake answers: the page is published, the
	// bridge has no answer yet.
	post(mkAlert("PopDown", "fra1", "critical", "firing", t0))
	waitFor(t, 10*time.Second, "first page published", func() bool { return len(ntfy.Messages()) >= 1 })
	select {
	case <-killed:
	case <-time.After(10 * time.Second):
		t.Fatal("not killed")
	}
	p.start(t)
	post(mkAlert("PopDown", "ams1", "critical", "firing", t0))
	waitFor(t, 20*time.Second, "both pages after the restart", func() bool { return len(ntfy.Messages()) >= 3 })
	time.Sleep(300 * time.Millisecond)
	msgs := ntfy.Messages()
	if len(msgs) != 3 {
		t.Fatalf("pages %q, want fra1 twice and ams1", titles(msgs))
	}
	for _, m := range msgs[1:] {
		repeat := slices.Contains(m.Tags, "repeat") && strings.Contains(m.Message, "possible repeat: alertbridge restarted")
		switch m.Title {
		case "[FIRING:1] PopDown fra1":
			if !repeat {
				t.Errorf("fra1 re-sent after the kill without the repeat tag and note: tags %v, %.120q", m.Tags, m.Message)
			}
		case "[FIRING:1] PopDown ams1":
			if slices.Contains(m.Tags, "repeat") {
				t.Errorf("ams1, never in flight before, marked as a repeat")
			}
		default:
			t.Errorf("unexpected page %q", m.Title)
		}
	}
}
