package fakenotify

import (
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Push is one push a fake Kuma accepted.
type Push struct {
	Time   time.Time `json:"time"`
	Token  string    `json:"token"`
	Status string    `json:"status"` // "up" or "down", as sent ("up" when absent, like Kuma)
	Msg    string    `json:"msg"`
	Ping   string    `json:"ping"`
}

// Kuma is a fake Uptime Kuma push endpoint: GET /api/push/<token>?status=
// up|down&msg=...&ping=... answers {"ok":true}; an unknown token answers
// 404 {"ok":false,"msg":"Monitor not found or not active."}, like Kuma's
// api-router. Safe for concurrent use.
type Kuma struct {
	mu     sync.Mutex
	tokens map[string]bool
	pushes []Push
	status map[int]int
	mode   Mode
	onPush func(Push)
}

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
		k.answer(w, http.StatusNotFound, kumaAnswer{Msg: "Not Found"})
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		k.answer(w, http.StatusNotFound, kumaAnswer{Msg: "Not Found"})
		return
	}
	k.mu.Lock()
	known := k.tokens[token]
	k.mu.Unlock()
	if !known {
		k.answer(w, http.StatusNotFound, kumaAnswer{Msg: "Monitor not found or not active."})
		return
	}
	q := r.URL.Query()
	p := Push{Time: time.Now(), Token: token, Status: q.Get("status"), Msg: q.Get("msg"), Ping: q.Get("ping")}
	if p.Status == "" {
		p.Status = "up" // Kuma: status defaults to up
	}
	if p.Msg == "" {
		p.Msg = "OK"
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
