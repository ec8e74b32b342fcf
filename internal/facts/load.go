package facts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// format is the syntax of a facts document.
type format int

const (
	formatAuto format = iota // decided by the first non-blank byte
	formatYAML
	formatJSON
)

// LoadFile reads one facts file. The format is chosen by extension (.yaml,
// .yml, .json); without a known extension a document starting with '{' is
// JSON and anything else YAML. An empty file yields an empty map. The top
// level must be a map. Values are converted to JSON-compatible types: maps
// are map[string]any (non-string keys are stringified), integers int64 (or
// uint64 beyond int64), floats float64 (NaN and ±Inf become strings).
func LoadFile(path string) (map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read facts: %w", err)
	}
	m, err := parseFacts(data, formatOf(path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

func formatOf(path string) format {
	switch strings.ToLower(filepath.Ext(path)) {
	case ".json":
		return formatJSON
	case ".yaml", ".yml":
		return formatYAML
	}
	return formatAuto
}

// parseFacts decodes a facts document whose top level must be a map.
func parseFacts(data []byte, f format) (map[string]any, error) {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return map[string]any{}, nil
	}
	if f == formatAuto {
		f = formatYAML
		if trimmed[0] == '{' {
			f = formatJSON
		}
	}
	var (
		raw any
		err error
	)
	if f == formatJSON {
		raw, err = decodeJSON(data)
	} else {
		raw, err = decodeYAML(data)
	}
	if err != nil {
		return nil, err
	}
	v, err := normalize(raw, "")
	if err != nil {
		return nil, err
	}
	switch m := v.(type) {
	case map[string]any:
		return m, nil
	case nil:
		// A YAML document holding only comments or "---".
		return map[string]any{}, nil
	default:
		return nil, fmt.Errorf("top level is %s, want a map of facts", kindOf(m))
	}
}

func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // keep integers exact; normalize picks int64 or float64
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, jsonError(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("%s: unexpected data after the JSON value", position(data, dec.InputOffset()))
	}
	return v, nil
}

// jsonError adds the line and column to errors that carry a byte offset.
func jsonError(data []byte, err error) error {
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		// Offset counts the offending byte itself; point at it.
		return fmt.Errorf("%s: %w", position(data, syn.Offset-1), err)
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: unexpected end of JSON input", position(data, int64(len(data))))
	}
	return err
}

// position turns a byte offset into "line L, column C" (both 1-based).
func position(data []byte, offset int64) string {
	offset = min(max(offset, 0), int64(len(data)))
	before := data[:offset]
	line := bytes.Count(before, []byte("\n")) + 1
	col := len(before) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}

func decodeYAML(data []byte) (any, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var v any
	if err := dec.Decode(&v); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, err // yaml errors already name the line
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("yaml: more than one document; a facts file holds exactly one")
	}
	return v, nil
}

// normalize converts decoded YAML/JSON into JSON-compatible values so that
// every layer looks the same to lookups, merges and the wire encoder. path
// names the key being converted, for error messages.
func normalize(v any, path string) (any, error) {
	switch x := v.(type) {
	case nil, string, bool, int64, float64:
		return normalizeFloat(x), nil
	case int:
		return int64(x), nil
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x), nil
		}
		return x, nil
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i, nil
		}
		if u, err := strconv.ParseUint(string(x), 10, 64); err == nil {
			return u, nil
		}
		if f, err := x.Float64(); err == nil {
			return normalizeFloat(f), nil
		}
		return string(x), nil // out of float64 range: keep the digits
	case time.Time:
		// YAML timestamps: write dates back as dates, not as midnight UTC.
		if x.Equal(x.Truncate(24*time.Hour)) && x.Location() == time.UTC {
			return x.Format(time.DateOnly), nil
		}
		return x.Format(time.RFC3339Nano), nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			n, err := normalize(e, joinPath(path, strconv.Itoa(i)))
			if err != nil {
				return nil, err
			}
			out[i] = n
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			n, err := normalize(e, joinPath(path, k))
			if err != nil {
				return nil, err
			}
			out[k] = n
		}
		return out, nil
	case map[any]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			key := keyString(k)
			if _, dup := out[key]; dup {
				return nil, fmt.Errorf("key %q in %q appears twice once keys are converted to strings", key, displayPath(path))
			}
			n, err := normalize(e, joinPath(path, key))
			if err != nil {
				return nil, err
			}
			out[key] = n
		}
		return out, nil
	default:
		// Only reachable through unusual YAML tags; a string keeps the value
		// visible instead of failing the whole file.
		return fmt.Sprint(x), nil
	}
}

// normalizeFloat replaces NaN and infinities, which JSON cannot carry.
func normalizeFloat(v any) any {
	f, ok := v.(float64)
	if !ok || (!math.IsNaN(f) && !math.IsInf(f, 0)) {
		return v
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// keyString stringifies a non-string YAML map key the way YAML spells it.
func keyString(k any) string {
	switch x := k.(type) {
	case nil:
		return "null"
	case string:
		return x
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	default:
		return fmt.Sprint(x)
	}
}

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func displayPath(path string) string {
	if path == "" {
		return "top level"
	}
	return path
}

// kindOf names a normalized value's JSON kind for error messages.
func kindOf(v any) string {
	switch v.(type) {
	case []any:
		return "a list"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case int64, uint64, float64:
		return "a number"
	default:
		return fmt.Sprintf("%T", v)
	}
}
