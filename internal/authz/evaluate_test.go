package authz

import (
	"strings"
	"testing"

	"github.com/marionette/mco/filter"
)

// lines joins policy lines; rule lines spell their TABs as \t.
func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// evalCase is one request against one policy: the policy text, the groups
// file, who calls what, the node, and the decision expected.
type evalCase struct {
	name    string
	policy  string
	groups  string
	caller  string
	action  string
	node    filter.Node // nil: no node information
	allowed bool
	line    int    // deciding line, 0 for none
	reason  string // substring of Decision.Reason
}

func runEvalCases(t *testing.T, cases []evalCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, errs := ParsePolicy("test.policy", strings.NewReader(tc.policy))
			groups, err := ParseGroups("groups", strings.NewReader(tc.groups))
			if err != nil {
				t.Fatalf("groups: %v", err)
			}
			d := p.Evaluate(t.Context(), tc.caller, tc.action, groups, tc.node)
			if d.Allowed != tc.allowed || d.Line != tc.line || !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("Evaluate(%q, %q) = %+v\nwant allowed=%v line=%d reason~%q\nparse errors: %v",
					tc.caller, tc.action, d, tc.allowed, tc.line, tc.reason, errs)
			}
			if d.File != "test.policy" {
				t.Errorf("File = %q, want test.policy", d.File)
			}
			if d.Reason == ReasonMatchedRule && d.Rule == "" {
				t.Errorf("matched rule but Rule text is empty")
			}
		})
	}
}

// TestEvaluateCallersActions covers the rules that need no node data: caller
// and action tokens, groups, ordering and defaults.
func TestEvaluateCallersActions(t *testing.T) {
	const alice = "allow\tcert=alice.mcollective\t*\t*\t*"
	runEvalCases(t, []evalCase{
		{name: "exact caller", policy: lines(alice), caller: "cert=alice.mcollective", action: "status",
			allowed: true, line: 1, reason: ReasonMatchedRule},
		{name: "caller prefix does not match", policy: lines(alice), caller: "cert=alice", action: "status",
			reason: ReasonNoDefault},
		{name: "caller extension does not match", policy: lines(alice), caller: "cert=alice.mcollective.evil", action: "status",
			reason: ReasonNoDefault},
		{name: "caller substring does not match", policy: lines(alice), caller: "alice", action: "status",
			reason: ReasonNoDefault},
		{name: "caller superstring of rule does not match", policy: lines("allow\tcert=ali\t*\t*\t*"), caller: "cert=alice", action: "x",
			reason: ReasonNoDefault},
		{name: "one of several callers", policy: lines("allow\tcert=a cert=b\t*\t*\t*"), caller: "cert=b", action: "x",
			allowed: true, line: 1, reason: ReasonMatchedRule},
		{name: "wildcard caller", policy: lines("allow\t*\tstatus\t*\t*"), caller: "cert=anyone", action: "status",
			allowed: true, line: 1, reason: ReasonMatchedRule},
		{name: "group member", policy: lines("allow\tadmins\t*\t*\t*"), groups: "admins cert=bob cert=carol\n",
			caller: "cert=carol", action: "x", allowed: true, line: 1, reason: ReasonMatchedRule},
		{name: "group non-member", policy: lines("allow\tadmins\t*\t*\t*"), groups: "admins cert=bob cert=carol\n",
			caller: "cert=dave", action: "x", reason: ReasonNoDefault},
		{name: "group member prefix", policy: lines("allow\tadmins\t*\t*\t*"), groups: "admins cert=bob\n",
			caller: "cert=bo", action: "x", reason: ReasonNoDefault},
		{name: "caller named like the group", policy: lines("allow\tadmins\t*\t*\t*"), groups: "admins cert=bob\n",
			caller: "admins", action: "x", reason: ReasonNoDefault},
		{name: "group and exact caller in one field", policy: lines("allow\tadmins cert=eve\t*\t*\t*"), groups: "admins cert=bob\n",
			caller: "cert=eve", action: "x", allowed: true, line: 1, reason: ReasonMatchedRule},
		{name: "unknown group denies", policy: lines("allow\tops\t*\t*\t*"), groups: "admins cert=bob\n",
			caller: "cert=bob", action: "x", line: 1, reason: `unknown group "ops"`},
		{name: "unknown group denies even after an earlier match", policy: lines(alice, "deny\tops\t*\t*\t*"),
			caller: "cert=alice.mcollective", action: "x", line: 2, reason: "test.policy:2: callers field: unknown group"},
		{name: "action token", policy: lines("allow\t*\tstatus info\t*\t*"), caller: "cert=a", action: "info",
			allowed: true, line: 1, reason: ReasonMatchedRule},
		{name: "action prefix does not match", policy: lines("allow\t*\tstatus\t*\t*"), caller: "cert=a", action: "stat",
			reason: ReasonNoDefault},
		{name: "action extension does not match", policy: lines("allow\t*\tstatus\t*\t*"), caller: "cert=a", action: "statusx",
			reason: ReasonNoDefault},
		{name: "first match decides (deny)", policy: lines("deny\tcert=a\trestart\t*\t*", "allow\t*\t*\t*\t*"),
			caller: "cert=a", action: "restart", line: 1, reason: ReasonMatchedRule},
		{name: "first match decides (falls through)", policy: lines("deny\tcert=a\trestart\t*\t*", "allow\t*\t*\t*\t*"),
			caller: "cert=a", action: "status", allowed: true, line: 2, reason: ReasonMatchedRule},
		{name: "default allow", policy: lines("policy default allow", "deny\tcert=a\t*\t*\t*"),
			caller: "cert=b", action: "x", allowed: true, line: 1, reason: ReasonPolicyDefault},
		{name: "default after rules", policy: lines("deny\tcert=a\t*\t*\t*", "policy default allow"),
			caller: "cert=a", action: "x", line: 1, reason: ReasonMatchedRule},
		{name: "default deny", policy: lines("policy default deny", "allow\tcert=a\t*\t*\t*"),
			caller: "cert=b", action: "x", line: 1, reason: ReasonPolicyDefault},
		{name: "only a default line", policy: lines("policy default allow"), caller: "cert=b", action: "x",
			allowed: true, line: 1, reason: ReasonPolicyDefault},
		{name: "empty file denies", policy: "", caller: "cert=b", action: "x", reason: ReasonNoDefault},
		{name: "only comments denies", policy: lines("# nothing here", "", "   "), caller: "cert=b", action: "x", reason: ReasonNoDefault},
		{name: "comments, indented comments and blanks skipped", policy: lines("# top", "", "   # indented", "\t# tabbed", alice),
			caller: "cert=alice.mcollective", action: "x", allowed: true, line: 5, reason: ReasonMatchedRule},
		{name: "CRLF line endings", policy: "# c\r\npolicy default deny\r\n" + alice + "\r\n",
			caller: "cert=alice.mcollective", action: "x", allowed: true, line: 3, reason: ReasonMatchedRule},
		{name: "several TABs between fields", policy: lines("allow\t\t\tcert=a\t\tstatus\t*\t\t*"),
			caller: "cert=a", action: "status", allowed: true, line: 1, reason: ReasonMatchedRule},
		{name: "leading and trailing blanks on a rule", policy: lines("  allow\tcert=a\t*\t*\t*\t "),
			caller: "cert=a", action: "x", allowed: true, line: 1, reason: ReasonMatchedRule},
		{name: "4-field wildcard compound", policy: lines("allow\tcert=a\t*\t*"), caller: "cert=a", action: "x",
			allowed: true, line: 1, reason: ReasonMatchedRule},
		{name: "invalid line denies everything", policy: lines(alice, "allow cert=b * * *"),
			caller: "cert=alice.mcollective", action: "x", line: 2, reason: "policy file invalid: test.policy:2:"},
	})
}

// TestEvaluateFactsClasses covers the 5-field conditions and 4-field compound
// expressions. Fact comparisons and compound expressions are evaluated by the
// filter package.
func TestEvaluateFactsClasses(t *testing.T) {
	debianWeb := &filter.StaticNode{
		Name: "web1",
		FactValues: map[string]any{
			"os":      map[string]any{"family": "Debian", "release": map[string]any{"major": "11"}},
			"cpus":    10,
			"env":     "prod",
			"roles":   []any{"web", "cache"},
			"country": "uk",
		},
		ClassNames: []string{"base", "webserver", "nginx::service"},
		Results:    map[string]map[string]any{"fstat(/etc/issue)": {"md5": "abc123"}},
	}
	redhatDB := &filter.StaticNode{
		Name:       "db1",
		FactValues: map[string]any{"os": map[string]any{"family": "RedHat"}, "cpus": 4, "env": "dev"},
		ClassNames: []string{"base", "dbserver"},
	}
	rule := func(conds string) string { return lines("allow\t*\t*\t" + conds) }
	ok := func(name, policy string, node filter.Node) evalCase {
		return evalCase{name: name, policy: policy, caller: "cert=a", action: "x", node: node, allowed: true, line: 1, reason: ReasonMatchedRule}
	}
	no := func(name, policy string, node filter.Node) evalCase {
		return evalCase{name: name, policy: policy, caller: "cert=a", action: "x", node: node, reason: ReasonNoDefault}
	}
	runEvalCases(t, []evalCase{
		ok("fact equal", rule("os.family=Debian\t*"), debianWeb),
		no("fact differs", rule("os.family=Debian\t*"), redhatDB),
		ok("fact ==", rule("env==prod\t*"), debianWeb),
		ok("fact !=", rule("env!=dev\t*"), debianWeb),
		ok("numeric > (10 > 9 although \"10\" < \"9\")", rule("cpus>9\t*"), debianWeb),
		no("numeric >= fails", rule("cpus>=5\t*"), redhatDB),
		ok("nested fact", rule("os.release.major=11\t*"), debianWeb),
		ok("fact regex", rule("os.family=/^Deb/\t*"), debianWeb),
		ok("array fact matches any element", rule("roles=cache\t*"), debianWeb),
		no("missing fact never matches", rule("nonexistent=true\t*"), debianWeb),
		no("missing fact never matches with !=", rule("nonexistent!=true\t*"), debianWeb),
		ok("all facts hold", rule("os.family=Debian env=prod\t*"), debianWeb),
		no("one fact fails", rule("os.family=Debian env=dev\t*"), debianWeb),
		ok("class present", rule("*\twebserver"), debianWeb),
		no("class absent", rule("*\twebserver"), redhatDB),
		no("class prefix does not match", rule("*\tweb"), debianWeb),
		ok("class with ::", rule("*\tnginx::service"), debianWeb),
		ok("class regex", rule("*\t/^web/"), debianWeb),
		no("class regex no match", rule("*\t/^web/"), redhatDB),
		ok("all classes present", rule("*\tbase webserver"), debianWeb),
		no("one class missing", rule("*\tbase webserver"), redhatDB),
		ok("facts and classes", rule("env=prod\twebserver"), debianWeb),
		no("facts hold, class missing", rule("env=prod\tdbserver"), debianWeb),
		no("no node: fact rule cannot match", rule("env=prod\t*"), nil),
		no("no node: class rule cannot match", rule("*\tbase"), nil),
		ok("compound and", rule("os.family=Debian and webserver"), debianWeb),
		no("compound and fails", rule("os.family=Debian and webserver"), redhatDB),
		ok("compound or with parentheses", rule("(env=dev or cpus>8) and base"), debianWeb),
		ok("compound not", rule("not env=dev"), debianWeb),
		no("compound not fails", rule("not env=dev"), redhatDB),
		ok("compound class regex", rule("/^db/ or webserver"), redhatDB),
		ok("compound data function", rule("fstat('/etc/issue').md5=abc123"), debianWeb),
		no("compound data function differs", rule("fstat('/etc/issue').md5=other"), debianWeb),
		no("no node: compound cannot match", rule("base"), nil),
		{name: "deny on facts, fall through elsewhere", caller: "cert=a", action: "restart", node: debianWeb,
			policy:  lines("policy default allow", "deny\t*\trestart\tenv=prod\t*"),
			allowed: false, line: 2, reason: ReasonMatchedRule},
		{name: "deny on facts does not apply to other node", caller: "cert=a", action: "restart", node: redhatDB,
			policy:  lines("policy default allow", "deny\t*\trestart\tenv=prod\t*"),
			allowed: true, line: 1, reason: ReasonPolicyDefault},
	})
}

func TestEvaluateNilPolicy(t *testing.T) {
	var p *Policy
	if d := p.Evaluate(t.Context(), "cert=a", "x", Groups{}, nil); d.Allowed {
		t.Fatalf("nil policy allowed: %+v", d)
	}
}

func TestDecisionString(t *testing.T) {
	tests := []struct {
		d    Decision
		want string
	}{
		{Decision{Allowed: true, File: "a.policy", Line: 3, Reason: ReasonMatchedRule}, "allow (a.policy:3: matched rule)"},
		{Decision{File: "a.policy", Reason: ReasonNoDefault, Default: true}, "deny (a.policy: no rule matched and no policy default)"},
		{Decision{Allowed: true, Reason: "no policy file: allow_unconfigured"}, "allow (no policy file: allow_unconfigured)"},
	}
	for _, tt := range tests {
		if got := tt.d.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
	}
}
