package client

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/pkitest"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// TestQuietWindowCountsRepliesAwaitingVerification: two nodes answer a
// broadcast together. The client verifies the first at once and the second
// only after several quiet windows have passed (its verification is held
// back, as it is behind thousands of others at scale). The second arrived
// within the window, so the call must wait for it and count it, and both
// replies carry their arrival time, not their verification time.
func TestQuietWindowCountsRepliesAwaitingVerification(t *testing.T) {
	url := natstest.Start(t)
	ca := pkitest.New(t, "client test CA")
	nodes := []*security.Identity{ca.Issue(pki.RoleNode, "web1.example.net"), ca.Issue(pki.RoleNode, "web2.example.net")}
	v, err := security.NewVerifier(security.VerifierOptions{CA: ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	alice := ca.Issue(pki.RoleClient, "alice.mcollective")
	c := newClientWorkers(Config{Collective: testCollective, TTL: time.Minute}, alice, v, natstest.Connect(t, url), 0)
	t.Cleanup(c.Close)

	responder := natstest.Connect(t, url)
	sub, err := responder.Subscribe(protocol.BroadcastSubject(testCollective, "rpcutil"), func(m *nats.Msg) {
		var env protocol.SecureRequest
		var req protocol.Request
		if json.Unmarshal(m.Data, &env) != nil || json.Unmarshal(env.Request, &req) != nil {
			t.Errorf("responder got an undecodable request")
			return
		}
		for _, n := range nodes {
			_ = responder.Publish(req.ReplyTo, signReply(t, n, &req, n.Name(), nil))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := responder.Flush(); err != nil {
		t.Fatal(err)
	}

	const quiet = 20 * time.Millisecond
	results := make(chan Result, 2)
	type outcome struct {
		stats *Stats
		err   error
	}
	done := make(chan outcome, 1)
	go func() {
		stats, err := c.Call(context.Background(), Request{Agent: "rpcutil", Action: "ping", Quiet: quiet, Timeout: time.Minute},
			func(r Result) { results <- r })
		done <- outcome{stats, err}
	}()
	waitInbox := func(n int) {
		t.Helper()
		poll.Until(t, fmt.Sprintf("%d replies to arrive", n), func() bool {
			c.inboxMu.Lock()
			defer c.inboxMu.Unlock()
			return len(c.inbox) >= n
		})
	}
	waitInbox(2)
	c.verifyNext()
	first := <-results
	time.Sleep(10 * quiet) // the second reply is still waiting for verification
	verified := time.Now()
	c.verifyNext()
	second := <-results
	out := <-done
	if out.err != nil {
		t.Fatal(out.err)
	}
	if out.stats.OK != 2 || len(out.stats.Responded) != 2 {
		t.Fatalf("stats %+v: the reply verified after the window was not counted", out.stats)
	}
	if !first.OK() || !second.OK() {
		t.Fatalf("replies not OK: %+v, %+v", first, second)
	}
	if !second.Received.Before(verified) {
		t.Errorf("second reply stamped %v, at or after its verification (%v): want its arrival", second.Received, verified)
	}
}
