package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
	"testing"
)

func TestBoundArguments(t *testing.T) {
	big := strings.Repeat("<", 734_000)
	args := map[string]any{"small": "<b>", "big": big, "n": 3}
	got := BoundArguments(args)
	s, ok := got["big"].(Summary)
	enc, _ := encodeJSON(big)
	sum := sha256.Sum256(enc)
	if !ok || !s.Omitted || s.Bytes != len(enc) || s.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("big argument = %#v, want its summary", got["big"])
	}
	if got["small"] != "<b>" || got["n"] != 3 || args["big"] != big {
		t.Errorf("small values changed or input edited: %v", got)
	}
	// Many medium values: the total bound summarises the later ones.
	many := map[string]any{}
	for i := range 10 {
		many[string(rune('a'+i))] = strings.Repeat("x", 3000)
	}
	kept := 0
	for _, v := range BoundArguments(many) {
		if _, ok := v.(string); ok {
			kept++
		}
	}
	if kept != 5 {
		t.Errorf("kept %d of 10 3000-byte values, want 5 within %d bytes", kept, MaxArgumentsBytes)
	}

	// The line that holds it is small and not HTML-escaped.
	path := filepath.Join(t.TempDir(), "a.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Append(&RequestRecord{Kind: KindRequest, RequestID: "x", Arguments: got}); err != nil {
		t.Fatal(err)
	}
	l.Close()
	lines := readLines(t, path)
	if len(lines) != 1 || len(lines[0]) > 1024 || !strings.Contains(string(lines[0]), `"small":"<b>"`) {
		t.Errorf("line of %d bytes: %.300s", len(lines[0]), lines[0])
	}
	if _, err := VerifyFile(path); err != nil {
		t.Errorf("verify: %v", err)
	}
	if m := BoundMessage(big); len(m) > MaxMessageBytes+64 || !strings.HasSuffix(m, "(734000 bytes, truncated)") {
		t.Errorf("BoundMessage: %d bytes, ends %q", len(m), m[len(m)-30:])
	}
}
