// Package filter selects nodes. A Filter is built on the client from the familiar
// MCollective flags (-I -F -C -A -W -S), travels inside the signed request as
// data (never as code), and is evaluated by every node against its own identity,
// facts, classes, agents and data plugins.
package filter

import (
	"fmt"
	"regexp"
	"strings"
)

// Filter is the wire form of a request's node selection. Every non-empty part
// must match (AND); the values inside Identity are alternatives (OR).
type Filter struct {
	Identity []string     `json:"identity,omitempty"` // exact or /regex/; OR'ed
	Fact     []FactFilter `json:"fact,omitempty"`     // AND'ed
	Class    []string     `json:"class,omitempty"`    // exact or /regex/; AND'ed
	Agent    []string     `json:"agent,omitempty"`    // exact or /regex/; AND'ed
	Compound []*Expr      `json:"compound,omitempty"` // AND'ed
}

// FactFilter is one fact comparison, e.g. {os.family == Debian}.
type FactFilter struct {
	Fact     string `json:"fact"`
	Operator string `json:"operator"`
	Value    string `json:"value"`
}

// Node is what a filter is evaluated against: one managed node's view of itself.
type Node interface {
	Identity() string
	// Fact looks up a fact by dotted path (os.release.major).
	Fact(path string) (any, bool)
	Classes() []string
	Agents() []string
	// Data runs a data plugin query (fstat('/etc/issue')) and returns its fields.
	Data(plugin, query string) (map[string]any, error)
}

// Empty reports whether the filter selects every node.
func (f *Filter) Empty() bool {
	return f == nil || len(f.Identity)+len(f.Fact)+len(f.Class)+len(f.Agent)+len(f.Compound) == 0
}

// Match reports whether the node satisfies every part of the filter.
func (f *Filter) Match(n Node) bool {
	if f.Empty() {
		return true
	}
	if len(f.Identity) > 0 {
		id := n.Identity()
		ok := false
		for _, want := range f.Identity {
			if matchValue(want, id) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for _, want := range f.Agent {
		if !anyMatch(want, n.Agents()) {
			return false
		}
	}
	for _, want := range f.Class {
		if !anyMatch(want, n.Classes()) {
			return false
		}
	}
	// TODO(filter): facts and compound expressions.
	return len(f.Fact) == 0 && len(f.Compound) == 0
}

func anyMatch(want string, have []string) bool {
	for _, h := range have {
		if matchValue(want, h) {
			return true
		}
	}
	return false
}

// matchValue compares exactly, or as a regular expression when want is /re/.
func matchValue(want, have string) bool {
	if len(want) >= 2 && strings.HasPrefix(want, "/") && strings.HasSuffix(want, "/") {
		re, err := regexp.Compile(want[1 : len(want)-1])
		return err == nil && re.MatchString(have)
	}
	return want == have
}

// Expr is a parsed compound (-S) expression. Placeholder until the parser lands.
type Expr struct{}

// ParseCompound parses a -S compound expression. Placeholder until the parser lands.
func ParseCompound(s string) (*Expr, error) {
	return nil, fmt.Errorf("compound filters are not implemented yet")
}

// Eval evaluates a compound expression against a node.
func (e *Expr) Eval(n Node) bool { return false }

// ParseFact parses a -F fact filter such as "os.family=Debian".
func ParseFact(s string) (FactFilter, error) {
	return FactFilter{}, fmt.Errorf("fact filters are not implemented yet")
}

// Match reports whether the node's fact satisfies the comparison.
func (ff FactFilter) Match(n Node) bool { return false }
