package filter

import (
	"encoding/json"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/marionette/mco/internal/match"
)

// FactFilter is one fact comparison, e.g. {os.family == Debian}.
//
// Operator is one of == != < > <= >= =~ (the parsers normalise = to ==,
// => to >= and =< to <=, and fact=/re/ to =~ with the slashes removed).
// For =~ the Value is the regex source; for every other operator it is
// literal text, so == with a Value of "/x/" compares against "/x/".
type FactFilter struct {
	Fact     string `json:"fact"`
	Operator string `json:"operator"`
	Value    string `json:"value"`
}

// operatorHelp lists the accepted operators for error messages.
const operatorHelp = "one of == = != < > <= >= =~"

// ParseFact parses a -F fact filter such as "os.family=Debian",
// "cpus >= 4" or "kernel=/^Linux/".
func ParseFact(s string) (FactFilter, error) {
	if !utf8.ValidString(s) {
		// Filters travel as JSON, which would silently replace invalid UTF-8.
		return FactFilter{}, fmt.Errorf("fact filter %q: invalid UTF-8", s)
	}
	i := strings.IndexAny(s, "=!<>")
	if i < 0 {
		return FactFilter{}, fmt.Errorf("fact filter %q: no comparison operator (want %s)", s, operatorHelp)
	}
	op := operatorAt(s, i)
	if op == "" {
		return FactFilter{}, fmt.Errorf("fact filter %q: %q is not an operator (want %s)", s, s[i:i+1], operatorHelp)
	}
	name := strings.TrimSpace(s[:i])
	value := strings.TrimSpace(s[i+len(op):])
	switch {
	case name == "":
		return FactFilter{}, fmt.Errorf("fact filter %q: empty fact name", s)
	case strings.ContainsAny(name, " \t"):
		return FactFilter{}, fmt.Errorf("fact filter %q: fact name %q contains a space", s, name)
	case value == "":
		return FactFilter{}, fmt.Errorf("fact filter %q: missing value after %q", s, op)
	}
	if err := checkFactName(name); err != nil {
		return FactFilter{}, fmt.Errorf("fact filter %q: %w", s, err)
	}
	ff := FactFilter{Fact: name, Operator: normalizeOperator(op), Value: value}
	if src, ok := match.RegexSource(value); ok && (ff.Operator == "==" || ff.Operator == "=~") {
		ff.Operator, ff.Value = "=~", src
	}
	if _, err := newComparator(ff.Operator, ff.Value); err != nil {
		return FactFilter{}, fmt.Errorf("fact filter %q: %w", s, err)
	}
	return ff, nil
}

// checkFactName refuses fact names that can never name a fact, so that the
// filter is an error instead of silently matching no node: an empty path
// segment (os..family) or a data function call (which needs -S).
func checkFactName(name string) error {
	if strings.ContainsAny(name, "()'\"") {
		return fmt.Errorf("%q is not a fact name: data functions such as fstat('/etc/hosts').size>0 go in a compound filter (-S)", name)
	}
	for _, seg := range strings.Split(name, ".") {
		if seg == "" {
			return fmt.Errorf("fact name %q has an empty path segment", name)
		}
	}
	return nil
}

// Match reports whether the node's fact satisfies the comparison. A missing
// fact never matches, whatever the operator. It compiles the comparison on
// every call; Filter.Match and Expr.Eval compile once and should be preferred
// for repeated evaluation.
func (ff FactFilter) Match(n Node) bool {
	c, err := newComparator(ff.Operator, ff.Value)
	if err != nil || ff.Fact == "" {
		return false
	}
	v, ok := n.Fact(ff.Fact)
	return ok && c.match(v)
}

// String renders the comparison as "fact op value" (regexes as /re/).
func (ff FactFilter) String() string {
	if ff.Operator == "=~" {
		return ff.Fact + " =~ /" + ff.Value + "/"
	}
	return ff.Fact + " " + ff.Operator + " " + ff.Value
}

// operatorAt returns the longest comparison operator starting at s[i], or "".
func operatorAt(s string, i int) string {
	if i+1 < len(s) {
		switch two := s[i : i+2]; two {
		case "==", "=~", "=>", "=<", "!=", "<=", ">=":
			return two
		}
	}
	switch s[i] {
	case '=', '<', '>':
		return s[i : i+1]
	}
	return ""
}

// normalizeOperator maps the aliases onto the canonical operator set.
func normalizeOperator(op string) string {
	switch op {
	case "=":
		return "=="
	case "=>":
		return ">="
	case "=<":
		return "<="
	}
	return op
}

// comparator is the compiled right-hand side of a comparison (op value),
// shared by -F facts, compound fact statements and data function results.
type comparator struct {
	op    string
	value string
	num   number
	isNum bool
	re    *regexp.Regexp
}

func newComparator(op, value string) (*comparator, error) {
	c := &comparator{op: normalizeOperator(op), value: value}
	switch c.op {
	case "=~":
		re, err := compileRegex(value)
		if err != nil {
			return nil, err
		}
		c.re = re
	case "==", "!=", "<", ">", "<=", ">=":
		c.num, c.isNum = parseNumber(value)
	default:
		return nil, fmt.Errorf("unknown operator %q (want %s)", op, operatorHelp)
	}
	return c, nil
}

// match compares a fact or data value. Lists match when any element does;
// maps and nil never match.
func (c *comparator) match(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case []any:
		for _, e := range v {
			if c.match(e) {
				return true
			}
		}
		return false
	case []string:
		for _, e := range v {
			if c.match(e) {
				return true
			}
		}
		return false
	}
	if b, ok := c.boolEquality(v); ok {
		return b
	}
	if c.isNum && c.op != "=~" {
		if n, ok := numberOf(v); ok {
			return holds(c.op, compareNumbers(n, c.num))
		}
	}
	s, ok := scalarString(v)
	if !ok {
		return false
	}
	return c.matchString(s)
}

// boolEquality compares a boolean with 1/0 for == and !=: MCollective's
// data plugins report booleans as 1 and 0 (fstat's present), ours and JSON
// facts as true and false, and a filter written for either must keep
// working with the other. ok is false when the rule does not apply.
func (c *comparator) boolEquality(v any) (match, ok bool) {
	if c.op != "==" && c.op != "!=" {
		return false, false
	}
	var have, want bool
	switch x := v.(type) {
	case bool:
		switch c.value {
		case "1":
			want = true
		case "0":
		default:
			return false, false
		}
		have = x
	case string:
		return false, false // "1" as text is not a boolean
	default:
		n, isNum := numberOf(v)
		if !isNum {
			return false, false
		}
		one, zero := n.isInt && n.i == 1 || !n.isInt && n.f == 1, n.isInt && n.i == 0 || !n.isInt && n.f == 0
		if !one && !zero {
			return false, false
		}
		switch c.value {
		case "true":
			want = true
		case "false":
		default:
			return false, false
		}
		have = one
	}
	return (have == want) == (c.op == "=="), true
}

func (c *comparator) matchString(s string) bool {
	if c.op == "=~" {
		return c.re.MatchString(s)
	}
	if c.isNum {
		if n, ok := parseNumber(s); ok {
			return holds(c.op, compareNumbers(n, c.num))
		}
	}
	return holds(c.op, strings.Compare(s, c.value))
}

// holds tells whether a three-way comparison result satisfies op.
func holds(op string, cmp int) bool {
	switch op {
	case "==":
		return cmp == 0
	case "!=":
		return cmp != 0
	case "<":
		return cmp < 0
	case ">":
		return cmp > 0
	case "<=":
		return cmp <= 0
	case ">=":
		return cmp >= 0
	}
	return false
}

// number keeps integers exact so that large ids (serials, inode numbers) do
// not compare equal after rounding to float64.
type number struct {
	i     int64
	f     float64
	isInt bool
}

func compareNumbers(a, b number) int {
	if a.isInt && b.isInt {
		switch {
		case a.i < b.i:
			return -1
		case a.i > b.i:
			return 1
		}
		return 0
	}
	switch {
	case a.f < b.f:
		return -1
	case a.f > b.f:
		return 1
	}
	return 0
}

// parseNumber accepts plain decimal numbers only (optional sign, digits,
// fraction, exponent): "inf", "nan", hex and "1_000" stay strings.
func parseNumber(s string) (number, bool) {
	if !isDecimal(s) {
		return number{}, false
	}
	if i, err := strconv.ParseInt(s, 10, 64); err == nil {
		return number{i: i, f: float64(i), isInt: true}, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) {
		return number{}, false
	}
	return number{f: f}, true
}

func isDecimal(s string) bool {
	i := 0
	if i < len(s) && (s[i] == '+' || s[i] == '-') {
		i++
	}
	digits := 0
	for ; i < len(s) && isDigit(s[i]); i++ {
		digits++
	}
	if i < len(s) && s[i] == '.' {
		for i++; i < len(s) && isDigit(s[i]); i++ {
			digits++
		}
	}
	if digits == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		exp := 0
		for ; i < len(s) && isDigit(s[i]); i++ {
			exp++
		}
		if exp == 0 {
			return false
		}
	}
	return i == len(s)
}

func isDigit(b byte) bool { return b >= '0' && b <= '9' }

// numberOf converts numeric fact values (as decoded from JSON or YAML) and
// numeric strings.
func numberOf(v any) (number, bool) {
	switch v := v.(type) {
	case string:
		return parseNumber(v)
	case json.Number:
		return parseNumber(v.String())
	case bool:
		return number{}, false
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return number{i: rv.Int(), f: float64(rv.Int()), isInt: true}, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u <= math.MaxInt64 {
			return number{i: int64(u), f: float64(u), isInt: true}, true
		}
		return number{f: float64(u)}, true
	case reflect.Float32, reflect.Float64:
		f := rv.Float()
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return number{}, false
		}
		return number{f: f}, true
	}
	return number{}, false
}

// scalarString gives the string form used for string and regex comparison:
// true/false for booleans and the shortest decimal form for numbers, so
// facts from JSON (42.0) and YAML (42) compare alike.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case bool:
		return strconv.FormatBool(v), true
	case json.Number:
		return v.String(), true
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.String:
		return rv.String(), true
	case reflect.Bool:
		return strconv.FormatBool(rv.Bool()), true
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10), true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return strconv.FormatUint(rv.Uint(), 10), true
	case reflect.Float32, reflect.Float64:
		return strconv.FormatFloat(rv.Float(), 'f', -1, 64), true
	}
	return "", false
}

// truthy interprets a data plugin field as a boolean.
func truthy(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return strings.EqualFold(v, "true")
	}
	if n, ok := numberOf(v); ok {
		return n.f != 0
	}
	return false
}
