package cli

import (
	"bytes"
	"math"
	"testing"
)

// TestRenderer: the format is chosen once from --json/--jsonl, and each
// form is encoded as the commands' golden files expect: an indented
// document, a line per record, nothing for text (the command lays it out).
func TestRenderer(t *testing.T) {
	v := map[string]any{"nodes": []string{"a", "b"}, "code": 0}
	for _, tt := range []struct {
		name          string
		asJSON, jsonl bool
		want          string
		text          bool
	}{
		{name: "text", text: true},
		{name: "json", asJSON: true, want: "{\n  \"code\": 0,\n  \"nodes\": [\n    \"a\",\n    \"b\"\n  ]\n}\n"},
		{name: "jsonl", jsonl: true, want: "{\"code\":0,\"nodes\":[\"a\",\"b\"]}\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			r := newRenderer(&App{Stdout: &out}, tt.asJSON, tt.jsonl)
			if r.text() != tt.text || r.json() != tt.asJSON || r.jsonl() != tt.jsonl {
				t.Fatalf("text/json/jsonl = %v/%v/%v", r.text(), r.json(), r.jsonl())
			}
			if err := r.result(v); err != nil {
				t.Fatal(err)
			}
			if out.String() != tt.want {
				t.Fatalf("result printed %q, want %q", out.String(), tt.want)
			}
		})
	}
}

// TestRendererRecordKeepsStreaming: a record that cannot be encoded is a
// warning on stderr, and the stream goes on.
func TestRendererRecordKeepsStreaming(t *testing.T) {
	var out, errs bytes.Buffer
	r := newRenderer(&App{Stdout: &out, Stderr: &errs}, false, true)
	r.record(math.NaN())
	r.record("next")
	if out.String() != "\"next\"\n" || !bytes.Contains(errs.Bytes(), []byte("warning: encoding JSON")) {
		t.Fatalf("stdout %q stderr %q", out.String(), errs.String())
	}
}
