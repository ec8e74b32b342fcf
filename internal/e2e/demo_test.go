package e2e

import (
	"strings"
	"testing"
)

// TestDemo keeps the README's first command working: the tour runs every
// step against its own throw-away collective and exits 0.
func TestDemo(t *testing.T) {
	t.Parallel()
	r := mco(t, "", "demo")
	if r.code != 0 {
		t.Fatalf("mco demo: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{
		"12 replies",                   // ping
		"web1.dev",                     // find -F role=web
		"Summary of Value:",            // rpc with a DDL aggregate
		"Report for fact: role",        // facts
		"You are not authorized",       // the intern is denied
		"rpcutil.daemon_stats: deny",   // and the audit log says so
		"OK, 14 records, chain intact", // audit verify
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, r.stdout)
		}
	}
}
