package authz

import (
	"errors"
	"strings"
	"testing"
	"testing/iotest"
)

// TestParsePolicyErrors checks that every malformed line is reported with its
// file, line and (where it applies) field, and that the policy then denies.
func TestParsePolicyErrors(t *testing.T) {
	const good = "allow\tcert=a\t*\t*\t*"
	tests := []struct {
		name   string
		policy string
		want   []string // one substring per expected error, in order
	}{
		{"spaces instead of tabs", lines("allow cert=a * * *"),
			[]string{"x.policy:1: fields must be separated by TABs"}},
		{"spaces instead of tabs inside", lines("allow\tcert=a * * *"),
			[]string{"x.policy:1: missing field: want 4 or 5 TAB-separated fields (verb, callers, actions, then compound or facts and classes), got 2 (spaces used instead of TABs?)"}},
		{"unknown verb", lines(good, "permit\tcert=a\t*\t*\t*"),
			[]string{`x.policy:2: unknown verb "permit"`}},
		{"verbs are case-sensitive", lines("Allow\tcert=a\t*\t*\t*"),
			[]string{`x.policy:1: unknown verb "Allow"`}},
		{"missing field", lines("allow\tcert=a\t*"),
			[]string{"x.policy:1: missing field: want 4 or 5 TAB-separated fields (verb, callers, actions, then compound or facts and classes), got 3"}},
		{"too many fields", lines("allow\tcert=a\t*\t*\t*\t*"),
			[]string{"x.policy:1: too many fields: want 4 or 5 TAB-separated fields (verb, callers, actions, then compound or facts and classes), got 6"}},
		{"empty field of spaces", lines("allow\t \t*\t*\t*"),
			[]string{"x.policy:1: callers field: empty field"}},
		{"wildcard mixed with items", lines("allow\t* cert=a\t*\t*\t*"),
			[]string{`x.policy:1: callers field: "*" must be the only item`}},
		{"malformed caller id", lines("allow\tcert=\t*\t*\t*"),
			[]string{`x.policy:1: callers field: caller id "cert=" must look like cert=NAME`}},
		{"misaligned fields: fact in actions", lines("allow\tcert=a\tos.family=Debian\t*"),
			[]string{`x.policy:1: actions field: invalid action name "os.family=Debian"`}},
		{"broken compound expression", lines("allow\tcert=a\t*\t(os.family=Debian and"),
			[]string{"x.policy:1: compound field: invalid expression: "}},
		{"compound with unbalanced parenthesis", lines("allow\tcert=a\t*\tnot (webserver"),
			[]string{"x.policy:1: compound field: invalid expression: "}},
		{"broken fact comparison", lines("allow\tcert=a\t*\t=Debian\t*"),
			[]string{`x.policy:1: facts field: invalid fact comparison "=Debian": `}},
		{"broken class regex", lines("allow\tcert=a\t*\t*\t/[/"),
			[]string{`x.policy:1: classes field: invalid class regex "/[/": `}},
		{"trailing comment after a rule", lines("deny\tcert=a\t*\t*\t*\t# no"),
			[]string{"x.policy:1: '#' after content"}},
		{"comment inside a field", lines("deny\tcert=a #bob\t*\t*\t*"),
			[]string{"x.policy:1: '#' after content"}},
		{"malformed default", lines("policy default maybe"),
			[]string{`x.policy:1: malformed default`}},
		{"default with a typo", lines("policy defualt allow"),
			[]string{`x.policy:1: malformed default`}},
		{"duplicate default", lines("policy default allow", good, "policy default deny"),
			[]string{"x.policy:3: duplicate policy default (first at line 1)"}},
		{"every bad line is reported", lines("nope", good, "allow\t*", "# fine", "policy default"),
			[]string{"x.policy:1:", "x.policy:3:", "x.policy:5:"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, errs := ParsePolicy("x.policy", strings.NewReader(tt.policy))
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors %v, want %d matching %q", len(errs), errs, len(tt.want), tt.want)
			}
			for i, err := range errs {
				if !strings.Contains(err.Error(), tt.want[i]) {
					t.Errorf("error %d = %q, want it to contain %q", i, err, tt.want[i])
				}
				var le *LineError
				if !errors.As(err, &le) || le.File != "x.policy" || le.Line == 0 {
					t.Errorf("error %d is not a positioned *LineError: %#v", i, err)
				}
			}
			if p == nil || p.Err() == nil {
				t.Fatalf("policy with errors must be non-nil and report Err")
			}
			if d := p.Evaluate(t.Context(), "cert=a", "x", Groups{}, nil); d.Allowed || !strings.Contains(d.Reason, "policy file invalid: x.policy:") {
				t.Errorf("invalid policy decided %+v, want deny naming the bad line", d)
			}
		})
	}
}

func TestParsePolicyValid(t *testing.T) {
	tests := []struct {
		name       string
		policy     string
		rules      int
		hasDefault bool
	}{
		{"empty", "", 0, false},
		{"only default", "policy default deny", 0, true},
		{"default with extra blanks", "  policy   default\tallow  \r\n", 0, true},
		{"5 and 4 fields", lines("allow\tcert=a\t*\t*\t*", "deny\t*\tstop\t*"), 2, false},
		{"hash inside a token is not a comment", lines("allow\tcert=a#1\t*\t*\t*"), 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, errs := ParsePolicy("x.policy", strings.NewReader(tt.policy))
			if len(errs) > 0 || p.Err() != nil {
				t.Fatalf("unexpected errors: %v", errs)
			}
			if len(p.rules) != tt.rules || p.HasDefault() != tt.hasDefault || p.Name() != "x.policy" {
				t.Errorf("got %d rules, default %v; want %d, %v", len(p.rules), p.HasDefault(), tt.rules, tt.hasDefault)
			}
		})
	}
}

func TestParsePolicyReadError(t *testing.T) {
	p, errs := ParsePolicy("x.policy", iotest.ErrReader(errors.New("disk on fire")))
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), "x.policy:0: read failed: disk on fire") || p.Err() == nil {
		t.Fatalf("got %v", errs)
	}
}

func TestParseGroups(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		wantErr []string
		member  [2]string // group, caller expected to be a member
	}{
		{name: "valid", text: "# ops team\nadmins cert=bob  cert=carol\r\n\n\tops\tcert=dave\nempty\n",
			member: [2]string{"ops", "cert=dave"}},
		{name: "member without =", text: "admins cert=bob ops\n",
			wantErr: []string{`groups:1: member "ops" of group "admins" is not a caller id`}},
		{name: "duplicate group", text: "a cert=x\nb cert=y\na cert=z\n",
			wantErr: []string{`groups:3: duplicate group "a" (first at line 1)`}},
		{name: "bad group names", text: "* cert=x\ncert=y cert=z\n",
			wantErr: []string{`groups:1: invalid group name "*"`, `groups:2: invalid group name "cert=y"`}},
		{name: "trailing comment", text: "a cert=x # admins\n",
			wantErr: []string{"groups:1: '#' after content"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, err := ParseGroups("groups", strings.NewReader(tt.text))
			if len(tt.wantErr) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if !g.Contains(tt.member[0], tt.member[1]) || !g.Has("empty") || g.Contains("admins", "cert=bo") {
					t.Errorf("membership wrong: %+v", g)
				}
				return
			}
			if err == nil {
				t.Fatalf("want errors %q", tt.wantErr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestZeroGroups(t *testing.T) {
	var g Groups
	if g.Has("x") || g.Contains("x", "cert=a") {
		t.Fatal("zero Groups must be empty")
	}
}
