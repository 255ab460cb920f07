// Package accesslog follows the HTTP access logs of a POP's front (nginx or
// Caddy) and turns each line into aggregate counters: requests by method,
// status class and operator-defined route class, response bytes, a request
// time histogram, and distinct client IPs in a HyperLogLog sketch.
//
// Nothing of a line outlives its processing: the parsers return slices into
// the read buffer, the counters keep small integers, the sketch keeps a hash
// register, and the read buffer is cleared once its lines are counted. No
// path, address or user agent is kept or cached.
//
// This package does not import Prometheus; collector/accesslog.go exports
// its Snapshot.
package accesslog

import (
	"bytes"
	"errors"
	"math"
	"net/netip"
	"strconv"
)

// Method is a request method from a fixed set; everything else is
// MethodOther, so a scanner inventing methods cannot grow the label set.
type Method uint8

// The methods counted by name.
const (
	MethodGET Method = iota
	MethodHEAD
	MethodPOST
	MethodPUT
	MethodPATCH
	MethodDELETE
	MethodOPTIONS
	MethodOther
	numMethods
)

var methodNames = [numMethods]string{"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"}

func (m Method) String() string {
	if m >= numMethods {
		return "other"
	}
	return methodNames[m]
}

func parseMethod(b []byte) Method {
	switch string(b) { // no allocation: the compiler compares in place
	case "GET":
		return MethodGET
	case "HEAD":
		return MethodHEAD
	case "POST":
		return MethodPOST
	case "PUT":
		return MethodPUT
	case "PATCH":
		return MethodPATCH
	case "DELETE":
		return MethodDELETE
	case "OPTIONS":
		return MethodOPTIONS
	}
	return MethodOther
}

// Code is a status class, 1xx to 5xx, or CodeOther for anything outside
// 100-599.
type Code uint8

// The status classes.
const (
	Code1xx Code = iota
	Code2xx
	Code3xx
	Code4xx
	Code5xx
	CodeOther
	numCodes
)

var codeNames = [numCodes]string{"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

func (c Code) String() string {
	if c >= numCodes {
		return "other"
	}
	return codeNames[c]
}

func codeOf(status int) Code {
	if status < 100 || status > 599 {
		return CodeOther
	}
	return Code(status/100 - 1)
}

// timeKind says how Record.Time is written.
type timeKind uint8

const (
	timeNone    timeKind = iota
	timeCLF              // 10/Oct/2000:13:55:36 -0700
	timeISO8601          // 2000-10-10T13:55:36-07:00
	timeUnix             // 971211336.123 (Caddy ts, nginx $msec); also milli-, micro- or nanoseconds
	timeText             // a string of one of the above (Caddy's ts in its time_format)
)

// Record is one parsed line. Its byte slices point into the line and are
// valid only until the line's buffer is reused; nothing keeps them.
type Record struct {
	Method      Method
	Status      int
	Size        int64
	Duration    float64 // seconds; valid when HasDuration
	HasDuration bool
	Path        []byte // request target without the query string
	Remote      []byte // the direct peer's address as written
	ClientIP    []byte // the client address the front resolved (Caddy client_ip); may be empty
	XFF         []byte // X-Forwarded-For as written; may be empty
	Time        []byte
	timeKind    timeKind
	methodSet   bool
	otherLogger bool // JSON: an entry of a Caddy logger that is not the access log
}

// Errors of the line parsers. They name what is wrong, never the content.
var (
	errEmpty      = errors.New("empty line")
	errRemote     = errors.New("no remote address field")
	errTime       = errors.New("no [time] field")
	errRequest    = errors.New("no quoted request field")
	errStatus     = errors.New("status is neither a three-digit number nor -")
	errSize       = errors.New("size is neither a number nor -")
	errNotJSON    = errors.New("not a JSON object")
	errJSONSyntax = errors.New("JSON syntax error")
	errNoStatus   = errors.New("JSON line has no status")
	errNotAccess  = errors.New("JSON line of a Caddy logger other than the access log")
	errNotConsole = errors.New("not a Caddy console line (no tab before a JSON object)")
)

// ParseCombined parses one line of the NCSA common or combined log format as
// nginx and Apache write it:
//
//	remote ident user [time] "request" status size ["referer" "user-agent"] [extras...]
//
// Apache's vhost_combined (a "host:port" field before remote), and a
// vhost without a port before an address (see vhostClient), are
// recognised, and the second field taken as the remote address. A status
// "-" (Traefik with no downstream status, Apache's %>s for one <= 0) is
// Status 0, of code other.
//
// Extras after the user agent are optional: the first quoted one is taken
// as X-Forwarded-For (nginx's "main" format appends "$http_x_forwarded_for"),
// the first bare decimal number (or rt=N, request_time=N, which may be
// whole) as the request time in seconds (nginx's $request_time), skipping
// $upstream_response_time lists and taking the larger of two adjacent
// decimal times (see the loop below). A bare integer is never the request
// time: nginx writes its times with a decimal point ("0.004"), always, and
// an integer is Apache's %D (microseconds), %T (whole seconds) or %{ms}T,
// which cannot be told apart, or an nginx count such as $request_length. A request field that is not
// "METHOD target PROTO" (nginx logs "-" or the raw bytes of a bad request)
// still counts, with method other and an empty path; so does one whose
// unknown method is no RFC 9110 token or is followed by no request target
// (TLS or RDP bytes with a space among them; see splitRequest).
func ParseCombined(line []byte, r *Record) error {
	*r = Record{}
	n := len(line)
	if n == 0 {
		return errEmpty
	}
	i := 0
	// remote (up to 39 bytes: the vectorised scan pays off)
	j := indexByteFrom(line, i, ' ')
	if j <= i {
		return errRemote
	}
	r.Remote = line[i:j]
	// No address holds a '/': this is a line of Caddy's console encoder,
	// its time ("2026/12/02 10:00:00.000", "02/Dec/2026:…"; see
	// ParseCaddyConsole). Two byte tests for a v4 address.
	if j >= 5 && (line[2] == '/' || line[4] == '/') {
		return errRemote
	}
	// A tab in it (see below); the field is short, a loop is quicker
	// than a call.
	tab := -1
	for k := 0; k < j; k++ {
		if line[k] == '\t' {
			tab = k
			break
		}
	}
	i = j + 1
	// ident and user ("-" when unset; a user name may hold spaces): skip
	// to the " [" that opens the time; a tab there, too.
	for j = i; j < n && line[j] != '['; j++ {
		if line[j] == '\t' && tab < 0 {
			tab = j
		}
	}
	if j >= n || j <= i || line[j-1] != ' ' {
		return errTime
	}
	// Neither nginx nor Apache writes a tab of a value (they escape it):
	// a tab before the time is one of the log format, or this is a line
	// of Caddy's console encoder, its time, level and logger separated by
	// tabs, in a time format of any layout ("Jan _2 15:04:05" has spaces).
	// Its JSON fields can be made to look like a combined line's (see
	// TestCaddyConsoleNotCombined). A format's tab after the address
	// ("$remote_addr\t- $remote_user [...") ends the address (in
	// vhost_combined, the one after the vhost): what the first tab ends
	// must be one.
	if tab >= 0 {
		w := bytes.LastIndexByte(line[:tab], ' ') + 1
		if !isRemote(line[w:tab]) {
			return errRemote
		}
		if w == 0 {
			r.Remote = line[:tab]
		}
	}
	// Apache's vhost_combined puts "%v:%p" first, other formats the
	// vhost without a port: four fields before the time. "- - " is 4
	// bytes; a client, ident and user need at least 6, so the usual line
	// pays one comparison.
	if j-i >= 6 {
		if c := vhostClient(line[:i-1], line[i:j-1]); c != nil {
			r.Remote = c
		}
	}
	i = j
	// [10/Oct/2000:13:55:36 -0700] is 28 bytes: look there first.
	if j = i + 27; j >= n || line[j] != ']' {
		if j = indexByteFrom(line, i+1, ']'); j < 0 {
			return errTime
		}
	}
	r.Time, r.timeKind = line[i+1:j], timeCLF
	i = j + 1
	// "request"
	if i+1 >= n || line[i] != ' ' || line[i+1] != '"' {
		return errRequest
	}
	start := i + 2
	j = indexQuote(line, start)
	if j < 0 {
		return errRequest
	}
	splitRequest(line[start:j], r)
	i = j + 1
	// status
	if i >= n || line[i] != ' ' {
		return errStatus
	}
	i++
	if i+3 <= n && isDigit(line[i]) && isDigit(line[i+1]) && isDigit(line[i+2]) && (i+3 == n || line[i+3] == ' ') {
		r.Status = int(line[i]-'0')*100 + int(line[i+1]-'0')*10 + int(line[i+2]-'0')
		i += 3
	} else if i < n && line[i] == '-' && (i+1 == n || line[i+1] == ' ') {
		// No status: Traefik writes "-" when it has none downstream,
		// Apache's %>s for one <= 0. The request was made all the same:
		// it counts, Status 0, of code other (as nginx's 000).
		i++
	} else {
		return errStatus
	}
	// size
	if i >= n {
		return errSize
	}
	i++
	j = indexSpace(line, i)
	if j < 0 {
		j = n
	}
	size, ok := parseSize(line[i:j])
	if !ok {
		return errSize
	}
	r.Size = size
	i = j
	// Optional "referer" "user-agent" and extras. None of them is kept;
	// they are walked to find X-Forwarded-For and the request time.
	//
	// The request time is the first bare decimal number after the user
	// agent (or rt=N, request_time=N; integers are passed over), with two
	// exceptions for nginx's
	// $upstream_response_time next to $request_time. Its lists ("0.001,
	// 0.002" for retries, "0.001 : 0.002" for internal redirects) are
	// never the request time. And of two adjacent bare decimal times, the
	// larger is: the request time covers the upstream's, whichever order
	// the format writes them in.
	quoted := 0
	ts, openAt := uint8(0), 0 // the request time's state (tsOpen, ...); openAt: where the open token starts
	for i < n {
		for i < n && line[i] == ' ' {
			i++
		}
		if i >= n {
			break
		}
		if line[i] == '"' {
			if i+2 < n && line[i+1] == '-' && line[i+2] == '"' {
				j = i + 2 // "-": the usual empty referer, no scan
			} else {
				j = indexQuote(line, i+1)
			}
			if j < 0 {
				break // an unterminated trailing quote is ignored, not fatal
			}
			quoted++
			if quoted == 3 {
				if v := line[i+1 : j]; !(len(v) == 1 && v[0] == '-') {
					r.XFF = v
				}
			}
			if ts&(tsOpen|tsList) != 0 { // a time, then a quoted field: it stands; a list ends
				ts = (ts &^ (tsOpen | tsList)) | (ts&tsOpen)<<2
			}
			i = j + 1
			continue
		}
		j = indexSpace(line, i)
		if j < 0 {
			j = n
		}
		if ts&tsSettled == 0 && quoted >= 2 {
			tok := line[i:j]
			if last := tok[len(tok)-1]; ts == 0 && last != ',' && last != ':' {
				// The usual case: the first bare token (bareSeconds,
				// written out: this runs for nearly every line).
				labeled := false
				if k := indexByteFrom(tok, 0, '='); k >= 0 {
					name := tok[:k]
					if string(name) == "rt" || string(name) == "request_time" {
						tok, labeled = tok[k+1:], true
					} else {
						tok = nil
					}
				}
				if d, ok := parseSeconds(tok); ok && d < maxRequestSeconds && (labeled || indexFrom(tok, 0, '.') >= 0) {
					r.Duration, r.HasDuration = d, true
					ts, openAt = tsOpen, i
					if labeled {
						ts = tsSettled
					}
				} else if d, ok := millis(tok); ok {
					r.Duration, r.HasDuration, ts = d, true, tsSettled
				}
			} else {
				ts = requestTime(tok, ts, line[openAt:], r)
			}
		}
		i = j
	}
	return nil
}

// isRemote says whether a field is an address as nginx writes
// $remote_addr (also "unix:", the peer on a unix socket): the field a tab
// ends in a combined line must be one (no time of a Caddy console line
// is), and so must the client after a vhost without a port.
func isRemote(f []byte) bool {
	_, ok := ParseAddr(f)
	return ok || string(f) == "unix:"
}

// maxRequestSeconds bounds what is read as a request time: a bare number
// of a million seconds or more (11.6 days, far past any server's timeout)
// is a Unix time such as nginx's $msec next to $request_time.
const maxRequestSeconds = 1e6

// The states of ParseCombined's request time, bits of its ts.
const (
	tsOpen    = 1 << iota // the previous token, a bare number, is taken as the request time and may still be revised
	tsList                // the previous token ended with ',' or was ':': this one is an upstream value
	tsSettled             // the request time is final (tsOpen<<2)
)

// requestTime takes a bare token after the user agent in a state other
// than ParseCombined's usual one, and returns the next state. open starts
// with the open token when ts has tsOpen.
func requestTime(tok []byte, ts uint8, open []byte, r *Record) uint8 {
	last := tok[len(tok)-1]
	if ts&tsList != 0 || last == ',' || (len(tok) == 1 && last == ':') {
		// An upstream list: a value after a separator, a value before
		// ", ", or the " : " separator, which makes the previous token
		// the list's first value.
		if ts&tsOpen != 0 {
			if last != ':' {
				return tsSettled // a time, then a list: the time stands
			}
			r.Duration, r.HasDuration = 0, false
		}
		if last == ',' || last == ':' {
			return tsList
		}
		return 0
	}
	d, ok, labeled := bareSeconds(tok)
	switch {
	case ok && d >= maxRequestSeconds:
		// A Unix time ($msec), not a duration: passed over.
		return ts &^ tsList
	case ts&tsOpen == 0 && ok && !labeled && indexFrom(tok, 0, '.') < 0:
		// An unlabeled integer is no time (see ParseCombined): passed over.
		return ts &^ tsList
	case ts&tsOpen == 0 && ok:
		// Not reached from ParseCombined (it reads this case inline);
		// without the token's offset the time is not revised.
		r.Duration, r.HasDuration = d, true
		return tsSettled
	case ts&tsOpen != 0 && ok && !labeled && d > r.Duration && indexFrom(tok, 0, '.') >= 0:
		if sp := indexSpace(open, 0); sp > 0 && indexFrom(open[:sp], 0, '.') >= 0 {
			r.Duration = d // the larger of two adjacent times
		}
		return tsSettled
	}
	if ts&tsOpen != 0 {
		return tsSettled
	}
	return 0
}

// millis reads a token "<N>ms", Traefik's request duration (the last field
// of its common log format), as seconds.
func millis(tok []byte) (float64, bool) {
	n := len(tok)
	if n < 3 || tok[n-2] != 'm' || tok[n-1] != 's' {
		return 0, false
	}
	v, ok := parseSeconds(tok[:n-2])
	if !ok || v/1e3 >= maxRequestSeconds {
		return 0, false
	}
	return v / 1e3, true
}

// bareSeconds reads a bare token as a time: N, rt=N or request_time=N.
func bareSeconds(tok []byte) (d float64, ok, labeled bool) {
	if k := indexByteFrom(tok, 0, '='); k >= 0 {
		name := tok[:k]
		if string(name) != "rt" && string(name) != "request_time" {
			return 0, false, false
		}
		tok, labeled = tok[k+1:], true
	}
	d, ok = parseSeconds(tok)
	return d, ok, labeled
}

// vhostClient returns the client of a line that puts the virtual host
// first, or nil for any other line. first is the line's first field, rest
// the fields between it and the time (without the space before '['):
// client, ident and user, at least three (in a combined line whose user
// name holds a space, the field after the remote address is ident, "-").
// The vhost is Apache's vhost_combined "%v:%p" (host:port: a name or v4
// address without ':', or a bracketed v6 one), or a host without a port
// (Apache's "%v %h %l %u", nginx's "$host $remote_addr - $remote_user"):
// then the client must be an address and the vhost not. With
// HostnameLookups On, Apache's %h is a host name: "name - John Doe" has
// "-" second, and "name - alice" too few fields, so that name stays the
// remote (no address, as before).
func vhostClient(first, rest []byte) []byte {
	sp := bytes.IndexByte(rest, ' ')
	if sp <= 0 || bytes.IndexByte(rest[sp+1:], ' ') <= 0 {
		return nil
	}
	client := rest[:sp]
	if len(client) == 1 && client[0] == '-' {
		return nil
	}
	if hostPort(first) {
		return client
	}
	// When both are addresses (nginx's "$server_addr $remote_addr ...")
	// which one is the client cannot be told: the first stays it.
	if isRemote(client) && !isRemote(first) {
		return client
	}
	return nil
}

// hostPort says whether a field is vhost_combined's "%v:%p".
func hostPort(f []byte) bool {
	c := bytes.LastIndexByte(f, ':')
	if c <= 0 || len(f)-c-1 < 1 || len(f)-c-1 > 5 {
		return false
	}
	for _, d := range f[c+1:] {
		if !isDigit(d) {
			return false
		}
	}
	// An IPv6 remote address has ':' in its host part (its last group is
	// not a port) unless bracketed.
	host := f[:c]
	return bytes.IndexByte(host, ':') < 0 || (host[0] == '[' && host[len(host)-1] == ']')
}

// splitRequest takes method and path from "METHOD target PROTO".
func splitRequest(req []byte, r *Record) {
	sp := indexSpace(req, 0)
	if sp <= 0 {
		r.Method = MethodOther
		return
	}
	m := req[:sp]
	r.Method = parseMethod(m)
	// The path ends at the query, the fragment or the space before PROTO
	// (nearly always " HTTP/1.1", " HTTP/2.0", ...: checked before a scan).
	target := req[sp+1:]
	if t := len(target) - 9; t >= 0 && string(target[t:t+6]) == " HTTP/" && target[t+7] == '.' {
		target = target[:t]
	}
	if e := bytes.IndexByte(target, ' '); e >= 0 {
		target = target[:e]
	}
	// Bytes of another protocol sent to an HTTP port (TLS, RDP, a
	// trojan's beacon), which nginx logs as received, are no request
	// line: what follows their first space is no path, and an unanchored
	// route regex could match it. A method is a token (RFC 9110 9.1), and
	// a request target has a form of RFC 9112 3.2 (isTarget); where they
	// are not, the path is empty. The methods counted by name are tokens,
	// and their targets are kept as sent (a scanner's, too).
	if r.Method == MethodOther && (!isToken(m) || !isTarget(m, target)) {
		return
	}
	r.Path = stripQuery(target)
}

// tchar marks the bytes of an RFC 9110 token (5.6.2): tchar = "!" / "#" /
// "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_" / "`" / "|" /
// "~" / DIGIT / ALPHA.
var tchar = func() (t [256]bool) {
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c], t[c-'a'+'A'] = true, true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

// isToken says whether b is an RFC 9110 token, as a method must be.
func isToken(b []byte) bool {
	for _, c := range b {
		if !tchar[c] {
			return false
		}
	}
	return len(b) > 0
}

// isTarget says whether t, after the method m, has a form of a request
// target (RFC 9112 3.2): origin ("/..."), absolute ("scheme://..."),
// asterisk ("*"), or, for CONNECT, authority ("host:port", unchecked).
// Garbage whose first word is a token ("145.ll|'|'|...|Win 7 ...") has
// none.
func isTarget(m, t []byte) bool {
	if len(t) == 0 {
		return false
	}
	if t[0] == '/' || (len(t) == 1 && t[0] == '*') || string(m) == "CONNECT" {
		return true
	}
	k := bytes.Index(t, []byte("://"))
	if k <= 0 || !isAlpha(t[0]) {
		return false
	}
	for _, c := range t[1:k] { // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

func isAlpha(c byte) bool { return c|0x20 >= 'a' && c|0x20 <= 'z' }

// stripQuery returns the path of a request target: without the query or
// fragment, and without the scheme and authority of an absolute-form
// target (see originPath).
func stripQuery(target []byte) []byte {
	if len(target) > 0 && target[0] != '/' {
		target = originPath(target)
	}
	if k := bytes.IndexByte(target, '?'); k >= 0 {
		target = target[:k]
	}
	// A fragment is never sent by browsers, but a scanner may send one.
	if k := bytes.IndexByte(target, '#'); k >= 0 {
		target = target[:k]
	}
	return target
}

// originPath returns the path of an absolute-form target
// ("https://pop.example/x?y": "/x?y"), which servers must accept (RFC 9112
// 3.2.2) and route by its path, as nginx and Caddy do; proxy scanners send
// it all day, and both log it as received. An empty path is "/" (the
// slash of "://": a slice of the target, like every field of a Record).
// Any other target (authority-form for CONNECT, "*") is returned as is.
func originPath(t []byte) []byte {
	if len(t) < 7 || t[0]|0x20 != 'h' || t[1]|0x20 != 't' || t[2]|0x20 != 't' || t[3]|0x20 != 'p' {
		return t
	}
	n := 4
	if t[n]|0x20 == 's' {
		n++
	}
	if len(t) < n+3 || t[n] != ':' || t[n+1] != '/' || t[n+2] != '/' {
		return t
	}
	n += 3
	for k := n; k < len(t); k++ {
		switch t[k] {
		case '/':
			return t[k:]
		case '?', '#':
			return t[n-1 : n]
		}
	}
	return t[n-1 : n]
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// indexSpace finds the end of a short token: a plain loop beats the
// vectorised IndexByte over a handful of bytes.
func indexSpace(b []byte, from int) int { return indexFrom(b, from, ' ') }

// indexFrom is indexByteFrom for short distances.
func indexFrom(b []byte, from int, c byte) int {
	for k := from; k < len(b); k++ {
		if b[k] == c {
			return k
		}
	}
	return -1
}

func indexByteFrom(b []byte, from int, c byte) int {
	if from >= len(b) {
		return -1
	}
	if k := bytes.IndexByte(b[from:], c); k >= 0 {
		return from + k
	}
	return -1
}

// indexQuote finds the closing quote of a quoted field starting at from,
// skipping backslash escapes (Apache writes \", nginx \x22).
func indexQuote(b []byte, from int) int {
	for {
		q := indexByteFrom(b, from, '"')
		if q < 0 {
			return -1
		}
		// Escaped when preceded by an odd run of backslashes.
		k := q - 1
		for k >= from && b[k] == '\\' {
			k--
		}
		if (q-1-k)%2 == 0 {
			return q
		}
		from = q + 1
	}
}

// parseSize reads a byte count: digits, or "-" for none.
func parseSize(b []byte) (int64, bool) {
	if len(b) == 1 && b[0] == '-' {
		return 0, true
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var v int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// parseSeconds reads a non-negative decimal number of seconds such as
// nginx's "0.004" or Caddy's "0.000929675"; exponents go to strconv.
func parseSeconds(b []byte) (float64, bool) {
	if len(b) == 0 || len(b) > 32 {
		return 0, false
	}
	var intPart, frac uint64
	scale := 1.0
	k := 0
	for k < len(b) && isDigit(b[k]) {
		if intPart > math.MaxUint64/10-10 {
			return 0, false
		}
		intPart = intPart*10 + uint64(b[k]-'0')
		k++
	}
	digits := k
	if k < len(b) && b[k] == '.' {
		k++
		for k < len(b) && isDigit(b[k]) {
			if scale < 1e18 {
				frac = frac*10 + uint64(b[k]-'0')
				scale *= 10
			}
			k++
			digits++
		}
	}
	if digits == 0 {
		return 0, false
	}
	if k == len(b) {
		return float64(intPart) + float64(frac)/scale, true
	}
	if b[k] != 'e' && b[k] != 'E' {
		return 0, false
	}
	// Rare: an exponent. string(b) of at most 32 bytes stays on the stack.
	v, err := strconv.ParseFloat(string(b), 64)
	if err != nil || v < 0 || math.IsInf(v, 0) || math.IsNaN(v) {
		return 0, false
	}
	return v, true
}

// ParseAddr parses an address as access logs write it: plain v4 or v6,
// bracketed, with a port or a zone (dropped). It does not allocate, and
// refuses anything over 64 bytes.
func ParseAddr(b []byte) (netip.Addr, bool) {
	if len(b) == 0 || len(b) > 64 {
		return netip.Addr{}, false
	}
	// A v4 address has a '.' among its first four bytes, before any other
	// non-digit; a v6 one a ':' there (or '[').
	for k := 0; k < len(b) && k < 4; k++ {
		if c := b[k]; c == '.' {
			if a, ok := parseV4(b); ok {
				return a, true
			}
			// v4:port
			if c := bytes.IndexByte(b, ':'); c > 0 && bytes.IndexByte(b[c+1:], ':') < 0 {
				return parseV4(b[:c])
			}
			return netip.Addr{}, false
		} else if !isDigit(c) {
			break
		}
	}
	if b[0] == '[' { // [v6]:port or [v6]
		end := bytes.IndexByte(b, ']')
		if end < 0 {
			return netip.Addr{}, false
		}
		return parseV6(b[1:end])
	}
	return parseV6(b)
}

// parseV6 parses an IPv6 address (RFC 4291 text: hex groups, one "::",
// an optional trailing dotted v4, an optional %zone) without allocating.
// The zone is dropped: counting never needs it.
func parseV6(b []byte) (netip.Addr, bool) {
	if z := indexByteFrom(b, 0, '%'); z >= 0 {
		if z == len(b)-1 {
			return netip.Addr{}, false // an empty zone, as netip
		}
		b = b[:z]
	}
	var ip [16]byte
	ellipsis := -1 // byte position of "::"
	i := 0         // bytes of ip filled
	if len(b) >= 2 && b[0] == ':' && b[1] == ':' {
		ellipsis = 0
		b = b[2:]
		if len(b) == 0 {
			return netip.AddrFrom16(ip), true
		}
	}
	for i < 16 {
		// One group: up to four hex digits.
		off, acc := 0, 0
		for off < len(b) && off < 5 {
			d := unhex(b[off])
			if d < 0 {
				break
			}
			acc = acc<<4 | d
			off++
		}
		if off == 0 || off > 4 {
			return netip.Addr{}, false
		}
		if off < len(b) && b[off] == '.' {
			// Trailing dotted v4 in the last 32 bits.
			if ellipsis < 0 && i != 12 || i > 12 {
				return netip.Addr{}, false
			}
			v4, ok := parseV4(b)
			if !ok {
				return netip.Addr{}, false
			}
			a4 := v4.As4()
			copy(ip[i:], a4[:])
			i += 4
			b = nil
			break
		}
		ip[i], ip[i+1] = byte(acc>>8), byte(acc)
		i += 2
		b = b[off:]
		if len(b) == 0 {
			break
		}
		if b[0] != ':' || len(b) == 1 {
			return netip.Addr{}, false
		}
		b = b[1:]
		if b[0] == ':' {
			if ellipsis >= 0 {
				return netip.Addr{}, false // a second "::"
			}
			ellipsis = i
			b = b[1:]
			if len(b) == 0 {
				break
			}
		}
	}
	if len(b) != 0 {
		return netip.Addr{}, false
	}
	if i < 16 {
		if ellipsis < 0 {
			return netip.Addr{}, false
		}
		n := 16 - i
		copy(ip[ellipsis+n:], ip[ellipsis:i])
		clear(ip[ellipsis : ellipsis+n])
	} else if ellipsis >= 0 {
		return netip.Addr{}, false // "::" must stand for at least one group
	}
	return netip.AddrFrom16(ip), true
}

func unhex(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	case c >= 'A' && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

func parseV4(b []byte) (netip.Addr, bool) {
	var out [4]byte
	i, n := 0, len(b)
	for part := 0; part < 4; part++ {
		if part > 0 {
			if i >= n || b[i] != '.' {
				return netip.Addr{}, false
			}
			i++
		}
		if i >= n || !isDigit(b[i]) {
			return netip.Addr{}, false
		}
		v := int(b[i] - '0')
		i++
		if i < n && isDigit(b[i]) {
			if v == 0 {
				return netip.Addr{}, false // a leading zero: rejected, as netip
			}
			v = v*10 + int(b[i]-'0')
			i++
			if i < n && isDigit(b[i]) {
				v = v*10 + int(b[i]-'0')
				i++
				if v > 255 {
					return netip.Addr{}, false
				}
			}
		}
		out[part] = byte(v)
	}
	if i != n {
		return netip.Addr{}, false
	}
	return netip.AddrFrom4(out), true
}
