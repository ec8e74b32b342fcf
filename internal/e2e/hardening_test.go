package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// The tests in this file perform the attacks of a red-team review (issue 11)
// against real daemons and fail if one comes back; docs/security.md states
// the guarantees they hold.

// TestCompoundPolicyColumnsDeny: a 5-field deny rule whose classes or facts
// column is a compound expression ("one or three", "!foo=baz") must deny; it
// once read them as literal names, so the rule never matched and the later
// allow let the caller in. A column that cannot be evaluated is reported by
// mco policy lint.
func TestCompoundPolicyColumnsDeny(t *testing.T) {
	c := newCollective(t, collectiveOptions{})
	bobConf := c.client("bob.mcollective")
	policyDir := filepath.Join(c.dir, "policy")
	writeFile(t, filepath.Join(policyDir, "rpcutil.policy"), "policy default deny\n"+
		"deny\tcert=bob.mcollective\tping\t*\tone or three\n"+
		"deny\tcert=bob.mcollective\tget_fact\t!foo=baz\t*\n"+
		"allow\t*\t*\t*\t*\n")
	facts := filepath.Join(c.dir, "facts.yaml")
	writeFile(t, facts, "foo: bar\n")
	classes := filepath.Join(c.dir, "classes.txt")
	writeFile(t, classes, "one\n")
	d := c.startDaemon("compound.e2e", "policy.dir = "+policyDir, "facts = "+facts, "classes = "+classes)

	for _, call := range [][]string{{"ping"}, {"get_fact", "fact=foo"}} {
		args := append([]string{"-c", bobConf, "rpc", "rpcutil"}, call...)
		r := mco(t, "", append(args, "-I", d.name, "-t", "5s")...)
		if r.code != 2 || !strings.Contains(r.stdout, "not authorized") {
			t.Errorf("bob %v: exit %d, want 2 (denied by the compound rule)\nstdout:\n%s\nstderr:\n%s", call, r.code, r.stdout, r.stderr)
		}
	}
	if r := mco(t, "", "-c", c.clientConf(), "rpc", "rpcutil", "get_fact", "fact=foo", "-I", d.name, "-t", "5s"); r.code != 0 {
		t.Errorf("alice get_fact: exit %d, want 0\n%s%s", r.code, r.stdout, r.stderr)
	}

	bad := filepath.Join(c.dir, "bad", "service.policy")
	writeFile(t, bad, "policy default allow\ndeny\t*\t*\t*\tone or (three\n")
	r := mco(t, "", "policy", "lint", bad)
	if r.code != 1 || !strings.Contains(r.stdout+r.stderr, "service.policy:2: classes field: invalid compound expression") {
		t.Errorf("policy lint: exit %d, want 1 naming line 2's classes field\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
