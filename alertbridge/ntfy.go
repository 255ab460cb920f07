package alertbridge

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// NtfyMaxMessageBytes is ntfy's default message-size-limit. A longer body
// would become an attachment (or be refused when attachments are off), so
// bodies are cut to this size at a UTF-8 boundary.
const NtfyMaxMessageBytes = 4096

// NtfyConfig configures the ntfy target.
type NtfyConfig struct {
	// URL is the full topic URL, e.g. https://ntfy.example.com/clavis-alerts.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// DashboardURL, when set, is the click URL (the phone can reach the
	// dashboard, rarely Prometheus) and the "Dashboard" action.
	DashboardURL string
	// Priorities maps the severity label to ntfy priority 1..5; severities
	// not listed get DefaultPriority, resolved notifications ResolvedPriority.
	Priorities       map[string]int
	DefaultPriority  int
	ResolvedPriority int
}

// DefaultPriorities is the severity → ntfy priority mapping used when none
// is configured.
func DefaultPriorities() map[string]int {
	return map[string]int{"critical": 5, "warning": 4, "info": 3}
}

type ntfyAction struct {
	Action string `json:"action"`
	Label  string `json:"label"`
	URL    string `json:"url"`
}

// NtfyMessage is what one record becomes on ntfy.
type NtfyMessage struct {
	Title    string
	Body     string
	Priority int
	Tags     []string
	Click    string
	Actions  []ntfyAction
}

// BuildNtfyMessage renders a record as an ntfy message.
func BuildNtfyMessage(cfg *NtfyConfig, r *Record) NtfyMessage {
	m := NtfyMessage{}
	status := strings.ToUpper(r.Status)
	m.Title = "[" + status + "] " + r.Alertname()
	if pop := r.Labels["pop"]; pop != "" {
		m.Title += " " + pop
	}
	sev := r.Labels["severity"]
	if r.Status == "resolved" {
		m.Priority = cfg.ResolvedPriority
		m.Tags = []string{"white_check_mark"}
	} else {
		p, ok := cfg.Priorities[sev]
		if !ok {
			p = cfg.DefaultPriority
		}
		m.Priority = p
		m.Tags = []string{"rotating_light"}
	}
	if m.Priority < 1 || m.Priority > 5 {
		m.Priority = 3
	}
	if t := tagSafe(sev); t != "" {
		m.Tags = append(m.Tags, t)
	}

	m.Click = cfg.DashboardURL
	if m.Click == "" {
		m.Click = safeURL(r.GeneratorURL)
	}
	if u := safeURL(r.Annotations["runbook_url"]); u != "" {
		m.Actions = append(m.Actions, ntfyAction{"view", "Runbook", u})
	}
	dash := safeURL(r.Annotations["dashboard_url"])
	if dash == "" {
		dash = cfg.DashboardURL
	}
	if dash != "" {
		m.Actions = append(m.Actions, ntfyAction{"view", "Dashboard", dash})
	}
	if r.Status == "firing" && r.ExternalURL != "" {
		if u := safeURL(r.ExternalURL + "/#/silences/new?filter=" + url.QueryEscape(matchers(r.Labels))); u != "" {
			m.Actions = append(m.Actions, ntfyAction{"view", "Silence", u})
		}
	}
	if len(m.Actions) > 3 {
		m.Actions = m.Actions[:3]
	}
	m.Body = TruncateUTF8(renderBody(r), NtfyMaxMessageBytes)
	return m
}

func renderBody(r *Record) string {
	var b strings.Builder
	summary := r.Annotations["summary"]
	desc := r.Annotations["description"]
	switch {
	case summary != "":
		b.WriteString(summary)
		if desc != "" && desc != summary {
			b.WriteString("\n\n" + desc)
		}
	case desc != "":
		b.WriteString(desc)
	default:
		b.WriteString(r.Alertname() + " is " + r.Status)
	}
	names := make([]string, 0, len(r.Labels))
	for k := range r.Labels {
		if k != "alertname" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if len(names) > 0 {
		b.WriteString("\n\n")
		for i, k := range names {
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(k + "=" + r.Labels[k])
		}
	}
	b.WriteString("\nStarted: " + r.StartsAt.UTC().Format(time.RFC3339))
	if r.Status == "resolved" && !r.EndsAt.IsZero() {
		b.WriteString("\nResolved: " + r.EndsAt.UTC().Format(time.RFC3339))
	}
	return strings.ToValidUTF8(b.String(), "\uFFFD")
}

// matchers renders a label set as an Alertmanager matcher list for the
// silence form's filter: {alertname="X", pop="fra1"}.
func matchers(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, len(names))
	for i, k := range names {
		parts[i] = k + "=" + strconv.Quote(labels[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// TruncateUTF8 cuts s to at most max bytes without splitting a UTF-8
// sequence, marking the cut with "…".
func TruncateUTF8(s string, max int) string {
	if len(s) <= max {
		return s
	}
	const mark = "…"
	cut := max - len(mark)
	if cut < 0 {
		cut = 0
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

// safeURL returns u if it is an absolute http(s) URL, "" otherwise.
func safeURL(u string) string {
	if u == "" {
		return ""
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return ""
	}
	return headerSafe(p.String())
}

// tagSafe keeps a tag to characters that cannot break ntfy's comma list.
func tagSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ',' || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
}

// headerSafe drops control characters, which net/http refuses in header
// values (a refused request would be retried forever).
func headerSafe(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// encodeHeader makes a header value ASCII: ntfy decodes RFC 2047 encoded
// words in its headers, so titles with non-ASCII label values survive.
func encodeHeader(s string) string {
	return mime.BEncoding.Encode("UTF-8", headerSafe(s))
}

// actionsHeader renders actions in ntfy's simple X-Actions format, quoting
// every value; if a value contains a quote or backslash (which the simple
// format cannot carry safely) it uses the JSON form, which ntfy also takes.
func actionsHeader(acts []ntfyAction) string {
	parts := make([]string, 0, len(acts))
	for _, a := range acts {
		if strings.ContainsAny(a.Label+a.URL, "\"\\") {
			b, _ := json.Marshal(acts)
			return string(b)
		}
		parts = append(parts, fmt.Sprintf(`%s, "%s", "%s"`, a.Action, a.Label, a.URL))
	}
	return strings.Join(parts, "; ")
}

// Header returns the request headers that carry the message's fields.
func (m *NtfyMessage) Header(token string) http.Header {
	h := http.Header{}
	h.Set("X-Title", encodeHeader(m.Title))
	h.Set("X-Priority", strconv.Itoa(m.Priority))
	tags := make([]string, len(m.Tags))
	for i, t := range m.Tags {
		tags[i] = encodeHeader(t)
	}
	h.Set("X-Tags", strings.Join(tags, ","))
	if m.Click != "" {
		h.Set("X-Click", m.Click)
	}
	if len(m.Actions) > 0 {
		h.Set("X-Actions", encodeHeader(actionsHeader(m.Actions)))
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}
