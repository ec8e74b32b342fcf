// Package authz implements ActionPolicy authorization: per-agent policy files
// that allow or deny a caller an agent's actions, optionally only on nodes with
// certain facts and classes.
//
// File syntax (one statement per line):
//
//	policy default allow|deny
//	allow|deny<TAB>callers<TAB>actions<TAB>facts<TAB>classes
//	allow|deny<TAB>callers<TAB>actions<TAB>compound expression
//
// Fields are separated by one or more TABs; inside a field, spaces separate list
// items. "*" matches anything and must stand alone in its field. In the
// 5-field form the facts and the classes column are each either a list (every
// fact comparison must hold, every class be present) or, when a word is
// "and", "or", "not", starts with "!" or holds a parenthesis, a compound
// expression in the -S grammar ("one and two or three", "!foo=baz"), which
// is how MCollective's actionpolicy reads them; both columns must hold. A
// column that cannot be evaluated is a parse error of the file. A caller item
// containing "=" is an exact caller id (cert=alice); any other caller item
// names a group from the groups file. Rules are checked in order and the first
// match decides; otherwise the file's default decides, and without a default
// line the request is denied.
//
// Lexical decisions, chosen to fail closed:
//   - A line whose first non-blank character is '#' is a comment; a '#' after
//     whitespace inside a rule is an error (trailing comments are not allowed,
//     because silently turning them into list items could disable a deny rule).
//   - CRLF line endings are accepted: a trailing '\r' is stripped.
//   - Leading and trailing blanks (any Unicode white space) around a whole
//     line are ignored.
//   - Any line that does not parse makes the whole file invalid: every request
//     evaluated against it is denied.
package authz

import (
	"fmt"
	"io"
	"strings"

	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/match"
)

// LineError is one problem in a policy or groups file. Its message has the
// form "file:line: field field: reason" so lint output and logs point at the
// exact place to fix.
type LineError struct {
	File  string
	Line  int    // 1-based; 0 when the problem is not tied to a line (read failure)
	Field string // "callers", "actions", "facts", "classes", "compound", or "" for the whole line
	Msg   string
	Err   error // underlying cause, e.g. the filter parser's error; may be nil
}

// Error formats the problem as "file:line: [field field: ]reason[: cause]".
func (e *LineError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s:%d: ", e.File, e.Line)
	if e.Field != "" {
		b.WriteString(e.Field + " field: ")
	}
	b.WriteString(e.Msg)
	if e.Err != nil {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying cause.
func (e *LineError) Unwrap() error { return e.Err }

// Policy is a parsed policy file. It is immutable after ParsePolicy, so one
// value may be evaluated from many goroutines at once.
type Policy struct {
	name         string
	rules        []rule
	hasDefault   bool
	defaultAllow bool
	defaultLine  int
	defaultText  string
	groupRefs    []groupRef
	invalid      *LineError // first parse error; when set every request is denied
}

// rule is one allow/deny line. Empty condition fields mean "any".
type rule struct {
	allow     bool
	line      int
	text      string
	anyCaller bool
	callers   []string // exact caller ids
	groups    []string // group names
	anyAction bool
	actions   []string
	facts     []filter.FactFilter // 5-field form, list of comparisons (all must hold)
	classes   []classMatcher      // 5-field form, list of classes (all must be present)
	// factsExpr and classesExpr are a 5-field form column written as a
	// compound expression ("one and two or three", "not three", "(foo=bar)"),
	// as MCollective's actionpolicy evaluates such a column.
	factsExpr   *filter.Expr
	classesExpr *filter.Expr
	compound    *filter.Expr // 4-field form
}

// groupRef records the first line that names a group, so an unknown group can
// be reported where it is used.
type groupRef struct {
	name string
	line int
}

// classMatcher is an exact class name or a /regex/: the matcher shared with
// filters and allow lists, so that a policy's class means what -C means.
type classMatcher struct{ match.Pattern }

func (c classMatcher) match(have []string) bool { return c.MatchAny(have) }

// Name returns the file name the policy was parsed from.
func (p *Policy) Name() string { return p.name }

// HasDefault reports whether the file has a "policy default" line.
func (p *Policy) HasDefault() bool { return p.hasDefault }

// Err returns the first parse error, or nil when the policy is valid. An
// invalid policy denies every request.
func (p *Policy) Err() error {
	if p.invalid == nil {
		return nil
	}
	return p.invalid
}

// ParsePolicy parses a policy file. name is used in error messages and
// decisions. It returns every line error found (for lint); when there is at
// least one, the returned Policy is still non-nil but denies every request.
func ParsePolicy(name string, r io.Reader) (*Policy, []error) {
	p := &Policy{name: name}
	data, err := io.ReadAll(r)
	if err != nil {
		le := &LineError{File: name, Msg: "read failed", Err: err}
		p.invalid = le
		return p, []error{le}
	}
	var errs []error
	seenGroups := map[string]bool{}
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		// TrimSpace also strips the '\r' of CRLF files and any other blank
		// (\v, \f) that strings.Fields would treat as a separator.
		line := strings.TrimSpace(raw)
		if line == "" || line[0] == '#' {
			continue
		}
		var le *LineError
		switch strings.Fields(line)[0] {
		case "policy":
			le = p.parseDefault(n, line)
		case "allow", "deny":
			var ru rule
			ru, le = parseRule(n, line)
			if le == nil {
				p.rules = append(p.rules, ru)
				for _, g := range ru.groups {
					if !seenGroups[g] {
						seenGroups[g] = true
						p.groupRefs = append(p.groupRefs, groupRef{name: g, line: n})
					}
				}
			}
		default:
			le = &LineError{Line: n, Msg: fmt.Sprintf("unknown verb %q: want allow, deny or \"policy default\"", strings.Fields(line)[0])}
		}
		if le != nil {
			le.File = name
			errs = append(errs, le)
			if p.invalid == nil {
				p.invalid = le
			}
		}
	}
	return p, errs
}

// parseDefault handles "policy default allow|deny"; any whitespace separates
// its words because it is not a TAB-separated rule.
func (p *Policy) parseDefault(n int, line string) *LineError {
	w := strings.Fields(line)
	if len(w) != 3 || w[1] != "default" || (w[2] != "allow" && w[2] != "deny") {
		return &LineError{Line: n, Msg: `malformed default: want "policy default allow" or "policy default deny"`}
	}
	if p.hasDefault {
		return &LineError{Line: n, Msg: fmt.Sprintf("duplicate policy default (first at line %d)", p.defaultLine)}
	}
	p.hasDefault = true
	p.defaultAllow = w[2] == "allow"
	p.defaultLine = n
	p.defaultText = strings.Join(w, " ")
	return nil
}

// parseRule parses one allow/deny line that has already been trimmed.
func parseRule(n int, line string) (rule, *LineError) {
	ru := rule{line: n, text: line}
	fail := func(field, msg string, err error) (rule, *LineError) {
		return rule{}, &LineError{Line: n, Field: field, Msg: msg, Err: err}
	}
	if strings.Contains(line, " #") || strings.Contains(line, "\t#") {
		return fail("", "'#' after content: comments must be on their own line", nil)
	}
	fields := strings.FieldsFunc(line, func(r rune) bool { return r == '\t' })
	verb := strings.TrimSpace(fields[0])
	if verb != "allow" && verb != "deny" {
		// The first word was allow/deny, so spaces follow it where a TAB belongs.
		return fail("", "fields must be separated by TABs, found spaces after "+strings.Fields(verb)[0], nil)
	}
	ru.allow = verb == "allow"
	if len(fields) < 4 || len(fields) > 5 {
		msg := fmt.Sprintf("want 4 or 5 TAB-separated fields (verb, callers, actions, then compound or facts and classes), got %d", len(fields))
		if len(fields) < 4 {
			msg = "missing field: " + msg
			if strings.ContainsRune(line, ' ') {
				msg += " (spaces used instead of TABs?)"
			}
		} else {
			msg = "too many fields: " + msg
		}
		return fail("", msg, nil)
	}

	callers, le := listField("callers", fields[1])
	if le != nil {
		return fail(le.Field, le.Msg, nil)
	}
	if callers == nil {
		ru.anyCaller = true
	}
	for _, c := range callers {
		if k, v, ok := strings.Cut(c, "="); ok {
			if k == "" || v == "" {
				return fail("callers", fmt.Sprintf("caller id %q must look like cert=NAME", c), nil)
			}
			ru.callers = append(ru.callers, c)
		} else {
			ru.groups = append(ru.groups, c)
		}
	}

	actions, le := listField("actions", fields[2])
	if le != nil {
		return fail(le.Field, le.Msg, nil)
	}
	if actions == nil {
		ru.anyAction = true
	}
	for _, a := range actions {
		if !validName(a) {
			return fail("actions", fmt.Sprintf("invalid action name %q (letters, digits, '_' and '-' only)", a), nil)
		}
	}
	ru.actions = actions

	if len(fields) == 4 {
		expr := strings.TrimSpace(fields[3])
		if expr == "*" {
			return ru, nil
		}
		if expr == "" {
			return fail("compound", "empty field", nil)
		}
		e, err := filter.ParseCompound(expr)
		if err != nil {
			return fail("compound", "invalid expression", err)
		}
		ru.compound = e
		return ru, nil
	}

	if ru.factsExpr, ru.facts, le = parseFactsColumn(fields[3]); le != nil {
		return fail(le.Field, le.Msg, le.Err)
	}
	if ru.classesExpr, ru.classes, le = parseClassesColumn(fields[4]); le != nil {
		return fail(le.Field, le.Msg, le.Err)
	}
	return ru, nil
}

// isCompound reports whether a facts or classes column is a compound
// expression rather than a list. MCollective's actionpolicy treats a column as
// compound when a word starts with "!", is "not", "and" or "or", or holds a
// parenthesised part. We also count any word with a parenthesis: a list item
// such as "(one" can never be a class or fact name, and reading it as a
// literal would silently disable a deny rule — parsing it as an expression
// makes it either meaningful or a reported error (fail closed).
func isCompound(col string) bool {
	for _, w := range strings.Fields(col) {
		if w == "not" || w == "and" || w == "or" || strings.HasPrefix(w, "!") || strings.ContainsAny(w, "()") {
			return true
		}
	}
	return false
}

// parseColumnExpr parses a compound column with the -S grammar: its
// statements are fact comparisons (they contain an operator), class names
// or /regex/, and data functions — the same reading as MCollective's, where a
// statement is a fact when it has an operator and a class otherwise.
func parseColumnExpr(field, col string) (*filter.Expr, *LineError) {
	e, err := filter.ParseCompound(col)
	if err != nil {
		return nil, &LineError{Field: field, Msg: "invalid compound expression", Err: err}
	}
	return e, nil
}

// parseFactsColumn parses the facts column of a 5-field rule: "*", a compound
// expression, or a space-separated list of fact comparisons that must all
// hold. A list item that is not a comparison is an error (MCollective let it
// never match, which made a deny rule silently inert).
func parseFactsColumn(col string) (*filter.Expr, []filter.FactFilter, *LineError) {
	if isCompound(col) {
		e, le := parseColumnExpr("facts", col)
		return e, nil, le
	}
	items, le := listField("facts", col)
	if le != nil {
		return nil, nil, le
	}
	var out []filter.FactFilter
	for _, f := range items {
		ff, err := filter.ParseFact(f)
		if err != nil {
			return nil, nil, &LineError{Field: "facts", Msg: fmt.Sprintf("invalid fact comparison %q", f), Err: err}
		}
		out = append(out, ff)
	}
	return nil, out, nil
}

// parseClassesColumn parses the classes column of a 5-field rule: "*", a
// compound expression, or a space-separated list of class names and /regex/
// that must all be present. A list item with a comparison operator is an
// error: it is a fact written in the wrong column, and as a class name it
// could never match.
func parseClassesColumn(col string) (*filter.Expr, []classMatcher, *LineError) {
	if isCompound(col) {
		e, le := parseColumnExpr("classes", col)
		return e, nil, le
	}
	items, le := listField("classes", col)
	if le != nil {
		return nil, nil, le
	}
	var out []classMatcher
	for _, c := range items {
		p, err := match.Compile(c)
		if err != nil {
			return nil, nil, &LineError{Field: "classes", Msg: fmt.Sprintf("invalid class regex %q", c), Err: err}
		}
		if !p.IsRegex() && strings.ContainsAny(c, "=<>~") {
			return nil, nil, &LineError{Field: "classes", Msg: fmt.Sprintf("%q is a fact comparison, not a class: facts belong in the facts field", c)}
		}
		out = append(out, classMatcher{p})
	}
	return nil, out, nil
}

// listField splits a field into its space-separated items. It returns nil for
// the wildcard "*", which must then be the field's only item.
func listField(field, s string) ([]string, *LineError) {
	items := strings.Fields(s)
	if len(items) == 0 {
		return nil, &LineError{Field: field, Msg: "empty field"}
	}
	for _, it := range items {
		if it == "*" {
			if len(items) > 1 {
				return nil, &LineError{Field: field, Msg: `"*" must be the only item in its field`}
			}
			return nil, nil
		}
	}
	return items, nil
}

// validName reports whether s is a safe agent/action/policy name: it is used
// to build file paths, so it must not contain separators or dots.
// ValidName reports whether s may name an agent or action: letters, digits,
// '_' and '-'. Agent names become policy file names, so nothing else passes.
func ValidName(s string) bool { return validName(s) }

func validName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}
