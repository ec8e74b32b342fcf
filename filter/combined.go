package filter

import (
	"errors"
	"fmt"
	"strings"
)

// ParseCombined parses a -W combined filter: space-separated tokens, each a
// fact comparison when it contains =, < or > (so also !=), else a class name
// or /class regex/. Single or double quotes keep spaces inside a token and
// are removed: -W 'role="web server"' is the fact role == web server.
func ParseCombined(s string) (facts []FactFilter, classes []string, err error) {
	tokens, err := splitQuoted(s)
	if err != nil {
		return nil, nil, fmt.Errorf("combined filter: %w", err)
	}
	if len(tokens) == 0 {
		return nil, nil, errors.New("combined filter: empty")
	}
	for _, tok := range tokens {
		if !isRegexLiteral(tok) && strings.ContainsAny(tok, "=<>") {
			ff, err := ParseFact(tok)
			if err != nil {
				return nil, nil, fmt.Errorf("combined filter: %w", err)
			}
			facts = append(facts, ff)
			continue
		}
		if err := ValidatePattern(tok); err != nil {
			return nil, nil, fmt.Errorf("combined filter: class %w", err)
		}
		classes = append(classes, tok)
	}
	return facts, classes, nil
}

// splitQuoted splits s at unquoted spaces; quotes group and are removed. An
// unterminated quote is an error rather than a silently split value.
func splitQuoted(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	inToken := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '"' || r == '\'':
			quote, inToken = r, true
		case r == ' ' || r == '\t' || r == '\n':
			if inToken {
				out = append(out, cur.String())
				cur.Reset()
				inToken = false
			}
		default:
			cur.WriteRune(r)
			inToken = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("unterminated %c quote in %q", quote, s)
	}
	if inToken {
		out = append(out, cur.String())
	}
	return out, nil
}
