package filter

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestLex(t *testing.T) {
	type tok struct {
		Kind tokenKind
		Text string
	}
	tests := []struct {
		in   string
		want []tok
	}{
		{"a and b", []tok{{tokWord, "a"}, {tokAnd, "and"}, {tokWord, "b"}, {tokEOF, ""}}},
		{"!a or not(b)", []tok{{tokNot, "!"}, {tokWord, "a"}, {tokOr, "or"}, {tokNot, "not"}, {tokLParen, "("}, {tokWord, "b"}, {tokRParen, ")"}, {tokEOF, ""}}},
		{"a!=1", []tok{{tokWord, "a"}, {tokOp, "!="}, {tokWord, "1"}, {tokEOF, ""}}},
		{"a==1 b=1 c<1 d>1 e<=1 f>=1 g=~x h=>1 i=<1", []tok{
			{tokWord, "a"}, {tokOp, "=="}, {tokWord, "1"}, {tokWord, "b"}, {tokOp, "="}, {tokWord, "1"},
			{tokWord, "c"}, {tokOp, "<"}, {tokWord, "1"}, {tokWord, "d"}, {tokOp, ">"}, {tokWord, "1"},
			{tokWord, "e"}, {tokOp, "<="}, {tokWord, "1"}, {tokWord, "f"}, {tokOp, ">="}, {tokWord, "1"},
			{tokWord, "g"}, {tokOp, "=~"}, {tokWord, "x"}, {tokWord, "h"}, {tokOp, "=>"}, {tokWord, "1"},
			{tokWord, "i"}, {tokOp, "=<"}, {tokWord, "1"}, {tokEOF, ""}}},
		{`'it"s' "it's"`, []tok{{tokString, `it"s`}, {tokString, "it's"}, {tokEOF, ""}}},
		{`/a\/b/ /x y/`, []tok{{tokRegex, `a\/b`}, {tokRegex, "x y"}, {tokEOF, ""}}},
		{"f('/etc/x').md5", []tok{{tokWord, "f"}, {tokLParen, "("}, {tokString, "/etc/x"}, {tokRParen, ")"}, {tokWord, ".md5"}, {tokEOF, ""}}},
		{"a/b::c AND", []tok{{tokWord, "a/b::c"}, {tokWord, "AND"}, {tokEOF, ""}}},
		{"  ", []tok{{tokEOF, ""}}},
	}
	for _, tt := range tests {
		toks, err := lex(tt.in)
		if err != nil {
			t.Errorf("lex(%q): %v", tt.in, err)
			continue
		}
		var got []tok
		for _, x := range toks {
			got = append(got, tok{x.kind, x.text})
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("lex(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
	}
}

func TestParseCompound(t *testing.T) {
	fact := func(name, op, value string) *Expr {
		return &Expr{Op: OpFact, Fact: &FactFilter{Fact: name, Operator: op, Value: value}}
	}
	class := func(c string) *Expr { return &Expr{Op: OpClass, Class: c} }
	and := func(args ...*Expr) *Expr { return &Expr{Op: OpAnd, Args: args} }
	or := func(args ...*Expr) *Expr { return &Expr{Op: OpOr, Args: args} }
	not := func(x *Expr) *Expr { return &Expr{Op: OpNot, Args: []*Expr{x}} }
	data := func(d DataCall) *Expr { return &Expr{Op: OpData, Data: &d} }

	tests := []struct {
		in        string
		want      *Expr
		canonical string
	}{
		{"apache", class("apache"), "apache"},
		// MCollective's documented policy rule: puppet() takes no query.
		{"(puppet().enabled=false and environment=production) or environment=development",
			or(and(data(DataCall{Plugin: "puppet", Field: "enabled", Operator: "==", Value: "false"}), fact("environment", "==", "production")), fact("environment", "==", "development")),
			"(puppet('').enabled == false and environment == production) or environment == development"},
		{"/^role::/", class("/^role::/"), "/^role::/"},
		{"os=Debian", fact("os", "==", "Debian"), "os == Debian"},
		{"os == Debian", fact("os", "==", "Debian"), "os == Debian"},
		{"a!=1", fact("a", "!=", "1"), "a != 1"},
		{"a<1", fact("a", "<", "1"), "a < 1"},
		{"a>1", fact("a", ">", "1"), "a > 1"},
		{"a<=1", fact("a", "<=", "1"), "a <= 1"},
		{"a>=1", fact("a", ">=", "1"), "a >= 1"},
		{"a=>1", fact("a", ">=", "1"), "a >= 1"},
		{"a=<1", fact("a", "<=", "1"), "a <= 1"},
		{"a=~^x", fact("a", "=~", "^x"), "a =~ /^x/"},
		{"a=~/^x/", fact("a", "=~", "^x"), "a =~ /^x/"},
		{"a=/^x/", fact("a", "=~", "^x"), "a =~ /^x/"},
		{"a=~'x/y'", fact("a", "=~", "x/y"), "a =~ 'x/y'"},
		{"a='/x/'", fact("a", "==", "/x/"), "a == '/x/'"}, // quoted: literal, not regex
		{`a="it's"`, fact("a", "==", "it's"), `a == "it's"`},
		{`a='say "hi"'`, fact("a", "==", `say "hi"`), `a == 'say "hi"'`},
		{`a=''`, fact("a", "==", ""), `a == ''`},
		{`a='and'`, fact("a", "==", "and"), `a == 'and'`},
		// precedence: and binds tighter than or
		{"a or b and c", or(class("a"), and(class("b"), class("c"))), "a or (b and c)"},
		{"a and b or c", or(and(class("a"), class("b")), class("c")), "(a and b) or c"},
		{"(a or b) and c", and(or(class("a"), class("b")), class("c")), "(a or b) and c"},
		{"a and b and c", and(class("a"), class("b"), class("c")), "a and b and c"},
		{"a or b or c", or(class("a"), class("b"), class("c")), "a or b or c"},
		{"not a and b", and(not(class("a")), class("b")), "not a and b"},
		{"!a or !b", or(not(class("a")), not(class("b"))), "not a or not b"},
		{"not (a or b)", not(or(class("a"), class("b"))), "not (a or b)"},
		{"not not a", not(not(class("a"))), "not not a"},
		{"((a))", class("a"), "a"},
		{"!x=1", not(fact("x", "==", "1")), "not x == 1"},
		// data functions
		{"fstat('/etc/issue')", data(DataCall{Plugin: "fstat", Query: "/etc/issue"}), "fstat('/etc/issue')"},
		{"fstat('/etc/issue').md5=95a5a06e937cbbb554fd483e62c1c156",
			data(DataCall{Plugin: "fstat", Query: "/etc/issue", Field: "md5", Operator: "==", Value: "95a5a06e937cbbb554fd483e62c1c156"}),
			"fstat('/etc/issue').md5 == 95a5a06e937cbbb554fd483e62c1c156"},
		{`package("openssl").installed=true`, data(DataCall{Plugin: "package", Query: "openssl", Field: "installed", Operator: "==", Value: "true"}), "package('openssl').installed == true"},
		{"fact('os.family')=Debian", data(DataCall{Plugin: "fact", Query: "os.family", Operator: "==", Value: "Debian"}), "fact('os.family') == Debian"},
		{"f('x').a.b > 3", data(DataCall{Plugin: "f", Query: "x", Field: "a.b", Operator: ">", Value: "3"}), "f('x').a.b > 3"},
		{"f('x').name=~/^a/", data(DataCall{Plugin: "f", Query: "x", Field: "name", Operator: "=~", Value: "^a"}), "f('x').name =~ /^a/"},
		{"f('it\"s')", data(DataCall{Plugin: "f", Query: `it"s`}), `f('it"s')`},
		{"os=Debian and (apache or /^nginx/) and not fstat('/etc/nologin')",
			and(fact("os", "==", "Debian"), or(class("apache"), class("/^nginx/")), not(data(DataCall{Plugin: "fstat", Query: "/etc/nologin"}))),
			"os == Debian and (apache or /^nginx/) and not fstat('/etc/nologin')"},
	}
	for _, tt := range tests {
		got, err := ParseCompound(tt.in)
		if err != nil {
			t.Errorf("ParseCompound(%q): %v", tt.in, err)
			continue
		}
		if diff := cmp.Diff(tt.want, got); diff != "" {
			t.Errorf("ParseCompound(%q) mismatch (-want +got):\n%s", tt.in, diff)
		}
		if s := got.String(); s != tt.canonical {
			t.Errorf("ParseCompound(%q).String() = %q, want %q", tt.in, s, tt.canonical)
		}
		again, err := ParseCompound(got.String())
		if err != nil || !again.Equal(got) {
			t.Errorf("re-parse of %q = %v, %v; want equal tree", got.String(), again, err)
		}
	}
}

func TestParseCompoundErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string // exact error
	}{
		{"", "compound filter: empty expression"},
		{"   ", "compound filter: empty expression"},
		{"a and", "compound filter: unexpected end of input at column 6, expected a statement"},
		{"a or", "compound filter: unexpected end of input at column 5, expected a statement"},
		{"and a", `compound filter: unexpected "and" at column 1, expected a statement`},
		{"a and and b", `compound filter: unexpected "and" at column 7, expected a statement`},
		{"os=Debian or and x", `compound filter: unexpected "and" at column 14, expected a statement`},
		{"not", "compound filter: unexpected end of input at column 4, expected a statement"},
		{"(a or b", `compound filter: unclosed "(" at column 1`},
		{"((a)", `compound filter: unclosed "(" at column 1`},
		{"a)", `compound filter: unbalanced ")" at column 2`},
		{"()", `compound filter: unbalanced ")" at column 2`},
		{"(a b)", `compound filter: unexpected "b" at column 4, expected "and", "or" or ")"`},
		{"a b", `compound filter: unexpected "b" at column 3, expected "and" or "or"`},
		{"a=", `compound filter: unexpected end of input at column 3, expected a value after "="`},
		{"a==and", `compound filter: unexpected "and" at column 4, expected a value after "=="`},
		{"a===b", `compound filter: unexpected "=" at column 4, expected a value after "=="`},
		{"=b", `compound filter: unexpected "=" at column 1, expected a statement`},
		{"a<=/x/", `compound filter: regex value "/x/" needs =, == or =~, not "<=" at column 4`},
		{"/[/", "compound filter: bad regex \"/[/\" at column 1: error parsing regexp: missing closing ]: `[`"},
		{"a=~/(/", "compound filter: bad regex \"/(/\" at column 4: error parsing regexp: missing closing ): `(`"},
		{"a=~'['", "compound filter: bad regex \"'['\" at column 4: error parsing regexp: missing closing ]: `[`"},
		{"//", `compound filter: empty regex "//" at column 1`},
		{"a=//", `compound filter: empty regex "//" at column 3`},
		{"a='x", `compound filter: unterminated string "'x" at column 3`},
		{`a="x'`, `compound filter: unterminated string "\"x'" at column 3`},
		{"/abc", `compound filter: unterminated regex "/abc" at column 1`},
		{`/a\/`, `compound filter: unterminated regex "/a\\/" at column 1`},
		{"fstat(/etc/issue)", `compound filter: unquoted data function argument: unexpected "/etc/" at column 7, expected a quoted argument such as fstat('...')`},
		{"fstat(etc)", `compound filter: unquoted data function argument: unexpected "etc" at column 7, expected a quoted argument such as fstat('...')`},
		{"fstat()", `compound filter: missing data function argument at column 7, expected a quoted argument such as fstat('...')`},
		{"puppet(", `compound filter: unquoted data function argument: unexpected end of input at column 8, expected a quoted argument such as puppet('...')`},
		{"fstat('a'", `compound filter: unexpected end of input at column 10, expected ")"`},
		{"fstat('a' 'b')", `compound filter: unexpected "'b'" at column 11, expected ")"`},
		{"fs.tat('a')", `compound filter: bad data function name "fs.tat" at column 1`},
		{"fstat('a').", `compound filter: bad data field "." at column 11`},
		{"fstat('a').x..y", `compound filter: bad data field ".x..y" at column 11`},
		{"fstat('a') .size", `compound filter: unexpected ".size" at column 12, expected "and" or "or"`},
		{"fstat('a').size>", `compound filter: unexpected end of input at column 17, expected a value after ">"`},
		{"a='\xc7'", "compound filter: invalid UTF-8 at column 4"},
		{"é and", "compound filter: unexpected end of input at column 6, expected a statement"}, // columns count characters
		{strings.Repeat("(", 101) + "a" + strings.Repeat(")", 101), `compound filter: expression nested too deeply at column 101`},
		{strings.Repeat("not ", 101) + "a", `compound filter: expression nested too deeply at column 401`},
	}
	for _, tt := range tests {
		e, err := ParseCompound(tt.in)
		if err == nil {
			t.Errorf("ParseCompound(%q) = %v, want error %q", tt.in, e, tt.want)
			continue
		}
		if err.Error() != tt.want {
			t.Errorf("ParseCompound(%q) error:\n got %s\nwant %s", tt.in, err, tt.want)
		}
	}

	var se *SyntaxError
	if _, err := ParseCompound("a and and"); !errors.As(err, &se) || se.Column != 7 {
		t.Errorf("want *SyntaxError at column 7, got %#v", err)
	}
}

func TestEval(t *testing.T) {
	n := newTestNode()
	tests := []struct {
		in   string
		want bool
	}{
		// statements
		{"apache", true},
		{"nginx", false},
		{"/^role::/", true},
		{"/^nginx/", false},
		{"os.family=Debian", true},
		{"os.family='Debian'", true},
		{"os.family=\"Debian\"", true},
		{"os.family!=Debian", false},
		{"cpus>2", true},
		{"cpus<2", false},
		{"cpus>=4", true},
		{"cpus<=3", false},
		{"cpus=>4", true},
		{"cpus=<4", true},
		{"kernel=~^Lin", true},
		{"kernel=/^Lin/", true},
		{"kernel='/^Lin/'", false}, // quoted value is literal
		{"roles=cache", true},
		{"nonexistent=true", false},
		{"nonexistent!=true", false},
		{"not nonexistent=true", true},
		// boolean logic and precedence
		{"apache and nginx", false},
		{"apache or nginx", true},
		{"nginx or apache and cpus=4", true},
		{"nginx or apache and cpus=5", false},
		{"(nginx or apache) and cpus=5", false},
		{"apache and cpus=5 or kernel=Linux", true},  // (apache and cpus=5) or kernel=Linux
		{"apache and (cpus=5 or kernel=BSD)", false}, // parentheses override
		{"not apache", false},
		{"!apache", false},
		{"not nginx", true},
		{"not not apache", true},
		{"not apache or nginx", false},
		{"not (apache and nginx)", true},
		{"os.family=Debian and (apache or /^nginx/) and not fstat('/nope')", true},
		// data functions
		{"fstat('/etc/issue')", true},                                       // present=true
		{"fstat('/nope')", false},                                           // present=false
		{"fstat('/broken')", false},                                         // plugin error
		{"not fstat('/broken')", false},                                     // a failure never matches, not even under "not"
		{"kernel=Linux or fstat('/broken')", true},                          // not needed: or stops at kernel=Linux
		{"fstat('/broken') or kernel=Linux", false},                         // needed and failed: fail closed
		{"fstat('/etc/issue').md5=95a5a06e937cbbb554fd483e62c1c156", true},  // field comparison
		{"fstat('/etc/issue').md5=00000000000000000000000000000000", false}, //
		{"fstat('/etc/issue').size>20", true},                               // numeric field
		{"fstat('/etc/issue').size<20", false},                              //
		{"fstat('/etc/issue').type=~^fi", true},                             // regex on field
		{"fstat('/etc/issue').missing=x", false},                            // missing field
		{"fstat('/etc/issue').present", true},                               // truthy field
		{"fstat('/etc/issue').type", false},                                 // "file" is not truthy
		{"package('openssl').installed=true", true},                         //
		{"package('openssl').version>=4", false},                            // "3.0.11" is no number: string compare
		{"package('openssl').version=~^3\\.", true},                         //
		{"collective('prod')", true},                                        // first boolean field: member
		{"collective('dev')", false},                                        //
		{"fact('os.family')=Debian", true},                                  // compares "value"
		{"sysctl('vm.swappiness')>50", true},                                //
		{"odd('x')", false},                                                 // no boolean field at all
		{"odd('x').count=3", true},                                          //
		{"unknown('x')", false},                                             //
	}
	for _, tt := range tests {
		e, err := ParseCompound(tt.in)
		if err != nil {
			t.Errorf("ParseCompound(%q): %v", tt.in, err)
			continue
		}
		if got := e.Eval(t.Context(), n); got != tt.want {
			t.Errorf("Eval(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestEvalInvalidTree(t *testing.T) {
	n := newTestNode()
	tests := []struct {
		name string
		e    *Expr
	}{
		{"nil", nil},
		{"unknown op", &Expr{Op: "xor"}},
		{"empty and", &Expr{Op: OpAnd}},
		{"empty or", &Expr{Op: OpOr}},
		{"not without operand", &Expr{Op: OpNot}},
		{"nil operand", &Expr{Op: OpOr, Args: []*Expr{nil, {Op: OpClass, Class: "apache"}}}},
		{"fact without fact", &Expr{Op: OpFact}},
		{"bad fact operator", &Expr{Op: OpFact, Fact: &FactFilter{"kernel", "~~", "Linux"}}},
		{"class without name", &Expr{Op: OpClass}},
		{"data without plugin", &Expr{Op: OpData, Data: &DataCall{}}},
		{"data value without operator", &Expr{Op: OpData, Data: &DataCall{Plugin: "fstat", Query: "/etc/issue", Value: "x"}}},
		// an invalid part poisons the whole tree, even under "not"
		{"not bad regex", &Expr{Op: OpNot, Args: []*Expr{{Op: OpClass, Class: "/[/"}}}},
		{"or with bad regex", &Expr{Op: OpOr, Args: []*Expr{{Op: OpClass, Class: "apache"}, {Op: OpFact, Fact: &FactFilter{"kernel", "=~", "("}}}}},
		{"not bad data regex", &Expr{Op: OpNot, Args: []*Expr{{Op: OpData, Data: &DataCall{Plugin: "fstat", Query: "/etc/issue", Field: "md5", Operator: "=~", Value: "["}}}}},
	}
	for _, tt := range tests {
		if tt.e.Validate() == nil {
			t.Errorf("%s: Validate() = nil, want error", tt.name)
		}
		if tt.e.Eval(t.Context(), n) {
			t.Errorf("%s: Eval = true, want false", tt.name)
		}
		f := &Filter{Compound: []*Expr{tt.e}}
		if f.Match(t.Context(), n) || f.Validate() == nil {
			t.Errorf("%s: Filter.Match = true or Validate = nil", tt.name)
		}
	}
}

func TestFunctions(t *testing.T) {
	e, err := ParseCompound("fstat('/a') and (package('x').installed=true or not fstat('/b')) and apache")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := e.Functions(), []string{"fstat", "package"}; !cmp.Equal(got, want) {
		t.Errorf("Functions() = %v, want %v", got, want)
	}
	known := func(name string) bool { return name == "fstat" }
	err = e.ValidateFunctions(known)
	if err == nil || err.Error() != `compound filter: unknown data plugin "package"` {
		t.Errorf("ValidateFunctions error = %v", err)
	}
	if err := e.ValidateFunctions(func(string) bool { return true }); err != nil {
		t.Errorf("ValidateFunctions(all known) = %v", err)
	}
	plain, _ := ParseCompound("apache")
	if got := plain.Functions(); len(got) != 0 {
		t.Errorf("Functions() of a class = %v, want none", got)
	}
}

// TestEvalErrNamesTheFailure: callers that must fail closed with a reason
// (ActionPolicy) learn which data call failed.
func TestEvalErrNamesTheFailure(t *testing.T) {
	e, err := ParseCompound("not fstat('/broken')")
	if err != nil {
		t.Fatal(err)
	}
	ok, err := e.EvalErr(t.Context(), newTestNode())
	if ok || err == nil || !strings.Contains(err.Error(), "fstat('/broken')") {
		t.Fatalf("EvalErr = %v, %v; want false and an error naming the call", ok, err)
	}
}
