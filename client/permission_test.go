package client

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/pkitest"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// TestRefusedSubscriptionDoesNotPoisonTheClient: the broker refuses the reply
// subscription of one collective. That call fails naming the refusal; a later
// call in an allowed collective works (the refusal stays the connection's
// LastError forever, which used to fail every later call), and asking the
// refused collective again asks the broker again instead of trusting a
// cached subscription that does not exist there.
func TestRefusedSubscriptionDoesNotPoisonTheClient(t *testing.T) {
	ca := pkitest.New(t, "t")
	id := ca.Issue(pki.RoleClient, "alice.mcollective")
	node := ca.Issue(pki.RoleNode, web1)
	hash := protocol.CallerHash(id.Name())
	ns, err := server.NewServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		Users: []*server.User{
			{Username: "alice", Password: "x", Permissions: &server.Permissions{
				Subscribe: &server.SubjectPermission{Allow: []string{protocol.ReplyPrefix(testCollective, hash) + ".>"}},
			}},
			{Username: "node", Password: "x"},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS did not start")
	}
	t.Cleanup(ns.Shutdown)
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("alice", "x"))
	if err != nil {
		t.Fatal(err)
	}
	v, err := security.NewVerifier(security.VerifierOptions{CA: ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(Config{Collective: testCollective, Collectives: []string{testCollective, "other"}, TTL: time.Minute, DiscoveryQuiet: 100 * time.Millisecond}, id, v, nc)
	t.Cleanup(c.Close)

	// A node that answers pings in the allowed collective.
	nodeConn, err := nats.Connect(ns.ClientURL(), nats.UserInfo("node", "x"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nodeConn.Close)
	answer := func(m *nats.Msg) {
		req := decodeRequest(t, m.Data)
		_ = nodeConn.Publish(req.ReplyTo, signReply(t, node, req, web1, nil))
	}
	if _, err := nodeConn.Subscribe(protocol.NodeSubject(testCollective, web1), answer); err != nil {
		t.Fatal(err)
	}
	if err := nodeConn.Flush(); err != nil {
		t.Fatal(err)
	}

	ping := func(collective string) (*Stats, error) {
		return c.Call(context.Background(), Request{Agent: "rpcutil", Action: "ping", Collective: collective, Targets: []string{web1}, Timeout: 5 * time.Second}, func(Result) {})
	}
	if _, err := ping("other"); err == nil || !strings.Contains(err.Error(), "refused the reply subscription") {
		t.Fatalf("call in the refused collective: %v, want a refusal", err)
	}
	st, err := ping(testCollective)
	if err != nil || st.OK != 1 {
		t.Fatalf("call in the allowed collective after a refusal: %+v, %v", st, err)
	}
	if _, err := ping("other"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("second call in the refused collective: %v, want a refusal again", err)
	}
}

func decodeRequest(t *testing.T, data []byte) *protocol.Request {
	var env protocol.SecureRequest
	var req protocol.Request
	if json.Unmarshal(data, &env) != nil || json.Unmarshal(env.Request, &req) != nil {
		t.Error("undecodable request")
	}
	return &req
}

// TestConfigTimeoutIsHonoured: a request without its own timeout waits the
// client's Config.Timeout, not the 10 s default: the call to a silent node
// ends by itself well before the test's 8 s context would stop it.
func TestConfigTimeoutIsHonoured(t *testing.T) {
	url := natstest.Start(t)
	ca := pkitest.New(t, "t")
	v, err := security.NewVerifier(security.VerifierOptions{CA: ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(Config{Collective: testCollective, TTL: time.Minute, Timeout: 300 * time.Millisecond}, ca.Issue(pki.RoleClient, "alice.mcollective"), v, natstest.Connect(t, url))
	t.Cleanup(c.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
	defer cancel()
	st, err := c.Call(ctx, Request{Agent: "rpcutil", Action: "ping", Targets: []string{web1}}, func(Result) {})
	if err != nil || ctx.Err() != nil {
		t.Fatalf("call ended by the context, not by Config.Timeout: %v", err)
	}
	if len(st.NoResponse) != 1 {
		t.Errorf("no response list %v", st.NoResponse)
	}
}
