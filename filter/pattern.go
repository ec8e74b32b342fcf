package filter

import (
	"fmt"
	"regexp"

	"github.com/marionette/mco/internal/match"
)

// pattern is an -I/-C/-A value compiled once: exact text, or a regular
// expression when written as /regex/. It is the matcher every exact-or-regex
// list of Marionette shares (allow lists, policy classes), so that they all
// agree on what a value means and all refuse the empty regex.
type pattern = match.Pattern

// isRegexLiteral reports whether s is written as /regex/.
func isRegexLiteral(s string) bool { return match.IsRegex(s) }

func compilePattern(s string) (pattern, error) { return match.Compile(s) }

// compileRegex rejects the empty regex because it matches everything, which
// is never what a filter author meant.
func compileRegex(src string) (*regexp.Regexp, error) { return match.Regex(src) }

// ValidatePattern checks an -I, -C or -A value: exact text or a /regex/ that
// compiles. Client-side flag parsing uses it so a bad regex is reported
// instead of silently matching no node.
func ValidatePattern(s string) error {
	if _, err := compilePattern(s); err != nil {
		return fmt.Errorf("pattern %q: %w", s, err)
	}
	return nil
}
