package alertbridge

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"sync"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amclient "github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/silence"
	"github.com/prometheus/alertmanager/api/v2/models"
	bolt "go.etcd.io/bbolt"
)

// ActionsConfig enables the phone actions on firing pages: "Silence 1h"
// and "Ack" are ntfy http actions that call back into alertbridge with a
// signed, expiring, single-use token.
type ActionsConfig struct {
	// ExternalURL is where the phone reaches alertbridge
	// (--web.external-url); actions call ExternalURL/action/<name>.
	ExternalURL string
	// Secret keys the HMAC of the tokens (--action.secret-file).
	Secret []byte
	// AlertmanagerURL is the Alertmanager whose API v2 gets the silences.
	AlertmanagerURL string
	// TTL is how long a token is valid (default 24h).
	TTL time.Duration
	// SilenceFor is the length of the silence (default 1h).
	SilenceFor time.Duration
}

// Action names: the path element after /action/ and the metric label.
const (
	ActionSilence = "silence"
	ActionAck     = "ack"
)

// Results of clavis_alertbridge_actions_total.
var actionResults = []string{"ok", "forged", "expired", "replayed", "failed"}

var bucketActionsUsed = []byte("actions.used") // token nonce -> expiry (unix nanos)

// actionClaims is what a token says; the HMAC covers all of it.
type actionClaims struct {
	Action   string            `json:"a"`
	Group    string            `json:"g"`
	Matchers map[string]string `json:"m"`
	Expires  int64             `json:"e"` // unix seconds
	Nonce    string            `json:"n"`
	Title    string            `json:"t"`
	// Episode is the group's firing episode the page belongs to
	// (groupState.Episode): an Ack is for that episode only.
	Episode string `json:"ep,omitempty"`
}

// newEpisode names a new firing episode of a group.
func newEpisode() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (c *ActionsConfig) sign(cl actionClaims) string {
	body, _ := json.Marshal(cl)
	mac := hmac.New(sha256.New, c.Secret)
	mac.Write(body)
	return base64.RawURLEncoding.EncodeToString(body) + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

var (
	errForged  = errors.New("token forged or damaged")
	errExpired = errors.New("token expired")
)

// verify checks the token's HMAC and expiry and returns its claims.
func (c *ActionsConfig) verify(token string, now time.Time) (actionClaims, error) {
	var cl actionClaims
	body64, mac64, ok := strings.Cut(token, ".")
	if !ok {
		return cl, errForged
	}
	// Strict: a token has one spelling. Lenient decoding ignores the
	// unused low bits of the MAC's last character, so four spellings of
	// one token verified (harmless, its nonce burns once, but a "forgery"
	// that changed only that character passed).
	strict := base64.RawURLEncoding.Strict()
	body, err1 := strict.DecodeString(body64)
	got, err2 := strict.DecodeString(mac64)
	if err1 != nil || err2 != nil {
		return cl, errForged
	}
	mac := hmac.New(sha256.New, c.Secret)
	mac.Write(body)
	if !hmac.Equal(got, mac.Sum(nil)) {
		return cl, errForged
	}
	if json.Unmarshal(body, &cl) != nil || cl.Nonce == "" {
		return cl, errForged
	}
	if now.Unix() >= cl.Expires {
		return cl, errExpired
	}
	return cl, nil
}

// pageActions are the http actions of a firing page for this group.
func (c *ActionsConfig) pageActions(group, episode, title string, matchers map[string]string, now time.Time) []ntfyAction {
	var out []ntfyAction
	for _, a := range []struct{ name, label string }{{ActionSilence, "Silence " + shortDuration(c.SilenceFor)}, {ActionAck, "Ack"}} {
		var nonce [12]byte
		rand.Read(nonce[:])
		tok := c.sign(actionClaims{Action: a.name, Group: group, Matchers: matchers, Expires: now.Add(c.TTL).Unix(),
			Nonce: hex.EncodeToString(nonce[:]), Title: title, Episode: episode})
		out = append(out, ntfyAction{Action: "http", Label: a.label, Method: http.MethodPost, Clear: true,
			URL: strings.TrimRight(c.ExternalURL, "/") + "/action/" + a.name + "?token=" + tok})
	}
	return out
}

func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	return strings.TrimSuffix(s, "0m")
}

// actionHandler serves POST /action/{silence,ack}?token=...
type actionHandler struct {
	b  *Bridge
	am *amclient.AlertmanagerAPI
	mu sync.Mutex // actions run one at a time: a token is checked and burned atomically
}

// ActionHandler is the /action/ endpoint the ntfy app calls, or nil when
// actions are not configured.
func (b *Bridge) ActionHandler() http.Handler {
	if b.cfg.Actions == nil {
		return nil
	}
	return b.actions
}

func newActionHandler(b *Bridge) (*actionHandler, error) {
	u, err := url.Parse(b.cfg.Actions.AlertmanagerURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, configErrorf("%s=%s: want http(s)://host[:port][/path]", flagAMURL, RedactURL(b.cfg.Actions.AlertmanagerURL))
	}
	rt := httptransport.New(u.Host, path.Join("/", u.Path, "/api/v2"), []string{u.Scheme})
	// An Alertmanager behind basic auth (its own --web.config.file, or a
	// proxy) is named with the credentials in the URL, as Prometheus's
	// alertmanager_config would be given them: they become the
	// Authorization header (the URL itself carries them nowhere).
	if u.User != nil {
		pw, _ := u.User.Password()
		rt.DefaultAuthentication = httptransport.BasicAuth(u.User.Username(), pw)
	}
	return &actionHandler{b: b, am: amclient.New(rt, strfmt.Default)}, nil
}

func (h *actionHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b := h.b
	name := strings.TrimPrefix(r.URL.Path, "/action/")
	if name != ActionSilence && name != ActionAck {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost && r.Method != http.MethodPut {
		w.Header().Set("Allow", "POST, PUT")
		http.Error(w, "POST the action", http.StatusMethodNotAllowed)
		return
	}
	count := func(result string) { b.m.actions.WithLabelValues(name, result).Inc() }
	now := time.Now()
	cl, err := b.cfg.Actions.verify(r.URL.Query().Get("token"), now)
	if err == nil && cl.Action != name {
		err = errForged // a token for another action
	}
	switch {
	case errors.Is(err, errExpired):
		count("expired")
		b.log.Warn("action refused: token expired", "action", name, "title", cl.Title)
		http.Error(w, "this action has expired", http.StatusGone)
		return
	case err != nil:
		count("forged")
		b.log.Warn("action refused: token forged or damaged", "action", name)
		http.Error(w, "invalid action token", http.StatusForbidden)
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	used, otherEpisode := false, false
	if err := b.spool.view(func(tx *bolt.Tx) error {
		used = tx.Bucket(bucketActionsUsed).Get([]byte(cl.Nonce)) != nil
		if name == ActionAck {
			g := (SpoolTx{tx}).Group(cl.Group)
			otherEpisode = g == nil || g.Episode != cl.Episode
		}
		return nil
	}); err != nil {
		count("failed")
		http.Error(w, "spool read failed", http.StatusInternalServerError)
		return
	}
	if used {
		count("replayed")
		b.log.Warn("action refused: token already used", "action", name, "title", cl.Title)
		http.Error(w, "this action was already used", http.StatusConflict)
		return
	}
	if otherEpisode {
		// The page's alerts resolved (and may fire again: a later page,
		// with its own Ack, says so). Nothing to acknowledge.
		count("expired")
		b.log.Warn("action refused: the page's alerts resolved since", "action", name, "title", cl.Title)
		http.Error(w, "this page's alerts have resolved since: nothing to acknowledge (acknowledge the latest page of the group)", http.StatusGone)
		return
	}
	var follow Page
	switch name {
	case ActionSilence:
		id, err := h.silence(r.Context(), cl, now)
		if err != nil {
			count("failed")
			b.log.Error("silence from the phone failed", "title", cl.Title, "err", err)
			http.Error(w, "Alertmanager did not take the silence; try again", http.StatusBadGateway)
			return
		}
		until := now.Add(b.cfg.Actions.SilenceFor).UTC().Format("15:04 MST")
		follow = followUp(cl, "[SILENCED] ", fmt.Sprintf("Silenced for %s by the on-call action, until %s (Alertmanager silence %s, created by ntfy).",
			shortDuration(b.cfg.Actions.SilenceFor), until, id), "mute", now)
		b.log.Info("silence created from the phone", "title", cl.Title, "silence", id, "matchers", logText(matchersString(cl.Matchers)))
	case ActionAck:
		follow = followUp(cl, "[ACK] ", "Acknowledged by the on-call action: repeats of this group are held until it changes or resolves.", "eyes", now)
		b.log.Info("page acknowledged from the phone", "title", cl.Title)
	}
	v, _ := json.Marshal(&follow)
	err = b.spool.Update(func(t SpoolTx) error {
		if err := t.tx.Bucket(bucketActionsUsed).Put([]byte(cl.Nonce), u64(uint64(cl.Expires))); err != nil {
			return err
		}
		if name == ActionAck {
			if g := t.Group(cl.Group); g != nil && g.Episode == cl.Episode {
				g.Acked = true
				if err := t.PutGroup(cl.Group, g); err != nil {
					return err
				}
			}
		}
		return t.Enqueue(TargetNtfy, v)
	})
	if err != nil {
		count("failed")
		b.log.Error("recording the action failed", "action", name, "err", err)
		http.Error(w, "spool write failed", http.StatusInternalServerError)
		return
	}
	count("ok")
	b.kick()
	fmt.Fprintln(w, follow.Body)
}

func (h *actionHandler) silence(ctx context.Context, cl actionClaims, now time.Time) (string, error) {
	if len(cl.Matchers) == 0 {
		return "", errors.New("the group has no matchers: refusing a silence of everything")
	}
	names := make([]string, 0, len(cl.Matchers))
	for k := range cl.Matchers {
		names = append(names, k)
	}
	sort.Strings(names)
	ms := make(models.Matchers, 0, len(names))
	for _, k := range names {
		name, value, isEqual, isRegex := k, cl.Matchers[k], true, false
		ms = append(ms, &models.Matcher{Name: &name, Value: &value, IsEqual: &isEqual, IsRegex: &isRegex})
	}
	start, end := strfmt.DateTime(now), strfmt.DateTime(now.Add(h.b.cfg.Actions.SilenceFor))
	createdBy := "ntfy"
	comment := fmt.Sprintf("%q from the ntfy page %q (alertbridge on-call action)", "Silence "+shortDuration(h.b.cfg.Actions.SilenceFor), cl.Title)
	ctx, cancel := context.WithTimeout(ctx, h.b.cfg.Timeout)
	defer cancel()
	ok, err := h.am.Silence.PostSilences(silence.NewPostSilencesParamsWithContext(ctx).WithSilence(&models.PostableSilence{
		Silence: models.Silence{Matchers: ms, StartsAt: &start, EndsAt: &end, CreatedBy: &createdBy, Comment: &comment}}))
	if err != nil {
		return "", err
	}
	return ok.Payload.SilenceID, nil
}

// followUp is the short message that tells the others on the topic what
// the on-call person did; it goes in the group's order.
func followUp(cl actionClaims, prefix, body, tag string, now time.Time) Page {
	title := cl.Title
	if i := strings.Index(title, "] "); strings.HasPrefix(title, "[") && i > 0 {
		title = title[i+2:]
	}
	return Page{Group: cl.Group, Accepted: now, Title: TruncateUTF8(prefix+title, titleMax), Body: body, Priority: 2,
		Tags: []string{tag}, Alertname: title, State: "firing"}
}

func matchersString(m map[string]string) string { return matchers(m) }

// forgetUsedActions drops burned tokens past their expiry: they cannot be
// replayed then anyway.
func (s *Spool) forgetUsedActions(now time.Time) error {
	return s.commit(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketActionsUsed).Cursor()
		for k, v := c.First(); k != nil; {
			if len(v) == 8 && int64(u64v(v)) < now.Unix() {
				k = append([]byte(nil), k...)
				if err := c.Delete(); err != nil {
					return err
				}
				k, v = c.Seek(k)
				continue
			}
			k, v = c.Next()
		}
		return nil
	})
}
