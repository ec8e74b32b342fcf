package client

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/pkitest"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

const (
	testCollective = "mcollective"
	web1           = "web1.example.net"
)

func issue(t *testing.T, ca *pki.CA, role pki.Role, name string) *security.Identity {
	t.Helper()
	cert, key, err := ca.Issue(pki.LeafRequest{Name: name, Role: role})
	if err != nil {
		t.Fatal(err)
	}
	return &security.Identity{Cert: cert, Key: key}
}

// signReply builds an OK reply envelope signed by id; tamper, when set,
// changes the envelope after signing.
func signReply(t *testing.T, id *security.Identity, req *protocol.Request, sender string, tamper func(*protocol.SecureReply)) []byte {
	t.Helper()
	body, err := json.Marshal(&protocol.Reply{
		Protocol: protocol.ReplyProtocol, RequestID: req.ID, Sender: sender, Agent: req.Agent, Action: req.Action,
		Status: protocol.OK, Message: "OK", Data: map[string]any{"pong": 1}, Time: time.Now().UnixNano(),
	})
	if err != nil {
		t.Fatal(err)
	}
	env := &protocol.SecureReply{Protocol: protocol.SecureReplyProtocol, Reply: body, Signature: id.Sign(body), Cert: id.Cert.Raw}
	if tamper != nil {
		tamper(env)
	}
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestUntrustedRepliesAreNeverOK: a rogue answers a directed call first with
// a bad reply, then (once the client has reported it) the real node answers.
// The bad reply must come back with Err set and be counted Invalid.
func TestUntrustedRepliesAreNeverOK(t *testing.T) {
	url := natstest.Start(t)
	ca := pkitest.New(t, "client test CA")
	other := pkitest.New(t, "rogue CA")
	node := ca.Issue(pki.RoleNode, web1)
	web2 := ca.Issue(pki.RoleNode, "web2.example.net")
	foreignWeb1 := other.Issue(pki.RoleNode, web1)
	aClient := ca.Issue(pki.RoleClient, "bob.mcollective")

	tests := []struct {
		name    string
		bad     func(req *protocol.Request) []byte
		errText string
	}{
		{"certificate of another CA", func(req *protocol.Request) []byte { return signReply(t, foreignWeb1, req, web1, nil) }, "untrusted"},
		{"sender does not match certificate", func(req *protocol.Request) []byte { return signReply(t, web2, req, web1, nil) }, "claims sender"},
		{"client certificate", func(req *protocol.Request) []byte { return signReply(t, aClient, req, web1, nil) }, "not a node"},
		{"forged body", func(req *protocol.Request) []byte {
			return signReply(t, node, req, web1, func(env *protocol.SecureReply) {
				env.Reply = []byte(strings.Replace(string(env.Reply), `"statuscode":0`, `"statuscode":1`, 1))
			})
		}, "signature"},
		{"signature of another reply", func(req *protocol.Request) []byte {
			other := *req
			other.ID = "elsewhere"
			var sig []byte
			signReply(t, node, &other, web1, func(env *protocol.SecureReply) { sig = env.Signature })
			return signReply(t, node, req, web1, func(env *protocol.SecureReply) { env.Signature = sig })
		}, "signature"},
		{"reply to another request", func(req *protocol.Request) []byte {
			other := *req
			other.ID = "0123"
			return signReply(t, node, &other, web1, nil)
		}, "arrived on the subject"},
		{"not an envelope", func(*protocol.Request) []byte { return []byte("hello") }, "undecodable"},
		{"unknown envelope protocol", func(req *protocol.Request) []byte {
			return signReply(t, node, req, web1, func(env *protocol.SecureReply) { env.Protocol = "other.1" })
		}, "undecodable"},
		{"undecodable signed reply", func(req *protocol.Request) []byte {
			return signReply(t, node, req, web1, func(env *protocol.SecureReply) {
				env.Reply = []byte("{not json")
				env.Signature = node.Sign(env.Reply)
			})
		}, "undecodable reply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := security.NewVerifier(security.VerifierOptions{CA: ca.Cert})
			if err != nil {
				t.Fatal(err)
			}
			alice := ca.Issue(pki.RoleClient, "alice.mcollective")
			c := newClient(Config{Collective: testCollective, TTL: time.Minute}, alice, v, natstest.Connect(t, url))
			t.Cleanup(c.Close)

			// The responder plays rogue and node on a plain connection.
			reported := make(chan struct{})
			responder := natstest.Connect(t, url)
			var wg sync.WaitGroup
			sub, err := responder.Subscribe(protocol.NodeSubject(testCollective, web1), func(m *nats.Msg) {
				var env protocol.SecureRequest
				var req protocol.Request
				if json.Unmarshal(m.Data, &env) != nil || json.Unmarshal(env.Request, &req) != nil {
					t.Errorf("responder got an undecodable request")
					return
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					_ = responder.Publish(req.ReplyTo, tt.bad(&req))
					select {
					case <-reported:
					case <-time.After(10 * time.Second):
						return // the test fails on the client side
					}
					_ = responder.Publish(req.ReplyTo, signReply(t, node, &req, web1, nil))
				}()
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe(); wg.Wait() })
			if err := responder.Flush(); err != nil {
				t.Fatal(err)
			}

			var results []Result
			var once sync.Once
			stats, err := c.Call(context.Background(), Request{Agent: "rpcutil", Action: "ping", Targets: []string{web1}, Timeout: 15 * time.Second},
				func(r Result) {
					results = append(results, r)
					if r.Err != nil {
						once.Do(func() { close(reported) })
					}
				})
			if err != nil {
				t.Fatal(err)
			}
			if len(results) != 2 {
				t.Fatalf("%d results, want the bad one then the good one: %+v", len(results), results)
			}
			bad, good := results[0], results[1]
			if bad.Err == nil || bad.OK() || !strings.Contains(bad.Err.Error(), tt.errText) {
				t.Errorf("bad reply: OK=%v err=%v, want an error containing %q", bad.OK(), bad.Err, tt.errText)
			}
			if !good.OK() || good.Sender != web1 || good.Data["pong"] == nil {
				t.Errorf("good reply: %+v", good)
			}
			if stats.Invalid != 1 || stats.OK != 1 || stats.Failed != 0 || len(stats.Responded) != 1 || stats.Responded[0] != web1 || len(stats.NoResponse) != 0 {
				t.Errorf("stats: %+v", stats)
			}
		})
	}
}

// TestCallRefusesBadRequests: requests the client must not send at all.
func TestCallRefusesBadRequests(t *testing.T) {
	url := natstest.Start(t)
	ca := pkitest.New(t, "client test CA")
	v, err := security.NewVerifier(security.VerifierOptions{CA: ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(Config{Collective: testCollective, TTL: time.Minute}, ca.Issue(pki.RoleClient, "alice.mcollective"), v, natstest.Connect(t, url))
	t.Cleanup(c.Close)
	for _, r := range []Request{
		{Action: "ping"},
		{Agent: "rpcutil"},
		{Agent: "rpcutil", Action: "ping", Collective: "elsewhere"},
	} {
		if _, err := c.Call(context.Background(), r, func(Result) {}); err == nil {
			t.Errorf("Call(%+v) succeeded", r)
		}
	}
}
