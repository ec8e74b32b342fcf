package devcluster

import (
	"fmt"

	"github.com/marionette/mco/filter"
)

var roles = []string{"web", "db", "cache"}

// NodeName is the identity of the i-th dev node: web1, db1, cache1, web2, ...
func NodeName(i int) string {
	return fmt.Sprintf("%s%d.dev", roles[i%len(roles)], i/len(roles)+1)
}

// NodeFacts are the varied facts of the i-th dev node.
func NodeFacts(i int) map[string]any {
	role := roles[i%len(roles)]
	hagroup := []string{"a", "b", "c"}[(i/len(roles))%3]
	family, name, release := "Debian", "Debian", "12.5"
	if i%4 == 3 {
		family, name, release = "RedHat", "RedHat", "9.3"
	}
	return map[string]any{
		"role":                   role,
		"hagroup":                hagroup,
		"country":                []string{"uk", "de", "us"}[i%3],
		"operatingsystem":        name,
		"operatingsystemrelease": release,
		"osfamily":               family,
		"os": map[string]any{
			"family":  family,
			"name":    name,
			"release": map[string]any{"full": release, "major": release[:len(release)-2]},
		},
		"processorcount": 2 + i%3*2,
		"memorysize_mb":  4096 * (1 + i%4),
		"networking":     map[string]any{"ip": fmt.Sprintf("192.0.2.%d", i%250+1)},
		"ipaddresses":    []any{fmt.Sprintf("192.0.2.%d", i%250+1), "fe80::1"},
	}
}

// NodeClasses are the configuration classes of the i-th dev node.
func NodeClasses(i int) []string {
	role := roles[i%len(roles)]
	return []string{"base", "role::" + role, "profile::" + role}
}

// StaticFacts is an unchanging fact set (dev nodes have no fact files).
type StaticFacts struct {
	facts   map[string]any
	classes []string
}

// NewStaticFacts wraps facts and classes.
func NewStaticFacts(facts map[string]any, classes []string) *StaticFacts {
	return &StaticFacts{facts: facts, classes: classes}
}

// Facts returns all facts.
func (s *StaticFacts) Facts() map[string]any { return s.facts }

// Fact looks up a fact by dotted path.
func (s *StaticFacts) Fact(path string) (any, bool) { return filter.Lookup(s.facts, path) }

// Classes returns the classes.
func (s *StaticFacts) Classes() []string { return s.classes }
