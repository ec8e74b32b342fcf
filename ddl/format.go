package ddl

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// formatSpec is an aggregate's printf-style "format" option, written for
// Ruby's sprintf in MCollective DDLs. It is checked at Parse and applied
// verb by verb, converting each argument to what its verb expects, so that
// e.g. "%d" of an average prints a rounded number rather than Go's
// %!d(float64=...).
type formatSpec struct {
	parts []formatPart
}

// formatPart is literal text (verb 0) or one verb with its flags, width and
// precision.
type formatPart struct {
	text string // literal, or the directive without its verb, e.g. "%-10"
	verb byte
}

// parseFormat checks a format: known verbs only, at most maxVerbs of them.
func parseFormat(s string, maxVerbs int) (*formatSpec, error) {
	f := &formatSpec{}
	verbs := 0
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			lit.WriteByte(s[i])
			continue
		}
		j := i + 1
		for j < len(s) && strings.IndexByte("+-# 0123456789.", s[j]) >= 0 {
			j++
		}
		if j == len(s) {
			return nil, fmt.Errorf("format %q ends inside a %% directive", s)
		}
		verb := s[j]
		if verb == '%' && j == i+1 {
			lit.WriteByte('%')
			i = j
			continue
		}
		if strings.IndexByte("sdifFeEgGxXov", verb) < 0 {
			return nil, fmt.Errorf("format %q: unsupported directive %q (use s, d, i, f, e, g, x, o or v)", s, s[i:j+1])
		}
		verbs++
		if verbs > maxVerbs {
			return nil, fmt.Errorf("format %q has too many directives, at most %d allowed", s, maxVerbs)
		}
		if lit.Len() > 0 {
			f.parts = append(f.parts, formatPart{text: lit.String()})
			lit.Reset()
		}
		f.parts = append(f.parts, formatPart{text: s[i:j], verb: verb})
		i = j
	}
	if lit.Len() > 0 {
		f.parts = append(f.parts, formatPart{text: lit.String()})
	}
	return f, nil
}

// render applies the format to args, one per verb in order.
func (f *formatSpec) render(args ...any) string {
	var b strings.Builder
	next := 0
	for _, p := range f.parts {
		if p.verb == 0 {
			b.WriteString(p.text)
			continue
		}
		var arg any
		if next < len(args) {
			arg = args[next]
		}
		next++
		b.WriteString(formatOne(p.text, p.verb, arg))
	}
	return b.String()
}

// formatOne formats a single argument with directive+verb.
func formatOne(directive string, verb byte, arg any) string {
	num, isNum := asFloat(arg)
	switch verb {
	case 'd', 'i', 'x', 'X', 'o':
		if verb == 'i' {
			verb = 'd'
		}
		if isNum {
			return fmt.Sprintf(directive+string(verb), int64(math.Round(num)))
		}
	case 'f', 'F', 'e', 'E', 'g', 'G':
		if isNum {
			return fmt.Sprintf(directive+string(verb), num)
		}
	}
	return fmt.Sprintf(directive+"s", valueString(arg))
}

// asFloat returns a numeric value as float64.
func asFloat(v any) (float64, bool) {
	switch t := v.(type) {
	case float64:
		return t, true
	case float32:
		return float64(t), true
	case int:
		return float64(t), true
	case int64:
		return float64(t), true
	case int32:
		return float64(t), true
	case uint:
		return float64(t), true
	case uint64:
		return float64(t), true
	case uint32:
		return float64(t), true
	case interface{ Float64() (float64, error) }: // json.Number
		f, err := t.Float64()
		return f, err == nil
	}
	return 0, false
}

// valueString renders a scalar for display: numbers without a trailing .0,
// nil as empty; other values through fmt.
func valueString(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(t), 'f', -1, 32)
	}
	return fmt.Sprint(v)
}
