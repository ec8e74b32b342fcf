package external

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/protocol"
)

// TestMain lets the test binary double as an external agent: the env test links
// an agent to it, because a shell would add variables of its own (PWD) to the
// environment it reports.
func TestMain(m *testing.M) {
	if len(os.Args) == 4 && os.Args[3] == Protocol {
		os.Exit(envDumpAgent(os.Args[2]))
	}
	if len(os.Args) == 4 && os.Args[3] == ActivationProtocol {
		os.Exit(0) // an empty reply: active
	}
	os.Exit(m.Run())
}

// envDumpAgent replies {"env": [...]} with its whole environment.
func envDumpAgent(replyPath string) int {
	b, err := json.Marshal(map[string]any{"env": os.Environ()})
	if err == nil {
		err = os.WriteFile(replyPath, b, 0o600)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// testDDL returns a complete Choria-format DDL for an agent whose actions take
// an optional string input "name" and return an output "message".
func testDDL(name string, actions ...string) string {
	var acts []string
	for _, a := range actions {
		acts = append(acts, fmt.Sprintf(`{
      "action": %q, "description": "test action", "display": "always",
      "input": {"name": {"prompt": "Name", "description": "a name", "type": "string",
                         "validation": "shellsafe", "maxlength": 64, "optional": true}},
      "output": {"message": {"description": "a message", "display_as": "Message", "type": "string"}}
    }`, a))
	}
	return fmt.Sprintf(`{
  "$schema": "https://choria.io/schemas/mcorpc/ddl/v1/agent.json",
  "metadata": {"name": %q, "description": "test agent", "author": "tests", "license": "Apache-2.0",
               "version": "1.0.0", "url": "https://example.net", "timeout": 5},
  "actions": [%s]
}`, name, strings.Join(acts, ","))
}

// writeFile writes a file, creating parent directories.
func writeFile(t testing.TB, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// writeAgent writes <libdir>/agent/<name>.json and a sh executable with body.
func writeAgent(t testing.TB, libdir, name, body string, actions ...string) {
	t.Helper()
	if len(actions) == 0 {
		actions = []string{"run"}
	}
	writeFile(t, filepath.Join(libdir, "agent", name), "#!/bin/sh\n"+body+"\n", 0o755)
	writeFile(t, filepath.Join(libdir, "agent", name+".json"), testDDL(name, actions...), 0o644)
}

// loadOne loads the libdir and returns the named agent, failing on any error.
func loadOne(t testing.TB, opts Options, name string) *agent.Agent {
	t.Helper()
	agents, errs := NewLoader(opts).Load()
	for _, err := range errs {
		t.Errorf("load: %v", err)
	}
	for _, a := range agents {
		if a.Name() == name {
			return a
		}
	}
	t.Fatalf("agent %s not loaded (got %v)", name, names(agents))
	return nil
}

// call runs one action through the agent's handler, as the daemon would.
func call(t testing.TB, ctx context.Context, a *agent.Agent, action string, data map[string]any) *agent.Reply {
	t.Helper()
	h, ok := a.Handler(action)
	if !ok {
		t.Fatalf("agent %s has no handler for %s", a.Name(), action)
	}
	req := &agent.Request{
		ID: "req-1", Agent: a.Name(), Action: action, CallerID: "cert=alice",
		Sender: "node1.example.net", Collective: "mcollective",
		Time: time.Unix(1767225600, 0), TTL: time.Minute, Data: data,
	}
	rep := &agent.Reply{Status: protocol.OK, Data: a.DDL.Action(action).OutputDefaults()}
	h(ctx, req, rep)
	return rep
}

// names lists agent names, for messages and comparisons.
func names(agents []*agent.Agent) []string {
	out := []string{}
	for _, a := range agents {
		out = append(out, a.Name())
	}
	return out
}
