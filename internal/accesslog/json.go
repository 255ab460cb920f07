package accesslog

import (
	"bytes"
	"fmt"
)

// ParseJSON parses one JSON-lines access log record. Two layouts are known
// (and Traefik's, below):
//
// Caddy's default access log (fields of the "http.log.access" logger):
//
//	{"ts":1700000000.123,"request":{"remote_ip":"…","client_ip":"…","method":"GET","uri":"/…",…},"duration":0.0012,"size":1234,"status":200,…}
//
// and nginx with log_format … escape=json, using nginx's variable names as
// keys (see README: the documented layout):
//
//	{"time_iso8601":"…","remote_addr":"…","request_method":"GET","request_uri":"/…","status":200,
//	 "body_bytes_sent":1234,"request_time":0.001,"http_x_forwarded_for":"…"}
//
// Traefik's JSON access log is read by its own field names (ClientHost,
// RequestMethod, RequestPath, DownstreamStatus, DownstreamContentSize,
// Duration in nanoseconds, StartUTC, request_X-Forwarded-For); a record
// with RequestMethod or RequestPath but no DownstreamStatus is a request of
// Status 0 (code other). Caddy's status 0 (no handler wrote a response,
// Go sent 200) is 200 in a Caddy record: one with a request object or a
// logger http.log.access[.NAME].
// Also accepted: "request" as a string ("GET /x HTTP/1.1", nginx $request),
// "uri", "bytes_sent", "size", "msec", "time_local", numbers written as
// strings, and every duration_format of Caddy's "duration" (see
// caddyDuration; ParseJSON tells them apart as DurationAuto does, a
// Counter reads them in its Options.CaddyDuration). A request time of a million seconds or more is none, as
// in ParseCombined. Unknown keys and nested values are skipped without
// being kept.
// The scanner is hand-written and does not allocate.
func ParseJSON(line []byte, r *Record) error {
	return parseJSON(line, r, DurationAuto)
}

// parseJSON is ParseJSON reading Caddy's "duration" in unit.
func parseJSON(line []byte, r *Record, unit DurationUnit) error {
	*r = Record{Method: MethodOther}
	s := jsonScanner{b: line}
	s.ws()
	if !s.eat('{') {
		return errNotJSON
	}
	var seen jsonSeen
	if err := s.object(func(key []byte, depth int) error {
		return r.jsonField(&s, key, &seen, unit)
	}); err != nil {
		return err
	}
	s.ws()
	if s.i != len(s.b) {
		return errJSONSyntax
	}
	// Traefik leaves DownstreamStatus out when it has none (its common
	// format writes "-"): with its request fields the record is a request
	// all the same, Status 0, of code other. Without them a line with no
	// status is no request (Caddy's entries of other loggers, Traefik's
	// own log).
	if !seen.status && !seen.traefik {
		return errNoStatus
	}
	if r.otherLogger {
		return errNotAccess
	}
	// Caddy logs status 0 when no handler wrote a response, and Go's
	// net/http then sends 200 (modules/caddyhttp/server.go: "will be 0 if
	// no response is written by us (Go will write 200 to client)"). Only
	// Caddy's: nginx's 000 (no response at all) stays of code other.
	if seen.caddy && r.Status == 0 {
		r.Status = 200
	}
	return nil
}

// jsonSeen is what ParseJSON learns of a record beyond its fields.
type jsonSeen struct {
	status  bool // a status key
	caddy   bool // a request object or an access logger's name: Caddy's record
	traefik bool // a field of Traefik's request (RequestMethod, RequestPath)
}

// ParseCaddyConsole parses one line of Caddy's console log encoder
// (log { format console }, zap's console encoder): tab-separated time,
// level, logger name, caller (with_caller only) and message, then the
// entry's fields as a JSON object (with a space after each ':' and ','):
//
//	2026/12/02 10:00:00.500	\x1b[34mINFO\x1b[0m	http.log.access.log0	handled request	{"request": {"remote_ip": "…", "method": "GET", "uri": "/…", …}, "duration": 0.0012, "size": 1234, "status": 200, …}
//
// The object has the fields of Caddy's JSON access log and is read by
// ParseJSON. Only entries of an access logger (http.log.access,
// http.log.access.NAME) are requests: the logger name is the only mark of
// one, so a line without it is none. The time is the leading field,
// unless the object has a "ts": in any time_format, as Caddy's JSON "ts"
// (the default for console, wall_milli, has no zone: the read time stands
// in, as for a line without a time). The level may be coloured (Caddy's
// default for console, also in files) or absent, like the time.
func ParseCaddyConsole(line []byte, r *Record) error {
	return parseCaddyConsole(line, r, DurationAuto)
}

// parseCaddyConsole is ParseCaddyConsole reading "duration" in unit.
func parseCaddyConsole(line []byte, r *Record, unit DurationUnit) error {
	k := bytes.Index(line, []byte("\t{"))
	if k < 0 {
		*r = Record{Method: MethodOther}
		return errNotConsole
	}
	head := line[:k]
	access := false
	var first []byte
	for n := 0; !access; n++ {
		f := head
		t := bytes.IndexByte(head, '\t')
		if t >= 0 {
			f, head = head[:t], head[t+1:]
		}
		if n == 0 {
			first = f
		}
		access = isAccessLogger(f)
		if t < 0 {
			break
		}
	}
	if !access {
		*r = Record{Method: MethodOther}
		return errNotAccess
	}
	if err := parseJSON(line[k+1:], r, unit); err != nil {
		return err
	}
	if r.Time == nil && len(first) > 0 && isDigit(first[0]) {
		r.Time, r.timeKind = first, timeText
	}
	return nil
}

// isAccessLogger says whether a zap logger name is Caddy's access log:
// http.log.access or http.log.access.NAME.
func isAccessLogger(name []byte) bool {
	const access = "http.log.access"
	return len(name) >= len(access) && string(name[:len(access)]) == access &&
		(len(name) == len(access) || name[len(access)] == '.')
}

// isOtherHTTPLogger says whether a zap logger name is one of Caddy's HTTP
// loggers other than its access log (http.log.access, http.log.access.NAME):
// http.log.error writes an entry, status included, for every failed request
// the access log also has, and http.handlers.reverse_proxy one per proxied
// request at debug level. Counted, they would count requests twice.
func isOtherHTTPLogger(name []byte) bool {
	const access = "http.log.access"
	if string(name) == "http" {
		return true
	}
	if len(name) < 5 || string(name[:5]) != "http." {
		return false
	}
	if len(name) >= len(access) && string(name[:len(access)]) == access {
		return len(name) > len(access) && name[len(access)] != '.'
	}
	return true
}

// jsonField handles one top-level key; the scanner is positioned at its
// value. unit is how Caddy's "duration" is written.
func (r *Record) jsonField(s *jsonScanner, key []byte, seen *jsonSeen, unit DurationUnit) error {
	switch string(key) {
	case "request":
		s.ws()
		if s.peek() == '{' { // Caddy
			s.i++
			seen.caddy = true
			return s.object(func(k []byte, _ int) error {
				switch string(k) {
				case "remote_ip", "remote_addr":
					return s.stringInto(&r.Remote)
				case "client_ip":
					return s.stringInto(&r.ClientIP)
				case "method":
					var m []byte
					if err := s.stringInto(&m); err != nil {
						return err
					}
					r.Method, r.methodSet = parseMethod(m), true
				case "uri":
					return s.pathInto(&r.Path)
				default:
					return s.skip()
				}
				return nil
			})
		}
		// nginx $request: "GET /x HTTP/1.1"
		var req []byte
		if err := s.stringInto(&req); err != nil {
			return err
		}
		// An explicit request_method or request_uri wins, whichever
		// comes first.
		m, set, path := r.Method, r.methodSet, r.Path
		splitRequest(req, r)
		if path != nil {
			r.Path = path
		}
		if set {
			r.Method = m
		}
		r.methodSet = true
		return nil
	case "remote_addr", "remote_ip", "ClientHost": // ClientHost: Traefik
		return s.stringInto(&r.Remote)
	case "client_ip":
		return s.stringInto(&r.ClientIP)
	case "request_method", "method", "RequestMethod":
		var m []byte
		if err := s.stringInto(&m); err != nil {
			return err
		}
		r.Method, r.methodSet = parseMethod(m), true
		seen.traefik = seen.traefik || key[0] == 'R'
		return nil
	case "request_uri", "uri", "RequestPath":
		seen.traefik = seen.traefik || key[0] == 'R'
		return s.pathInto(&r.Path)
	case "status", "DownstreamStatus": // Traefik: what the client got
		v, err := s.number()
		if err != nil {
			return err
		}
		st, ok := parseSize(v)
		if !ok || st > 999 {
			return errStatus
		}
		r.Status, seen.status = int(st), true
		return nil
	case "body_bytes_sent", "bytes_sent", "size", "DownstreamContentSize":
		v, err := s.number()
		if err != nil {
			return err
		}
		if size, ok := parseSize(v); ok {
			r.Size = size
		}
		return nil
	case "request_time", "duration":
		v, err := s.number()
		if err != nil {
			return err
		}
		d, ok := parseSeconds(v)
		if key[0] == 'd' {
			d, ok = caddyDuration(v, unit)
		}
		if ok && d < maxRequestSeconds {
			r.Duration, r.HasDuration = d, true
		}
		return nil
	case "Duration": // Traefik: integer nanoseconds
		v, err := s.number()
		if err != nil {
			return err
		}
		if ns, ok := parseSeconds(v); ok && ns/1e9 < maxRequestSeconds {
			r.Duration, r.HasDuration = ns/1e9, true
		}
		return nil
	case "http_x_forwarded_for", "request_X-Forwarded-For": // the latter: Traefik with the header kept
		return s.stringInto(&r.XFF)
	case "StartUTC": // Traefik
		if err := s.stringInto(&r.Time); err != nil {
			return err
		}
		r.timeKind = timeISO8601
		return nil
	case "ts", "msec":
		kind := timeUnix
		if s.peek() == '"' {
			kind = timeText // Caddy's time_format iso8601, rfc3339, common_log, ...
		}
		v, err := s.number()
		if err != nil {
			return err
		}
		r.Time, r.timeKind = v, kind
		return nil
	case "time_iso8601":
		if err := s.stringInto(&r.Time); err != nil {
			return err
		}
		r.timeKind = timeISO8601
		return nil
	case "logger":
		var name []byte
		if err := s.stringInto(&name); err != nil {
			return err
		}
		r.otherLogger = isOtherHTTPLogger(name)
		seen.caddy = seen.caddy || isAccessLogger(name)
		return nil
	case "time_local":
		if err := s.stringInto(&r.Time); err != nil {
			return err
		}
		r.timeKind = timeCLF
		return nil
	}
	return s.skip()
}

// maxJSONDepth bounds nesting, so a hostile line cannot recurse deeply.
const maxJSONDepth = 16

type jsonScanner struct {
	b     []byte
	i     int
	depth int
}

func (s *jsonScanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\r', '\n':
			s.i++
		default:
			return
		}
	}
}

func (s *jsonScanner) peek() byte {
	if s.i < len(s.b) {
		return s.b[s.i]
	}
	return 0
}

func (s *jsonScanner) eat(c byte) bool {
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// object walks the members of an object whose '{' was consumed, calling
// field with the scanner at each value; field must consume the value.
func (s *jsonScanner) object(field func(key []byte, depth int) error) error {
	s.depth++
	if s.depth > maxJSONDepth {
		return errJSONSyntax
	}
	defer func() { s.depth-- }()
	s.ws()
	if s.eat('}') {
		return nil
	}
	for {
		s.ws()
		key, _, err := s.str()
		if err != nil {
			return err
		}
		s.ws()
		if !s.eat(':') {
			return errJSONSyntax
		}
		s.ws()
		if err := field(key, s.depth); err != nil {
			return err
		}
		s.ws()
		if s.eat(',') {
			continue
		}
		if s.eat('}') {
			return nil
		}
		return errJSONSyntax
	}
}

// str reads a string and returns its raw content (escapes not decoded) and
// whether it holds escapes.
func (s *jsonScanner) str() ([]byte, bool, error) {
	if !s.eat('"') {
		return nil, false, errJSONSyntax
	}
	start, esc := s.i, false
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			return v, esc, nil
		case c == '\\':
			esc = true
			s.i += 2
		case c < 0x20:
			return nil, false, errJSONSyntax
		default:
			s.i++
		}
	}
	return nil, false, errJSONSyntax
}

// stringInto stores a string value; null leaves dst unset. A value with
// escapes is kept raw: the fields read here (addresses, methods) never hold
// any legitimately, so an escaped one simply fails to parse later.
func (s *jsonScanner) stringInto(dst *[]byte) error {
	if s.literal("null") {
		return nil
	}
	v, _, err := s.str()
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// pathInto stores a request target without its query. nginx's escape=json
// writes "/" as "/" and Caddy never escapes it, so the raw bytes suffice for
// route matching.
func (s *jsonScanner) pathInto(dst *[]byte) error {
	var v []byte
	if err := s.stringInto(&v); err != nil || v == nil {
		return err // null leaves a path another key gave
	}
	*dst = stripQuery(v)
	return nil
}

// number reads a number, or a string holding one (nginx writes "$status"
// quoted in many published layouts), and returns its bytes.
func (s *jsonScanner) number() ([]byte, error) {
	if s.peek() == '"' {
		v, _, err := s.str()
		return v, err
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		if isDigit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			s.i++
			continue
		}
		break
	}
	if s.i == start {
		if s.literal("null") {
			return nil, nil
		}
		return nil, errJSONSyntax
	}
	return s.b[start:s.i], nil
}

func (s *jsonScanner) literal(lit string) bool {
	if len(s.b)-s.i >= len(lit) && string(s.b[s.i:s.i+len(lit)]) == lit {
		s.i += len(lit)
		return true
	}
	return false
}

// skip consumes any value.
func (s *jsonScanner) skip() error {
	s.ws()
	switch c := s.peek(); {
	case c == '"':
		_, _, err := s.str()
		return err
	case c == '{':
		s.i++
		return s.object(func([]byte, int) error { return s.skip() })
	case c == '[':
		s.i++
		s.depth++
		defer func() { s.depth-- }()
		if s.depth > maxJSONDepth {
			return errJSONSyntax
		}
		s.ws()
		if s.eat(']') {
			return nil
		}
		for {
			if err := s.skip(); err != nil {
				return err
			}
			s.ws()
			if s.eat(',') {
				continue
			}
			if s.eat(']') {
				return nil
			}
			return errJSONSyntax
		}
	case c == 't':
		if s.literal("true") {
			return nil
		}
	case c == 'f':
		if s.literal("false") {
			return nil
		}
	case c == 'n':
		if s.literal("null") {
			return nil
		}
	case isDigit(c) || c == '-':
		_, err := s.number()
		return err
	}
	return errJSONSyntax
}

// DurationUnit is how Caddy writes an access log entry's "duration": its
// log encoder's duration_format (--accesslog.caddy-duration-format).
type DurationUnit uint8

// The units of --accesslog.caddy-duration-format.
const (
	// DurationAuto tells the formats apart by their look (caddyDuration),
	// which cannot tell milliseconds from seconds.
	DurationAuto    DurationUnit = iota
	DurationSeconds              // "s", "second", "seconds": float seconds, Caddy's default
	DurationMillis               // "ms", "milli", "millis": float milliseconds
	DurationNanos                // "ns", "nano", "nanos": integer nanoseconds
	DurationString               // "string": a Go duration string, "929.675µs"
)

// ParseDurationUnit reads auto or one of the duration_format names Caddy
// accepts (modules/logging/encoders.go): s, second, seconds; ms, milli,
// millis; ns, nano, nanos; string.
func ParseDurationUnit(s string) (DurationUnit, error) {
	switch s {
	case "auto":
		return DurationAuto, nil
	case "s", "second", "seconds":
		return DurationSeconds, nil
	case "ms", "milli", "millis":
		return DurationMillis, nil
	case "ns", "nano", "nanos":
		return DurationNanos, nil
	case "string":
		return DurationString, nil
	}
	return 0, fmt.Errorf("duration format %q (Caddy's duration_format): want auto, seconds (s, second), ms (milli, millis), ns (nano, nanos) or string", s)
}

// caddyDuration reads Caddy's "duration", in seconds, written in unit.
// A Go duration string ("string": "929.675µs") is read whatever the unit,
// and with an explicit unit a number is in that unit whether written as
// an integer or not (zap writes a whole float without a point: 12 ms is
// 12); under DurationString a bare number is none. DurationAuto reads
// every duration_format but one: float seconds ("seconds", the default:
// 0.000929675), integer nanoseconds ("ns": 929675) or a Go duration
// string. An integer is nanoseconds: float seconds are written as an
// integer only for a duration of exactly whole seconds, to the
// nanosecond. ("ms", float milliseconds, cannot be told from seconds or,
// when whole, from nanoseconds: it needs the unit.)
func caddyDuration(v []byte, unit DurationUnit) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	if last := v[len(v)-1]; last >= 'a' && last <= 'z' {
		return parseGoDuration(v)
	}
	switch unit {
	case DurationSeconds:
		return parseSeconds(v)
	case DurationMillis:
		ms, ok := parseSeconds(v)
		return ms / 1e3, ok
	case DurationNanos:
		ns, ok := parseSeconds(v)
		return ns / 1e9, ok
	case DurationString:
		return 0, false
	}
	for _, c := range v {
		if !isDigit(c) {
			return parseSeconds(v)
		}
	}
	ns, ok := parseSize(v)
	return float64(ns) / 1e9, ok
}

// parseGoDuration reads a non-negative time.Duration.String() such as
// "1.5s", "2m3.5s" or "929.675µs" (µ as U+00B5, U+03BC, "u", or escaped
// U+00B5 when the JSON writer escaped it) in seconds, without allocating.
func parseGoDuration(b []byte) (float64, bool) {
	if len(b) > 40 {
		return 0, false
	}
	total := 0.0
	for len(b) > 0 {
		k := 0
		for k < len(b) && (isDigit(b[k]) || b[k] == '.') {
			k++
		}
		v, ok := parseSeconds(b[:k])
		if !ok {
			return 0, false
		}
		b = b[k:]
		u := 0
		if len(b) >= 6 && b[0] == '\\' {
			u = 6 // an escaped µ: \u00b5
		}
		for u < len(b) && !isDigit(b[u]) && b[u] != '.' {
			u++
		}
		var unit float64
		switch string(b[:u]) {
		case "ns":
			unit = 1e-9
		case "us", "µs", "μs", `\u00b5s`, `\u03bcs`, `\u00B5s`, `\u03BCs`:
			unit = 1e-6
		case "ms":
			unit = 1e-3
		case "s":
			unit = 1
		case "m":
			unit = 60
		case "h":
			unit = 3600
		default:
			return 0, false
		}
		total += v * unit
		b = b[u:]
	}
	return total, true
}
