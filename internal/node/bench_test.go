package node_test

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/authz"
	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/node"
	"github.com/marionette/mco/internal/pkitest"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// BenchmarkNode compares one node's throughput for signed rpcutil pings with
// authorization and auditing off, and with a 50-line ActionPolicy and the
// hash-chained audit log on (the production configuration). Replies go to a
// real embedded NATS server.
func BenchmarkNode(b *testing.B) {
	for _, tc := range []struct {
		name                  string
		policy, audit, replay bool
	}{
		{"plain", false, false, false},
		{"policy+audit", true, true, false},
		// The production configuration: the replay cache persisted too.
		{"policy+audit+replayfile", true, true, true},
	} {
		b.Run(tc.name, func(b *testing.B) { benchNode(b, tc.policy, tc.audit, tc.replay) })
	}
}

func benchNode(b *testing.B, withPolicy, withAudit, withReplayFile bool) {
	ca := pkitest.New(b, "bench CA")
	id, alice := ca.Node("node1.bench"), ca.Client("alice.mcollective")
	spec := node.Spec{Identity: id, Verifier: ca.Verifier()}
	if withReplayFile {
		spec.ReplayFile = filepath.Join(b.TempDir(), "replay.seen")
	}
	if withPolicy {
		dir := b.TempDir()
		// 49 rules that do not match alice, then the one that does: the
		// evaluation walks the whole file.
		policy := "policy default deny\n"
		for i := range 48 {
			policy += "allow\tcert=user" + string(rune('a'+i%26)) + ".mcollective\t*\t*\t*\n"
		}
		policy += "allow\tcert=alice.mcollective\tping\t*\t*\n"
		if err := os.WriteFile(filepath.Join(dir, "rpcutil.policy"), []byte(policy), 0o644); err != nil {
			b.Fatal(err)
		}
		spec.Authorizer = node.Policy{A: authz.New(authz.Options{Dir: dir}, nil)}
	}
	if withAudit {
		log, err := audit.Open(filepath.Join(b.TempDir(), "audit.log"), audit.Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = log.Close() })
		spec.Audit = log
	}
	n, err := node.Build(spec)
	if err != nil {
		b.Fatal(err)
	}
	s := n.Server()
	nc := natstest.Connect(b, natstest.Start(b))
	if err := s.Start(nc); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(s.Stop)

	// Signing is the client's cost: done before the timer starts.
	msgs := make([][]byte, b.N)
	for i := range msgs {
		var rb [16]byte
		_, _ = rand.Read(rb[:])
		id := hex.EncodeToString(rb[:])
		body, err := json.Marshal(&protocol.Request{
			Protocol: protocol.RequestProtocol, ID: id, Sender: alice.Name(), CallerID: security.CallerID(alice.Name()),
			Collective: "mcollective", Agent: "rpcutil", Action: "ping",
			ReplyTo: protocol.ReplySubject("mcollective", protocol.CallerHash(alice.Name()), id),
			Time:    time.Now().UnixNano(), TTL: 3600, ProcessResults: true,
		})
		if err != nil {
			b.Fatal(err)
		}
		msgs[i], err = json.Marshal(&protocol.SecureRequest{Protocol: protocol.SecureRequestProtocol, Request: body, Signature: alice.Sign(body), Cert: alice.Cert.Raw})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for _, m := range msgs {
		s.Handle(m)
	}
	s.Stop() // waits until every action ran and replied
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
