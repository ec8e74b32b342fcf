package filter

import (
	"fmt"
	"strconv"
	"unicode/utf8"
)

// tokenKind classifies compound filter tokens.
type tokenKind int

const (
	tokEOF    tokenKind = iota
	tokWord             // fact name, class name, function name, bare value, .field
	tokString           // 'quoted' or "quoted" value; text is unquoted
	tokRegex            // /regex/; text is the source between the slashes
	tokOp               // comparison operator, as typed
	tokLParen           // (
	tokRParen           // )
	tokAnd              // and
	tokOr               // or
	tokNot              // not, !
)

// token is one lexeme; pos and end are byte offsets into the source.
type token struct {
	kind tokenKind
	text string
	pos  int
	end  int
}

// SyntaxError is a compound filter parse error at a 1-based column (in
// characters, not bytes) of the input.
type SyntaxError struct {
	Column   int
	Msg      string // e.g. `unexpected "and"`
	Expected string // what would have been valid, may be empty
	Err      error  // underlying cause such as a regexp error, may be nil
}

// Error renders e.g. `compound filter: unexpected "and" at column 12`.
func (e *SyntaxError) Error() string {
	s := fmt.Sprintf("compound filter: %s at column %d", e.Msg, e.Column)
	if e.Expected != "" {
		s += ", expected " + e.Expected
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying cause.
func (e *SyntaxError) Unwrap() error { return e.Err }

// column converts a byte offset to a 1-based character column.
func column(src string, pos int) int {
	return utf8.RuneCountInString(src[:pos]) + 1
}

// describe names a token for error messages, as the user typed it.
func describe(src string, t token) string {
	if t.kind == tokEOF {
		return "end of input"
	}
	return strconv.Quote(src[t.pos:t.end])
}

func isSpace(b byte) bool {
	switch b {
	case ' ', '\t', '\n', '\r', '\v', '\f':
		return true
	}
	return false
}

// isDelim reports bytes that end a bare word. A slash only starts a regex at
// the beginning of a token, so words such as "a/b" stay whole.
func isDelim(b byte) bool {
	switch b {
	case '(', ')', '\'', '"', '=', '!', '<', '>':
		return true
	}
	return isSpace(b)
}

// lex splits a compound filter into tokens, always ending with tokEOF.
func lex(src string) ([]token, error) {
	// Filters travel as JSON, which would silently replace invalid UTF-8.
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		if r == utf8.RuneError && size == 1 {
			return nil, &SyntaxError{Column: column(src, i), Msg: "invalid UTF-8"}
		}
		i += size
	}
	var toks []token
	i := 0
	for i < len(src) {
		c := src[i]
		start := i
		switch {
		case isSpace(c):
			i++
			continue
		case c == '(':
			i++
			toks = append(toks, token{kind: tokLParen, text: "(", pos: start, end: i})
		case c == ')':
			i++
			toks = append(toks, token{kind: tokRParen, text: ")", pos: start, end: i})
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(src) && src[j] != c {
				j++
			}
			if j == len(src) {
				return nil, &SyntaxError{Column: column(src, start), Msg: "unterminated string " + strconv.Quote(src[start:])}
			}
			i = j + 1
			toks = append(toks, token{kind: tokString, text: src[start+1 : j], pos: start, end: i})
		case c == '/':
			j := i + 1
			for j < len(src) && src[j] != '/' {
				if src[j] == '\\' {
					j++ // an escaped character (notably \/) never ends the regex
				}
				j++
			}
			if j >= len(src) {
				return nil, &SyntaxError{Column: column(src, start), Msg: "unterminated regex " + strconv.Quote(src[start:])}
			}
			i = j + 1
			toks = append(toks, token{kind: tokRegex, text: src[start+1 : j], pos: start, end: i})
		case c == '!' && operatorAt(src, i) == "":
			i++
			toks = append(toks, token{kind: tokNot, text: "!", pos: start, end: i})
		case c == '=' || c == '!' || c == '<' || c == '>':
			op := operatorAt(src, i)
			i += len(op)
			toks = append(toks, token{kind: tokOp, text: op, pos: start, end: i})
		default:
			for i < len(src) && !isDelim(src[i]) {
				i++
			}
			w := src[start:i]
			kind := tokWord
			switch w {
			case "and":
				kind = tokAnd
			case "or":
				kind = tokOr
			case "not":
				kind = tokNot
			}
			toks = append(toks, token{kind: kind, text: w, pos: start, end: i})
		}
	}
	return append(toks, token{kind: tokEOF, pos: len(src), end: len(src)}), nil
}
