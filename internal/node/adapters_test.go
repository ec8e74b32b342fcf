package node_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/agents"
	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/node"
	"github.com/marionette/mco/internal/pkitest"
	"github.com/marionette/mco/internal/server"
	"github.com/marionette/mco/protocol"
)

const loginDDL = `{"metadata": {"name": "login", "description": "d", "author": "a", "license": "l",
  "version": "1", "url": "https://example.net", "timeout": 5},
 "actions": [{"action": "set", "description": "d", "display": "always",
  "input": {"user": {"prompt": "u", "description": "d", "type": "string", "optional": false, "maxlength": 0},
            "password": {"prompt": "p", "description": "d", "type": "string", "optional": false, "maxlength": 0, "secret": true}},
  "output": {}}]}`

// TestAuditorMasksSecretInputs: inputs the DDL marks secret never reach the
// audit log; the others are recorded as sent.
func TestAuditorMasksSecretInputs(t *testing.T) {
	d, err := ddl.Parse("login.json", []byte(loginDDL))
	if err != nil {
		t.Fatal(err)
	}
	a := agent.New(d)
	a.Register("set", func(_ context.Context, _ *agent.Request, _ *agent.Reply) {})
	reg := agents.NewRegistry(a)
	req := &protocol.Request{ID: "r1", Agent: "login", Action: "set", CallerID: "cert=alice.mcollective",
		Data: map[string]any{"user": "alice", "password": "hunter2"}, Time: time.Now().UnixNano()}
	data := auditOnce(t, reg.Secrets, server.AuditEvent{Request: req, Decision: server.Decision{Allowed: true, Rule: "x.policy:2"}})
	if strings.Contains(string(data), "hunter2") {
		t.Fatalf("secret in the audit log: %s", data)
	}
	var rec audit.RequestRecord
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Arguments["password"] != audit.Mask || rec.Arguments["user"] != "alice" || rec.Decision != audit.Allow || rec.PolicyLine != "x.policy:2" {
		t.Fatalf("record = %+v", rec)
	}
	if req.Data["password"] != "hunter2" {
		t.Fatal("masking changed the request the action runs with")
	}
}

// TestExternalAgentsKeepBuiltinNames: an external agent may not take a
// built-in agent's name, and a disabled one is not hosted.
func TestExternalAgentsKeepBuiltinNames(t *testing.T) {
	mk := func(name string) *agent.Agent {
		d, err := ddl.Parse(name+".json", []byte(strings.ReplaceAll(loginDDL, `"name": "login"`, `"name": "`+name+`"`)))
		if err != nil {
			t.Fatal(err)
		}
		return agent.New(d)
	}
	ca := pkitest.New(t, "node test CA")
	n, err := node.Build(node.Spec{Identity: ca.Node("node1"), Verifier: ca.Verifier(), Disabled: []string{"banned"}})
	if err != nil {
		t.Fatal(err)
	}
	names, err := n.SetExternal([]*agent.Agent{mk("rpcutil"), mk("greeter"), mk("banned")})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(names, []string{"greeter"}) || !slices.Equal(n.AgentNames(), []string{"greeter", "rpcutil"}) {
		t.Fatalf("external %v, hosted %v; want only greeter beside rpcutil", names, n.AgentNames())
	}
	if _, err := n.SetExternal(nil); err != nil || !slices.Equal(n.AgentNames(), []string{"rpcutil"}) {
		t.Fatalf("after the files went away: hosted %v (%v), want rpcutil", n.AgentNames(), err)
	}
}

// TestAuditorWritesRequestWithCompletion: a completion that carries its
// request record (a quick action's) becomes the request line and then the
// completion line, chained.
func TestAuditorWritesRequestWithCompletion(t *testing.T) {
	req := &protocol.Request{ID: "r1", Agent: "rpcutil", Action: "ping", CallerID: "cert=alice.mcollective", Time: time.Now().UnixNano()}
	data := auditOnce(t, nil, server.AuditEvent{Request: req, Decision: server.Decision{Allowed: true, Rule: "rpcutil.policy:2"},
		Status: protocol.OK, Message: "OK", Complete: true, WithRequest: true})
	if n, err := audit.Verify(strings.NewReader(string(data))); err != nil || n != 2 {
		t.Fatalf("verify: %d lines, %v\n%s", n, err, data)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var first audit.RequestRecord
	var second audit.CompleteRecord
	if err := json.Unmarshal([]byte(lines[0]), &first); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(lines[1]), &second); err != nil {
		t.Fatal(err)
	}
	if first.Kind != audit.KindRequest || first.RequestID != "r1" || first.Decision != audit.Allow || first.PolicyLine != "rpcutil.policy:2" {
		t.Fatalf("first line %+v", first)
	}
	if second.Kind != audit.KindComplete || second.RequestID != "r1" || second.StatusMessage != "OK" {
		t.Fatalf("second line %+v", second)
	}
}

// auditOnce records ev with a node.Auditor on a new audit log and returns
// the log's contents.
func auditOnce(t *testing.T, secrets func(agent, action string) []string, ev server.AuditEvent) []byte {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	log, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	aud := &node.Auditor{Log: log, Node: "node1", Secrets: secrets}
	if err := aud.Audit(ev); err != nil {
		t.Fatal(err)
	}
	if err := log.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}
