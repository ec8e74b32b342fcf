package filter

import (
	"errors"
	"fmt"
	"strings"
)

// ParseCombined parses a -W combined filter: space-separated tokens, each a
// fact comparison when it contains =, < or > (so also !=), else a class name
// or /class regex/.
func ParseCombined(s string) (facts []FactFilter, classes []string, err error) {
	tokens := strings.Fields(s)
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
