package filter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustCompound(t testing.TB, s string) *Expr {
	t.Helper()
	e, err := ParseCompound(s)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestFilterMatch(t *testing.T) {
	n := newTestNode()
	tests := []struct {
		name string
		f    *Filter
		want bool
	}{
		{"nil", nil, true},
		{"empty", &Filter{}, true},
		{"identity exact", &Filter{Identity: []string{"web1.example.com"}}, true},
		{"identity regex", &Filter{Identity: []string{"/^web/"}}, true},
		{"identity no match", &Filter{Identity: []string{"db1"}}, false},
		{"identity OR", &Filter{Identity: []string{"db1", "/example/"}}, true},
		{"identity partial is not exact", &Filter{Identity: []string{"web1"}}, false},
		{"class exact", &Filter{Class: []string{"apache"}}, true},
		{"class AND", &Filter{Class: []string{"apache", "nginx"}}, false},
		{"class regex", &Filter{Class: []string{"/^profile::/"}}, true},
		{"agent", &Filter{Agent: []string{"package", "/^rpc/"}}, true},
		{"agent missing", &Filter{Agent: []string{"puppet"}}, false},
		{"fact", &Filter{Fact: []FactFilter{{"os.family", "==", "Debian"}, {"cpus", ">=", "4"}}}, true},
		{"fact AND", &Filter{Fact: []FactFilter{{"os.family", "==", "Debian"}, {"cpus", ">", "4"}}}, false},
		{"compound", &Filter{Compound: []*Expr{mustCompound(t, "apache and fstat('/etc/issue')")}}, true},
		{"compound AND", &Filter{Compound: []*Expr{mustCompound(t, "apache"), mustCompound(t, "nginx")}}, false},
		{"all kinds", &Filter{
			Identity: []string{"/^web/"},
			Fact:     []FactFilter{{"kernel", "=~", "^Lin"}},
			Class:    []string{"role::web"},
			Agent:    []string{"service"},
			Compound: []*Expr{mustCompound(t, "roles=web or roles=db")},
		}, true},
		{"all kinds, one fails", &Filter{
			Identity: []string{"/^web/"},
			Fact:     []FactFilter{{"kernel", "=~", "^Lin"}},
			Class:    []string{"role::web"},
			Agent:    []string{"service"},
			Compound: []*Expr{mustCompound(t, "roles=db")},
		}, false},
		// invalid parts never match
		{"bad identity regex", &Filter{Identity: []string{"/[/"}}, false},
		{"bad identity regex among alternatives", &Filter{Identity: []string{"/[/", "web1.example.com"}}, false},
		{"bad class regex", &Filter{Class: []string{"/(/"}}, false},
		{"empty class regex", &Filter{Class: []string{"//"}}, false},
		{"empty class", &Filter{Class: []string{""}}, false},
		{"bad agent regex", &Filter{Agent: []string{"/*/"}}, false},
		{"bad fact operator", &Filter{Fact: []FactFilter{{"kernel", "<>", "Linux"}}}, false},
		{"empty fact name", &Filter{Fact: []FactFilter{{"", "==", "Linux"}}}, false},
		{"nil compound", &Filter{Compound: []*Expr{nil}}, false},
	}
	for _, tt := range tests {
		if got := tt.f.Match(t.Context(), n); got != tt.want {
			t.Errorf("%s: Match = %v, want %v", tt.name, got, tt.want)
		}
		// Compiled form is cached: a second call must agree.
		if got := tt.f.Match(t.Context(), n); got != tt.want {
			t.Errorf("%s: second Match = %v, want %v", tt.name, got, tt.want)
		}
		if valid := tt.f.Validate() == nil; !valid && tt.want {
			t.Errorf("%s: Validate failed on a matching filter", tt.name)
		}
	}
}

func TestFilterValidate(t *testing.T) {
	tests := []struct {
		f    *Filter
		want string
	}{
		{&Filter{Identity: []string{"/[/"}}, `filter: identity "/[/": invalid regex /[/: error parsing regexp: missing closing ]: ` + "`[`"},
		{&Filter{Class: []string{"//"}}, `filter: class "//": empty regex`},
		{&Filter{Agent: []string{""}}, `filter: agent "": empty value`},
		{&Filter{Fact: []FactFilter{{"os", "~", "x"}}}, `filter: fact "os ~ x": unknown operator "~" (want one of == = != < > <= >= =~)`},
		{&Filter{Compound: []*Expr{{Op: "xor"}}}, `filter: compound #1: compound filter: unknown node type "xor"`},
	}
	for _, tt := range tests {
		err := tt.f.Validate()
		if err == nil || err.Error() != tt.want {
			t.Errorf("Validate() = %v, want %s", err, tt.want)
		}
	}
	if err := (*Filter)(nil).Validate(); err != nil {
		t.Errorf("nil filter Validate() = %v", err)
	}
	if err := ValidatePattern("/^ok/"); err != nil {
		t.Errorf("ValidatePattern(/^ok/) = %v", err)
	}
	if err := ValidatePattern("/(/"); err == nil || !strings.Contains(err.Error(), `pattern "/(/"`) {
		t.Errorf("ValidatePattern(/(/) = %v, want error naming the pattern", err)
	}
}

func TestFilterJSONRoundTrip(t *testing.T) {
	f := &Filter{
		Identity: []string{"web1", "/^db/"},
		Fact:     []FactFilter{{"os.family", "==", "Debian"}, {"kernel", "=~", "^Lin"}},
		Class:    []string{"apache"},
		Agent:    []string{"package"},
		Compound: []*Expr{
			mustCompound(t, `os=Debian and (apache or /^nginx/) and not fstat('/etc/nologin')`),
			mustCompound(t, `fstat('/etc/issue').md5=95a5a06e937cbbb554fd483e62c1c156 or package("it's").installed=true or a='say "hi"'`),
		},
	}
	n := newTestNode()
	want := f.Match(t.Context(), n) // populate caches: they must not leak into JSON
	b, err := json.Marshal(f)
	if err != nil {
		t.Fatal(err)
	}
	var got Filter
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(f, &got); diff != "" {
		t.Errorf("round trip mismatch (-want +got):\n%s\njson: %s", diff, b)
	}
	if got.Match(t.Context(), n) != want {
		t.Errorf("decoded filter Match = %v, want %v", !want, want)
	}
	for i := range f.Compound {
		if got.Compound[i].String() != f.Compound[i].String() {
			t.Errorf("compound #%d: %q after round trip, want %q", i, got.Compound[i], f.Compound[i])
		}
	}
	if !strings.Contains(string(b), `"op":"and"`) {
		t.Errorf("compound is not encoded as a tree: %s", b)
	}
}

func TestFilterJSONHostileCompound(t *testing.T) {
	n := newTestNode()
	for _, in := range []string{
		`{"compound":[{"op":"not","args":[{"op":"class","class":"/[/"}]}]}`,
		`{"compound":[{"op":"or"}]}`,
		`{"compound":[null]}`,
		`{"compound":[{"op":"data","data":{"plugin":"fstat","query":"/etc/issue","operator":"=~","value":""}}]}`,
		`{"class":["//"]}`,
	} {
		var f Filter
		if err := json.Unmarshal([]byte(in), &f); err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if f.Match(t.Context(), n) {
			t.Errorf("%s matched, want no match", in)
		}
	}
}

// TestFilterConcurrentMatch is meant for -race: many goroutines share one
// filter and its lazily compiled form.
func TestFilterConcurrentMatch(t *testing.T) {
	f := &Filter{
		Identity: []string{"/^web/"},
		Fact:     []FactFilter{{"kernel", "=~", "^Lin"}},
		Class:    []string{"/^role::/"},
		Compound: []*Expr{mustCompound(t, "apache and /^profile/ and kernel=~^L")},
	}
	n := newTestNode()
	var wg sync.WaitGroup
	results := make([]bool, 16)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				results[i] = f.Match(t.Context(), n)
			}
		}()
	}
	wg.Wait()
	for i, r := range results {
		if !r {
			t.Errorf("goroutine %d: Match = false", i)
		}
	}
}

func TestParseCombined(t *testing.T) {
	tests := []struct {
		in        string
		wantFacts []FactFilter
		wantClass []string
		wantErr   string
	}{
		{in: "os=Debian apache cpus>=4 /^role::/", wantFacts: []FactFilter{{"os", "==", "Debian"}, {"cpus", ">=", "4"}}, wantClass: []string{"apache", "/^role::/"}},
		{in: "  apache  ", wantClass: []string{"apache"}},
		{in: "kernel=/^Lin/ x!=y", wantFacts: []FactFilter{{"kernel", "=~", "^Lin"}, {"x", "!=", "y"}}},
		{in: "/a=b/", wantClass: []string{"/a=b/"}},
		{in: "", wantErr: "combined filter: empty"},
		{in: "apache =x", wantErr: `combined filter: fact filter "=x": empty fact name`},
		{in: "os=", wantErr: `combined filter: fact filter "os=": missing value`},
		{in: "/[/", wantErr: `combined filter: class pattern "/[/": invalid regex`},
	}
	for _, tt := range tests {
		facts, classes, err := ParseCombined(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
				t.Errorf("ParseCombined(%q) error = %v, want prefix %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseCombined(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.wantFacts, facts); diff != "" {
			t.Errorf("ParseCombined(%q) facts (-want +got):\n%s", tt.in, diff)
		}
		if diff := cmp.Diff(tt.wantClass, classes); diff != "" {
			t.Errorf("ParseCombined(%q) classes (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestExplain(t *testing.T) {
	f := &Filter{
		Identity: []string{"web1", "/^db/"},
		Fact:     []FactFilter{{"os", "==", "Debian"}, {"kernel", "=~", "^Lin"}, {"x", "~", "y"}},
		Class:    []string{"apache", "/^role::/", "/[/"},
		Agent:    []string{"package"},
		Compound: []*Expr{mustCompound(t, "os=Debian and (apache or nginx)")},
	}
	want := strings.Join([]string{
		"Identity is web1 or matches /^db/",
		"Fact os == Debian",
		"Fact kernel =~ /^Lin/",
		"Fact x ~ y (invalid: matches no node)",
		"Class is apache",
		"Class matches /^role::/",
		"Class matches /[/ (invalid: matches no node)",
		"Agent is package",
		"Compound os == Debian and (apache or nginx)",
	}, "\n")
	if diff := cmp.Diff(want, Explain(f)); diff != "" {
		t.Errorf("Explain mismatch (-want +got):\n%s", diff)
	}
	if got := Explain(&Filter{}); got != "No filter: every node matches" {
		t.Errorf("Explain(empty) = %q", got)
	}
	bad := &Filter{Compound: []*Expr{{Op: OpNot}}}
	if got := Explain(bad); !strings.HasSuffix(got, "(invalid: matches no node)") {
		t.Errorf("Explain(bad compound) = %q, want it flagged", got)
	}
}

func TestFilterEqual(t *testing.T) {
	a := &Filter{Class: []string{"x"}, Compound: []*Expr{mustCompound(t, "a or b")}}
	b := &Filter{Class: []string{"x"}, Compound: []*Expr{mustCompound(t, "a or b")}}
	c := &Filter{Class: []string{"x"}, Compound: []*Expr{mustCompound(t, "a and b")}}
	a.Match(t.Context(), newTestNode()) // caches must not affect equality
	if !a.Equal(b) || a.Equal(c) || !(*Filter)(nil).Equal(&Filter{}) || a.Equal(nil) {
		t.Error("Filter.Equal disagrees with the wire fields")
	}
}

func TestCombinedQuotesAndRegexFlags(t *testing.T) {
	facts, classes, err := ParseCombined(`role="web server" /APACHE/i os='deb ian'`)
	if err != nil {
		t.Fatal(err)
	}
	if len(facts) != 2 || facts[0].Value != "web server" || facts[1].Value != "deb ian" || len(classes) != 1 {
		t.Fatalf("facts %+v classes %v", facts, classes)
	}
	n := StaticTestNode{facts: map[string]any{"role": "web server", "os": "deb ian"}, classes: []string{"apache"}}
	if !(&Filter{Fact: facts, Class: classes}).Match(t.Context(), n) {
		t.Error("quoted values and /re/i did not match")
	}
	if _, _, err := ParseCombined(`role="web`); err == nil {
		t.Error("unterminated quote accepted")
	}
	ff, err := ParseFact("role=/WEB/i")
	if err != nil || !ff.Match(n) {
		t.Errorf("role=/WEB/i: %+v %v", ff, err)
	}
	for _, bad := range []string{"os..family=x", ".os=x", "fstat('/x').size>0"} {
		if _, err := ParseFact(bad); err == nil {
			t.Errorf("ParseFact(%q) accepted", bad)
		}
	}
}

// StaticTestNode is a node made of literal facts and classes.
type StaticTestNode struct {
	facts   map[string]any
	classes []string
}

func (n StaticTestNode) Identity() string             { return "n" }
func (n StaticTestNode) Fact(path string) (any, bool) { return Lookup(n.facts, path) }
func (n StaticTestNode) Classes() []string            { return n.classes }
func (StaticTestNode) Agents() []string               { return nil }
func (StaticTestNode) Data(context.Context, string, string) (map[string]any, error) {
	return nil, nil
}

// unknownNode is a node whose data functions are all unknown.
type unknownNode struct{ StaticTestNode }

func (unknownNode) Data(context.Context, string, string) (map[string]any, error) {
	return nil, fmt.Errorf("no data here: %w", ErrUnknown)
}

func TestDecideThreeValued(t *testing.T) {
	n := unknownNode{StaticTestNode{facts: map[string]any{"role": "web"}}}
	for _, tt := range []struct {
		expr         string
		match, known bool
	}{
		{"fstat('/x').size>0 or role=web", true, true},
		{"fstat('/x').size>0 or role=db", true, false},
		{"fstat('/x').size>0 and role=db", false, true},
		{"fstat('/x').size>0 and role=web", true, false},
		{"not fstat('/x').size>0", true, false},
		{"role=web", true, true},
	} {
		e, err := ParseCompound(tt.expr)
		if err != nil {
			t.Fatal(err)
		}
		match, known := (&Filter{Compound: []*Expr{e}}).Decide(t.Context(), n)
		if match != tt.match || known != tt.known {
			t.Errorf("Decide(%s) = %v, %v; want %v, %v", tt.expr, match, known, tt.match, tt.known)
		}
		if (&Filter{Compound: []*Expr{e}}).Match(t.Context(), n) && !known {
			t.Errorf("Match(%s) selected a node on an unknown", tt.expr)
		}
	}
	if m, _ := (&Filter{Fact: []FactFilter{{Fact: "role", Operator: "==", Value: "db"}}}).Decide(t.Context(), n); m {
		t.Error("a false fact was selected")
	}
}

func TestBooleansMatchOneAndZero(t *testing.T) {
	n := StaticTestNode{facts: map[string]any{"present": 1, "absent": 0, "flag": true, "off": false, "text": "1"}}
	for expr, want := range map[string]bool{
		"present=true": true, "present=1": true, "present!=true": false, "present=false": false,
		"absent=false": true, "absent=0": true, "flag=1": true, "flag=true": true, "off=0": true, "off=1": false,
		"text=true": false,
	} {
		ff, err := ParseFact(expr)
		if err != nil {
			t.Fatal(err)
		}
		if got := ff.Match(n); got != want {
			t.Errorf("%s = %v, want %v", expr, got, want)
		}
	}
}

// ctxNode records the context each data call receives.
type ctxNode struct {
	StaticTestNode
	got []context.Context
}

type ctxKey struct{}

func (n *ctxNode) Data(ctx context.Context, _, _ string) (map[string]any, error) {
	n.got = append(n.got, ctx)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return map[string]any{"present": true}, nil
}

// TestDataGetsTheCallersContext: Match, Decide, Eval and EvalErr hand their
// context to every data call (on a node it is the request's data budget),
// and a call under a context that is done fails, so it selects nothing.
func TestDataGetsTheCallersContext(t *testing.T) {
	e, err := ParseCompound("fstat('/a') and fstat('/b')")
	if err != nil {
		t.Fatal(err)
	}
	eval := map[string]func(context.Context, Node) bool{
		"Match": func(ctx context.Context, n Node) bool { return (&Filter{Compound: []*Expr{e}}).Match(ctx, n) },
		"Decide": func(ctx context.Context, n Node) bool {
			m, _ := (&Filter{Compound: []*Expr{e}}).Decide(ctx, n)
			return m
		},
		"Eval":    e.Eval,
		"EvalErr": func(ctx context.Context, n Node) bool { ok, _ := e.EvalErr(ctx, n); return ok },
	}
	for name, f := range eval {
		t.Run(name, func(t *testing.T) {
			ctx := context.WithValue(t.Context(), ctxKey{}, name)
			n := &ctxNode{}
			if !f(ctx, n) {
				t.Fatalf("%s = false with a live context; want true", name)
			}
			if len(n.got) != 2 {
				t.Fatalf("%d data calls, want 2", len(n.got))
			}
			for _, c := range n.got {
				if c.Value(ctxKey{}) != name {
					t.Fatalf("data call got a context other than the caller's")
				}
			}
			done, cancel := context.WithCancel(ctx)
			cancel()
			if f(done, &ctxNode{}) {
				t.Fatalf("%s = true under a cancelled context; want false", name)
			}
		})
	}
}

// TestStaticNodeDataHonoursContext: a StaticNode fails data calls under a
// context that is done, like a node whose data budget is spent.
func TestStaticNodeDataHonoursContext(t *testing.T) {
	n := &StaticNode{Results: map[string]map[string]any{"fstat(/x)": {"present": true}}}
	if _, err := n.Data(t.Context(), "fstat", "/x"); err != nil {
		t.Fatalf("live context: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := n.Data(ctx, "fstat", "/x"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled context: err = %v, want context.Canceled", err)
	}
}
