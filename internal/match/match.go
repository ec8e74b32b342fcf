// Package match is the one exact-or-/regex/ matcher of Marionette. Filters
// (-I, -C, -A), authorization policy classes, the certname allow list, the
// privileged list, broker collectors and audit readers all accept a value
// written either as exact text or as /regex/; they must agree on what such a
// value means, and none of them may silently degenerate to "everything".
// So an empty value and the empty regex // are errors here, for everyone.
package match

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// ErrEmptyRegex is returned for //: a regex that matches every name is never
// what the author of an allow list or a filter meant.
var ErrEmptyRegex = errors.New("empty regex")

// IsRegex reports whether s is written as /regex/, optionally followed by
// the flags i, m or s (/web/i is case-insensitive).
func IsRegex(s string) bool {
	_, _, ok := splitRegex(s)
	return ok
}

// splitRegex splits /body/flags. Flags are those of Go's (?flags) syntax
// that MCollective users write after a regex: i (case-insensitive),
// m (multi-line) and s (. matches newline).
func splitRegex(s string) (body, flags string, ok bool) {
	if len(s) < 2 || s[0] != '/' {
		return "", "", false
	}
	end := strings.LastIndexByte(s, '/')
	if end == 0 {
		return "", "", false
	}
	flags = s[end+1:]
	if strings.Trim(flags, "ims") != "" {
		return "", "", false
	}
	return s[1:end], flags, true
}

// RegexSource returns the Go regular expression for a /regex/flags value
// (flags become a (?flags) prefix), and whether s is written as one.
func RegexSource(s string) (string, bool) {
	body, flags, ok := splitRegex(s)
	if !ok {
		return "", false
	}
	if flags != "" && body != "" {
		body = "(?" + flags + ")" + body
	}
	return body, true
}

// Pattern is one compiled exact-or-/regex/ value.
type Pattern struct {
	src   string
	exact string
	re    *regexp.Regexp
}

// Compile parses one value: /regex/ compiles as a regular expression (the
// empty one is refused), anything else matches exactly. An empty value is
// refused too.
func Compile(s string) (Pattern, error) {
	if s == "" {
		return Pattern{}, errors.New("empty value")
	}
	src, ok := RegexSource(s)
	if !ok {
		return Pattern{src: s, exact: s}, nil
	}
	re, err := Regex(src)
	if err != nil {
		return Pattern{}, err
	}
	return Pattern{src: s, re: re}, nil
}

// Regex compiles the body of a /regex/ (without the slashes), refusing the
// empty one.
func Regex(src string) (*regexp.Regexp, error) {
	if src == "" {
		return nil, ErrEmptyRegex
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("invalid regex /%s/: %w", src, err)
	}
	return re, nil
}

// String is the value as written.
func (p Pattern) String() string { return p.src }

// IsRegex reports whether the pattern is a regular expression.
func (p Pattern) IsRegex() bool { return p.re != nil }

// Match reports whether s matches. The zero Pattern matches nothing.
func (p Pattern) Match(s string) bool {
	if p.re != nil {
		return p.re.MatchString(s)
	}
	return p.exact != "" && p.exact == s
}

// MatchAny reports whether any of have matches.
func (p Pattern) MatchAny(have []string) bool {
	for _, h := range have {
		if p.Match(h) {
			return true
		}
	}
	return false
}

// List is a set of patterns; a name is on the list when any pattern matches
// it. A nil or empty List matches nothing.
type List struct {
	patterns []Pattern
}

// ParseList parses a comma-separated list such as
// "bob, jill, /\.mcollective$/". Empty items between commas are skipped, but
// every item present must be a valid pattern (// is an error).
func ParseList(list string) (*List, error) {
	l := &List{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := Compile(item)
		if err != nil {
			return nil, fmt.Errorf("pattern %s: %w", item, err)
		}
		l.patterns = append(l.patterns, p)
	}
	return l, nil
}

// CompileAll compiles each value as a pattern (for flags given repeatedly).
func CompileAll(values []string) (*List, error) {
	l := &List{}
	for _, v := range values {
		p, err := Compile(v)
		if err != nil {
			return nil, fmt.Errorf("pattern %q: %w", v, err)
		}
		l.patterns = append(l.patterns, p)
	}
	return l, nil
}

// Match reports whether name is on the list.
func (l *List) Match(name string) bool {
	if l == nil {
		return false
	}
	for _, p := range l.patterns {
		if p.Match(name) {
			return true
		}
	}
	return false
}

// Len is the number of patterns.
func (l *List) Len() int {
	if l == nil {
		return 0
	}
	return len(l.patterns)
}
