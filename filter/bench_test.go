package filter

import "testing"

// BenchmarkCompoundEval measures one evaluation of a typical compound filter
// against a node with 50 facts, regexes already compiled.
func BenchmarkCompoundEval(b *testing.B) {
	e := mustCompound(b, "os.family=Debian and (cpus>=4 or /^role::web/) and not env=dev and kernelrelease=~/^6\\./ and fstat('/etc/issue').size>10")
	n := bigNode()
	if !e.Eval(b.Context(), n) {
		b.Fatal("benchmark filter does not match")
	}
	b.ReportAllocs()
	for b.Loop() {
		e.Eval(b.Context(), n)
	}
}

// BenchmarkFilterMatch measures a Filter combining -I, -F, -C and -S.
func BenchmarkFilterMatch(b *testing.B) {
	f := &Filter{
		Identity: []string{"/^web/"},
		Fact:     []FactFilter{{"os.release.major", ">=", "11"}},
		Class:    []string{"apache"},
		Compound: []*Expr{mustCompound(b, "roles=web and not virtual=true")},
	}
	n := bigNode()
	if !f.Match(b.Context(), n) {
		b.Fatal("benchmark filter does not match")
	}
	b.ReportAllocs()
	for b.Loop() {
		f.Match(b.Context(), n)
	}
}
