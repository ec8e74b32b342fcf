package authz

import (
	"github.com/marionette/mco/filter"
	"strings"
	"testing"
)

// TestDataFailureDenies: a rule whose data function fails has an unknown
// outcome, so the request is denied there — it neither falls through to a
// later allow (a deny rule that could not be checked) nor turns into an
// allow under "not".
func TestDataFailureDenies(t *testing.T) {
	node := &filter.StaticNode{Name: "n1", FactValues: map[string]any{"role": "web"}}
	for _, tc := range []struct{ name, policy string }{
		{"not over a failure", "policy default deny\nallow\t*\t*\tnot package('bash').installed=true\n"},
		{"deny rule that cannot be checked", "policy default deny\ndeny\t*\t*\tpackage('bash').installed=true\nallow\t*\t*\t*\t*\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, errs := ParsePolicy("rpcutil.policy", strings.NewReader(tc.policy))
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			d := p.Evaluate(t.Context(), "cert=alice.mcollective", "ping", Groups{}, node)
			if d.Allowed || d.Line != 2 || !strings.HasPrefix(d.Reason, ReasonDataError) || !strings.Contains(d.Reason, "package('bash')") {
				t.Fatalf("decision = %+v, want a deny on line 2 naming the failed data call", d)
			}
		})
	}
}
