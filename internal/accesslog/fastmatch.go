package accesslog

import (
	"regexp/syntax"
	"unicode/utf8"
)

// fastMatcher matches the common shape of route patterns without the
// regexp engine, whose per-call cost dominates a line's: ^ followed by
// ASCII literals, alternations of ASCII literals, character classes
// (optionally repeated with *, + or ?) and an optional $. It is only built
// when matching is deterministic (no alternative is a prefix of another; a
// repeated class never contains the first byte of what follows), so a
// single left-to-right pass decides; every other pattern keeps using
// regexp. FuzzFastMatch checks it against regexp.
type fastMatcher struct {
	elems []fmElem
	end   bool // $: the path must end after the last element
}

type fmKind uint8

const (
	fmLiteral fmKind = iota
	fmAlternate
	fmClass
)

type fmElem struct {
	kind fmKind
	lit  string   // fmLiteral
	alts []string // fmAlternate
	// fmClass: set[c] for ASCII bytes; high says whether every rune >= 0x80
	// is in the class (then any byte >= 0x80 is), else none is.
	set       [128]bool
	high      bool
	min, many int // many: at most one (0) or unbounded (1)
}

// first reports the bytes an element can start with.
func (e *fmElem) first(c byte) bool {
	switch e.kind {
	case fmLiteral:
		return e.lit[0] == c
	case fmAlternate:
		for _, a := range e.alts {
			if a[0] == c {
				return true
			}
		}
		return false
	}
	return e.in(c)
}

func (e *fmElem) in(c byte) bool {
	if c >= utf8.RuneSelf {
		return e.high
	}
	return e.set[c]
}

// newFastMatcher returns nil when the pattern is outside the supported shape.
func newFastMatcher(pattern string) *fastMatcher {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	var subs []*syntax.Regexp
	var flatten func(r *syntax.Regexp) bool
	flatten = func(r *syntax.Regexp) bool {
		switch r.Op {
		case syntax.OpConcat:
			for _, s := range r.Sub {
				if !flatten(s) {
					return false
				}
			}
		case syntax.OpCapture:
			return flatten(r.Sub[0])
		case syntax.OpEmptyMatch:
		default:
			subs = append(subs, r)
		}
		return true
	}
	if !flatten(re) || len(subs) == 0 || subs[0].Op != syntax.OpBeginText {
		return nil
	}
	subs = subs[1:]
	m := &fastMatcher{}
	if n := len(subs); n > 0 && subs[n-1].Op == syntax.OpEndText {
		m.end = true
		subs = subs[:n-1]
	}
	for _, s := range subs {
		e, ok := fmElement(s)
		if !ok {
			return nil
		}
		m.elems = append(m.elems, e)
	}
	// Determinism of repeated classes: what follows must not start with a
	// byte of the class.
	for i := range m.elems {
		e := &m.elems[i]
		if e.kind != fmClass || (e.many == 0 && e.min == 1) {
			continue
		}
		if i+1 < len(m.elems) {
			next := &m.elems[i+1]
			if next.kind == fmClass && next.min == 0 {
				return nil
			}
			for c := 0; c < 256; c++ {
				if e.in(byte(c)) && next.first(byte(c)) {
					return nil
				}
			}
		}
	}
	return m
}

func asciiLiteral(r *syntax.Regexp) (string, bool) {
	if r.Op != syntax.OpLiteral || r.Flags&syntax.FoldCase != 0 || len(r.Rune) == 0 {
		return "", false
	}
	b := make([]byte, len(r.Rune))
	for i, c := range r.Rune {
		if c >= utf8.RuneSelf {
			return "", false
		}
		b[i] = byte(c)
	}
	return string(b), true
}

func fmElement(r *syntax.Regexp) (fmElem, bool) {
	switch r.Op {
	case syntax.OpLiteral:
		lit, ok := asciiLiteral(r)
		return fmElem{kind: fmLiteral, lit: lit}, ok
	case syntax.OpAlternate:
		e := fmElem{kind: fmAlternate}
		for _, s := range r.Sub {
			lit, ok := asciiLiteral(s)
			if !ok {
				return e, false
			}
			e.alts = append(e.alts, lit)
		}
		for i, a := range e.alts {
			for j, b := range e.alts {
				if i != j && len(a) <= len(b) && b[:len(a)] == a {
					return e, false // a prefix of another: not deterministic
				}
			}
		}
		return e, true
	case syntax.OpCharClass, syntax.OpAnyCharNotNL, syntax.OpAnyChar:
		e, ok := fmClassOf(r)
		e.min = 1
		// One rune of a class that takes non-ASCII may be several bytes.
		return e, ok && !e.high
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest:
		e, ok := fmClassOf(r.Sub[0])
		if !ok || r.Flags&syntax.NonGreedy != 0 {
			return e, false
		}
		switch r.Op {
		case syntax.OpStar:
			e.min, e.many = 0, 1
		case syntax.OpPlus:
			e.min, e.many = 1, 1
		case syntax.OpQuest:
			if e.high {
				return e, false
			}
			e.min, e.many = 0, 0
		}
		return e, true
	}
	return fmElem{}, false
}

// fmClassOf reads a class that is either all-ASCII or takes every rune from
// 0x80 up (like [^/] or .): then bytes and runes agree on membership.
func fmClassOf(r *syntax.Regexp) (fmElem, bool) {
	e := fmElem{kind: fmClass}
	var ranges []rune
	switch r.Op {
	case syntax.OpAnyCharNotNL:
		ranges = []rune{0, '\n' - 1, '\n' + 1, utf8.MaxRune}
	case syntax.OpAnyChar:
		ranges = []rune{0, utf8.MaxRune}
	case syntax.OpCharClass:
		ranges = r.Rune
	case syntax.OpLiteral:
		if lit, ok := asciiLiteral(r); ok && len(lit) == 1 {
			e.set[lit[0]] = true
			return e, true
		}
		return e, false
	default:
		return e, false
	}
	for i := 0; i+1 < len(ranges); i += 2 {
		lo, hi := ranges[i], ranges[i+1]
		for c := lo; c <= hi && c < utf8.RuneSelf; c++ {
			e.set[c] = true
		}
		if hi >= utf8.RuneSelf {
			if lo > utf8.RuneSelf || hi != utf8.MaxRune {
				return e, false // covers some non-ASCII runes only
			}
			e.high = true
		}
	}
	return e, true
}

// match runs the single deterministic pass.
func (m *fastMatcher) match(p []byte) bool {
	i := 0
	for k := range m.elems {
		e := &m.elems[k]
		switch e.kind {
		case fmLiteral:
			if len(p)-i < len(e.lit) || string(p[i:i+len(e.lit)]) != e.lit {
				return false
			}
			i += len(e.lit)
		case fmAlternate:
			found := false
			for _, a := range e.alts {
				if len(p)-i >= len(a) && string(p[i:i+len(a)]) == a {
					i += len(a)
					found = true
					break
				}
			}
			if !found {
				return false
			}
		case fmClass:
			n := 0
			for i < len(p) && (e.many == 1 || n < 1) && e.in(p[i]) {
				i++
				n++
			}
			if n < e.min {
				return false
			}
		}
	}
	return !m.end || i == len(p)
}
