package filter

import (
	"fmt"
	"regexp"
)

// pattern is an -I/-C/-A value compiled once: exact text, or a regular
// expression when written as /regex/.
type pattern struct {
	exact string
	re    *regexp.Regexp
}

// isRegexLiteral reports whether s is written as /regex/.
func isRegexLiteral(s string) bool {
	return len(s) >= 2 && s[0] == '/' && s[len(s)-1] == '/'
}

func compilePattern(s string) (pattern, error) {
	if s == "" {
		return pattern{}, fmt.Errorf("empty value")
	}
	if !isRegexLiteral(s) {
		return pattern{exact: s}, nil
	}
	re, err := compileRegex(s[1 : len(s)-1])
	if err != nil {
		return pattern{}, err
	}
	return pattern{re: re}, nil
}

func (p pattern) match(s string) bool {
	if p.re != nil {
		return p.re.MatchString(s)
	}
	return p.exact == s
}

func (p pattern) matchAny(have []string) bool {
	for _, h := range have {
		if p.match(h) {
			return true
		}
	}
	return false
}

// compileRegex rejects the empty regex because it matches everything, which
// is never what a filter author meant.
func compileRegex(src string) (*regexp.Regexp, error) {
	if src == "" {
		return nil, fmt.Errorf("empty regex")
	}
	re, err := regexp.Compile(src)
	if err != nil {
		return nil, fmt.Errorf("invalid regex /%s/: %w", src, err)
	}
	return re, nil
}

// ValidatePattern checks an -I, -C or -A value: exact text or a /regex/ that
// compiles. Client-side flag parsing uses it so a bad regex is reported
// instead of silently matching no node.
func ValidatePattern(s string) error {
	if _, err := compilePattern(s); err != nil {
		return fmt.Errorf("pattern %q: %w", s, err)
	}
	return nil
}
