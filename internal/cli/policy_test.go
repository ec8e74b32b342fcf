package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/marionette/mco/internal/cli"
)

// TestPolicyCommands checks the exit codes and deciding lines of `mco policy
// check` and `mco policy lint`; the policy semantics themselves are tested in
// internal/authz.
func TestPolicyCommands(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("rpcutil.policy", "policy default deny\nallow\tcert=alice\t*\t*\ndeny\tcert=bob\t*\t*\nallow\tops\tstatus\tos=linux\t*\n")
	write("groups", "ops cert=carol\n")
	noDefault := write("nodefault.policy", "allow\tcert=alice\tping\t*\n")
	bad := write("bad.policy", "policy default allow\nallow cert=x * *\n")
	factsFile := write("facts.yaml", "os: linux\n")
	badFacts := write("bad.json", "{nope")
	check := func(extra ...string) []string {
		return append([]string{"policy", "check", "--policy", good, "--agent", "rpcutil"}, extra...)
	}

	tests := []struct {
		name string
		args []string
		code int
		want []string // substrings of stdout+stderr
	}{
		{"allowed by rule", check("--caller", "cert=alice", "--action", "ping"), 0, []string{"allow\n", "rpcutil.policy:2: allow\tcert=alice"}},
		{"denied by rule", check("--caller", "cert=bob", "--action", "ping"), 1, []string{"deny\n", "rpcutil.policy:3: deny"}},
		{"prefix of an allowed caller", check("--caller", "cert=ali", "--action", "ping"), 1, []string{"policy default at", "rpcutil.policy:1"}},
		{"group and facts", check("--caller", "cert=carol", "--action", "status", "--facts", factsFile), 0, []string{"rpcutil.policy:4"}},
		{"facts rule without facts", check("--caller", "cert=carol", "--action", "status"), 1, []string{"policy default"}},
		{"no default line", []string{"policy", "check", "--policy", noDefault, "--agent", "nodefault", "--caller", "cert=bob", "--action", "ping"}, 1, []string{"no \"policy default\" line"}},
		{"invalid policy fails closed", []string{"policy", "check", "--policy", bad, "--agent", "bad", "--caller", "cert=x", "--action", "ping"}, 1, []string{"deny\n", "bad.policy:2:"}},
		{"missing policy file", []string{"policy", "check", "--policy", filepath.Join(dir, "none.policy"), "--agent", "none", "--caller", "cert=x", "--action", "ping"}, 2, []string{"no such file"}},
		{"bad facts", check("--caller", "cert=alice", "--action", "ping", "--facts", badFacts), 2, []string{"facts"}},
		{"missing flag", check("--action", "ping"), 2, []string{"--caller"}},
		{"caller without =", check("--caller", "alice", "--action", "ping"), 2, []string{"cert=NAME"}},
		{"lint ok", []string{"policy", "lint", good, filepath.Join(dir, "groups")}, 0, []string{good + ": ok"}},
		{"lint errors", []string{"policy", "lint", good, bad}, 1, []string{"bad.policy:2: fields must be separated by TABs"}},
		{"lint unreadable", []string{"policy", "lint", filepath.Join(dir, "none.policy")}, 2, []string{"no such file"}},
		{"search bad since", []string{"audit", "search", "--dir", dir, "--since", "yesterday"}, 1, []string{"RFC 3339"}},
		{"search missing dir", []string{"audit", "search", "--dir", filepath.Join(dir, "none")}, 1, []string{"not a directory"}},
		{"search nothing", []string{"audit", "search", "--dir", dir, "--since", "2h"}, 0, []string{"No matching"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &out, Getenv: func(string) string { return "" }}
			code := cli.Run(app, tc.args)
			if code != tc.code {
				t.Errorf("exit %d, want %d\n%s", code, tc.code, out.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
		})
	}
}
