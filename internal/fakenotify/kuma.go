package fakenotify

import (
	"encoding/json"
	"html"
	"io"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Push is one push a fake Kuma accepted, as Kuma stores the heartbeat.
type Push struct {
	Time   time.Time `json:"time"`
	Token  string    `json:"token"`
	Status string    `json:"status"` // "up" or "down": Kuma maps every status but "up" to down
	Msg    string    `json:"msg"`    // "OK" when absent or empty, like Kuma
	// Ping is the parsed ping in milliseconds; nil when absent, empty, not
	// a number or 0 (Kuma stores null then).
	Ping   *float64 `json:"ping"`
	Method string   `json:"method"`
}

// Kuma is a fake Uptime Kuma push endpoint that behaves like Kuma's
// api-router (router.all("/api/push/:pushToken"), the same from 1.23 to
// 2.x): every HTTP method is routed, with or without a trailing slash;
// status is "up" only when the parameter is exactly "up" (absent means
// up), anything else is down; msg defaults to "OK"; ping is read as
// JavaScript's parseFloat reads it (its numeric prefix; none, or 0, is no
// ping) and must then be from 0 to 100,000,000,000 ms (Kuma 2.1+). Every
// error the handler throws (an invalid ping, an unknown or inactive push
// token: "Monitor not found or not active.", a database error) is answered
// 404 with {"ok":false,"msg":...}. Paths the push route does not match get
// Kuma's universal route: GET answers 200 with the web app's index.html,
// other methods Express' 404 page. Safe for concurrent use.
type Kuma struct {
	mu       sync.Mutex
	tokens   map[string]bool
	pushes   []Push
	status   map[int]int
	mode     Mode
	onPush   func(Push)
	failures []string
}

// maxPing is Kuma's MAX_PING_MS (2.1+): 100 billion milliseconds.
const maxPing = 100000000000

// IndexHTML is what the fake's universal route answers: the start of Kuma's
// web app.
const IndexHTML = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"UTF-8\">\n<title>Uptime Kuma</title>\n</head>\n<body><div id=\"app\"></div></body>\n</html>\n"

// NewKuma returns a fake Kuma that knows the given push tokens.
func NewKuma(tokens ...string) *Kuma {
	k := &Kuma{tokens: map[string]bool{}, status: map[int]int{}}
	for _, t := range tokens {
		k.tokens[t] = true
	}
	return k
}

// AddToken makes a push token known (a monitor created in Kuma's UI).
func (k *Kuma) AddToken(t string) {
	k.mu.Lock()
	k.tokens[t] = true
	k.mu.Unlock()
}

// FailNext makes the next k pushes fail the way Kuma answers an error its
// handler throws after routing (a database error, e.g. "SQLITE_BUSY:
// database is locked"): 404 with {"ok":false,"msg":msg}, nothing stored.
func (k *Kuma) FailNext(n int, msg string) {
	k.mu.Lock()
	for i := 0; i < n; i++ {
		k.failures = append(k.failures, msg)
	}
	k.mu.Unlock()
}

// SetMode switches between answering normally and 503 (Hang is treated as
// Unavailable here).
func (k *Kuma) SetMode(m Mode) {
	k.mu.Lock()
	k.mode = m
	k.mu.Unlock()
}

// OnPush registers a function called for every accepted push.
func (k *Kuma) OnPush(f func(Push)) {
	k.mu.Lock()
	k.onPush = f
	k.mu.Unlock()
}

// Pushes returns a copy of the accepted pushes, in arrival order.
func (k *Kuma) Pushes() []Push {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]Push(nil), k.pushes...)
}

// StatusCounts returns how many requests were answered with each HTTP status.
func (k *Kuma) StatusCounts() map[int]int {
	k.mu.Lock()
	defer k.mu.Unlock()
	m := make(map[int]int, len(k.status))
	for c, v := range k.status {
		m[c] = v
	}
	return m
}

// Last returns the most recent accepted push and whether there was one.
func (k *Kuma) Last() (Push, bool) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.pushes) == 0 {
		return Push{}, false
	}
	return k.pushes[len(k.pushes)-1], true
}

func (k *Kuma) answer(w http.ResponseWriter, code int, v any) {
	k.mu.Lock()
	k.status[code]++
	k.mu.Unlock()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

type kumaAnswer struct {
	OK  bool   `json:"ok"`
	Msg string `json:"msg,omitempty"`
}

var pushRoute = regexp.MustCompile(`^/api/push/([^/]+)/?$`)

// ServeHTTP implements /api/push/<token> and Kuma's universal route.
func (k *Kuma) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	mode := k.mode
	k.mu.Unlock()
	if mode != Up {
		k.answer(w, http.StatusServiceUnavailable, kumaAnswer{Msg: "fake kuma is down"})
		return
	}
	m := pushRoute.FindStringSubmatch(r.URL.Path)
	if m == nil {
		k.universal(w, r)
		return
	}
	token := m[1]
	q := r.URL.Query()
	p := Push{Time: time.Now(), Token: token, Status: "down", Msg: q.Get("msg"), Method: r.Method}
	if st := q.Get("status"); st == "" || st == "up" {
		p.Status = "up"
	}
	if p.Msg == "" {
		p.Msg = "OK"
	}
	// let ping = parseFloat(request.query.ping) || null: NaN and 0 are no ping.
	if v, ok := parseFloat(q.Get("ping")); ok && v != 0 {
		if v < 0 || v > maxPing {
			k.answer(w, http.StatusNotFound, kumaAnswer{Msg: "Invalid ping value. Must be between 0 and " + strconv.Itoa(maxPing) + " ms."})
			return
		}
		p.Ping = &v
	}
	k.mu.Lock()
	known := k.tokens[token]
	var fail *string
	if known && len(k.failures) > 0 {
		f := k.failures[0]
		fail = &f
		k.failures = k.failures[1:]
	}
	k.mu.Unlock()
	if !known {
		k.answer(w, http.StatusNotFound, kumaAnswer{Msg: "Monitor not found or not active."})
		return
	}
	if fail != nil {
		k.answer(w, http.StatusNotFound, kumaAnswer{Msg: *fail})
		return
	}
	k.mu.Lock()
	k.pushes = append(k.pushes, p)
	cb := k.onPush
	k.mu.Unlock()
	if cb != nil {
		cb(p)
	}
	k.answer(w, http.StatusOK, kumaAnswer{OK: true})
}

// universal is Kuma's catch-all: app.get("*") sends the web app's
// index.html (200) for every GET it reaches, but /upload/ ones; other
// methods fall through to Express' default 404 page.
func (k *Kuma) universal(w http.ResponseWriter, r *http.Request) {
	code, body := http.StatusOK, IndexHTML
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch {
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		code = http.StatusNotFound
		body = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot " +
			html.EscapeString(r.Method+" "+r.URL.Path) + "</pre>\n</body>\n</html>\n"
	case strings.HasPrefix(r.URL.Path, "/upload/"):
		code, body = http.StatusNotFound, "File not found."
	}
	k.mu.Lock()
	k.status[code]++
	k.mu.Unlock()
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// jsFloatPrefix is the part of a string JavaScript's parseFloat reads.
var jsFloatPrefix = regexp.MustCompile(`^[+-]?(Infinity|(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)`)

// parseFloat reads s as JavaScript's parseFloat does: leading white space
// skipped, then the longest numeric prefix; false (NaN) when there is none.
func parseFloat(s string) (float64, bool) {
	m := jsFloatPrefix.FindString(strings.TrimLeft(s, " \t\n\v\f\r\u00a0\ufeff"))
	if m == "" {
		return 0, false
	}
	switch strings.TrimLeft(m, "+") {
	case "Infinity":
		return math.Inf(1), true
	case "-Infinity":
		return math.Inf(-1), true
	}
	v, err := strconv.ParseFloat(m, 64)
	if err != nil {
		// Out of range: JavaScript gives ±Infinity (or 0 for an
		// underflow, which ParseFloat returns without an error).
		return v, true
	}
	return v, true
}
