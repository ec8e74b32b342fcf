package authz

import (
	"github.com/marionette/mco/filter"
	"strings"
	"testing"
)

// TestCompoundColumns checks that a 5-field rule's facts or classes column
// written as a compound expression is evaluated as one, as MCollective's
// actionpolicy did: a deny rule written that way must deny (issue 11 #1).
func TestCompoundColumns(t *testing.T) {
	node := func(classes []string, facts map[string]any) *filter.StaticNode {
		return &filter.StaticNode{Name: "n1", ClassNames: classes, FactValues: facts}
	}
	one := node([]string{"one"}, map[string]any{"foo": "bar", "bar": "foo"})
	three := node([]string{"three"}, map[string]any{"foo": "bar", "bar": "baz"})
	oneTwo := node([]string{"one", "two"}, map[string]any{"foo": "baz"})
	two := node([]string{"two"}, map[string]any{})
	rule := func(verb, facts, classes string) string {
		return verb + "\tcert=a\t*\t" + facts + "\t" + classes
	}
	denyThenAllow := func(facts, classes string) string {
		return lines(rule("deny", facts, classes), "allow\t*\t*\t*\t*")
	}
	denied := func(name, policy string, n *filter.StaticNode) evalCase {
		return evalCase{name: name, policy: policy, caller: "cert=a", action: "x", node: n, line: 1, reason: ReasonMatchedRule}
	}
	allowedBy := func(name, policy string, n *filter.StaticNode, line int) evalCase {
		return evalCase{name: name, policy: policy, caller: "cert=a", action: "x", node: n, allowed: true, line: line, reason: ReasonMatchedRule}
	}
	runEvalCases(t, []evalCase{
		// The attacks of the finding: each deny rule must now apply.
		denied("classes 'one or three' denies a node with one", denyThenAllow("*", "one or three"), one),
		denied("classes 'one or three' denies a node with three", denyThenAllow("*", "one or three"), three),
		allowedBy("classes 'one or three' spares a node with two", denyThenAllow("*", "one or three"), two, 2),
		denied("classes 'not three' denies a node without three", denyThenAllow("*", "not three"), one),
		allowedBy("classes 'not three' spares a node with three", denyThenAllow("*", "not three"), three, 2),
		denied("classes '(one)'", denyThenAllow("*", "(one)"), one),
		denied("facts '(foo=bar)'", denyThenAllow("(foo=bar)", "*"), one),
		allowedBy("facts '(foo=bar)' spares foo=baz", denyThenAllow("(foo=bar)", "*"), oneTwo, 2),
		denied("facts '!foo=baz'", denyThenAllow("!foo=baz", "*"), one),
		allowedBy("facts '!foo=baz' spares foo=baz", denyThenAllow("!foo=baz", "*"), oneTwo, 2),

		// MCollective's own examples: facts "foo=bar and bar=foo" allows only
		// when both hold; classes "one and two or three" allows with one+two
		// or with three.
		allowedBy("facts and: both hold", lines(rule("allow", "foo=bar and bar=foo", "*")), one, 1),
		{name: "facts and: one fails", policy: lines(rule("allow", "foo=bar and bar=foo", "*")), caller: "cert=a", action: "x", node: three, reason: ReasonNoDefault},
		allowedBy("classes 'one and two or three' with one+two", lines(rule("allow", "*", "one and two or three")), oneTwo, 1),
		allowedBy("classes 'one and two or three' with three", lines(rule("allow", "*", "one and two or three")), three, 1),
		{name: "classes 'one and two or three' with one only", policy: lines(rule("allow", "*", "one and two or three")), caller: "cert=a", action: "x", node: one, reason: ReasonNoDefault},
		{name: "classes 'one and two or three' with two only", policy: lines(rule("allow", "*", "one and two or three")), caller: "cert=a", action: "x", node: two, reason: ReasonNoDefault},

		// Both columns compound: both must hold.
		allowedBy("both columns", lines(rule("allow", "foo=bar and not bar=baz", "one or two")), one, 1),
		{name: "both columns, facts fail", policy: lines(rule("allow", "foo=bar and not bar=baz", "one or two")), caller: "cert=a", action: "x", node: three, reason: ReasonNoDefault},

		// Lists keep their meaning: every item must hold.
		allowedBy("class list all present", lines(rule("allow", "*", "one two")), oneTwo, 1),
		{name: "class list one missing", policy: lines(rule("allow", "*", "one two")), caller: "cert=a", action: "x", node: one, reason: ReasonNoDefault},
	})
}

// TestCompoundColumnErrors checks that a column that cannot be evaluated
// makes the whole file invalid (so it denies) and names the field.
func TestCompoundColumnErrors(t *testing.T) {
	for _, tc := range []struct{ name, rule, want string }{
		{"unbalanced classes", "deny\tcert=a\t*\t*\tone or (three", "classes field: invalid compound expression"},
		{"dangling operator in facts", "deny\tcert=a\t*\tfoo=bar and\t*", "facts field: invalid compound expression"},
		{"fact in the classes list", "deny\tcert=a\t*\t*\tfoo=bar", "classes field: \"foo=bar\" is a fact comparison"},
		{"class in the facts list", "deny\tcert=a\t*\tweb\t*", "facts field: invalid fact comparison"},
		{"stray parenthesis word", "deny\tcert=a\t*\t*\t(one two", "classes field: invalid compound expression"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, errs := ParsePolicy("x.policy", strings.NewReader(lines(tc.rule, "allow\t*\t*\t*\t*")))
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), "x.policy:1: "+tc.want) {
				t.Fatalf("errors = %v, want one containing %q", errs, tc.want)
			}
			if d := p.Evaluate(t.Context(), "cert=a", "x", Groups{}, &filter.StaticNode{ClassNames: []string{"one"}}); d.Allowed {
				t.Fatalf("invalid file allowed: %+v", d)
			}
		})
	}
}
