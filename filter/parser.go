package filter

import (
	"errors"
	"regexp"
	"strings"
)

// maxDepth bounds nesting of parentheses and "not" so hostile input gets an
// error instead of deep recursion.
const maxDepth = 100

// ParseCompound parses a -S compound expression such as
//
//	os.family=Debian and (apache or /^nginx/) and not fstat('/etc/nologin')
//
// Grammar ("and" binds tighter than "or"; keywords are lower case):
//
//	expr      = and { "or" and }
//	and       = unary { "and" unary }
//	unary     = ( "not" | "!" ) unary | primary
//	primary   = "(" expr ")" | statement
//	statement = /class regex/
//	          | name "(" quoted ")" [ "." field ] [ op value ]   data function
//	          | fact op value                                     fact comparison
//	          | class                                             class name
//	value     = word | 'quoted' | "quoted" | /regex/
//
// Operators are those of -F. A quoted value is always literal text; an
// unquoted /regex/ value (with =, == or =~) is a regex; with =~ any value is
// regex source. Errors are *SyntaxError values naming the column and token.
func ParseCompound(s string) (*Expr, error) {
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	if toks[0].kind == tokEOF {
		return nil, errors.New("compound filter: empty expression")
	}
	p := &parser{src: s, toks: toks}
	e, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	switch t := p.peek(); t.kind {
	case tokEOF:
	case tokRParen:
		return nil, p.errorAt(t, `unbalanced ")"`, nil)
	default:
		return nil, p.unexpected(t, `"and" or "or"`)
	}
	if err := e.Validate(); err != nil {
		return nil, err // unreachable for parser output; kept as a safety net
	}
	return e, nil
}

type parser struct {
	src   string
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() token { return p.toks[p.i] }

func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

func (p *parser) errorAt(t token, msg string, err error) *SyntaxError {
	return &SyntaxError{Column: column(p.src, t.pos), Msg: msg, Err: err}
}

// unexpected reports t; want, when set, says what would have been valid.
func (p *parser) unexpected(t token, want string) *SyntaxError {
	err := p.errorAt(t, "unexpected "+describe(p.src, t), nil)
	err.Expected = want
	return err
}

func (p *parser) parseOr() (*Expr, error) {
	return p.parseChain(tokOr, OpOr, p.parseAnd)
}

func (p *parser) parseAnd() (*Expr, error) {
	return p.parseChain(tokAnd, OpAnd, p.parseUnary)
}

// parseChain parses operand { sep operand } into one n-ary node, so
// "a and b and c" is a single "and" with three operands.
func (p *parser) parseChain(sep tokenKind, op string, operand func() (*Expr, error)) (*Expr, error) {
	first, err := operand()
	if err != nil {
		return nil, err
	}
	args := []*Expr{first}
	for p.peek().kind == sep {
		p.next()
		x, err := operand()
		if err != nil {
			return nil, err
		}
		args = append(args, x)
	}
	if len(args) == 1 {
		return first, nil
	}
	return &Expr{Op: op, Args: args}, nil
}

func (p *parser) parseUnary() (*Expr, error) {
	t := p.peek()
	if t.kind != tokNot {
		return p.parsePrimary()
	}
	p.next()
	if err := p.enter(t); err != nil {
		return nil, err
	}
	x, err := p.parseUnary()
	p.depth--
	if err != nil {
		return nil, err
	}
	return &Expr{Op: OpNot, Args: []*Expr{x}}, nil
}

func (p *parser) enter(t token) error {
	p.depth++
	if p.depth > maxDepth {
		return p.errorAt(t, "expression nested too deeply", nil)
	}
	return nil
}

func (p *parser) parsePrimary() (*Expr, error) {
	t := p.peek()
	switch t.kind {
	case tokLParen:
		p.next()
		if err := p.enter(t); err != nil {
			return nil, err
		}
		x, err := p.parseOr()
		p.depth--
		if err != nil {
			return nil, err
		}
		switch c := p.next(); c.kind {
		case tokRParen:
			return x, nil
		case tokEOF:
			return nil, p.errorAt(t, `unclosed "("`, nil)
		default:
			return nil, p.unexpected(c, `"and", "or" or ")"`)
		}
	case tokRegex:
		p.next()
		if err := p.checkRegex(t, t.text); err != nil {
			return nil, err
		}
		return &Expr{Op: OpClass, Class: "/" + t.text + "/"}, nil
	case tokWord:
		return p.parseStatement()
	case tokRParen:
		return nil, p.errorAt(t, `unbalanced ")"`, nil)
	}
	return nil, p.unexpected(t, "a statement")
}

func (p *parser) parseStatement() (*Expr, error) {
	w := p.next()
	switch p.peek().kind {
	case tokLParen:
		return p.parseCall(w)
	case tokOp:
		if err := checkFactName(w.text); err != nil {
			return nil, p.errorAt(w, err.Error(), nil)
		}
		op, value, err := p.parseComparison()
		if err != nil {
			return nil, err
		}
		return &Expr{Op: OpFact, Fact: &FactFilter{Fact: w.text, Operator: op, Value: value}}, nil
	}
	return &Expr{Op: OpClass, Class: w.text}, nil
}

// argumentless reports whether a data plugin describes the node as a whole
// and takes no query, as MCollective's documented puppet().enabled=false:
// only those may be called with empty parentheses; for every other plugin
// "name()" stays an error, since a forgotten argument is a mistake there.
func argumentless(name string) bool {
	switch name {
	case "puppet", "chef":
		return true
	}
	return false
}

// parseCall parses name('query')[.field][ op value] after the name.
func (p *parser) parseCall(name token) (*Expr, error) {
	if !isIdentifier(name.text) {
		return nil, p.errorAt(name, "bad data function name "+describe(p.src, name), nil)
	}
	p.next() // (
	arg := p.next()
	if arg.kind == tokRParen && argumentless(name.text) {
		// puppet(): the query is the empty string; the ")" is consumed.
		p.i--
		arg = token{kind: tokString, pos: arg.pos, end: arg.pos}
	}
	if arg.kind != tokString {
		err := p.unexpected(arg, "a quoted argument such as "+name.text+"('...')")
		err.Msg = "unquoted data function argument: " + err.Msg
		if arg.kind == tokRParen {
			err.Msg = "missing data function argument"
		}
		return nil, err
	}
	if c := p.next(); c.kind != tokRParen {
		return nil, p.unexpected(c, `")"`)
	}
	d := &DataCall{Plugin: name.text, Query: arg.text}
	// A field must follow ")" directly: "f('x') .size" is not a field access.
	if t := p.peek(); t.kind == tokWord && t.pos == p.toks[p.i-1].end && strings.HasPrefix(t.text, ".") {
		p.next()
		d.Field = t.text[1:]
		if !validField(d.Field) {
			return nil, p.errorAt(t, "bad data field "+describe(p.src, t), nil)
		}
	}
	if p.peek().kind == tokOp {
		op, value, err := p.parseComparison()
		if err != nil {
			return nil, err
		}
		d.Operator, d.Value = op, value
	}
	return &Expr{Op: OpData, Data: d}, nil
}

// parseComparison parses "op value" and returns the normalised operator and
// the value (regex source for =~).
func (p *parser) parseComparison() (string, string, error) {
	opTok := p.next()
	op := normalizeOperator(opTok.text)
	v := p.next()
	value := v.text
	switch v.kind {
	case tokWord, tokString:
	case tokRegex:
		if op != "==" && op != "=~" {
			return "", "", p.errorAt(v, "regex value "+describe(p.src, v)+" needs =, == or =~, not "+describe(p.src, opTok), nil)
		}
		op = "=~"
	default:
		return "", "", p.unexpected(v, "a value after "+describe(p.src, opTok))
	}
	if op == "=~" {
		if err := p.checkRegex(v, value); err != nil {
			return "", "", err
		}
	}
	return op, value, nil
}

// checkRegex compiles src, the regex written as token t.
func (p *parser) checkRegex(t token, src string) error {
	if src == "" {
		return p.errorAt(t, "empty regex "+describe(p.src, t), nil)
	}
	if _, err := regexp.Compile(src); err != nil {
		return p.errorAt(t, "bad regex "+describe(p.src, t), err)
	}
	return nil
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && isDigit(c) {
			continue
		}
		return false
	}
	return true
}

// validField accepts a dotted path of non-empty segments (fields of nested
// plugin results are reached like nested facts).
func validField(f string) bool {
	for _, seg := range strings.Split(f, ".") {
		if seg == "" {
			return false
		}
	}
	return true
}
