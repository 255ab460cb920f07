package fakenotify

import (
	"encoding/json"
	"math"
	"net/http"
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
	// Ping is the parsed ping in milliseconds; nil when absent or empty.
	Ping   *float64 `json:"ping"`
	Method string   `json:"method"`
}

// Kuma is a fake Uptime Kuma push endpoint that behaves like Kuma's
// api-router (router.all("/api/push/:pushToken")): every HTTP method is
// routed; status is "up" only when the parameter is exactly "up" (absent
// means up), anything else is down; msg defaults to "OK"; ping must be
// empty or a number from 0 to 86,400,000 (24 h in ms), else 400 with
// {"ok":false,"msg":...} before the token is looked up; an unknown or
// inactive push token answers {"ok":false,"msg":"Monitor not found or not
// active."} with 500 (Kuma 2.x; 1.x answered 404: NotFound404). Safe for
// concurrent use.
type Kuma struct {
	// NotFound404 makes an unknown token answer 404, like Kuma 1.x.
	NotFound404 bool

	mu     sync.Mutex
	tokens map[string]bool
	pushes []Push
	status map[int]int
	mode   Mode
	onPush func(Push)
}

// maxPing is Kuma's MAX_PING_VALUE: 24 hours in milliseconds.
const maxPing = 86400000

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

// ServeHTTP implements /api/push/<token>.
func (k *Kuma) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	k.mu.Lock()
	mode := k.mode
	k.mu.Unlock()
	if mode != Up {
		k.answer(w, http.StatusServiceUnavailable, kumaAnswer{Msg: "fake kuma is down"})
		return
	}
	token, ok := strings.CutPrefix(r.URL.Path, "/api/push/")
	if !ok || token == "" || strings.Contains(token, "/") {
		// Express answers unrouted paths with its own 404 page.
		k.answer(w, http.StatusNotFound, kumaAnswer{Msg: "Not Found"})
		return
	}
	q := r.URL.Query()
	p := Push{Time: time.Now(), Token: token, Status: "down", Msg: q.Get("msg"), Method: r.Method}
	if st := q.Get("status"); st == "" || st == "up" {
		p.Status = "up"
	}
	if p.Msg == "" {
		p.Msg = "OK"
	}
	if ping := q.Get("ping"); ping != "" {
		v, err := strconv.ParseFloat(strings.TrimSpace(ping), 64)
		switch {
		case err != nil || math.IsNaN(v):
			k.answer(w, http.StatusBadRequest, kumaAnswer{Msg: "Invalid ping value: '" + ping + "' is not a valid number"})
			return
		case v < 0:
			k.answer(w, http.StatusBadRequest, kumaAnswer{Msg: "Invalid ping value: " + ping + "ms cannot be negative"})
			return
		case v > maxPing:
			k.answer(w, http.StatusBadRequest, kumaAnswer{Msg: "Ping value " + ping + "ms exceeds maximum allowed"})
			return
		}
		p.Ping = &v
	}
	k.mu.Lock()
	known := k.tokens[token]
	k.mu.Unlock()
	if !known {
		code := http.StatusInternalServerError
		if k.NotFound404 {
			code = http.StatusNotFound
		}
		k.answer(w, code, kumaAnswer{Msg: "Monitor not found or not active."})
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
