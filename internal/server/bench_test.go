package server

import (
	"testing"
	"time"

	"github.com/marionette/mco/internal/agents"
	"github.com/marionette/mco/internal/agents/rpcutil"
	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/security"
)

// BenchmarkPipeline measures a node's throughput for signed rpcutil pings:
// verify → freshness/replay → filter → run → sign reply → publish to a real
// (embedded) NATS connection. Requests are signed before the timer starts,
// since signing is the client's cost, and each has its own id (the replay
// cache would drop a repeat).
func BenchmarkPipeline(b *testing.B) {
	p := newTestPKI(b)
	url := natstest.Start(b)
	v, err := security.NewVerifier(security.VerifierOptions{CA: p.ca.Cert})
	if err != nil {
		b.Fatal(err)
	}
	// ping reads nothing of the node it reports on: no node is needed.
	ping, err := rpcutil.New(struct{ rpcutil.Node }{}, rpcutil.Options{})
	if err != nil {
		b.Fatal(err)
	}
	s, err := New(Options{Identity: p.node, Verifier: v, Agents: agents.NewRegistry(ping)})
	if err != nil {
		b.Fatal(err)
	}
	nc := natstest.Connect(b, url)
	if err := s.Start(nc); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)

	msgs := make([][]byte, b.N)
	for i := range msgs {
		req := newRequest()
		req.Agent, req.Action, req.Data = "rpcutil", "ping", nil
		msgs[i] = signed(b, p.alice, req)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, m := range msgs {
		s.Handle(m)
	}
	s.wg.Wait() // every action has run and its reply was published
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	if got := s.Stats().Replies.Load(); got != int64(b.N) {
		b.Fatalf("%d replies for %d requests (stats %v)", got, b.N, s.Stats().Snapshot())
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}
