package alertbridge

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// groupState is what the bridge remembers of a notification group between
// Alertmanager's notifications: which alerts its last page listed as
// firing, so the next page can say what changed.
type groupState struct {
	// Firing maps fingerprint to the alert's name in the list (its pop or
	// instance).
	Firing   map[string]string `json:"firing"`
	LastPage time.Time         `json:"lastPage"`
	// Acked is set by the Ack action and cleared when the group changes.
	Acked bool `json:"acked,omitempty"`
	// Episode names this firing episode of the group (from its first
	// firing page to its resolution; random): Ack tokens carry it, so a
	// page's Ack does not acknowledge a later episode. Empty in states
	// saved by older versions, whose tokens carry none.
	Episode string `json:"episode,omitempty"`
}

// Page is one ntfy message waiting in the spool: the rendered page for one
// Alertmanager notification (a group), plus what a storm digest needs.
type Page struct {
	Group    string       `json:"group"`
	Accepted time.Time    `json:"accepted"`
	Title    string       `json:"title"`
	Body     string       `json:"body"`
	Markdown bool         `json:"markdown,omitempty"`
	Priority int          `json:"priority"`
	Tags     []string     `json:"tags,omitempty"`
	Click    string       `json:"click,omitempty"`
	Actions  []ntfyAction `json:"actions,omitempty"`

	Alertname string `json:"alertname"`
	State     string `json:"state"` // firing or resolved
	Count     int    `json:"count"`

	// droppedActions is how many actions renderPage left out because
	// X-Actions would have exceeded actionsMax (logged by the caller).
	droppedActions int
}

// satAdd adds two counts, saturating instead of overflowing: Alertmanager's
// truncatedAlerts is a sender-given number.
func satAdd(a, b int) int {
	if b > 0 && a > math.MaxInt-b {
		return math.MaxInt
	}
	return a + b
}

// groupID names a group in the spool: Alertmanager's group key is unique per
// route and group labels, and the receiver tells routes of two configs apart.
func groupID(p *Payload) string {
	key := p.GroupKey
	if key == "" {
		// Senders without a group key (tests, scripts): one group per
		// alertname and common labels.
		key = "labels:" + labelString(commonLabels(p.Alerts))
	}
	h := sha256.Sum256([]byte(p.Receiver + "\x00" + key))
	return hex.EncodeToString(h[:12])
}

// Bounds of a page.
const (
	// titleMax keeps a title to what a phone shows on two lines; a
	// 5,000-character alertname is cut.
	titleMax = 200
	// listMax is how many alerts a page names before "+N more".
	listMax = 25
	// textMax bounds the summary and the description each.
	textMax = 1024
)

// commonLabels returns the labels every alert carries with the same value.
func commonLabels(alerts []Alert) map[string]string {
	if len(alerts) == 0 {
		return map[string]string{}
	}
	out := map[string]string{}
	for k, v := range alerts[0].Labels {
		out[k] = v
	}
	for _, a := range alerts[1:] {
		for k, v := range out {
			if a.Labels[k] != v {
				delete(out, k)
			}
		}
	}
	return out
}

func commonAnnotation(alerts []Alert, name string) string {
	if len(alerts) == 0 {
		return ""
	}
	v := alerts[0].Annotations[name]
	for _, a := range alerts[1:] {
		if a.Annotations[name] != v {
			return ""
		}
	}
	return v
}

// alertNoun names what a group's alerts are about: POPs when every alert
// carries a pop label, alerts otherwise.
func alertNoun(alerts []Alert) string {
	for _, a := range alerts {
		if a.Labels["pop"] == "" {
			return "alerts"
		}
	}
	return "POPs"
}

func labelString(l map[string]string) string {
	names := make([]string, 0, len(l))
	for k := range l {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, k := range names {
		b.WriteString(k + "=" + strconv.Quote(l[k]) + ",")
	}
	return b.String()
}

// groupMatchers are the label matchers that select exactly this group: its
// group labels, or, from a sender that sends none, the labels its alerts
// have in common.
func groupMatchers(p *Payload, common map[string]string) map[string]string {
	if len(p.GroupLabels) > 0 {
		return p.GroupLabels
	}
	m := map[string]string{}
	for k, v := range common {
		if k != "severity" {
			m[k] = v
		}
	}
	return m
}

// alertName is how an alert is named in a page's list: its POP, else its
// instance, else the labels it does not share with the group.
func alertName(labels, common map[string]string, fp string) string {
	for _, k := range []string{"pop", "instance"} {
		if v := labels[k]; v != "" && common[k] == "" {
			return v
		}
	}
	var parts []string
	for k, v := range labels {
		if k != "alertname" && common[k] != v {
			parts = append(parts, k+"="+v)
		}
	}
	if len(parts) == 0 {
		if v := labels["pop"]; v != "" {
			return v
		}
		if v := labels["instance"]; v != "" {
			return v
		}
		return fp
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

// severity is the severity label, lower-cased: CRITICAL and critical are
// the same severity.
func severity(labels map[string]string) string {
	return strings.ToLower(strings.TrimSpace(labels["severity"]))
}

// pageInput is one notification, split the way a page shows it.
type pageInput struct {
	p        *Payload
	alerts   []Alert // without the Watchdog
	firing   []int   // indexes into alerts: firing and not stale
	fresh    []bool  // per alert: a new (fingerprint, status, startsAt)
	prev     *groupState
	priority int // highest priority of the firing alerts
	severity string
	reminder bool // unchanged, paged again after the repeat interval
	group    string
	episode  string // groupState.Episode, for the action tokens
	actions  *ActionsConfig
}

// renderPage builds the ntfy message for one group notification.
func renderPage(cfg *NtfyConfig, in *pageInput, now time.Time) Page {
	common := commonLabels(in.alerts)
	var added, stillFiring, resolved []string
	for _, i := range in.firing {
		a := &in.alerts[i]
		name := alertName(a.Labels, common, a.Fingerprint)
		if in.prev != nil && in.fresh[i] {
			added = append(added, name)
		} else {
			stillFiring = append(stillFiring, name)
		}
	}
	for i := range in.alerts {
		a := &in.alerts[i]
		if a.Status == "resolved" && in.fresh[i] {
			resolved = append(resolved, alertName(a.Labels, common, a.Fingerprint))
		}
	}
	sort.Strings(added)
	sort.Strings(stillFiring)
	sort.Strings(resolved)

	pg := Page{Accepted: now, Markdown: true}
	firingN := len(in.firing)
	if firingN > 0 {
		pg.State = "firing"
		pg.Count = satAdd(firingN, in.p.TruncatedAlerts)
	} else {
		pg.State = "resolved"
		pg.Count = len(resolved)
	}
	pg.Alertname = common["alertname"]
	if pg.Alertname == "" {
		pg.Alertname = "alerts"
		if g := in.p.GroupLabels["alertname"]; g != "" {
			pg.Alertname = g
		}
	}
	// Title: "[FIRING:37] PopDown eu-west".
	title := "[" + strings.ToUpper(pg.State) + ":" + strconv.Itoa(pg.Count) + "] " + pg.Alertname
	match := groupMatchers(in.p, common)
	names := make([]string, 0, len(match))
	for k := range match {
		if k != "alertname" {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	for _, k := range names {
		if v := match[k]; v != "" {
			title += " " + v
		}
	}
	pg.Title = TruncateUTF8(strings.ToValidUTF8(title, "\uFFFD"), titleMax)

	if pg.State == "firing" {
		pg.Priority = in.priority
		pg.Tags = []string{"rotating_light"}
		if t := tagSafe(in.severity); t != "" {
			pg.Tags = append(pg.Tags, t)
		}
	} else {
		pg.Priority = cfg.ResolvedPriority
		pg.Tags = []string{"white_check_mark"}
	}
	if pg.Priority < 1 || pg.Priority > 5 {
		pg.Priority = 3
	}

	// Body: the summary, what changed, then the alerts one a line.
	var b strings.Builder
	summary := in.p.CommonAnnotations["summary"]
	if summary == "" {
		summary = commonAnnotation(in.alerts, "summary")
	}
	if summary == "" {
		// The alerts' summaries differ (PopDown's names its POP): taking
		// one of them would tell on-call that a single POP is down when a
		// region is. Say how many instead; the list below names them.
		summary = pg.Alertname + " is " + pg.State
		if n := len(in.alerts); n > 1 {
			summary += " for " + strconv.Itoa(n) + " " + alertNoun(in.alerts)
		}
	}
	// Annotations are text, not Markdown: a description must not add list
	// items, links or images of its own.
	b.WriteString(mdEscapeMax(summary, textMax))
	desc := in.p.CommonAnnotations["description"]
	if desc == "" {
		desc = commonAnnotation(in.alerts, "description")
	}
	if desc != "" && desc != summary {
		b.WriteString("\n\n" + mdEscapeMax(desc, textMax))
	}
	b.WriteString("\n\n")
	switch {
	case pg.State == "resolved":
		b.WriteString("**RESOLVED**")
	case in.reminder:
		b.WriteString("**STILL FIRING** (reminder)")
	case in.prev == nil:
		b.WriteString("**FIRING**")
	default:
		var ch []string
		if len(added) > 0 {
			ch = append(ch, strconv.Itoa(len(added))+" new")
		}
		if len(resolved) > 0 {
			ch = append(ch, strconv.Itoa(len(resolved))+" resolved")
		}
		b.WriteString("**FIRING**, changed: " + strings.Join(ch, ", "))
	}
	body := b.String()
	budget := NtfyMaxMessageBytes - len(body)
	lists := []struct {
		head  string
		names []string
		extra int
	}{
		{"New", added, 0},
		{"Firing", stillFiring, in.p.TruncatedAlerts},
		{"Resolved", resolved, 0},
	}
	if in.prev != nil && len(added) > 0 {
		lists[1].head = "Still firing"
	}
	if pg.State == "resolved" {
		// Nothing the page names fires: the alerts Alertmanager left out
		// are not known to be firing, and a resolved page must not say
		// "Firing (N)". They get a line of their own below.
		lists[1].extra = 0
	}
	if in.reminder {
		// Unchanged: every alert is listed as firing, none as new.
		lists[1].names = append(append([]string(nil), added...), stillFiring...)
		sort.Strings(lists[1].names)
		lists[0].names = nil
	}
	var lb strings.Builder
	for _, l := range lists {
		shown := 0
		if satAdd(len(l.names), l.extra) == 0 {
			continue
		}
		head := "\n\n**" + l.head + " (" + strconv.Itoa(satAdd(len(l.names), l.extra)) + "):**"
		if lb.Len()+len(head)+40 > budget {
			break
		}
		lb.WriteString(head)
		for j, n := range l.names {
			line := "\n- " + mdEscape(TruncateUTF8(n, titleMax))
			rest := len(l.names) - j
			// Keep room for the "+N more" line.
			if shown >= listMax || lb.Len()+len(line)+24 > budget {
				lb.WriteString("\n- +" + strconv.Itoa(satAdd(rest, l.extra)) + " more")
				l.extra = -1
				break
			}
			lb.WriteString(line)
			shown++
		}
		if l.extra > 0 {
			lb.WriteString("\n- +" + strconv.Itoa(l.extra) + " more (not sent by Alertmanager: max_alerts)")
		}
	}
	if pg.State == "resolved" && in.p.TruncatedAlerts > 0 {
		lb.WriteString("\n\n+" + strconv.Itoa(in.p.TruncatedAlerts) + " more alerts not sent by Alertmanager (max_alerts), status unknown")
	}
	pg.Body = TruncateUTF8(strings.ToValidUTF8(body+lb.String(), "\uFFFD"), NtfyMaxMessageBytes)

	// Click and actions.
	pg.Click = cfg.DashboardURL
	if pg.Click == "" && len(in.alerts) > 0 {
		pg.Click = safeURL(in.alerts[0].GeneratorURL)
	}
	if len(pg.Click) > clickMax {
		pg.Click = "" // ntfy or a proxy would refuse the headers: no click URL
	}
	runbook := in.p.CommonAnnotations["runbook_url"]
	if runbook == "" {
		runbook = commonAnnotation(in.alerts, "runbook_url")
	}
	if pg.State == "firing" && in.actions != nil && len(match) > 0 {
		// On the phone: Silence 1h, Ack, and the runbook (or dashboard).
		pg.Actions = in.actions.pageActions(in.group, in.episode, pg.Title, match, now)
	}
	if u := safeURL(runbook); u != "" {
		pg.Actions = append(pg.Actions, ntfyAction{Action: "view", Label: "Runbook", URL: u})
	}
	dash := safeURL(commonAnnotation(in.alerts, "dashboard_url"))
	if dash == "" {
		dash = cfg.DashboardURL
	}
	if dash != "" {
		pg.Actions = append(pg.Actions, ntfyAction{Action: "view", Label: "Dashboard", URL: dash})
	}
	if pg.State == "firing" && in.p.ExternalURL != "" {
		if u := safeURL(strings.TrimRight(in.p.ExternalURL, "/") + "/#/silences/new?filter=" + url.QueryEscape(matchers(match))); u != "" {
			pg.Actions = append(pg.Actions, ntfyAction{Action: "view", Label: "Silence", URL: u})
		}
	}
	// At most three (ntfy's limit), each kept only if X-Actions stays
	// within actionsMax: a 400 KB label in the signed tokens or the silence
	// filter would otherwise get the page refused with 431.
	pg.Actions, pg.droppedActions = fitActions(pg.Actions, 3)
	return pg
}

// mdEscapeMax is mdEscape(s) in at most limit bytes: the text is cut before
// it is escaped, so that a summary of punctuation, which escaping doubles,
// cannot take the room of the alert list below it.
func mdEscapeMax(s string, limit int) string {
	e := mdEscape(TruncateUTF8(s, limit))
	for n := limit; len(e) > limit && n > 0; {
		// A source byte is at most two escaped ones: cutting half the
		// excess never cuts more than a rune too many, and the excess at
		// least halves each pass.
		n -= (len(e) - limit + 1) / 2
		e = mdEscape(TruncateUTF8(s, max(n, 0)))
	}
	return e
}

// mdEscape keeps a label value or annotation from being read as Markdown:
// emphasis, code, links, images and HTML anywhere, block syntax (headings,
// lists, quotes, rules) at the start of every line.
func mdEscape(s string) string {
	var b strings.Builder
	lineStart, digits := true, false
	for _, r := range s {
		switch {
		case strings.ContainsRune("\\`*_[]<>~|!", r):
			b.WriteByte('\\')
		case lineStart && strings.ContainsRune("#+-=", r):
			b.WriteByte('\\')
		case digits && (r == '.' || r == ')'):
			b.WriteByte('\\') // "1. x" is an ordered list item
		}
		b.WriteRune(r)
		switch {
		case r == '\n':
			lineStart, digits = true, false
		case lineStart && (r == ' ' || r == '\t'):
		case (lineStart || digits) && r >= '0' && r <= '9':
			lineStart, digits = false, true
		default:
			lineStart, digits = false, false
		}
	}
	return b.String()
}
