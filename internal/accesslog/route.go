package accesslog

import (
	"bytes"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// RouteOther is the route class of a path no route matches.
const RouteOther = "other"

// MaxRoutes bounds the route classes, and with them the label set.
const MaxRoutes = 32

// Route is one operator-defined route class: requests whose path (without
// the query string) matches Pattern count under Name.
type Route struct {
	Name    string
	Pattern string

	re *regexp.Regexp
	// When anchored, the pattern starts with ^ and a literal, prefix: a
	// path without it is rejected without running the regexp. When
	// prefixOnly, having the prefix is the whole match.
	prefix     []byte
	anchored   bool
	prefixOnly bool
	fast       *fastMatcher // nil: use re
}

// ParseRoute parses "name=regex". The name is 1 to 32 characters of
// [a-z0-9_] and not "other"; the regex uses Go's RE2 syntax and is matched
// against the request path without its query string (anchor it with ^).
func ParseRoute(s string) (Route, error) {
	name, pattern, ok := strings.Cut(s, "=")
	if !ok {
		return Route{}, fmt.Errorf("route %q: want name=regex", s)
	}
	if err := validRouteName(name); err != nil {
		return Route{}, err
	}
	if pattern == "" {
		return Route{}, fmt.Errorf("route %q: empty regex", name)
	}
	re, err := regexp.Compile(pattern)
	if err != nil {
		return Route{}, fmt.Errorf("route %q: %w", name, err)
	}
	r := Route{Name: name, Pattern: pattern, re: re}
	r.analyse()
	if !r.prefixOnly {
		r.fast = newFastMatcher(pattern)
	}
	return r, nil
}

func validRouteName(name string) error {
	if name == "" || len(name) > 32 {
		return fmt.Errorf("route name %q: want 1 to 32 characters of [a-z0-9_]", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return fmt.Errorf("route name %q: want 1 to 32 characters of [a-z0-9_]", name)
		}
	}
	if name == RouteOther {
		return fmt.Errorf("route name %q is reserved for unmatched paths", name)
	}
	return nil
}

// analyse finds the cheap checks: patterns like ^/static/ are a prefix test,
// and patterns like ^/api/(a|b) need the prefix /api/ before the regexp runs.
func (r *Route) analyse() {
	re, err := syntax.Parse(r.Pattern, syntax.Perl)
	if err != nil {
		return
	}
	re = re.Simplify()
	if re.Op != syntax.OpConcat || len(re.Sub) == 0 || re.Sub[0].Op != syntax.OpBeginText {
		return
	}
	rest := re.Sub[1:]
	if len(rest) == 0 || rest[0].Op != syntax.OpLiteral || rest[0].Flags&syntax.FoldCase != 0 {
		return
	}
	r.anchored = true
	r.prefix = []byte(string(rest[0].Rune))
	rest = rest[1:]
	// ^lit and ^lit.* are the whole match once the prefix is there (a path
	// from a log line never holds a newline, so . and (?s:.) agree).
	r.prefixOnly = len(rest) == 0 ||
		len(rest) == 1 && rest[0].Op == syntax.OpStar &&
			(rest[0].Sub[0].Op == syntax.OpAnyChar || rest[0].Sub[0].Op == syntax.OpAnyCharNotNL)
}

func (r *Route) match(path []byte) bool {
	if r.anchored && !bytes.HasPrefix(path, r.prefix) {
		return false
	}
	if r.prefixOnly {
		return true
	}
	if r.fast != nil {
		return r.fast.match(path)
	}
	return r.re.Match(path)
}

// classifier maps a path to a route index; len(names)-1 is "other".
type classifier struct {
	routes []Route
	index  []int // route i counts under names[index[i]]
	names  []string
}

func newClassifier(routes []Route) (*classifier, error) {
	if len(routes) > MaxRoutes {
		return nil, fmt.Errorf("%d routes: at most %d", len(routes), MaxRoutes)
	}
	c := &classifier{routes: routes}
	pos := map[string]int{}
	for _, r := range routes {
		if r.re == nil {
			return nil, fmt.Errorf("route %q was not made by ParseRoute", r.Name)
		}
		i, ok := pos[r.Name]
		if !ok {
			i = len(c.names)
			pos[r.Name] = i
			c.names = append(c.names, r.Name)
		}
		c.index = append(c.index, i)
	}
	c.names = append(c.names, RouteOther)
	return c, nil
}

// classify returns the route index of path: first match wins. Nothing is
// cached, so no path outlives the call.
func (c *classifier) classify(path []byte) int {
	for i := range c.routes {
		if c.routes[i].match(path) {
			return c.index[i]
		}
	}
	return len(c.names) - 1
}
