package client

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/pkitest"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// TestReplyTo: replies may be sent to another of the client's own reply
// subjects (Call does not wait for them); any other subject is refused
// before anything is sent.
func TestReplyTo(t *testing.T) {
	url := natstest.Start(t)
	ca := pkitest.New(t, "t")
	v, err := security.NewVerifier(security.VerifierOptions{CA: ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(Config{Collective: testCollective, TTL: time.Minute}, ca.Issue(pki.RoleClient, "alice.mcollective"), v, natstest.Connect(t, url))
	t.Cleanup(c.Close)
	node := natstest.Connect(t, url)
	sub, err := node.SubscribeSync(protocol.NodeSubject(testCollective, web1))
	if err != nil {
		t.Fatal(err)
	}
	if err := node.Flush(); err != nil {
		t.Fatal(err)
	}

	other := protocol.ReplyPrefix(testCollective, protocol.CallerHash("bob.mcollective")) + ".x"
	if _, err := c.Call(context.Background(), Request{Agent: "rpcutil", Action: "ping", Targets: []string{web1}, ReplyTo: other}, func(Result) {}); err == nil {
		t.Fatal("a reply subject of another caller was accepted")
	}
	own := c.ReplyPrefix(testCollective) + ".cron"
	start := time.Now()
	stats, err := c.Call(context.Background(), Request{Agent: "rpcutil", Action: "ping", Targets: []string{web1}, ReplyTo: own, Timeout: time.Minute}, func(Result) {})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 30*time.Second || stats.RequestID == "" {
		t.Fatalf("Call waited for replies that go elsewhere: %+v", stats)
	}
	m, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var env protocol.SecureRequest
	var req protocol.Request
	if err := json.Unmarshal(m.Data, &env); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(env.Request, &req); err != nil {
		t.Fatal(err)
	}
	if req.ReplyTo != own || !req.ProcessResults {
		t.Fatalf("request reply_to %q process_results %v, want %q and true", req.ReplyTo, req.ProcessResults, own)
	}
}
