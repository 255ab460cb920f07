// Package alertbridge turns Alertmanager webhook notifications into ntfy
// messages and Uptime Kuma push state without losing or repeating any: each
// alert is written to a bbolt spool (fsync'd) before Alertmanager gets its
// 2xx, and delivery workers drain the spool per target, retrying what is
// worth retrying.
package alertbridge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// MaxBodyBytes is the largest webhook body accepted (1 MiB); larger bodies
// are answered 413.
const MaxBodyBytes = 1 << 20

// Payload is Alertmanager's webhook payload, version 4, with the fields of
// Alertmanager 0.25 up to current releases. Unknown fields are ignored so a
// newer Alertmanager keeps working.
type Payload struct {
	Version           string            `json:"version"`
	GroupKey          string            `json:"groupKey"`
	TruncatedAlerts   int               `json:"truncatedAlerts"`
	Status            string            `json:"status"`
	Receiver          string            `json:"receiver"`
	GroupLabels       map[string]string `json:"groupLabels"`
	CommonLabels      map[string]string `json:"commonLabels"`
	CommonAnnotations map[string]string `json:"commonAnnotations"`
	ExternalURL       string            `json:"externalURL"`
	Alerts            []Alert           `json:"alerts"`

	// refused: why alerts of a payload with valid ones too were left out
	// (one message each, in order); see DecodePayloadAt.
	refused []string
}

// Refused lists why alerts of the payload were left out (DecodePayloadAt).
func (p *Payload) Refused() []string { return p.refused }

// Alert is one alert of a webhook payload.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL"`
	Fingerprint  string            `json:"fingerprint"`
}

// BadRequestError is a payload problem the sender must fix; the webhook
// handler answers it with 400 and the message, and counts it by Reason.
type BadRequestError struct {
	Reason string // bad_json, bad_version, invalid
	Msg    string
}

func (e *BadRequestError) Error() string { return e.Msg }

func badRequest(reason, format string, args ...any) error {
	return &BadRequestError{Reason: reason, Msg: fmt.Sprintf(format, args...)}
}

// MaxStartsAtAhead is how far ahead of the bridge's clock an alert's
// startsAt may be. Alertmanager takes startsAt from Prometheus' rule
// evaluation, so it is in the past but for clock skew between the hosts
// (NTP keeps that to milliseconds; an hour also covers a badly set clock).
// A startsAt further ahead is refused: it would mark the fingerprint's
// genuine firings for as long as that as late copies of a resolved
// episode, and never page them.
const MaxStartsAtAhead = time.Hour

// The times a spool can hold: it stores startsAt and acceptance times as
// Unix nanoseconds, which hold the years 1678 to 2262 (beyond, they wrap:
// year 2685 would be stored as 2100).
var (
	minStorableTime = time.Unix(0, math.MinInt64)
	maxStorableTime = time.Unix(0, math.MaxInt64)
)

func storableTime(t time.Time) bool {
	return !t.Before(minStorableTime) && !t.After(maxStorableTime)
}

// plausibleStart reports whether an alert's startsAt could have been
// accepted at the given time: not more than MaxStartsAtAhead after it.
// Spools written before that rule existed can hold anything.
func plausibleStart(startsAt, accepted time.Time) bool {
	return !startsAt.After(accepted.Add(MaxStartsAtAhead))
}

// DecodePayload parses and validates one webhook body against the current
// time. Every error it returns is a *BadRequestError.
func DecodePayload(body []byte) (*Payload, error) {
	return DecodePayloadAt(body, time.Now())
}

// DecodePayloadAt parses and validates one webhook body received at now
// (startsAt may be at most MaxStartsAtAhead after it). Every error it
// returns is a *BadRequestError. An alert that fails validation in a
// payload that also has valid ones is left out (Refused says why): the
// payload stays one notification, and refusing it whole would have lost
// its valid alerts too, on every retry (one alert whose startsAt a
// sender's clock or time zone put hours ahead kept its whole group from
// paging). A payload without a valid alert is refused.
func DecodePayloadAt(body []byte, now time.Time) (*Payload, error) {
	dec := json.NewDecoder(bytes.NewReader(body))
	var p Payload
	if err := dec.Decode(&p); err != nil {
		return nil, badRequest("bad_json", "invalid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, badRequest("bad_json", "invalid JSON: unexpected data after the payload object")
	}
	if err := checkDuplicateNames(body); err != nil {
		return nil, err
	}
	if p.Version != "4" {
		return nil, badRequest("bad_version", "unsupported webhook payload version %q: alertbridge accepts Alertmanager's version \"4\"", p.Version)
	}
	if p.Status != "" && p.Status != "firing" && p.Status != "resolved" {
		return nil, badRequest("invalid", "invalid payload status %q: want firing or resolved", p.Status)
	}
	if p.TruncatedAlerts < 0 {
		return nil, badRequest("invalid", "invalid truncatedAlerts %d: want 0 or more", p.TruncatedAlerts)
	}
	var firstErr error
	valid := p.Alerts[:0]
	for i := range p.Alerts {
		if err := checkAlert(&p.Alerts[i], i, now); err != nil {
			if firstErr == nil {
				firstErr = err
			}
			p.refused = append(p.refused, err.Error())
			continue
		}
		valid = append(valid, p.Alerts[i])
	}
	if firstErr != nil && len(valid) == 0 {
		return nil, firstErr
	}
	clear(p.Alerts[len(valid):])
	p.Alerts = valid
	return &p, nil
}

// checkAlert validates alert i of a payload received at now, filling in a
// missing fingerprint. Its error is a *BadRequestError.
func checkAlert(a *Alert, i int, now time.Time) error {
	if a.Status != "firing" && a.Status != "resolved" {
		return badRequest("invalid", "alert %d: invalid status %q: want firing or resolved", i, a.Status)
	}
	if len(a.Labels) == 0 {
		return badRequest("invalid", "alert %d: no labels", i)
	}
	if a.StartsAt.IsZero() {
		return badRequest("invalid", "alert %d: startsAt missing", i)
	}
	if !storableTime(a.StartsAt) {
		return badRequest("invalid", "alert %d: startsAt %s out of range: want a time between the years 1678 and 2262", i, a.StartsAt.UTC().Format(time.RFC3339))
	}
	if !plausibleStart(a.StartsAt, now) {
		return badRequest("invalid", "alert %d: startsAt %s is more than %s ahead of alertbridge's clock (%s): check the clocks of Prometheus and Alertmanager",
			i, a.StartsAt.UTC().Format(time.RFC3339), MaxStartsAtAhead, now.UTC().Format(time.RFC3339))
	}
	// Alertmanager sends the zero time (0001-01-01) as the endsAt of an
	// alert without one.
	if !a.EndsAt.IsZero() && !storableTime(a.EndsAt) {
		return badRequest("invalid", "alert %d: endsAt %s out of range: want a time between the years 1678 and 2262, or 0001-01-01T00:00:00Z for none", i, a.EndsAt.UTC().Format(time.RFC3339))
	}
	if a.Fingerprint == "" {
		// Alertmanager before 0.19 sent no fingerprint; derive one
		// from the label set, as Alertmanager does.
		a.Fingerprint = labelFingerprint(a.Labels)
	}
	if len(a.Fingerprint) > 128 {
		return badRequest("invalid", "alert %d: fingerprint longer than 128 bytes", i)
	}
	return nil
}

// checkDuplicateNames refuses an object that names a member twice
// (RFC 8259 leaves the meaning open; encoding/json keeps the last one, so
// a second "alerts" array would drop the first one's alerts unseen). It
// walks encoding/json's tokens; body is known to be valid JSON. (The
// standard library's encoding/json/v2, which refuses duplicates itself,
// still needs GOEXPERIMENT=jsonv2 in Go 1.26.)
//
// The objects that decode into structs (the payload, each of its alerts)
// compare names as encoding/json matches them to fields, case-insensitively
// (foldName): "Alerts" and "alerts" fill the same field, so the second
// would drop the first one's alerts just the same. The others are maps
// (labels, annotations, ...), whose keys are compared exactly: "a" and
// "A" are two labels.
func checkDuplicateNames(body []byte) error {
	const (
		exact   = iota // a map or an ignored value: names compared exactly
		payload        // the payload object (a Payload)
		alert          // an object of the payload's alerts array (an Alert)
	)
	type frame struct {
		array  bool
		kind   int               // objects: how names compare; arrays: the kind of their objects
		names  []string          // objects: the keys so far, while few
		origs  []string          // and the names as sent
		set    map[string]string // then a set, key to name as sent
		atName bool              // the next string is a name
		member string            // the key of the member whose value is next
	}
	const few = 16
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()    // numbers are not parsed
	var stack []*frame // the open objects and arrays
	valueDone := func() {
		if n := len(stack); n > 0 && !stack[n-1].array {
			stack[n-1].atName = true
		}
	}
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return badRequest("bad_json", "invalid JSON: %v", err)
		}
		var parent *frame
		if n := len(stack); n > 0 {
			parent = stack[n-1]
		}
		switch tok := tok.(type) {
		case json.Delim:
			switch tok {
			case '{':
				kind := exact
				switch {
				case parent == nil:
					kind = payload
				case parent.array:
					kind = parent.kind
				}
				stack = append(stack, &frame{kind: kind, atName: true})
			case '[':
				kind := exact
				if parent != nil && !parent.array && parent.kind == payload && parent.member == "ALERTS" {
					kind = alert
				}
				stack = append(stack, &frame{array: true, kind: kind})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
			continue
		case string:
			o := parent
			if o == nil || o.array || !o.atName {
				break // a value
			}
			o.atName = false
			key := tok
			if o.kind != exact {
				key = string(foldName([]byte(tok)))
			}
			o.member = key
			first, dup := "", false
			if o.set != nil {
				first, dup = o.set[key]
				if !dup {
					o.set[key] = tok
				}
			} else {
				for i, n := range o.names {
					if n == key {
						first, dup = o.origs[i], true
						break
					}
				}
				o.names = append(o.names, key)
				o.origs = append(o.origs, tok)
				if len(o.names) > few {
					o.set = make(map[string]string, 2*few)
					for i := len(o.names) - 1; i >= 0; i-- {
						o.set[o.names[i]] = o.origs[i] // the first one sent wins
					}
					o.names, o.origs = nil, nil
				}
			}
			if dup && first != tok {
				return badRequest("bad_json", "invalid JSON: duplicate object member name %q (before byte %d): it names the same field as %q (field names match case-insensitively); each name may appear once", TruncateUTF8(tok, 64), dec.InputOffset(), TruncateUTF8(first, 64))
			}
			if dup {
				return badRequest("bad_json", "invalid JSON: duplicate object member name %q (before byte %d): each name may appear once", TruncateUTF8(tok, 64), dec.InputOffset())
			}
			continue
		}
		valueDone()
	}
}

// foldName returns name folded as encoding/json folds the member names it
// matches to struct fields (its fold.go): ASCII letters upper-cased, other
// runes mapped to the smallest rune of their simple case folding orbit
// (so 'ſ' matches "S" and the Kelvin sign "K").
func foldName(name []byte) []byte {
	out := make([]byte, 0, len(name))
	for i := 0; i < len(name); {
		if c := name[i]; c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			out = append(out, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		out = utf8.AppendRune(out, foldRune(r))
		i += n
	}
	return out
}

// foldRune returns the smallest rune of r's simple case folding orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

func labelFingerprint(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for k := range labels {
		names = append(names, k)
	}
	sort.Strings(names)
	h := fnv.New64a()
	for _, k := range names {
		h.Write([]byte(k))
		h.Write([]byte{0xff})
		h.Write([]byte(labels[k]))
		h.Write([]byte{0xff})
	}
	return fmt.Sprintf("%016x", h.Sum64())
}

// Record is one alert in one status, as spooled and delivered.
type Record struct {
	Key          string            `json:"key"`
	Accepted     time.Time         `json:"accepted"`
	Status       string            `json:"status"`
	Fingerprint  string            `json:"fingerprint"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	ExternalURL  string            `json:"externalURL,omitempty"`
	Receiver     string            `json:"receiver,omitempty"`
}

// RecordKey is the deduplication key of an alert: Alertmanager retries and
// both members of an HA pair send the same (fingerprint, status, startsAt).
func RecordKey(fingerprint, status string, startsAt time.Time) string {
	return fingerprint + "|" + status + "|" + startsAt.UTC().Format(time.RFC3339Nano)
}

// Records turns a validated payload into one record per alert.
func (p *Payload) Records(now time.Time) []Record {
	recs := make([]Record, 0, len(p.Alerts))
	for _, a := range p.Alerts {
		recs = append(recs, Record{
			Key:          RecordKey(a.Fingerprint, a.Status, a.StartsAt),
			Accepted:     now,
			Status:       a.Status,
			Fingerprint:  a.Fingerprint,
			Labels:       a.Labels,
			Annotations:  a.Annotations,
			StartsAt:     a.StartsAt,
			EndsAt:       a.EndsAt,
			GeneratorURL: a.GeneratorURL,
			ExternalURL:  strings.TrimRight(p.ExternalURL, "/"),
			Receiver:     p.Receiver,
		})
	}
	return recs
}

// Alertname is the alertname label.
func (r *Record) Alertname() string { return r.Labels["alertname"] }
