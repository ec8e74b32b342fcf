// Package filter selects nodes. A Filter is built on the client from the familiar
// MCollective flags (-I -F -C -A -W -S), travels inside the signed request as
// data (never as code), and is evaluated by every node against its own identity,
// facts, classes, agents and data plugins.
//
// Regexes are compiled once per Filter or Expr value, on first use, and the
// compiled form is shared by concurrent Match/Eval calls. A filter that
// contains anything invalid (a bad regex, an unknown operator, a malformed
// compound tree) matches no node; the client-side parsers and Validate report
// such problems as errors before a request is sent.
package filter

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// Filter is the wire form of a request's node selection. Every non-empty part
// must match (AND); the values inside Identity are alternatives (OR).
// Do not copy a Filter by value or modify it after the first Match: it caches
// its compiled form.
type Filter struct {
	Identity []string     `json:"identity,omitempty"` // exact or /regex/; OR'ed
	Fact     []FactFilter `json:"fact,omitempty"`     // AND'ed
	Class    []string     `json:"class,omitempty"`    // exact or /regex/; AND'ed
	Agent    []string     `json:"agent,omitempty"`    // exact or /regex/; AND'ed
	Compound []*Expr      `json:"compound,omitempty"` // AND'ed

	compiled compiledFilter
}

// Node is what a filter is evaluated against: one managed node's view of itself.
type Node interface {
	Identity() string
	// Fact looks up a fact by dotted path (os.release.major); see Lookup.
	Fact(path string) (any, bool)
	Classes() []string
	Agents() []string
	// Data runs a data plugin query (fstat('/etc/issue')) and returns its
	// fields. ctx is the context given to Match, Decide or Eval: on a node it
	// is the request's data budget, shared by every data call the request's
	// filter and policy make. A Data that is still running when ctx is done
	// must give up and return an error (wrapping ctx.Err()); a call made
	// after ctx is done must fail without starting. A failed call never
	// selects the node.
	Data(ctx context.Context, plugin, query string) (map[string]any, error)
}

// compiledFilter is built once by the first Match.
type compiledFilter struct {
	once sync.Once
	m    *matcher
	err  error
}

// matcher is a Filter with every regex and comparison compiled.
type matcher struct {
	identity []pattern
	facts    []factMatcher
	classes  []pattern
	agents   []pattern
	compound []*Expr // validated, so their caches are built
}

type factMatcher struct {
	path string
	cmp  *comparator
}

// Empty reports whether the filter selects every node.
func (f *Filter) Empty() bool {
	return f == nil || len(f.Identity)+len(f.Fact)+len(f.Class)+len(f.Agent)+len(f.Compound) == 0
}

// Validate reports the first invalid part of the filter (bad regex, unknown
// operator, malformed compound tree), naming the kind and the value. Unlike
// Match it caches nothing, so the filter may still be changed afterwards.
func (f *Filter) Validate() error {
	if f == nil {
		return nil
	}
	_, err := compile(f)
	return err
}

// Match reports whether the node satisfies every part of the filter. An
// invalid filter matches no node. ctx bounds the data plugin calls of
// compound expressions (it is passed to the node's Data); a filter without
// data calls never looks at it.
func (f *Filter) Match(ctx context.Context, n Node) bool {
	if f.Empty() {
		return true
	}
	f.compiled.once.Do(func() { f.compiled.m, f.compiled.err = compile(f) })
	if f.compiled.err != nil {
		return false
	}
	return f.compiled.m.match(ctx, n)
}

// ErrUnknown is what a Node's Data returns (wrapped) when a data function
// cannot be evaluated where the filter is being evaluated — the registration
// store has no fstat of the node's files — as opposed to a data call that
// failed on the node itself.
var ErrUnknown = errors.New("not known here")

// Decide evaluates the filter with three-valued logic for data functions
// whose Data returns ErrUnknown: such a call is unknown, "unknown or true" is
// true, "unknown and false" is false, "not unknown" is unknown. known is
// false when the outcome depends on an unknown call; match is then true, so
// that the node is addressed and decides itself. Every other part (identity,
// facts, classes, agents) is decided as by Match, and a data call that
// failed for another reason never selects the node. ctx is passed to Data
// as in Match.
func (f *Filter) Decide(ctx context.Context, n Node) (match, known bool) {
	if f.Empty() {
		return true, true
	}
	f.compiled.once.Do(func() { f.compiled.m, f.compiled.err = compile(f) })
	if f.compiled.err != nil {
		return false, true
	}
	m := f.compiled.m
	plain := *m
	plain.compound = nil
	if !plain.match(ctx, n) {
		return false, true
	}
	result := triTrue
	for _, e := range m.compound {
		var failed error
		switch v := e.eval3(ctx, n, &failed); {
		case failed != nil || v == triFalse:
			return false, true
		case v == triUnknown:
			result = triUnknown
		}
	}
	return true, result == triTrue
}

// Equal compares the wire fields of two filters (ignoring caches); go-cmp
// uses it too.
func (f *Filter) Equal(o *Filter) bool {
	if f == nil || o == nil {
		return f.Empty() && o.Empty()
	}
	if !equalStrings(f.Identity, o.Identity) || !equalStrings(f.Class, o.Class) ||
		!equalStrings(f.Agent, o.Agent) || len(f.Fact) != len(o.Fact) || len(f.Compound) != len(o.Compound) {
		return false
	}
	for i := range f.Fact {
		if f.Fact[i] != o.Fact[i] {
			return false
		}
	}
	for i := range f.Compound {
		if !f.Compound[i].Equal(o.Compound[i]) {
			return false
		}
	}
	return true
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func compile(f *Filter) (*matcher, error) {
	m := &matcher{compound: f.Compound}
	var err error
	if m.identity, err = compilePatterns("identity", f.Identity); err != nil {
		return nil, err
	}
	if m.classes, err = compilePatterns("class", f.Class); err != nil {
		return nil, err
	}
	if m.agents, err = compilePatterns("agent", f.Agent); err != nil {
		return nil, err
	}
	for _, ff := range f.Fact {
		if ff.Fact == "" {
			return nil, fmt.Errorf("filter: fact %q: empty fact name", ff.String())
		}
		c, err := newComparator(ff.Operator, ff.Value)
		if err != nil {
			return nil, fmt.Errorf("filter: fact %q: %w", ff.String(), err)
		}
		m.facts = append(m.facts, factMatcher{path: ff.Fact, cmp: c})
	}
	for i, e := range f.Compound {
		if err := e.Validate(); err != nil {
			return nil, fmt.Errorf("filter: compound #%d: %w", i+1, err)
		}
	}
	return m, nil
}

func compilePatterns(kind string, values []string) ([]pattern, error) {
	ps := make([]pattern, 0, len(values))
	for _, v := range values {
		p, err := compilePattern(v)
		if err != nil {
			return nil, fmt.Errorf("filter: %s %q: %w", kind, v, err)
		}
		ps = append(ps, p)
	}
	return ps, nil
}

func (m *matcher) match(ctx context.Context, n Node) bool {
	if len(m.identity) > 0 {
		id := n.Identity()
		ok := false
		for _, p := range m.identity {
			if p.Match(id) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if len(m.agents) > 0 {
		agents := n.Agents()
		for _, p := range m.agents {
			if !p.MatchAny(agents) {
				return false
			}
		}
	}
	if len(m.classes) > 0 {
		classes := n.Classes()
		for _, p := range m.classes {
			if !p.MatchAny(classes) {
				return false
			}
		}
	}
	for _, fm := range m.facts {
		v, ok := n.Fact(fm.path)
		if !ok || !fm.cmp.match(v) {
			return false
		}
	}
	for _, e := range m.compound {
		var failed error
		if !e.eval(ctx, n, &failed) || failed != nil {
			return false // a failed data call never selects a node
		}
	}
	return true
}
