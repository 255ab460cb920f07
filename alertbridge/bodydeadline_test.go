package alertbridge

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestStalledBodyFreesSlot: senders that hold their intake slots with a
// stalled chunked body get 408 after BodyIdleTimeout, so a genuine webhook
// behind them gets in; a slow body that keeps sending is read to the end.
func TestStalledBodyFreesSlot(t *testing.T) {
	t.Parallel()
	tb := startBridge(t, "", func(c *Config) {
		c.WebhookToken = "sekret"
		c.MaxConcurrentIntake = 4
		c.IntakeQueueWait = 3 * time.Second
		c.BodyIdleTimeout = 300 * time.Millisecond
	})
	addr := strings.TrimPrefix(tb.srv.URL, "http://")
	var stalled []net.Conn
	for i := 0; i < 6; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		fmt.Fprintf(c, "POST / HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sekret\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{\"ver\r\n")
		stalled = append(stalled, c)
	}
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	code, msg := tb.post(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)), "Authorization", "Bearer sekret")
	if code != 200 || time.Since(start) > 2*time.Second {
		t.Errorf("webhook behind stalled bodies: %d %q after %s, want 200 within 2s", code, msg, time.Since(start))
	}
	for _, c := range stalled {
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("stalled sender: %v", err)
		}
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(string(b), "webhook body too slow") {
			t.Errorf("stalled sender: %d %q, want 408", resp.StatusCode, b)
		}
	}
	if n := tb.counter("clavis_alertbridge_webhooks_rejected_total", "reason", "timeout"); n != 6 {
		t.Errorf("rejected{reason=timeout} = %v, want 6", n)
	}
	// A body trickling in over 1.5 s, never idle for 300 ms, is fine.
	pr, pw := io.Pipe()
	go func() {
		body := mkPayload(mkAlert("PopDown", "ams1", "critical", "firing", t0))
		for i := 0; i < len(body); i += len(body)/15 + 1 {
			pw.Write(body[i:min(i+len(body)/15+1, len(body))])
			time.Sleep(100 * time.Millisecond)
		}
		pw.Close()
	}()
	req, _ := http.NewRequest(http.MethodPost, tb.srv.URL, pr)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer sekret")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("slow but steady body: %d %q", resp.StatusCode, b)
	}
}
