package filter

import "strings"

// String prints the expression in canonical compound syntax: lower-case
// keywords, "==" for equality, spaces around operators, parentheses only
// where the tree has a nested and/or. ParseCompound(e.String()) yields an
// equal tree for every tree ParseCompound produced. (Values containing both
// quote characters cannot be written in the syntax; they only arise from
// hand-built trees.)
func (e *Expr) String() string {
	var b strings.Builder
	e.write(&b)
	return b.String()
}

func (e *Expr) write(b *strings.Builder) {
	if e == nil {
		b.WriteString("<missing>")
		return
	}
	switch e.Op {
	case OpAnd, OpOr:
		for i, a := range e.Args {
			if i > 0 {
				b.WriteString(" " + e.Op + " ")
			}
			a.writeOperand(b)
		}
	case OpNot:
		b.WriteString("not ")
		if len(e.Args) == 1 {
			e.Args[0].writeOperand(b)
		}
	case OpFact:
		if e.Fact == nil {
			b.WriteString("<missing fact>")
			return
		}
		b.WriteString(e.Fact.Fact)
		writeComparison(b, e.Fact.Operator, e.Fact.Value)
	case OpClass:
		if isRegexLiteral(e.Class) {
			b.WriteString("/" + escapeSlashes(e.Class[1:len(e.Class)-1]) + "/")
		} else {
			b.WriteString(e.Class)
		}
	case OpData:
		if e.Data == nil {
			b.WriteString("<missing data call>")
			return
		}
		d := e.Data
		b.WriteString(d.Plugin + "(" + quote(d.Query) + ")")
		if d.Field != "" {
			b.WriteString("." + d.Field)
		}
		if d.Operator != "" {
			writeComparison(b, d.Operator, d.Value)
		}
	default:
		b.WriteString("<unknown " + e.Op + ">")
	}
}

// writeOperand parenthesises nested and/or so the printed form keeps the
// tree's shape.
func (e *Expr) writeOperand(b *strings.Builder) {
	if e != nil && (e.Op == OpAnd || e.Op == OpOr) {
		b.WriteString("(")
		e.write(b)
		b.WriteString(")")
		return
	}
	e.write(b)
}

func writeComparison(b *strings.Builder, op, value string) {
	op = normalizeOperator(op)
	b.WriteString(" " + op + " ")
	switch {
	case op == "=~" && value != "" && !hasBareSlash(value):
		b.WriteString("/" + value + "/")
	case op != "=~" && isBareWord(value):
		b.WriteString(value)
	default:
		b.WriteString(quote(value))
	}
}

// isBareWord reports whether s lexes back as a single plain word.
func isBareWord(s string) bool {
	if s == "" || s[0] == '/' || s == "and" || s == "or" || s == "not" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if isDelim(s[i]) {
			return false
		}
	}
	return true
}

// hasBareSlash reports an unescaped "/" (which would end a /regex/ literal)
// or a trailing lone backslash.
func hasBareSlash(src string) bool {
	for i := 0; i < len(src); i++ {
		switch src[i] {
		case '\\':
			i++
			if i == len(src) {
				return true
			}
		case '/':
			return true
		}
	}
	return false
}

// escapeSlashes makes a regex source printable between slashes.
func escapeSlashes(src string) string {
	var b strings.Builder
	for i := 0; i < len(src); i++ {
		switch {
		case src[i] == '\\' && i+1 < len(src):
			b.WriteString(src[i : i+2])
			i++
		case src[i] == '/':
			b.WriteString(`\/`)
		default:
			b.WriteByte(src[i])
		}
	}
	return b.String()
}

func quote(s string) string {
	if strings.Contains(s, "'") && !strings.Contains(s, `"`) {
		return `"` + s + `"`
	}
	return "'" + s + "'"
}
