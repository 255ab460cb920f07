package alertbridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Backoff configures the retry schedule: exponential from Min, doubled per
// failure up to Max, with jitter (each wait is drawn from [d/2, d]).
type Backoff struct {
	Min time.Duration
	Max time.Duration
	// MaxRetryAfter caps how long a Retry-After header may make us wait.
	MaxRetryAfter time.Duration
}

func (b Backoff) wait(attempt int, retryAfter time.Duration) time.Duration {
	d := b.Min
	for i := 0; i < attempt && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	if d > 1 {
		d = d/2 + rand.N(d/2+1)
	}
	if retryAfter > 0 {
		if retryAfter > b.MaxRetryAfter {
			retryAfter = b.MaxRetryAfter
		}
		if retryAfter > d {
			d = retryAfter
		}
	}
	return d
}

// retryWait is the wait before retrying a page after its attempt-th
// failure (0-based) when failStreak (>= 1) publishes in a row have failed.
// The backoff grows with the page's failures only while ntfy fails
// everything: when other pages get through, a failure is ntfy's bad luck,
// not an outage, and the page is retried after the first step again (with
// jitter). Doubling per attempt regardless had the few pages that failed
// 3-4 times in a row (20 % failures) wait 4-10 s and gate a drain's end.
func (b Backoff) retryWait(attempt, failStreak int, retryAfter time.Duration) time.Duration {
	return b.wait(max(0, min(attempt, failStreak-1)), retryAfter)
}

// sendError is a failed delivery attempt, classified.
type sendError struct {
	status     int // 0 for transport errors
	retryable  bool
	retryAfter time.Duration
	body       string // truncated response body
	err        error
	// ambiguous: the request may have reached the server and been acted
	// on (a timeout or a broken connection after it was written), so a
	// retry may be a repeat.
	ambiguous bool
	timeout   bool
	// location: a redirect that was not followed (checkRedirect), its
	// Location redacted.
	location string
	// unexpected: a 2xx answer that is not the target's (a web page where
	// Kuma answers {"ok":true}).
	unexpected bool
	errMsg     string // err's message with the request's secrets scrubbed
}

func (e *sendError) Error() string {
	if e.status == 0 {
		if e.errMsg != "" {
			return e.errMsg
		}
		return e.err.Error()
	}
	if e.unexpected {
		return fmt.Sprintf("HTTP %d, but not the expected answer: %s", e.status, e.body)
	}
	if e.redirect() {
		return fmt.Sprintf("HTTP %d: redirect to %s not followed (it would turn the request into a GET, or leave https)", e.status, e.location)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.body)
}

// redirect reports whether the target answered with a redirect that
// checkRedirect did not follow.
func (e *sendError) redirect() bool { return e.status >= 300 && e.status < 400 }

// checkRedirect is the CheckRedirect of the delivery client. It follows a
// redirect only when the request stays what it was: the same method (on
// 301, 302 and 303 net/http turns a POST into a GET without its body, and
// ntfy answers a GET of a topic with its web app, 200: a page counted
// delivered that nobody got) and https, once used, kept (a redirect to
// http would carry the token, and Kuma's push token in the URL, in clear
// text). Otherwise the redirect itself is the answer, which do() reports.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	first := via[0]
	if req.Method != first.Method {
		return http.ErrUseLastResponse
	}
	for _, v := range via {
		if v.URL.Scheme == "https" && req.URL.Scheme != "https" {
			return http.ErrUseLastResponse
		}
	}
	return nil
}

// deliveryClient is c (or a new client) with checkRedirect, unless c has
// a redirect policy of its own.
func deliveryClient(c *http.Client, newTransport func() http.RoundTripper) *http.Client {
	var out http.Client
	if c != nil {
		out = *c
	} else {
		out.Transport = newTransport()
	}
	if out.CheckRedirect == nil {
		out.CheckRedirect = checkRedirect
	}
	return &out
}

// class is the failure's label value in delivery_failures_total.
func (e *sendError) class() string {
	switch {
	case e.status >= 500:
		return "5xx"
	case e.status >= 400:
		return "4xx"
	case e.unexpected:
		return "other"
	case e.status > 0:
		return "other"
	case e.timeout:
		return "timeout"
	}
	return "network"
}

// do sends req and classifies the answer: nil for 2xx; retryable for 429
// and 503 (with Retry-After), 408, other 5xx, timeouts and connection
// errors; permanent for every other status, a redirect checkRedirect did
// not follow too (the callers hold their notifications on it: a
// configuration error).
// Errors never carry the request URL unredacted.
// pathSecrets are path segments of the target's own to keep out of the
// error (an ntfy topic): hidden where the URL or a Location shows them,
// scrubbed from a quoted answer.
func do(client *http.Client, req *http.Request, pathSecrets ...string) error {
	return doAnswer(client, req, nil, pathSecrets...)
}

// doAnswer is do, and a 2xx answer whose body (its first 512 bytes) ok
// refuses is an error too, with unexpected set.
func doAnswer(client *http.Client, req *http.Request, ok func(body []byte) bool, pathSecrets ...string) error {
	secrets := requestSecrets(req)
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			ue.URL = redactSegments(RedactURL(ue.URL), pathSecrets)
		}
		se := &sendError{retryable: true, err: err, ambiguous: true, errMsg: scrub(err.Error(), secrets)}
		var op *net.OpError
		if errors.As(err, &op) && op.Op == "dial" {
			se.ambiguous = false // nothing was sent
		}
		if tlsHandshakeFailed(err) {
			se.ambiguous = false // the request was never written
		}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			se.timeout = true
		}
		return se
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)) // let the connection be reused
	e := &sendError{status: resp.StatusCode, body: scrub(strings.TrimSpace(strings.ToValidUTF8(string(body), "?")), append(secrets, pathSecrets...))}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if ok == nil || ok(body) {
			return nil
		}
		e.unexpected = true
		return e
	}
	if e.redirect() {
		e.location = "(none)"
		if loc, err := resp.Location(); err == nil {
			e.location = redactSegments(RedactURL(loc.String()), pathSecrets)
		}
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusServiceUnavailable:
		// Both may say how long to wait (RFC 9110, 10.2.3): a rate limit,
		// or a proxy or server in maintenance.
		e.retryable = true
		e.retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case resp.StatusCode == http.StatusRequestTimeout, resp.StatusCode >= 500:
		e.retryable = true
	}
	return e
}

// tlsHandshakeFailed reports whether err is a failed TLS handshake (a
// certificate not trusted, expired or for another name, a TLS alert from
// the server): the request was never sent.
func tlsHandshakeFailed(err error) bool {
	var (
		cv  *tls.CertificateVerificationError
		ua  x509.UnknownAuthorityError
		he  x509.HostnameError
		ci  x509.CertificateInvalidError
		rh  tls.RecordHeaderError
		ae  tls.AlertError
		eae *tls.ECHRejectionError
	)
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &he) || errors.As(err, &ci) ||
		errors.As(err, &rh) || errors.As(err, &ae) || errors.As(err, &eae)
}

// requestSecrets are the credentials req carries: the Authorization
// header's credentials, the URL's user info, a Kuma push token and
// credential query parameters.
// Answers can quote them: Kuma's error message for a database error is
// knex's, which quotes the query with its bound values (push_token =
// '<token>'), and a proxy's error page may quote the request.
func requestSecrets(req *http.Request) []string {
	var out []string
	if h := req.Header.Get("Authorization"); h != "" {
		out = append(out, h)
		if _, cred, ok := strings.Cut(h, " "); ok {
			out = append(out, strings.TrimSpace(cred))
		}
	}
	if u := req.URL.User; u != nil {
		if p, ok := u.Password(); ok {
			out = append(out, p)
		}
		out = append(out, u.Username())
	}
	if i := strings.Index(req.URL.Path, "/api/push/"); i >= 0 {
		tok, _, _ := strings.Cut(req.URL.Path[i+len("/api/push/"):], "/")
		out = append(out, tok)
	}
	for k, vs := range req.URL.Query() {
		if credentialParam(k) {
			out = append(out, vs...)
		}
	}
	return out
}

// credentialParam reports whether a query parameter holds credentials
// (ntfy's auth=, and the usual names).
func credentialParam(name string) bool {
	switch strings.ToLower(name) {
	case "auth", "token", "access_token", "password", "key":
		return true
	}
	return false
}

// scrub replaces every secret in s (and its URL-escaped forms) with
// REDACTED. Secrets shorter than 4 bytes are left: they would take common
// text with them.
func scrub(s string, secrets []string) string {
	for _, sec := range secrets {
		if len(sec) < 4 {
			continue
		}
		for _, form := range []string{sec, url.PathEscape(sec), url.QueryEscape(sec)} {
			s = strings.ReplaceAll(s, form, "REDACTED")
		}
	}
	return s
}

// RedactURL hides the secrets a notification URL can carry: the password
// of its user info, the token of a Kuma push path (/api/push/<token>) and
// query parameters that hold credentials (ntfy's auth=).
func RedactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = url.User("REDACTED")
	}
	if u.Opaque != "" {
		// scheme:opaque (a URL missing its //): whatever follows may be
		// a token.
		u.Opaque = "REDACTED"
	}
	if strings.HasPrefix(u.Path, "api/push/") {
		u.Path, u.RawPath = "api/push/REDACTED", ""
	} else if i := strings.Index(u.Path, "/api/push/"); i >= 0 {
		u.Path, u.RawPath = u.Path[:i]+"/api/push/REDACTED", ""
	}
	u.Fragment, u.RawFragment = "", ""
	q := u.Query()
	changed := false
	for k := range q {
		if credentialParam(k) {
			q.Set(k, "REDACTED")
			changed = true
		}
	}
	if changed {
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// NtfyTopic is the topic of an ntfy topic URL, its last path segment.
// Anyone who knows a topic may read it on a server without access control
// (ntfy.sh): a log line never shows it (see RedactNtfyURL).
func NtfyTopic(topicURL string) string {
	u, err := url.Parse(topicURL)
	if err != nil {
		return ""
	}
	p := strings.TrimRight(u.Path, "/")
	return p[strings.LastIndex(p, "/")+1:]
}

// RedactNtfyURL is RedactURL with the topic hidden too.
func RedactNtfyURL(s string) string {
	if t := NtfyTopic(s); t != "" {
		return redactSegments(RedactURL(s), []string{t})
	}
	return RedactURL(s)
}

// redactSegments replaces every path segment of the URL s that is one of
// secrets with REDACTED. Whole segments only: a topic "ntfy" must not take
// the host ntfy.example with it.
func redactSegments(s string, secrets []string) string {
	if len(secrets) == 0 {
		return s
	}
	u, err := url.Parse(s)
	if err != nil || u.Opaque != "" {
		return s
	}
	segs := strings.Split(u.Path, "/")
	changed := false
	for i, seg := range segs {
		if seg != "" && slices.Contains(secrets, seg) {
			segs[i], changed = "REDACTED", true
		}
	}
	if !changed {
		return s
	}
	u.Path, u.RawPath = strings.Join(segs, "/"), ""
	return u.String()
}

// parseRetryAfter reads a Retry-After value, delta-seconds or an HTTP date,
// as a wait from now (0 when absent, unparsable or past).
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseUint(v, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		// Beyond what a Duration holds: as long as possible (the caller
		// caps it), not a product wrapped around to a short or negative
		// wait.
		if err != nil || s > uint64(math.MaxInt64/time.Second) {
			return math.MaxInt64
		}
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

var errTooOld = errors.New("older than --spool.max-age")
