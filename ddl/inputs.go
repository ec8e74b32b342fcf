package ddl

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// InputError says why a request's arguments do not fit an action's inputs.
// Missing distinguishes a required input that was not given (status 3) from
// one that was given but is invalid (status 4). Reasons never quote the
// value, which may be secret.
type InputError struct {
	Input   string
	Missing bool
	Reason  string
}

// Error implements error.
func (e *InputError) Error() string {
	if e.Missing {
		return fmt.Sprintf("missing required input %q", e.Input)
	}
	return fmt.Sprintf("input %q: %s", e.Input, e.Reason)
}

// unknownInput reports an input the action does not have.
func (a *Action) unknownInput(name string) *InputError {
	valid := a.InputNames()
	reason := fmt.Sprintf("unknown input for action %s, which takes no inputs", a.Name)
	if len(valid) > 0 {
		reason = fmt.Sprintf("unknown input for action %s; valid inputs: %s", a.Name, strings.Join(valid, ", "))
	}
	return &InputError{Input: name, Reason: reason}
}

// ConvertArgs turns the CLI's key=value strings into values of the inputs'
// DDL types: booleans from true/false/yes/no/y/n/1/0 (any case), integers
// (int64), floats (float64), numbers (int64 when integral, else float64),
// JSON for hash and array, strings as given; a list value must be one of
// the list. It does not check requiredness or validators: pass the result
// to ValidateInputs. Errors are *InputError.
func (a *Action) ConvertArgs(args map[string]string) (map[string]any, error) {
	keys := make([]string, 0, len(args))
	for k := range args {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic first error
	out := make(map[string]any, len(args))
	for _, k := range keys {
		in, ok := a.Input[k]
		if !ok {
			return nil, a.unknownInput(k)
		}
		v, err := convertString(in, args[k])
		if err != nil {
			return nil, &InputError{Input: k, Reason: err.Error()}
		}
		out[k] = v
	}
	return out, nil
}

func convertString(in *Input, s string) (any, error) {
	switch in.Type {
	case TypeBoolean:
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true", "yes", "y", "1":
			return true, nil
		case "false", "no", "n", "0":
			return false, nil
		}
		return nil, errors.New("is not a boolean (true/false, yes/no, y/n, 1/0)")
	case TypeInteger:
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return nil, errors.New("is not an integer")
		}
		return v, nil
	case TypeFloat, TypeNumber:
		v, err := normalizeNumber(json.Number(strings.TrimSpace(s)), in.Type == TypeFloat)
		if err != nil {
			return nil, fmt.Errorf("is not a number")
		}
		return v, nil
	case TypeHash, TypeArray:
		var v any
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			return nil, fmt.Errorf("is not valid JSON for a %s: %w", in.Type, err)
		}
		if _, ok := v.(map[string]any); in.Type == TypeHash && !ok {
			return nil, errors.New("must be a JSON object, e.g. {\"key\":\"value\"}")
		}
		if _, ok := v.([]any); in.Type == TypeArray && !ok {
			return nil, errors.New("must be a JSON array, e.g. [\"a\",\"b\"]")
		}
		return v, nil
	case TypeList:
		if !slices.Contains(in.List, s) {
			return nil, fmt.Errorf("must be one of: %s", strings.Join(in.List, ", "))
		}
		return s, nil
	}
	return s, nil
}

// ValidateInputs checks request data against the action's inputs and returns
// a new map with defaults applied for absent optional inputs; the caller's map
// is not modified. A null value counts as absent. Values are normalized:
// integers become int64 (integral float64 and json.Number from JSON are
// accepted), floats float64. Strings are checked against maxlength (in
// characters; 0 is unlimited) and then the validation. Inputs the action does
// not declare are rejected, unless the action's Extra accepts them. The
// error, when not nil, is an *InputError.
func (a *Action) ValidateInputs(data map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(a.Input))
	for _, name := range a.InputNames() {
		in := a.Input[name]
		v, present := data[name]
		if !present || v == nil {
			if !in.Optional {
				return nil, &InputError{Input: name, Missing: true}
			}
			if in.Default != nil {
				out[name] = deepCopy(in.Default)
			}
			continue
		}
		nv, err := in.validate(v)
		if err != nil {
			return nil, &InputError{Input: name, Reason: err.Error()}
		}
		out[name] = nv
	}
	var unknown []string
	for k := range data {
		if _, ok := a.Input[k]; !ok {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown) // deterministic first error
	for _, k := range unknown {
		if a.Extra == nil {
			return nil, a.unknownInput(k)
		}
		v, err := a.Extra(k, data[k])
		if err != nil {
			return nil, &InputError{Input: k, Reason: err.Error()}
		}
		out[k] = v
	}
	return out, nil
}

// validate checks one present value and returns it normalized.
func (in *Input) validate(v any) (any, error) {
	switch in.Type {
	case TypeString, TypeList:
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("must be a string, not %s", goTypeName(v))
		}
		if in.Type == TypeList {
			if !slices.Contains(in.List, s) {
				return nil, fmt.Errorf("must be one of: %s", strings.Join(in.List, ", "))
			}
			return s, nil
		}
		if in.MaxLength > 0 && utf8.RuneCountInString(s) > in.MaxLength {
			return nil, fmt.Errorf("is longer than %d characters", in.MaxLength)
		}
		if in.Validation != "" && !in.unchecked {
			if in.check == nil {
				return nil, fmt.Errorf("validation %q was not compiled: the DDL must come from ddl.Parse", in.Validation)
			}
			if err := in.check(s); err != nil {
				return nil, err
			}
		}
		return s, nil
	case TypeBoolean:
		if _, ok := v.(bool); !ok {
			return nil, fmt.Errorf("must be a boolean, not %s", goTypeName(v))
		}
		return v, nil
	case TypeInteger:
		if n, ok := v.(json.Number); ok {
			i, err := toInt64(n)
			if err != nil {
				return nil, errors.New("must be an integer")
			}
			return i, nil
		}
		return toInteger(v)
	case TypeFloat, TypeNumber:
		if n, ok := v.(json.Number); ok {
			return normalizeNumber(n, in.Type == TypeFloat)
		}
		f, ok := asFloat(v)
		if !ok || math.IsNaN(f) || math.IsInf(f, 0) {
			return nil, fmt.Errorf("must be a finite number, not %s", goTypeName(v))
		}
		if in.Type == TypeFloat {
			return f, nil
		}
		return v, nil
	case TypeHash:
		rv := reflect.ValueOf(v)
		if rv.Kind() != reflect.Map || rv.Type().Key().Kind() != reflect.String {
			return nil, fmt.Errorf("must be a hash (JSON object), not %s", goTypeName(v))
		}
		return v, nil
	case TypeArray:
		k := reflect.ValueOf(v).Kind()
		if k != reflect.Slice && k != reflect.Array {
			return nil, fmt.Errorf("must be an array, not %s", goTypeName(v))
		}
		return v, nil
	}
	return nil, fmt.Errorf("has unsupported type %q", in.Type)
}

// toInteger accepts Go integers and whole floats (JSON numbers arrive as
// float64) and returns int64.
func toInteger(v any) (int64, error) {
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int(), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		if rv.Uint() > math.MaxInt64 {
			return 0, errors.New("is too large for an integer")
		}
		return int64(rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		i, err := floatToInt64(rv.Float())
		if err != nil {
			return 0, errors.New("must be an integer, not a fraction")
		}
		return i, nil
	}
	return 0, fmt.Errorf("must be an integer, not %s", goTypeName(v))
}

// goTypeName names a value's type in JSON terms for messages.
func goTypeName(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	if _, ok := asFloat(v); ok {
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}
