package filter

import (
	"encoding/json"
	"testing"
)

// FuzzParseCompound checks that the parser never panics, that everything it
// accepts prints to a canonical form that parses back to the same tree, and
// that accepted trees survive JSON and evaluate without panicking.
func FuzzParseCompound(f *testing.F) {
	for _, s := range []string{
		"os=Debian and (apache or /^nginx/) and not fstat('/etc/nologin')",
		"fstat('/etc/issue').md5=95a5a06e937cbbb554fd483e62c1c156",
		`a='say "hi"' or b="it's" or !c=~/x\/y/`,
		"((a or b",
	} {
		f.Add(s)
	}
	n := newTestNode()
	f.Fuzz(func(t *testing.T, s string) {
		e, err := ParseCompound(s)
		if err != nil {
			if e != nil {
				t.Fatalf("ParseCompound(%q) returned both %v and %v", s, e, err)
			}
			return
		}
		canonical := e.String()
		again, err := ParseCompound(canonical)
		if err != nil {
			t.Fatalf("ParseCompound(%q) ok, but its String %q fails: %v", s, canonical, err)
		}
		if !again.Equal(e) {
			t.Fatalf("ParseCompound(%q).String() = %q re-parses to a different tree %q", s, canonical, again)
		}
		if again.String() != canonical {
			t.Fatalf("canonical form not stable: %q then %q", canonical, again.String())
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var decoded Expr
		if err := json.Unmarshal(b, &decoded); err != nil || !decoded.Equal(e) {
			t.Fatalf("JSON round trip of %q failed: %v", s, err)
		}
		if decoded.Eval(t.Context(), n) != e.Eval(t.Context(), n) {
			t.Fatalf("decoded %q evaluates differently", s)
		}
	})
}

// FuzzParseFact checks that ParseFact never panics and that an accepted
// filter prints to a form that parses back to the same filter.
func FuzzParseFact(f *testing.F) {
	for _, s := range []string{"os=Debian", "cpus >= 4", "kernel=/^Lin/", "x=~a/b"} {
		f.Add(s)
	}
	n := newTestNode()
	f.Fuzz(func(t *testing.T, s string) {
		ff, err := ParseFact(s)
		if err != nil {
			return
		}
		if ff.Fact == "" {
			t.Fatalf("ParseFact(%q) accepted an empty fact name", s)
		}
		again, err := ParseFact(ff.String())
		if err != nil || again != ff {
			t.Fatalf("ParseFact(%q) = %+v; its String %q parses to %+v, %v", s, ff, ff.String(), again, err)
		}
		ff.Match(n)
	})
}
