package authz

import (
	"fmt"
	"github.com/marionette/mco/filter"
	"strings"
	"testing"
)

// BenchmarkEvaluate50Lines measures the worst realistic case: a 50-line policy
// (callers, groups, facts, classes and compound rules) where the request falls
// through every rule to the default.
func BenchmarkEvaluate50Lines(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("# generated benchmark policy\npolicy default deny\n")
	for i := range 48 {
		switch i % 4 {
		case 0: // caller matches, action does not
			fmt.Fprintf(&sb, "allow\tcert=user%d cert=bench\tstop%d restart%d\t*\t*\n", i, i, i)
		case 1: // group rule, caller not a member
			fmt.Fprintf(&sb, "allow\tgroup%d\t*\t*\t*\n", i%8)
		case 2: // caller and action match, facts and classes fail
			fmt.Fprintf(&sb, "allow\tcert=bench\tstatus\tos.family=RedHat cpus>=%d\tdbserver /^db%d/\n", i, i)
		case 3: // compound that fails
			fmt.Fprintf(&sb, "allow\t*\tstatus\tos.family=RedHat and (dbserver or cpus>%d)\n", i)
		}
	}
	var gb strings.Builder
	for g := range 8 {
		fmt.Fprintf(&gb, "group%d cert=a%d cert=b%d cert=c%d\n", g, g, g, g)
	}
	p, errs := ParsePolicy("bench.policy", strings.NewReader(sb.String()))
	if len(errs) > 0 {
		b.Fatalf("benchmark policy does not parse: %v", errs)
	}
	groups, err := ParseGroups("groups", strings.NewReader(gb.String()))
	if err != nil {
		b.Fatal(err)
	}
	node := &filter.StaticNode{
		Name:       "web1",
		FactValues: map[string]any{"os": map[string]any{"family": "Debian"}, "cpus": 4},
		ClassNames: []string{"base", "webserver", "nginx"},
	}
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Evaluate(b.Context(), "cert=bench", "status", groups, node); d.Allowed || d.Line != 2 {
			b.Fatalf("unexpected decision %+v", d)
		}
	}
}
