package facts

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParseFacts(t *testing.T) {
	tests := []struct {
		name   string
		format format
		in     string
		want   map[string]any
	}{
		{"yaml nested", formatYAML, "a: 1\nb:\n  c: [x, 2, true]\n  d: 1.5\n", map[string]any{
			"a": int64(1), "b": map[string]any{"c": []any{"x", int64(2), true}, "d": 1.5},
		}},
		{"json nested", formatJSON, `{"a": 1, "b": {"c": ["x", 2, true], "d": 1.5, "e": null}}`, map[string]any{
			"a": int64(1), "b": map[string]any{"c": []any{"x", int64(2), true}, "d": 1.5, "e": nil},
		}},
		{"json big integers stay exact", formatJSON, `{"i": 9007199254740993, "u": 18446744073709551615, "huge": 1e400}`, map[string]any{
			"i": int64(9007199254740993), "u": uint64(18446744073709551615), "huge": "1e400",
		}},
		{"yaml non-string keys", formatYAML, "1: one\ntrue: yes\n~: nothing\n1.5: half\nname: x\n", map[string]any{
			"1": "one", "true": "yes", "null": "nothing", "1.5": "half", "name": "x",
		}},
		{"yaml nested non-string keys", formatYAML, "ports:\n  80: http\n  443: https\n", map[string]any{
			"ports": map[string]any{"80": "http", "443": "https"},
		}},
		{"yaml nan and inf become strings", formatYAML, "n: .nan\ni: -.inf\n", map[string]any{"n": "NaN", "i": "-Inf"}},
		{"yaml date stays a date", formatYAML, "t: 2024-01-02\n", map[string]any{"t": "2024-01-02"}},
		{"yaml timestamp", formatYAML, "t: 2024-01-02T03:04:05.5+01:00\n", map[string]any{"t": "2024-01-02T03:04:05.5+01:00"}},
		{"yaml explicit timestamp", formatYAML, "t: !!timestamp 2024-01-02T03:04:05Z\n", map[string]any{"t": "2024-01-02T03:04:05Z"}},
		{"empty", formatYAML, " \n\t\n", map[string]any{}},
		{"empty json", formatJSON, "", map[string]any{}},
		{"comments only", formatYAML, "# nothing yet\n---\n", map[string]any{}},
		{"auto json", formatAuto, `{"a": "b"}`, map[string]any{"a": "b"}},
		{"auto yaml", formatAuto, "a: b\n", map[string]any{"a": "b"}},
		{"yaml accepts json", formatYAML, `{"a": [1]}`, map[string]any{"a": []any{int64(1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseFacts([]byte(tt.in), tt.format)
			if err != nil {
				t.Fatalf("parseFacts: %v", err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("facts (-want +got):\n%s", diff)
			}
			if _, err := json.Marshal(got); err != nil {
				t.Errorf("result is not JSON-compatible: %v", err)
			}
		})
	}
}

func TestParseFactsErrors(t *testing.T) {
	tests := []struct {
		name   string
		format format
		in     string
		want   string // substring of the error
	}{
		{"yaml list", formatYAML, "- a\n- b\n", "top level is a list"},
		{"yaml scalar", formatYAML, "hello\n", "top level is a string"},
		{"json list", formatJSON, "[1, 2]", "top level is a list"},
		{"json number", formatJSON, "42", "top level is a number"},
		{"yaml syntax names the line", formatYAML, "a: 1\nb: [unclosed\nc: 2\n", "line "},
		{"yaml bad indentation", formatYAML, "a:\n  b: 1\n c: 2\n", "line 2"},
		{"yaml duplicate key", formatYAML, "a: 1\na: 2\n", `"a" already defined`},
		{"yaml two documents", formatYAML, "a: 1\n---\nb: 2\n", "more than one document"},
		{"yaml keys collide", formatYAML, "1.0: a\n\"1\": b\n", `key "1" in "top level" appears twice`},
		{"json syntax names line and column", formatJSON, "{\n  \"a\": 1,\n  \"b\": x\n}", "line 3, column 8"},
		{"json truncated", formatJSON, "{\"a\": [1, 2", "unexpected end of JSON input"},
		{"json trailing data", formatJSON, `{"a": 1} {"b": 2}`, "unexpected data after the JSON value"},
		{"json given yaml", formatJSON, "a: 1\n", "line 1, column 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseFacts([]byte(tt.in), tt.format)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadFile(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		file, content string
		want          map[string]any
		wantErr       string
	}{
		{file: "a.yaml", content: "x: 1\n", want: map[string]any{"x": int64(1)}},
		{file: "a.YML", content: "x: 1\n", want: map[string]any{"x": int64(1)}},
		{file: "a.json", content: `{"x": 1}`, want: map[string]any{"x": int64(1)}},
		{file: "noext-json", content: "\n  {\"x\": 1}", want: map[string]any{"x": int64(1)}},
		{file: "noext-yaml", content: "x: 1\n", want: map[string]any{"x": int64(1)}},
		{file: "yaml-in.json", content: "x: 1\n", wantErr: "yaml-in.json: line 1, column 1"},
		{file: "list.yaml", content: "- 1\n", wantErr: "list.yaml: top level is a list"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			path := filepath.Join(dir, tt.file)
			if err := os.WriteFile(path, []byte(tt.content), 0o644); err != nil {
				t.Fatal(err)
			}
			got, err := LoadFile(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("facts (-want +got):\n%s", diff)
			}
		})
	}

	if _, err := LoadFile(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file error = %v, want it to name the file", err)
	}
}
