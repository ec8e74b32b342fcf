package e2e

import (
	"strings"
	"testing"
)

// TestDaemonThroughBinary is the walking skeleton: a real broker, a real
// daemon process, and the real client binary.
func TestDaemonThroughBinary(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	c.startDaemon("node1.e2e")
	c.startDaemon("node2.e2e")
	r := mco(t, "", "-c", c.clientConf(), "ping")
	if r.code != 0 || !strings.Contains(r.stdout, "node1.e2e") || !strings.Contains(r.stdout, "node2.e2e") || !strings.Contains(r.stdout, "2 replies") {
		t.Fatalf("mco ping: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = mco(t, "", "-c", c.clientConf(), "rpc", "rpcutil", "get_fact", "fact=kernel", "-I", "node1.e2e", "-I", "ghost.e2e", "-t", "2s")
	if r.code != 2 || !strings.Contains(r.stdout, "No response from:") || !strings.Contains(r.stdout, "ghost.e2e") {
		t.Fatalf("rpc with a silent node: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// A node addressed directly answers for an agent it does not host
	// (status 2) rather than staying silent.
	r = mco(t, "", "-c", c.clientConf(), "rpc", "nosuchagent", "x", "-I", "node1.e2e", "-t", "5s")
	if r.code != 2 || !strings.Contains(r.stdout, `Unknown agent "nosuchagent"`) {
		t.Fatalf("rpc to an agent the node lacks: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
