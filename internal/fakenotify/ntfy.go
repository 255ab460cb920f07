// Package fakenotify holds the one fake ntfy server and the one fake Uptime
// Kuma push endpoint every test of this repository uses. They implement the
// documented behaviour of the real services (ntfy's publishing API and error
// codes, Kuma's /api/push/<token>) closely enough that a client which works
// against them works against the real thing; and they record what they
// received so tests can count deliveries exactly.
//
// Both are plain http.Handlers (use them with httptest.NewServer), and Server
// wraps a handler in a loopback listener that can be taken down (connection
// refused) and brought back on the same address.
package fakenotify

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// NtfyOptions configures a fake ntfy server. The zero value is an open
// server (anonymous write allowed, no rate limit, 4,096-byte message limit,
// attachments disabled), like `ntfy serve` with no configuration.
type NtfyOptions struct {
	// Tokens maps access tokens (sent as "Authorization: Bearer <token>") to
	// whether they may write (publish) to topics. When Tokens is non-empty
	// and AllowAnonymous is false, anonymous publishing is denied, like
	// ntfy's auth-default-access: deny-all.
	Tokens         map[string]bool
	AllowAnonymous bool
	// TopicWrite grants tokens write access to some topics only (ntfy's
	// per-user access control: `ntfy access <user> <topic> write-only`);
	// a pattern may end in "*". A token listed here is known; where it has
	// no grant, it gets 403. Tokens in Tokens keep their global right.
	TopicWrite map[string][]string

	// RateBurst and RateReplenish are ntfy's visitor-request-limit-burst and
	// visitor-request-limit-replenish (ntfy's defaults are 60 and 5s). A
	// zero RateBurst disables rate limiting. The limit is per server here
	// (ntfy's is per visitor IP; in tests all clients are one visitor).
	RateBurst     int
	RateReplenish time.Duration
	// RetryAfter, if positive, is sent as Retry-After on 429 answers. The
	// real ntfy does not send one; a proxy in front of it may.
	RetryAfter time.Duration
	// AuthFailureBurst and AuthFailureReplenish are ntfy's
	// visitor-auth-failure-limit-burst and -replenish (ntfy's defaults:
	// 30 and 1m): once a visitor's credentials failed that often, every
	// request carrying credentials is answered 429 (code 42909, "too many
	// auth failures") before they are checked. Zero AuthFailureBurst:
	// no limit.
	AuthFailureBurst     int
	AuthFailureReplenish time.Duration

	// MessageSizeLimit is ntfy's message-size-limit (default 4096 bytes).
	// A larger (or non-UTF-8) body becomes an attachment when
	// AttachmentsEnabled (ntfy's attachment-cache-dir is set), and is
	// rejected with 400 (code 40014, "attachments not allowed") otherwise.
	MessageSizeLimit   int
	AttachmentsEnabled bool
	// AttachmentFileSizeLimit is ntfy's attachment-file-size-limit (default
	// 15 MiB): a larger body is answered 413 (code 41301).
	AttachmentFileSizeLimit int

	// FailRatio answers this fraction of publishes 503 at random (a flaky
	// ntfy, for benchmarks).
	FailRatio float64

	// Now is the clock of the rate limiter (default time.Now), so tests can
	// check the refill without waiting.
	Now func() time.Time
}

// Action is one ntfy action button as ntfy parsed it.
type Action struct {
	Action string `json:"action"`
	Label  string `json:"label"`
	URL    string `json:"url,omitempty"`
	Clear  bool   `json:"clear,omitempty"`
	Method string `json:"method,omitempty"`
	Body   string `json:"body,omitempty"`
}

// Attachment is what ntfy made of a body that was too large for a message.
type Attachment struct {
	Name string `json:"name"`
	Size int    `json:"size"`
	Body []byte `json:"-"`
}

// Message is one message the fake accepted (answered 200), with the parsed
// fields ntfy would store and the raw request headers.
type Message struct {
	ID         string      `json:"id"`
	Time       time.Time   `json:"time"`
	Topic      string      `json:"topic"`
	Title      string      `json:"title,omitempty"`
	Message    string      `json:"message"`
	Priority   int         `json:"priority"`
	Tags       []string    `json:"tags,omitempty"`
	Click      string      `json:"click,omitempty"`
	Actions    []Action    `json:"actions,omitempty"`
	Attachment *Attachment `json:"attachment,omitempty"`
	// ContentType is "text/markdown" when the message was published with
	// X-Markdown (or its aliases) or Content-Type: text/markdown, as ntfy
	// stores it.
	ContentType string      `json:"content_type,omitempty"`
	Token       string      `json:"-"`
	Header      http.Header `json:"-"`
}

// Mode is how a fake answers while it is "down".
type Mode int

const (
	// Up answers normally.
	Up Mode = iota
	// Unavailable answers every request with 503.
	Unavailable
	// Hang never answers, like a network black hole: each request waits
	// until the client gives up or the mode changes, and is then dropped
	// unprocessed (connection aborted).
	Hang
)

// Ntfy is a fake ntfy server. Safe for concurrent use.
type Ntfy struct {
	opts NtfyOptions

	mu        sync.Mutex
	messages  []Message
	status    map[int]int // answers by HTTP status, including errors
	mode      Mode
	tokens    float64
	lastFill  time.Time
	forced429 int
	forced    []forcedAnswer
	delay     time.Duration
	refuse    func(*http.Request) (status int, retryAfter string, ok bool)
	grants    map[string][]string
	revoked   map[string]bool
	requests  []Request
	release   chan struct{}
	onMessage func(Message)
	// authTokens is the auth failure bucket (AuthFailureBurst).
	authTokens   float64
	authLastFill time.Time
}

type forcedAnswer struct {
	status     int
	retryAfter string
}

// Request is one publish request as the fake answered it.
type Request struct {
	Time   time.Time
	Title  string
	Status int
}

// NewNtfy returns a fake ntfy server with the given options.
func NewNtfy(opts NtfyOptions) *Ntfy {
	if opts.MessageSizeLimit <= 0 {
		opts.MessageSizeLimit = 4096
	}
	if opts.RateBurst > 0 && opts.RateReplenish <= 0 {
		opts.RateReplenish = 5 * time.Second
	}
	if opts.AuthFailureBurst > 0 && opts.AuthFailureReplenish <= 0 {
		opts.AuthFailureReplenish = time.Minute
	}
	if opts.AttachmentFileSizeLimit <= 0 {
		opts.AttachmentFileSizeLimit = 15 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := &Ntfy{
		opts:     opts,
		status:   map[int]int{},
		tokens:   float64(opts.RateBurst),
		lastFill: opts.Now(),

		authTokens:   float64(opts.AuthFailureBurst),
		authLastFill: opts.Now(),
		release:      make(chan struct{}),
		grants:       map[string][]string{},
		revoked:      map[string]bool{},
	}
	for tok, topics := range opts.TopicWrite {
		n.grants[tok] = append([]string(nil), topics...)
	}
	return n
}

// Grant gives a token write access to a topic pattern (and makes it known).
func (n *Ntfy) Grant(token, topic string) {
	n.mu.Lock()
	n.grants[token] = append(n.grants[token], topic)
	delete(n.revoked, token)
	n.mu.Unlock()
}

// Revoke takes a token's write access away (it stays known: 403).
func (n *Ntfy) Revoke(token string) {
	n.mu.Lock()
	n.revoked[token] = true
	n.mu.Unlock()
}

// ForceStatus makes the next k publish requests fail with status (and,
// for 429, the Retry-After value, "" for none), whatever else applies.
func (n *Ntfy) ForceStatus(status, k int, retryAfter string) {
	n.mu.Lock()
	for i := 0; i < k; i++ {
		n.forced = append(n.forced, forcedAnswer{status, retryAfter})
	}
	n.mu.Unlock()
}

// SetAnswerDelay makes the fake publish each message and then wait d
// before answering: a slow ntfy whose answers come after the client gave
// up, although the message went out.
func (n *Ntfy) SetAnswerDelay(d time.Duration) {
	n.mu.Lock()
	n.delay = d
	n.mu.Unlock()
}

// RefuseWhen installs a test hook: a publish for which f returns ok is
// answered with status (and Retry-After, if not "") instead of published.
func (n *Ntfy) RefuseWhen(f func(*http.Request) (status int, retryAfter string, ok bool)) {
	n.mu.Lock()
	n.refuse = f
	n.mu.Unlock()
}

// Requests returns every publish request the fake answered, in order.
func (n *Ntfy) Requests() []Request {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Request(nil), n.requests...)
}

func (n *Ntfy) record(r *http.Request, status int) {
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		return
	}
	n.requests = append(n.requests, Request{Time: n.opts.Now(), Title: header(r, "x-title", "title", "t"), Status: status})
}

// OnMessage registers a function called (outside the lock) for every
// accepted message, e.g. to print it.
func (n *Ntfy) OnMessage(f func(Message)) {
	n.mu.Lock()
	n.onMessage = f
	n.mu.Unlock()
}

// SetMode switches between answering normally, 503 and hanging.
func (n *Ntfy) SetMode(m Mode) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.mode == Hang && m != Hang {
		close(n.release)
		n.release = make(chan struct{})
	}
	n.mode = m
}

// Force429 makes the next k publish requests fail with 429, whatever the
// rate limit says (a "429 storm").
func (n *Ntfy) Force429(k int) {
	n.mu.Lock()
	n.forced429 = k
	n.mu.Unlock()
}

// Messages returns a copy of the accepted messages, in arrival order.
func (n *Ntfy) Messages() []Message {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]Message(nil), n.messages...)
}

// StatusCounts returns how many requests were answered with each HTTP status.
func (n *Ntfy) StatusCounts() map[int]int {
	n.mu.Lock()
	defer n.mu.Unlock()
	m := make(map[int]int, len(n.status))
	for k, v := range n.status {
		m[k] = v
	}
	return m
}

// Reset forgets received messages and status counts.
func (n *Ntfy) Reset() {
	n.mu.Lock()
	n.messages = nil
	n.status = map[int]int{}
	n.mu.Unlock()
}

// WebAppHTML is what the fake answers a GET of a topic URL with: the start
// of ntfy's web app, as ntfy (web-root "/", the default) serves it.
const WebAppHTML = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"UTF-8\">\n<title>ntfy web</title>\n</head>\n<body><div id=\"root\"></div></body>\n</html>\n"

var topicRE = regexp.MustCompile(`^/([-_A-Za-z0-9]{1,64})(/json)?$`)

// errHTTP mirrors the JSON error body ntfy sends with every non-200 answer.
type errHTTP struct {
	Code     int    `json:"code,omitempty"`
	HTTPCode int    `json:"http"`
	Message  string `json:"error"`
	Link     string `json:"link,omitempty"`
}

var (
	errUnauthorized        = errHTTP{40101, 401, "unauthorized", "https://ntfy.sh/docs/publish/#authentication"}
	errForbidden           = errHTTP{40301, 403, "forbidden", "https://ntfy.sh/docs/publish/#authentication"}
	errTooManyRequests     = errHTTP{42901, 429, "limit reached: too many requests, please be nice", "https://ntfy.sh/docs/publish/#limitations"}
	errTooManyAuthFailures = errHTTP{42909, 429, "limit reached: too many auth failures", "https://ntfy.sh/docs/publish/#limitations"}
	errPriorityInvalid     = errHTTP{40007, 400, "invalid priority parameter", "https://ntfy.sh/docs/publish/#message-priority"}
	errAttachmentsDisabled = errHTTP{40014, 400, "invalid request: attachments not allowed", "https://ntfy.sh/docs/config/#attachments"}
	errActionsInvalid      = errHTTP{40018, 400, "invalid request: actions invalid", "https://ntfy.sh/docs/publish/#action-buttons"}
	errMessageJSONInvalid  = errHTTP{40017, 400, "invalid request: request body must be message JSON", "https://ntfy.sh/docs/publish/#publish-as-json"}
	errNotFound            = errHTTP{40401, 404, "page not found", ""}
	errUnavailable         = errHTTP{50301, 503, "service unavailable (fake ntfy is down)", ""}
	errAttachmentTooLarge  = errHTTP{41301, 413, "attachment too large, or bandwidth limit reached", "https://ntfy.sh/docs/publish/#limitations"}
)

// forcedError is the errHTTP a forced status answers with.
func forcedError(status int) errHTTP {
	switch status {
	case 401:
		return errUnauthorized
	case 403:
		return errForbidden
	case 413:
		return errAttachmentTooLarge
	case 429:
		return errTooManyRequests
	case 400:
		return errHTTP{40000, 400, "invalid request", ""}
	case 503:
		return errUnavailable
	}
	return errHTTP{status * 100, status, http.StatusText(status), ""}
}

func (n *Ntfy) fail(w http.ResponseWriter, r *http.Request, e errHTTP, detail string) {
	n.mu.Lock()
	n.status[e.HTTPCode]++
	n.record(r, e.HTTPCode)
	n.mu.Unlock()
	if detail != "" {
		e.Message += ", " + detail
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(e.HTTPCode)
	b, _ := json.Marshal(e)
	w.Write(append(b, '\n'))
}

// ServeHTTP implements ntfy's publish API (POST/PUT /<topic>), a poll of
// the cached messages (GET /<topic>/json?poll=1) and the web app a GET of
// a topic gets (GET /<topic>).
func (n *Ntfy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n.mu.Lock()
	mode, release := n.mode, n.release
	n.mu.Unlock()
	switch mode {
	case Unavailable:
		n.fail(w, r, errUnavailable, "")
		return
	case Hang:
		select {
		case <-release:
		case <-r.Context().Done():
		}
		panic(http.ErrAbortHandler)
	}
	if r.URL.Path == "/" && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
		// ntfy publishes a JSON message (with its topic inside) posted to
		// the root; the fake does not implement that, and answers what
		// ntfy answers any other body.
		n.fail(w, r, errMessageJSONInvalid, "")
		return
	}
	m := topicRE.FindStringSubmatch(r.URL.Path)
	if m == nil {
		n.fail(w, r, errNotFound, "")
		return
	}
	topic := m[1]
	if m[2] == "/json" {
		if r.Method != http.MethodGet {
			n.fail(w, r, errNotFound, "")
			return
		}
		if e, ok := n.authorize(r, false, topic); !ok {
			n.fail(w, r, e, "")
			return
		}
		n.poll(w, topic)
		return
	}
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		// ntfy's handleTopic: a browser opening the topic URL gets the
		// web app (200), and so does a publish a redirect turned into a
		// GET (net/http and curl -L do that on 301, 302 and 303).
		n.mu.Lock()
		n.status[http.StatusOK]++
		n.mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, WebAppHTML)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		n.fail(w, r, errNotFound, "")
		return
	}
	n.mu.Lock()
	var forced *forcedAnswer
	if len(n.forced) > 0 {
		f := n.forced[0]
		forced = &f
		n.forced = n.forced[1:]
	} else if n.refuse != nil {
		if st, ra, ok := n.refuse(r); ok {
			forced = &forcedAnswer{st, ra}
		}
	}
	n.mu.Unlock()
	if forced == nil && n.opts.FailRatio > 0 && mrand.Float64() < n.opts.FailRatio {
		forced = &forcedAnswer{status: 503}
	}
	if forced != nil {
		if forced.retryAfter != "" {
			w.Header().Set("Retry-After", forced.retryAfter)
		}
		n.fail(w, r, forcedError(forced.status), "")
		return
	}
	token, ok := n.authorize(r, true, topic)
	if !ok {
		n.fail(w, r, token, "")
		return
	}
	if !n.allow() {
		if n.opts.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int((n.opts.RetryAfter+time.Second-1)/time.Second)))
		}
		n.fail(w, r, errTooManyRequests, "")
		return
	}
	msg, e, detail := n.parse(r, topic)
	if e.HTTPCode != 0 {
		n.fail(w, r, e, detail)
		return
	}
	msg.Token = bearer(r)
	n.mu.Lock()
	n.messages = append(n.messages, msg)
	n.status[200]++
	n.record(r, 200)
	cb, delay := n.onMessage, n.delay
	n.mu.Unlock()
	if cb != nil {
		cb(msg)
	}
	if delay > 0 {
		// Published; the answer comes late (or never, if the client
		// gives up first).
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(struct {
		Event string `json:"event"`
		Message
		Time    int64 `json:"time"`
		Expires int64 `json:"expires"`
	}{"message", msg, msg.Time.Unix(), msg.Time.Add(12 * time.Hour).Unix()})
}

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authorize follows ntfy: a credential that is present but unknown is 401;
// a known token without the needed permission on the topic, or anonymous
// access where the default is deny-all, is 403. With no tokens configured
// at all the server is open, like ntfy without auth-file.
func (n *Ntfy) authorize(r *http.Request, write bool, topic string) (errHTTP, bool) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.opts.Tokens) == 0 && len(n.grants) == 0 {
		return errHTTP{}, true
	}
	h := r.Header.Get("Authorization")
	if h == "" {
		if n.opts.AllowAnonymous {
			return errHTTP{}, true
		}
		return errForbidden, false
	}
	if n.opts.AuthFailureBurst > 0 {
		// ntfy's maybeAuthenticate: the limiter is checked before the
		// credentials, and only failures take from it.
		now := n.opts.Now()
		n.authTokens = min(float64(n.opts.AuthFailureBurst), n.authTokens+float64(now.Sub(n.authLastFill))/float64(n.opts.AuthFailureReplenish))
		n.authLastFill = now
		if n.authTokens < 1 {
			return errTooManyAuthFailures, false
		}
	}
	tok := bearer(r)
	canWrite, known := n.opts.Tokens[tok]
	grants, granted := n.grants[tok]
	if tok == "" || (!known && !granted) {
		if n.opts.AuthFailureBurst > 0 {
			n.authTokens--
		}
		return errUnauthorized, false
	}
	if !write {
		return errHTTP{}, true
	}
	if n.revoked[tok] {
		return errForbidden, false
	}
	if canWrite {
		return errHTTP{}, true
	}
	for _, g := range grants {
		if g == topic || (strings.HasSuffix(g, "*") && strings.HasPrefix(topic, strings.TrimSuffix(g, "*"))) {
			return errHTTP{}, true
		}
	}
	return errForbidden, false
}

// allow applies the token-bucket request limit and forced 429s.
func (n *Ntfy) allow() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.forced429 > 0 {
		n.forced429--
		return false
	}
	if n.opts.RateBurst <= 0 {
		return true
	}
	now := n.opts.Now()
	n.tokens += float64(now.Sub(n.lastFill)) / float64(n.opts.RateReplenish)
	if n.tokens > float64(n.opts.RateBurst) {
		n.tokens = float64(n.opts.RateBurst)
	}
	n.lastFill = now
	if n.tokens < 1 {
		return false
	}
	n.tokens--
	return true
}

// header returns a parameter as ntfy's readParam does: the first non-empty
// header of the given names (RFC 2047 encoded words decoded), else the
// first non-empty query parameter of the same names, lower-cased.
func header(r *http.Request, names ...string) string {
	for _, name := range names {
		if v := strings.TrimSpace(r.Header.Get(name)); v != "" {
			if d, err := new(mime.WordDecoder).DecodeHeader(v); err == nil {
				return strings.TrimSpace(d)
			}
			return v
		}
	}
	q := r.URL.Query()
	for _, name := range names {
		if v := strings.TrimSpace(q.Get(strings.ToLower(name))); v != "" {
			return v
		}
	}
	return ""
}

func boolParam(r *http.Request, names ...string) bool {
	switch strings.ToLower(header(r, names...)) {
	case "1", "yes", "true":
		return true
	}
	return false
}

func (n *Ntfy) parse(r *http.Request, topic string) (Message, errHTTP, string) {
	msg := Message{ID: randomID(), Time: time.Now(), Topic: topic, Header: r.Header.Clone(), Priority: 3}
	msg.Title = header(r, "x-title", "title", "t")
	msg.Click = header(r, "x-click", "click")
	if m := header(r, "x-message", "message", "m"); m != "" {
		msg.Message = strings.ReplaceAll(m, "\\n", "\n")
	}
	if boolParam(r, "x-markdown", "markdown", "md") || strings.EqualFold(header(r, "content-type", "content_type"), "text/markdown") {
		msg.ContentType = "text/markdown"
	}
	if p := header(r, "x-priority", "priority", "prio", "p"); p != "" {
		pr, ok := parsePriority(p)
		if !ok {
			return msg, errPriorityInvalid, ""
		}
		msg.Priority = pr
	}
	if t := header(r, "x-tags", "tags", "tag", "ta"); t != "" {
		for _, tag := range strings.Split(t, ",") {
			if tag = strings.TrimSpace(tag); tag != "" {
				msg.Tags = append(msg.Tags, tag)
			}
		}
	}
	if a := header(r, "x-actions", "actions", "action"); a != "" {
		acts, err := ParseActions(a)
		if err != nil {
			return msg, errActionsInvalid, err.Error()
		}
		msg.Actions = acts
	}
	// ntfy peeks at message-size-limit bytes (util.Peek) and takes the
	// body for the message only if it is valid UTF-8 and the peek did not
	// reach the limit (LimitReached is read == limit): a body of exactly
	// the limit is an attachment too (400 if attachments are off, 413
	// beyond attachment-file-size-limit).
	body, err := io.ReadAll(io.LimitReader(r.Body, int64(n.opts.AttachmentFileSizeLimit)+1))
	if err != nil {
		return msg, errHTTP{40000, 400, "invalid request: cannot read body", ""}, err.Error()
	}
	if len(body) >= n.opts.MessageSizeLimit || !utf8.Valid(body) {
		if !n.opts.AttachmentsEnabled {
			return msg, errAttachmentsDisabled, ""
		}
		if len(body) > n.opts.AttachmentFileSizeLimit {
			return msg, errAttachmentTooLarge, ""
		}
		msg.Attachment = &Attachment{Name: "attachment.txt", Size: len(body), Body: body}
		if !utf8.Valid(body) {
			msg.Attachment.Name = "attachment.bin"
		}
		if msg.Message == "" {
			msg.Message = "You received a file: " + msg.Attachment.Name
		}
		return msg, errHTTP{}, ""
	}
	if len(body) > 0 {
		msg.Message = strings.TrimSpace(string(body))
	}
	if msg.Message == "" {
		msg.Message = "triggered"
	}
	return msg, errHTTP{}, ""
}

func parsePriority(p string) (int, bool) {
	switch strings.ToLower(strings.TrimSpace(p)) {
	case "1", "min":
		return 1, true
	case "2", "low":
		return 2, true
	case "3", "default":
		return 3, true
	case "4", "high":
		return 4, true
	case "5", "max", "urgent":
		return 5, true
	}
	return 0, false
}

func (n *Ntfy) poll(w http.ResponseWriter, topic string) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	enc := json.NewEncoder(w)
	for _, m := range n.Messages() {
		if m.Topic == topic {
			enc.Encode(struct {
				Event string `json:"event"`
				Message
				Time int64 `json:"time"`
			}{"message", m, m.Time.Unix()})
		}
	}
}

func randomID() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ParseActions parses ntfy's X-Actions header: a JSON array, or the "simple"
// format `view, Label, https://url, clear=true; http, "Label, quoted", ...`
// (https://docs.ntfy.sh/publish/#action-buttons), with ntfy's validation:
// at most three actions, known action types, label required, URL required
// for view and http.
func ParseActions(s string) ([]Action, error) {
	s = strings.TrimSpace(s)
	var acts []Action
	if strings.HasPrefix(s, "[") {
		if err := json.Unmarshal([]byte(s), &acts); err != nil {
			return nil, err
		}
	} else {
		var err error
		if acts, err = parseSimpleActions(s); err != nil {
			return nil, err
		}
	}
	if len(acts) > 3 {
		return nil, errors.New("only 3 actions allowed")
	}
	for i := range acts {
		a := &acts[i]
		a.Action = strings.ToLower(a.Action)
		switch a.Action {
		case "view", "http", "broadcast":
		default:
			return nil, fmt.Errorf("action '%s' unknown", a.Action)
		}
		if a.Label == "" {
			return nil, errors.New("parameter 'label' is required")
		}
		if a.Action != "broadcast" && a.URL == "" {
			return nil, fmt.Errorf("parameter 'url' is required for action '%s'", a.Action)
		}
	}
	return acts, nil
}

var actionKeyRE = regexp.MustCompile(`^([-.\w]+)\s*=\s*`)

func parseSimpleActions(s string) ([]Action, error) {
	if !utf8.ValidString(s) {
		return nil, errors.New("invalid string")
	}
	var acts []Action
	pos := 0
	for pos < len(s) {
		var a Action
		for section := 0; ; section++ {
			for pos < len(s) && strings.ContainsRune(" \t\r\n", rune(s[pos])) {
				pos++
			}
			key := ""
			if m := actionKeyRE.FindStringSubmatch(s[pos:]); m != nil {
				key, pos = m[1], pos+len(m[0])
			}
			var value string
			var end byte // ',' ';' or 0 for end of input
			if pos < len(s) && (s[pos] == '"' || s[pos] == '\'') {
				q := s[pos]
				i := pos + 1
				for i < len(s) && !(s[i] == q && s[i-1] != '\\') {
					i++
				}
				if i >= len(s) {
					return nil, fmt.Errorf("unexpected end of input, quote started at position %d", pos+1)
				}
				value = s[pos+1 : i]
				pos = i + 1
				for pos < len(s) && s[pos] == ' ' {
					pos++
				}
				if pos < len(s) {
					if s[pos] != ',' && s[pos] != ';' {
						return nil, fmt.Errorf("unexpected character '%c' at position %d", s[pos], pos)
					}
					end = s[pos]
					pos++
				}
			} else {
				i := strings.IndexAny(s[pos:], ",;")
				if i < 0 {
					value, pos = s[pos:], len(s)
				} else {
					value, end, pos = s[pos:pos+i], s[pos+i], pos+i+1
				}
			}
			value = strings.TrimSpace(value)
			if key == "" {
				switch {
				case section == 0:
					key = "action"
				case section == 1:
					key = "label"
				case section == 2 && (strings.EqualFold(a.Action, "view") || strings.EqualFold(a.Action, "http")):
					key = "url"
				default:
					return nil, fmt.Errorf("term '%s' unknown", value)
				}
			}
			switch strings.ToLower(key) {
			case "action":
				a.Action = value
			case "label":
				a.Label = value
			case "url":
				a.URL = value
			case "method":
				a.Method = strings.ToUpper(value)
			case "body":
				a.Body = value
			case "clear":
				switch strings.ToLower(value) {
				case "true", "yes", "1":
					a.Clear = true
				case "false", "no", "0":
				default:
					return nil, fmt.Errorf("'clear=%s' not allowed", value)
				}
			default:
				if !strings.HasPrefix(key, "headers.") && !strings.HasPrefix(key, "extras.") {
					return nil, fmt.Errorf("key '%s' unknown", key)
				}
			}
			if end != ',' {
				break
			}
		}
		acts = append(acts, a)
	}
	return acts, nil
}
