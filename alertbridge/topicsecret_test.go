package alertbridge

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// The topic of an ntfy URL is what guards it on a server without access
// control (ntfy.sh: whoever knows the topic reads the pages). No log line
// shows it.
const secretTopic = "clavis-Pages-7f3e9a1c"

// TestNtfyTopicNotInTransportErrorLog: a connection refused is logged
// with the URL, which named the topic.
func TestNtfyTopicNotInTransportErrorLog(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens: every attempt is refused
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: "http://" + addr + "/" + secretTopic}
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 15*time.Second, "the failed attempt logged", func() bool {
		return strings.Contains(tb.log.String(), "connection refused")
	})
	l := tb.log.String()
	if strings.Contains(l, secretTopic) {
		t.Errorf("the ntfy topic is in the log:\n%s", l)
	}
	if !strings.Contains(l, addr) {
		t.Errorf("the log does not say which server refused:\n%s", l)
	}
}

// TestNtfyTopicNotInRedirectLog: ntfy's http:// redirect to https://
// keeps the topic in its Location.
func TestNtfyTopicNotInRedirectLog(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "https://ntfy.example"+r.URL.Path, http.StatusMovedPermanently)
	}))
	t.Cleanup(srv.Close)
	tb := startBridge(t, "", func(c *Config) {
		c.Ntfy = &NtfyConfig{URL: srv.URL + "/" + secretTopic}
	})
	tb.mustPost(t, mkPayload(mkAlert("PopDown", "fra1", "critical", "firing", t0)))
	waitFor(t, 15*time.Second, "the redirect logged", func() bool {
		return strings.Contains(tb.log.String(), "REDIRECTS")
	})
	l := tb.log.String()
	if strings.Contains(l, secretTopic) {
		t.Errorf("the ntfy topic is in the log:\n%s", l)
	}
	if !strings.Contains(l, "https://ntfy.example/REDACTED") {
		t.Errorf("the log does not say where the URL redirects:\n%s", l)
	}
}

// TestNtfyTopicNotInConfigError: a URL refused at start is shown without
// its topic.
func TestNtfyTopicNotInConfigError(t *testing.T) {
	t.Parallel()
	for _, u := range []string{"ftp://ntfy.example/" + secretTopic, "http://ntfy.example:bad/" + secretTopic, "ntfy.example/" + secretTopic} {
		err := Config{Ntfy: &NtfyConfig{URL: u}}.Validate()
		if err == nil {
			t.Errorf("%s accepted", u)
			continue
		}
		if strings.Contains(err.Error(), secretTopic) {
			t.Errorf("%s: the topic is in the error: %v", u, err)
		}
	}
}

func TestRedactSegments(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ in, topic, want string }{
		{"https://ntfy.example/ntfy", "ntfy", "https://ntfy.example/REDACTED"},
		{"https://ntfy.example/prefix/alerts/", "alerts", "https://ntfy.example/prefix/REDACTED/"},
		{"https://ntfy.example/alertsx", "alerts", "https://ntfy.example/alertsx"},
		{"https://u:p@ntfy.example/t0p1c?auth=abc", "t0p1c", "https://REDACTED@ntfy.example/REDACTED?auth=REDACTED"},
	} {
		var got string
		if c.topic == NtfyTopic(c.in) {
			got = RedactNtfyURL(c.in)
		} else {
			got = redactSegments(RedactURL(c.in), []string{c.topic})
		}
		if got != c.want {
			t.Errorf("%s: %s, want %s", c.in, got, c.want)
		}
	}
}
