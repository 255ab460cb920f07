package alertbridge

import (
	"encoding/base64"
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

// NtfyMaxMessageBytes is the longest body ntfy takes for a message under
// its default message-size-limit of 4096: a body of the limit or more
// becomes an attachment (or is refused when attachments are off), since
// ntfy's util.Peek counts a peek that read the whole limit as having
// reached it. Bodies are cut to this size at a UTF-8 boundary.
const NtfyMaxMessageBytes = 4096 - 1

// NtfyConfig configures the ntfy target.
type NtfyConfig struct {
	// URL is the full topic URL, e.g. https://ntfy.example.com/clavis-alerts.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// DashboardURL, when set, is the click URL (the phone can reach the
	// dashboard, rarely Prometheus) and the "Dashboard" action.
	DashboardURL string
	// Priorities maps the severity label (case-insensitive) to ntfy
	// priority 1..5; severities not listed get DefaultPriority, resolved
	// notifications ResolvedPriority.
	Priorities       map[string]int
	DefaultPriority  int
	ResolvedPriority int
	// DropInfo: groups whose alerts are all severity info are not paged
	// (they still reach the outage log). Otherwise they go out at the
	// priority Priorities gives info (default 2, low).
	DropInfo bool
	// PerMinute is the storm guard: at most this many messages a minute go
	// to the topic; what is pending beyond is merged into one digest.
	PerMinute int
	// StormWindow is the guard's period (default a minute; tests shorten it).
	StormWindow time.Duration
	// Concurrency bounds the publishes in flight (each group stays in
	// order: one message of a group at a time).
	Concurrency int
	// AuthErrorBackoff is the wait between attempts while ntfy answers
	// 401 or 403 (a revoked or wrong token): pages stay spooled.
	AuthErrorBackoff time.Duration
	// RepeatInterval: a group still firing unchanged is paged again (a
	// reminder) when Alertmanager re-sends it this long after its last
	// page, unless it was acknowledged. Zero: changes only.
	RepeatInterval time.Duration
	// RepeatTimeout bounds the one repeat after an attempt whose outcome
	// is unknown (ntfy did not answer within the delivery timeout): long,
	// so a slow ntfy gets its answer through and costs one copy only.
	RepeatTimeout time.Duration
}

// DefaultPriorities is the severity → ntfy priority mapping used when none
// is configured.
func DefaultPriorities() map[string]int {
	return map[string]int{"critical": 5, "warning": 4, "info": 2}
}

type ntfyAction struct {
	Action string `json:"action"`
	Label  string `json:"label"`
	URL    string `json:"url"`
	Method string `json:"method,omitempty"`
	Clear  bool   `json:"clear,omitempty"`
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
		name := k
		if !legacyLabelName(k) {
			// A UTF-8 name (Prometheus 3, Alertmanager 0.27+) is quoted in
			// a matcher, or Alertmanager's silence form cannot parse it.
			name = strconv.Quote(k)
		}
		parts[i] = name + "=" + strconv.Quote(labels[k])
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// legacyLabelName reports whether name is [a-zA-Z_][a-zA-Z0-9_]*, a label
// name every Alertmanager reads unquoted.
func legacyLabelName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9' {
			continue
		}
		return false
	}
	return true
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

// Bounds of the request headers: ntfy answers 431 beyond its (Go's 1 MB)
// header limit and a proxy in front often at 8 KB, and a refused page is
// lost. Every header alertbridge sets stays within these.
const (
	headerTitleMax = 250  // X-Title, before encoding
	tagMax         = 64   // one tag, before encoding
	tagsMax        = 512  // the tag list, before encoding
	clickMax       = 2048 // X-Click: a longer URL is dropped
	actionsMax     = 4096 // X-Actions, encoded: actions beyond are dropped
)

// tagSafe keeps a tag to characters that cannot break ntfy's comma list,
// and to tagMax bytes.
func tagSafe(s string) string {
	return TruncateUTF8(strings.Map(func(r rune) rune {
		if r == ',' || r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(s)), tagMax)
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
// words in its headers, so titles with non-ASCII label values survive. A
// value containing "=?" is encoded as a whole even when it is ASCII (which
// mime leaves as it is): ntfy would otherwise decode encoded words an
// alert's labels or annotations carry, and a forged "=?utf-8?q?...?=" could
// add actions, CR/LF or tags. ntfy's one decode gives back exactly s.
func encodeHeader(s string) string {
	s = headerSafe(s)
	if !strings.Contains(s, "=?") {
		return mime.BEncoding.Encode("UTF-8", s)
	}
	// Encoded words of at most 45 bytes (60 base64 characters, a word
	// within RFC 2047's 75), cut on rune boundaries; the decoder drops the
	// space between adjacent encoded words.
	const chunk = 45
	var b strings.Builder
	for len(s) > 0 {
		n := len(s)
		if n > chunk {
			n = chunk
			for n > 0 && !utf8.RuneStart(s[n]) {
				n--
			}
			if n == 0 {
				n = chunk
			}
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString("=?UTF-8?b?" + base64.StdEncoding.EncodeToString([]byte(s[:n])) + "?=")
		s = s[n:]
	}
	return b.String()
}

// fitActions keeps the first max actions whose X-Actions header stays
// within actionsMax; it returns how many it dropped for size.
func fitActions(acts []ntfyAction, max int) (kept []ntfyAction, dropped int) {
	for _, a := range acts {
		if len(kept) == max {
			break
		}
		trial := append(append([]ntfyAction(nil), kept...), a)
		if len(encodeHeader(actionsHeader(trial))) > actionsMax {
			dropped++
			continue
		}
		kept = trial
	}
	return kept, dropped
}

// boundedTags is the X-Tags list: each tag cut to tagMax, the list to
// tagsMax (the repeat tag always fits).
func boundedTags(in []string, repeat bool) string {
	budget := tagsMax
	if repeat {
		budget -= len(",repeat")
	}
	tags := make([]string, 0, len(in)+1)
	n := 0
	for _, t := range in {
		t = tagSafe(t)
		if t == "" || n+len(t)+1 > budget {
			continue
		}
		tags = append(tags, t)
		n += len(t) + 1
	}
	if repeat {
		tags = append(tags, "repeat")
	}
	return strings.Join(tags, ",")
}

// actionsHeader renders actions in ntfy's simple X-Actions format, quoting
// every value; if a value contains a quote or backslash (which the simple
// format cannot carry safely) it uses the JSON form, which ntfy also takes.
func actionsHeader(acts []ntfyAction) string {
	parts := make([]string, 0, len(acts))
	for _, a := range acts {
		if strings.ContainsAny(a.Label+a.URL, "\"\\") || a.Method != "" || a.Clear {
			b, _ := json.Marshal(acts)
			return string(b)
		}
		parts = append(parts, fmt.Sprintf(`%s, "%s", "%s"`, a.Action, a.Label, a.URL))
	}
	return strings.Join(parts, "; ")
}

// Header returns the request headers that carry the page's fields. A
// repeat (sent again after an attempt whose outcome is unknown) carries
// the "repeat" tag so on-call can tell it from a new page.
func (m *Page) Header(token string, repeat bool) http.Header {
	h := http.Header{}
	// Every value ntfy reads goes through encodeHeader and a bound, also
	// for pages spooled by an older version.
	h.Set("X-Title", encodeHeader(TruncateUTF8(m.Title, headerTitleMax)))
	h.Set("X-Priority", strconv.Itoa(m.Priority))
	if tags := boundedTags(m.Tags, repeat); tags != "" {
		h.Set("X-Tags", encodeHeader(tags))
	}
	if m.Click != "" && len(m.Click) <= clickMax {
		h.Set("X-Click", encodeHeader(m.Click))
	}
	if acts, _ := fitActions(m.Actions, 3); len(acts) > 0 {
		h.Set("X-Actions", encodeHeader(actionsHeader(acts)))
	}
	if m.Markdown {
		h.Set("X-Markdown", "yes")
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return h
}
