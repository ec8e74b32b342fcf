package ddl

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// ParseError is a problem in a DDL file. Path is the JSON path of the
// offending field, e.g. actions[2].input.port.type; Line and Column locate
// syntax errors (Path is then empty).
type ParseError struct {
	File   string
	Path   string
	Line   int
	Column int
	Reason string
}

// Error renders "file: path: reason", or "file:line:column: reason" for
// syntax errors.
func (e *ParseError) Error() string {
	switch {
	case e.Line > 0:
		return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Column, e.Reason)
	case e.Path != "":
		return fmt.Sprintf("%s: %s: %s", e.File, e.Path, e.Reason)
	}
	return fmt.Sprintf("%s: %s", e.File, e.Reason)
}

// Parse decodes and validates a DDL. name is used in error messages (usually
// the file path); errors are *ParseError and name the JSON path at fault.
// Unknown fields are ignored, as newer DDL formats may add some.
//
// What Choria accepts but this package cannot apply is not an error but a
// warning in Agent.Warnings, each naming the file and JSON path: a named
// validator it does not ship (the input is then checked by its type, maxlength
// and list only), a validation on a non-string input (ignored), and an
// aggregate with an unknown function or output (that summary is skipped).
// Callers log the warnings once, when they load the file.
func Parse(name string, data []byte) (*Agent, error) {
	root, perr := decodeTree(data)
	if perr == nil {
		var a *Agent
		a, perr = buildAgent(root)
		if perr == nil {
			for i, w := range a.Warnings {
				a.Warnings[i] = name + ": " + w
			}
			return a, nil
		}
	}
	perr.File = name
	return nil, perr
}

// fail builds a ParseError for path.
func fail(path, format string, args ...any) *ParseError {
	return &ParseError{Path: path, Reason: fmt.Sprintf(format, args...)}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// expect checks the JSON type of a present field.
func expect(n *node, k kind, path string) *ParseError {
	if n.kind != k {
		return fail(path, "must be %s %s, not %s", article(k), k, n.kind)
	}
	return nil
}

func article(k kind) string {
	if k == kindArray || k == kindObject {
		return "an"
	}
	return "a"
}

func getString(obj *node, key, path string) (string, *ParseError) {
	n := obj.field(key)
	if n == nil {
		return "", nil
	}
	if err := expect(n, kindString, join(path, key)); err != nil {
		return "", err
	}
	return n.str, nil
}

func requiredString(obj *node, key, path string) (string, *ParseError) {
	s, err := getString(obj, key, path)
	if err == nil && strings.TrimSpace(s) == "" {
		err = fail(join(path, key), "required")
	}
	return s, err
}

func getBool(obj *node, key, path string) (bool, *ParseError) {
	n := obj.field(key)
	if n == nil {
		return false, nil
	}
	if err := expect(n, kindBool, join(path, key)); err != nil {
		return false, err
	}
	return n.b, nil
}

// getInt reads a whole number that fits an int.
func getInt(obj *node, key, path string) (int, bool, *ParseError) {
	n := obj.field(key)
	if n == nil {
		return 0, false, nil
	}
	if n.kind != kindNumber {
		return 0, false, fail(join(path, key), "must be an integer, not %s", n.kind)
	}
	v, err := strconv.ParseInt(string(n.num), 10, 32)
	if err != nil {
		return 0, false, fail(join(path, key), "must be an integer, not %s", n.num)
	}
	return int(v), true, nil
}

func isIdentifier(s string) bool {
	if s == "" {
		return false
	}
	for i, r := range s {
		letter := r == '_' || (r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z')
		if !letter && (i == 0 || r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// isInputName accepts identifiers with dashes too; names must survive the
// CLI's key=value syntax.
func isInputName(s string) bool {
	return isIdentifier(strings.ReplaceAll(s, "-", "_"))
}

func buildAgent(root *node) (*Agent, *ParseError) {
	if err := expect(root, kindObject, "(document)"); err != nil {
		return nil, err
	}
	a := &Agent{}
	var err *ParseError
	if a.Schema, err = getString(root, "$schema", ""); err != nil {
		return nil, err
	}
	if a.Metadata, err = buildMetadata(root.field("metadata")); err != nil {
		return nil, err
	}
	actions := root.field("actions")
	if actions == nil {
		return nil, fail("actions", "required")
	}
	if err := expect(actions, kindArray, "actions"); err != nil {
		return nil, err
	}
	if len(actions.items) == 0 {
		return nil, fail("actions", "an agent needs at least one action")
	}
	seen := map[string]int{}
	for i, n := range actions.items {
		path := index("actions", i)
		act, err := buildAction(n, path, &a.Warnings)
		if err != nil {
			return nil, err
		}
		if first, dup := seen[act.Name]; dup {
			return nil, fail(join(path, "action"), "duplicate action %q, first defined at actions[%d]", act.Name, first)
		}
		seen[act.Name] = i
		a.Actions = append(a.Actions, act)
	}
	return a, nil
}

func buildMetadata(n *node) (Metadata, *ParseError) {
	const path = "metadata"
	var m Metadata
	if n == nil {
		return m, fail(path, "required")
	}
	if err := expect(n, kindObject, path); err != nil {
		return m, err
	}
	for _, f := range []struct {
		key string
		dst *string
	}{
		{"name", &m.Name}, {"description", &m.Description}, {"author", &m.Author},
		{"license", &m.License}, {"version", &m.Version}, {"url", &m.URL},
	} {
		var err *ParseError
		if *f.dst, err = requiredString(n, f.key, path); err != nil {
			return m, err
		}
	}
	if !isIdentifier(m.Name) {
		return m, fail(join(path, "name"), "%q is not a valid agent name (letters, digits and _, not starting with a digit)", m.Name)
	}
	timeout, ok, err := getInt(n, "timeout", path)
	if err != nil {
		return m, err
	}
	if !ok {
		return m, fail(join(path, "timeout"), "required")
	}
	if timeout <= 0 {
		return m, fail(join(path, "timeout"), "must be a positive number of seconds, not %d", timeout)
	}
	m.Timeout = timeout
	if m.Provider, err = getString(n, "provider", path); err != nil {
		return m, err
	}
	if m.Service, err = getBool(n, "service", path); err != nil {
		return m, err
	}
	return m, nil
}

// warnf records a warning about path.
func warnf(w *[]string, path, format string, args ...any) {
	*w = append(*w, path+": "+fmt.Sprintf(format, args...))
}

func buildAction(n *node, path string, w *[]string) (*Action, *ParseError) {
	if err := expect(n, kindObject, path); err != nil {
		return nil, err
	}
	act := &Action{Input: map[string]*Input{}, Output: map[string]*Output{}}
	var err *ParseError
	if act.Name, err = requiredString(n, "action", path); err != nil {
		return nil, err
	}
	if !isIdentifier(act.Name) {
		return nil, fail(join(path, "action"), "%q is not a valid action name (letters, digits and _, not starting with a digit)", act.Name)
	}
	if act.Description, err = getString(n, "description", path); err != nil {
		return nil, err
	}
	if act.Display, err = getString(n, "display", path); err != nil {
		return nil, err
	}
	switch act.Display {
	case "", DisplayOK, DisplayFailed, DisplayAlways:
	default:
		return nil, fail(join(path, "display"), "unknown display rule %q (want ok, failed or always)", act.Display)
	}

	if in := n.field("input"); in != nil {
		inPath := join(path, "input")
		if err := expect(in, kindObject, inPath); err != nil {
			return nil, err
		}
		for _, name := range in.keys {
			p := join(inPath, name)
			if !isInputName(name) {
				return nil, fail(p, "%q is not a valid input name (letters, digits, _ and -)", name)
			}
			input, err := buildInput(in.vals[name], p, w)
			if err != nil {
				return nil, err
			}
			act.Input[name] = input
			act.inputOrder = append(act.inputOrder, name)
		}
	}

	if out := n.field("output"); out != nil {
		outPath := join(path, "output")
		if err := expect(out, kindObject, outPath); err != nil {
			return nil, err
		}
		for _, name := range out.keys {
			p := join(outPath, name)
			if name == "" {
				return nil, fail(p, "empty output name")
			}
			o, err := buildOutput(out.vals[name], p)
			if err != nil {
				return nil, err
			}
			act.Output[name] = o
			act.outputOrder = append(act.outputOrder, name)
		}
	}

	if agg := n.field("aggregate"); agg != nil {
		aggPath := join(path, "aggregate")
		if err := expect(agg, kindArray, aggPath); err != nil {
			return nil, err
		}
		for i, g := range agg.items {
			a, err := buildAggregate(g, index(aggPath, i), act, w)
			if err != nil {
				return nil, err
			}
			act.Aggregate = append(act.Aggregate, a)
		}
	}
	return act, nil
}

// knownType reports whether t, already lower-cased, is a DDL type. Choria's
// schema and published DDLs spell types in any case (Hash, Array, String).
func knownType(t string) bool {
	switch t {
	case TypeString, TypeList, TypeBoolean, TypeInteger, TypeFloat, TypeNumber, TypeHash, TypeArray:
		return true
	}
	return false
}

const typeList = "string, list, boolean, integer, float, number, hash or array"

func buildInput(n *node, path string, w *[]string) (*Input, *ParseError) {
	if err := expect(n, kindObject, path); err != nil {
		return nil, err
	}
	in := &Input{}
	var err *ParseError
	if in.Prompt, err = getString(n, "prompt", path); err != nil {
		return nil, err
	}
	if in.Description, err = getString(n, "description", path); err != nil {
		return nil, err
	}
	if in.Type, err = requiredString(n, "type", path); err != nil {
		return nil, err
	}
	in.Type = strings.ToLower(in.Type)
	if !knownType(in.Type) {
		return nil, fail(join(path, "type"), "unknown type %q (want %s)", in.Type, typeList)
	}
	if in.Optional, err = getBool(n, "optional", path); err != nil {
		return nil, err
	}
	if in.Secret, err = getBool(n, "secret", path); err != nil {
		return nil, err
	}
	maxLength, _, err := getInt(n, "maxlength", path)
	if err != nil {
		return nil, err
	}
	if maxLength < 0 {
		return nil, fail(join(path, "maxlength"), "must not be negative")
	}
	in.MaxLength = maxLength

	if in.Validation, err = getString(n, "validation", path); err != nil {
		return nil, err
	}
	if in.Validation != "" {
		switch check, cerr := compileValidation(in.Validation); {
		case in.Type != TypeString:
			// Choria applies validations to strings only and ignores the rest.
			warnf(w, join(path, "validation"), "only string inputs can have a validation, this one is %s: ignored", in.Type)
		case errors.Is(cerr, errUnknownValidator):
			// A validator plugin shipped with the agent for Ruby MCollective:
			// Choria loads such DDLs too, checking what it knows.
			warnf(w, join(path, "validation"), "%v; the input is checked by its type and maxlength only", cerr)
			in.unchecked = true
		case cerr != nil:
			return nil, fail(join(path, "validation"), "%v", cerr)
		default:
			in.check = check
		}
	}

	if list := n.field("list"); list != nil {
		lp := join(path, "list")
		if err := expect(list, kindArray, lp); err != nil {
			return nil, err
		}
		for i, it := range list.items {
			if err := expect(it, kindString, index(lp, i)); err != nil {
				return nil, err
			}
			in.List = append(in.List, it.str)
		}
	}
	if in.Type == TypeList && len(in.List) == 0 {
		return nil, fail(join(path, "list"), "an input of type list needs a non-empty list of values")
	}

	if def := n.field("default"); def != nil {
		v, reason := typedDefault(in, def)
		if reason != "" {
			return nil, fail(join(path, "default"), "%s", reason)
		}
		in.Default = v
	}
	return in, nil
}

// typedDefault converts an input's default to the input's Go type, or says
// why it does not fit.
func typedDefault(in *Input, n *node) (any, string) {
	wrong := func() (any, string) {
		return nil, fmt.Sprintf("default of %s input must be %s, not %s", in.Type, typeNoun(in.Type), n.kind)
	}
	switch in.Type {
	case TypeString:
		if n.kind != kindString {
			return wrong()
		}
		return n.str, ""
	case TypeList:
		if n.kind != kindString {
			return wrong()
		}
		if !slices.Contains(in.List, n.str) {
			return nil, fmt.Sprintf("default %q is not in the list (%s)", n.str, strings.Join(in.List, ", "))
		}
		return n.str, ""
	case TypeBoolean:
		if n.kind != kindBool {
			return wrong()
		}
		return n.b, ""
	case TypeInteger:
		if n.kind != kindNumber {
			return wrong()
		}
		v, err := toInt64(n.num)
		if err != nil {
			return nil, fmt.Sprintf("default of integer input must be an integer, not %s", n.num)
		}
		return v, ""
	case TypeFloat, TypeNumber:
		if n.kind != kindNumber {
			return wrong()
		}
		v, err := normalizeNumber(n.num, in.Type == TypeFloat)
		if err != nil {
			return nil, fmt.Sprintf("default: %v", err)
		}
		return v, ""
	case TypeHash:
		if n.kind != kindObject {
			return wrong()
		}
		return n.value(), ""
	case TypeArray:
		if n.kind != kindArray {
			return wrong()
		}
		return n.value(), ""
	}
	return wrong()
}

// typeNoun describes the JSON a DDL type needs, for messages.
func typeNoun(t string) string {
	switch t {
	case TypeString:
		return "a string"
	case TypeList:
		return "a string from the list"
	case TypeBoolean:
		return "a boolean"
	case TypeInteger:
		return "an integer"
	case TypeFloat, TypeNumber:
		return "a number"
	case TypeHash:
		return "an object"
	case TypeArray:
		return "an array"
	}
	return t
}

// toInt64 parses an integral JSON number, accepting forms like 3.0 and 3e2.
func toInt64(num json.Number) (int64, error) {
	if v, err := strconv.ParseInt(string(num), 10, 64); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return 0, err
	}
	return floatToInt64(f)
}

// floatToInt64 accepts only floats that are whole and in range.
func floatToInt64(f float64) (int64, error) {
	if f != math.Trunc(f) || math.IsInf(f, 0) || f < math.MinInt64 || f >= math.MaxInt64 {
		return 0, errors.New("not a whole number in range")
	}
	return int64(f), nil
}

// normalizeNumber converts a JSON number to float64, or for non-float
// types to int64 when it is integral.
func normalizeNumber(num json.Number, float bool) (any, error) {
	if !float {
		if v, err := strconv.ParseInt(string(num), 10, 64); err == nil {
			return v, nil
		}
	}
	f, err := strconv.ParseFloat(string(num), 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return nil, fmt.Errorf("%s is not a finite number", num)
	}
	return f, nil
}

func buildOutput(n *node, path string) (*Output, *ParseError) {
	if err := expect(n, kindObject, path); err != nil {
		return nil, err
	}
	o := &Output{}
	var err *ParseError
	if o.Description, err = getString(n, "description", path); err != nil {
		return nil, err
	}
	if o.DisplayAs, err = getString(n, "display_as", path); err != nil {
		return nil, err
	}
	if o.Type, err = getString(n, "type", path); err != nil {
		return nil, err
	}
	o.Type = strings.ToLower(o.Type)
	if o.Type != "" && !knownType(o.Type) {
		return nil, fail(join(path, "type"), "unknown type %q (want %s)", o.Type, typeList)
	}
	if def := n.field("default"); def != nil {
		o.Default = def.value()
	}
	return o, nil
}

// buildAggregate parses one aggregate. An unknown function or output is a
// warning, not an error: the aggregate is kept with Skip saying why, and
// Summarize leaves it out.
func buildAggregate(n *node, path string, act *Action, w *[]string) (Aggregate, *ParseError) {
	var g Aggregate
	if err := expect(n, kindObject, path); err != nil {
		return g, err
	}
	var err *ParseError
	if g.Function, err = requiredString(n, "function", path); err != nil {
		return g, err
	}
	maxVerbs := 1 // average, sum: the number
	switch g.Function {
	case AggregateSummary, AggregateBooleanSummary, AggregateChart:
		maxVerbs = 2 // the value and its count
	case AggregateAverage, AggregateSum:
	default:
		// Aggregate plugins ship with their agent for Ruby MCollective (nrpe's
		// nagios_states); Choria loads such DDLs and so do we.
		g.Skip = fmt.Sprintf("aggregate function %s is not available", g.Function)
		warnf(w, join(path, "function"), "unknown aggregate function %q (known: summary, boolean_summary, average, sum, chart): that summary is skipped", g.Function)
	}
	argsPath := join(path, "args")
	args := n.field("args")
	if args == nil {
		return g, fail(argsPath, "required: the output to aggregate")
	}
	if err := expect(args, kindArray, argsPath); err != nil {
		return g, err
	}
	if len(args.items) == 0 {
		return g, fail(argsPath, "empty: the first argument names the output to aggregate")
	}
	first := args.items[0]
	if err := expect(first, kindString, index(argsPath, 0)); err != nil {
		return g, err
	}
	if _, ok := act.Output[first.str]; !ok && g.Skip == "" {
		g.Skip = fmt.Sprintf("the action has no output %s", first.str)
		warnf(w, index(argsPath, 0), "no output %q in this action: that summary is skipped", first.str)
	}
	for i, a := range args.items {
		g.Args = append(g.Args, a.value())
		if i == 0 {
			continue
		}
		p := index(argsPath, i)
		if err := expect(a, kindObject, p); err != nil {
			return g, err
		}
		if f := a.field("format"); f != nil {
			if err := expect(f, kindString, join(p, "format")); err != nil {
				return g, err
			}
			spec, ferr := parseFormat(f.str, maxVerbs)
			if ferr != nil {
				return g, fail(join(p, "format"), "%v", ferr)
			}
			g.format = spec
		}
		if g.Function != AggregateBooleanSummary {
			continue
		}
		for _, b := range []bool{true, false} {
			key := strconv.FormatBool(b)
			label, err := getString(a, key, p)
			if err != nil {
				return g, err
			}
			if label != "" {
				if g.labels == nil {
					g.labels = map[bool]string{}
				}
				g.labels[b] = label
			}
		}
	}
	return g, nil
}
