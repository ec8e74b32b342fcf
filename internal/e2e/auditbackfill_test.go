package e2e

import (
	"path/filepath"
	"strings"
	"testing"
)

// collectorPolicy returns server.conf lines that let collector.mcollective,
// and no one else, read the audit log with `audit lines`: audit.readers and
// an ActionPolicy rule (docs/security.md, Auditing); other agents stay open.
func collectorPolicy(t *testing.T, c *collective) []string {
	t.Helper()
	dir := filepath.Join(c.dir, "collector-policy")
	writeFile(t, filepath.Join(dir, "audit.policy"),
		"policy default deny\nallow\tcert=collector.mcollective\tlines\t*\t*\n")
	return []string{"policy.dir = " + dir, "policy.allow_unconfigured = true", "audit.readers = collector.mcollective"}
}

// TestLateAuditCollectorGetsEarlierLines: a collector started after the node
// already wrote audit lines fetches them from the node's log (signed RPC,
// authorized by the node's policy) and ends with the node's complete chain.
// The audit agent itself is denied to other callers.
func TestLateAuditCollectorGetsEarlierLines(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	c.client("collector.mcollective")
	br := startNamedBroker(t, c, "broker", 0, "collectors = collector.mcollective")
	alice := confFor(t, c, "alice.mcollective", br.url)
	collectorConf := confFor(t, c, "collector.mcollective", br.url)
	node := "late.e2e"
	local := filepath.Join(c.dir, "late.log")
	runDaemon(t, c, br.url, node, alice, append(collectorPolicy(t, c), "audit.log = "+local)...)
	callMany(t, c, alice, node, 4)

	t.Run("audit lines is authorized", func(t *testing.T) {
		r := mco(t, "", "-c", alice, "rpc", "audit", "lines", "from=1", "-I", node)
		if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "not authorized") {
			t.Errorf("alice may read the audit log: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		r = mco(t, "", "-c", collectorConf, "rpc", "audit", "lines", "from=1", "to=2", "-I", node, "--json")
		if r.code != 0 || !strings.Contains(r.stdout, `\"seq\":2`) || strings.Contains(r.stdout, `\"seq\":3`) {
			t.Errorf("collector reading lines 1-2: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})

	dir := filepath.Join(c.dir, "central")
	col := startProcess(t, "collector", "", "-c", collectorConf, "audit", "collect", "--dir", dir)
	col.waitStderr(t, "collecting audit lines")
	callMany(t, c, alice, node, 1) // a live line reveals the gap

	collected := filepath.Join(dir, node+".log")
	missing := waitCollected(t, local, collected)
	if len(missing) > 0 {
		t.Fatalf("the late collector lacks %d of the node's audit lines; first missing:\n%s\ncollector log:\n%s",
			len(missing), missing[0], col.stderrText())
	}
	if r := mco(t, "", "audit", "verify", collected); r.code != 0 {
		t.Errorf("collected audit log does not verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if log := col.stderrText(); !strings.Contains(log, "audit gap filled") || strings.Contains(log, "chain broken") {
		t.Errorf("want the gap filled and no broken link:\n%s", log)
	}
}
