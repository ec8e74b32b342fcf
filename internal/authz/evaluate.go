package authz

import (
	"context"
	"fmt"
	"slices"

	"github.com/marionette/mco/filter"
)

// Reasons used in decisions. They are stable strings so that audit logs and
// `mco policy check` output can be grepped.
const (
	ReasonMatchedRule   = "matched rule"
	ReasonPolicyDefault = "policy default"
	ReasonNoDefault     = "no rule matched and no policy default"
	// ReasonDataError prefixes a deny caused by a data function that failed
	// while a rule was evaluated: the rule's outcome is unknown, so the
	// request is refused rather than passed on to later rules.
	ReasonDataError = "data plugin failed"
)

// Decision is the outcome of authorizing one request, with enough detail to
// say which line decided.
type Decision struct {
	Allowed bool
	File    string // policy file that decided; "" when no file was involved
	Line    int    // deciding line; 0 when no line decided (no default line, no file)
	Rule    string // the deciding line's text (rule or "policy default ...")
	Reason  string
	// Default is true when no rule matched and the decision fell through to a
	// default (the file's default line, a configured override, or deny).
	Default bool
}

// String renders the decision for logs and the CLI, e.g.
// `allow (/etc/mco/policy/package.policy:3: matched rule)`.
func (d Decision) String() string {
	verdict := "deny"
	if d.Allowed {
		verdict = "allow"
	}
	switch {
	case d.File != "" && d.Line > 0:
		return fmt.Sprintf("%s (%s:%d: %s)", verdict, d.File, d.Line, d.Reason)
	case d.File != "":
		return fmt.Sprintf("%s (%s: %s)", verdict, d.File, d.Reason)
	default:
		return fmt.Sprintf("%s (%s)", verdict, d.Reason)
	}
}

// Evaluate decides whether caller may run action. groups resolves group names
// used in the callers field; node supplies facts and classes and may be nil, in
// which case rules with fact, class or compound conditions never match. ctx
// is passed to the node's Data for the data calls of compound conditions (on
// a node, the request's data budget): a call it cuts short fails the rule as
// any failed data call does.
//
// An invalid policy, or one naming a group that groups does not define, denies
// every request: a typo must never widen or narrow access silently.
func (p *Policy) Evaluate(ctx context.Context, caller, action string, groups Groups, node filter.Node) Decision {
	if p == nil {
		return Decision{Reason: "no policy"}
	}
	if p.invalid != nil {
		return Decision{File: p.name, Line: p.invalid.Line, Reason: "policy file invalid: " + p.invalid.Error()}
	}
	for _, g := range p.groupRefs {
		if !groups.Has(g.name) {
			le := &LineError{File: p.name, Line: g.line, Field: "callers", Msg: fmt.Sprintf("unknown group %q", g.name)}
			return Decision{File: p.name, Line: g.line, Reason: "policy file invalid: " + le.Error()}
		}
	}
	for i := range p.rules {
		r := &p.rules[i]
		ok, err := r.matches(ctx, caller, action, groups, node)
		if err != nil {
			return Decision{File: p.name, Line: r.line, Rule: r.text, Reason: ReasonDataError + ": " + err.Error()}
		}
		if ok {
			return Decision{Allowed: r.allow, File: p.name, Line: r.line, Rule: r.text, Reason: ReasonMatchedRule}
		}
	}
	if p.hasDefault {
		return Decision{Allowed: p.defaultAllow, File: p.name, Line: p.defaultLine, Rule: p.defaultText, Reason: ReasonPolicyDefault, Default: true}
	}
	return Decision{File: p.name, Reason: ReasonNoDefault, Default: true}
}

// matches checks the cheap string fields first so node lookups (facts, data
// plugins) only run for rules that concern this caller and action. The error
// is set when a data function the rule needed failed.
func (r *rule) matches(ctx context.Context, caller, action string, groups Groups, node filter.Node) (bool, error) {
	if !r.anyCaller && !slices.Contains(r.callers, caller) && !inAnyGroup(r.groups, caller, groups) {
		return false, nil
	}
	if !r.anyAction && !slices.Contains(r.actions, action) {
		return false, nil
	}
	if len(r.facts) == 0 && len(r.classes) == 0 && r.compound == nil && r.factsExpr == nil && r.classesExpr == nil {
		return true, nil
	}
	if node == nil {
		return false, nil
	}
	for _, f := range r.facts {
		if !f.Match(node) {
			return false, nil
		}
	}
	if len(r.classes) > 0 {
		have := node.Classes()
		for _, c := range r.classes {
			if !c.match(have) {
				return false, nil
			}
		}
	}
	// Both columns must hold, as in MCollective (facts and classes).
	for _, e := range []*filter.Expr{r.factsExpr, r.classesExpr, r.compound} {
		if e == nil {
			continue
		}
		if ok, err := e.EvalErr(ctx, node); err != nil || !ok {
			return false, err
		}
	}
	return true, nil
}

func inAnyGroup(names []string, caller string, groups Groups) bool {
	for _, g := range names {
		if groups.Contains(g, caller) {
			return true
		}
	}
	return false
}
