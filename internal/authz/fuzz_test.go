package authz

import (
	"errors"
	"github.com/marionette/mco/filter"
	"strings"
	"testing"
)

// FuzzParsePolicy checks that no input panics the parser or the evaluator and
// that an input either parses cleanly or yields positioned errors and denies.
// Seeds live in testdata/fuzz/FuzzParsePolicy.
func FuzzParsePolicy(f *testing.F) {
	node := &filter.StaticNode{
		Name:       "n1",
		FactValues: map[string]any{"os": map[string]any{"family": "Debian"}, "cpus": 4},
		ClassNames: []string{"base", "webserver"},
	}
	groups, err := ParseGroups("groups", strings.NewReader("ops cert=carol\n"))
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, text string) {
		p, errs := ParsePolicy("f.policy", strings.NewReader(text))
		if p == nil {
			t.Fatal("nil policy")
		}
		if (len(errs) > 0) != (p.Err() != nil) {
			t.Fatalf("errs %v but Err() = %v", errs, p.Err())
		}
		for _, err := range errs {
			var le *LineError
			if !errors.As(err, &le) || !strings.HasPrefix(err.Error(), "f.policy:") {
				t.Fatalf("unpositioned error %v", err)
			}
		}
		for _, caller := range []string{"cert=carol", "cert=a"} {
			d := p.Evaluate(t.Context(), caller, "status", groups, node)
			if len(errs) > 0 && d.Allowed {
				t.Fatalf("invalid policy allowed: %+v", d)
			}
			p.Evaluate(t.Context(), caller, "status", Groups{}, nil)
		}
	})
}
