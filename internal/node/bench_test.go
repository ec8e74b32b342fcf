//go:build unix

package node_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
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
// hash-chained audit log on (the production configuration). Requests reach
// the node as in production: published to its directed subject on a real
// embedded NATS server and delivered on its subscription; replies go back
// through the same server. The node spreads verification over every core
// (server.Options.Concurrency); broker and publisher share the machine.
// Run with: go test -run x -bench Node -benchtime 20000x ./internal/node/
// (BENCH_PROF=FILE writes a CPU profile of the timed part.)
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
		b.Run(tc.name, func(b *testing.B) { benchNode(b, tc.policy, tc.audit, tc.replay, false) })
		b.Run("inprocess/"+tc.name, func(b *testing.B) { benchNode(b, tc.policy, tc.audit, tc.replay, true) })
	}
}

// benchNode measures one node. With inProcess, the pre-signed requests are
// handed straight to the node (Server.Deliver: as its subscription would,
// up to Options.Concurrency = GOMAXPROCS at once) instead of being
// published through the broker: the node's own throughput, without the
// publisher and the broker's routing of every request taking their share
// of the same cores. Replies still go out on the node's connection to the
// embedded broker (which drops them: nobody subscribes), so signing and
// publishing them is measured.
func benchNode(b *testing.B, withPolicy, withAudit, withReplayFile, inProcess bool) {
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
	url := natstest.Start(b)
	nc := natstest.Connect(b, url)
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
	pub := natstest.Connect(b, url)
	subject := protocol.NodeSubject("mcollective", id.Name())
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU(b)
	// BENCH_PROF=FILE profiles the timed part alone (-cpuprofile would
	// include signing the requests, which is the client's cost).
	if path := os.Getenv("BENCH_PROF"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			b.Fatal(err)
		}
		defer func() { pprof.StopCPUProfile(); _ = f.Close() }()
	}
	start := time.Now()
	if inProcess {
		for _, m := range msgs {
			s.Deliver(subject, m)
		}
	} else {
		for _, m := range msgs {
			if err := pub.Publish(subject, m); err != nil {
				b.Fatal(err)
			}
		}
		if err := pub.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	// Every request delivered, then Stop waits for those still in hand.
	for s.Stats().Total.Load() < int64(b.N) {
		if time.Since(start) > time.Minute {
			b.Fatalf("after a minute: stats %v", s.Stats().Snapshot())
		}
		time.Sleep(100 * time.Microsecond)
	}
	s.Stop() // waits until every action ran and replied
	if err := nc.Flush(); err != nil {
		b.Fatal(err)
	}
	elapsed := time.Since(start)
	cpu := processCPU(b) - cpu0
	b.StopTimer()
	if got := s.Stats().Replies.Load(); got != int64(b.N) {
		b.Fatalf("%d replies for %d requests (stats %v)", got, b.N, s.Stats().Snapshot())
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
	// CPU of the whole process (node, broker, publisher) per request: on a
	// machine shared with other work, req/s says how much of it this run
	// got; this says what a request costs.
	b.ReportMetric(float64(cpu.Microseconds())/float64(b.N), "cpu-µs/req")
}

// processCPU is the user and system CPU time this process has used.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkMandatoryCrypto is the ceiling BenchmarkNode cannot pass: what
// every request costs in cryptography alone, whatever else the node does,
// the ed25519 verification of a signed rpcutil ping and the signature of
// its reply, on every core at once (RunParallel: GOMAXPROCS goroutines).
// "verify" and "sign" are each step alone on every core; req/s is
// operations per second of wall-clock time.
// Run with: go test -run x -bench MandatoryCrypto ./internal/node/
func BenchmarkMandatoryCrypto(b *testing.B) {
	ca := pkitest.New(b, "bench CA")
	node, alice := ca.Node("node1.bench"), ca.Client("alice.mcollective")
	body, err := json.Marshal(&protocol.Request{
		Protocol: protocol.RequestProtocol, ID: strings.Repeat("a", 32), Sender: alice.Name(), CallerID: security.CallerID(alice.Name()),
		Collective: "mcollective", Agent: "rpcutil", Action: "ping",
		ReplyTo: protocol.ReplySubject("mcollective", protocol.CallerHash(alice.Name()), strings.Repeat("a", 32)),
		Time:    time.Now().UnixNano(), TTL: 3600, ProcessResults: true,
	})
	if err != nil {
		b.Fatal(err)
	}
	sig := alice.Sign(body)
	pub := alice.Cert.PublicKey.(ed25519.PublicKey)
	reply, err := json.Marshal(&protocol.Reply{
		Protocol: protocol.ReplyProtocol, RequestID: strings.Repeat("a", 32), Sender: node.Name(),
		Agent: "rpcutil", Action: "ping", Status: protocol.OK, Message: "OK",
		Data: map[string]any{"pong": time.Now().Unix()}, Time: time.Now().UnixNano(),
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		verify, sign bool
	}{
		{"verify+sign", true, true},
		{"verify", true, false},
		{"sign", false, true},
	} {
		b.Run(tc.name, func(b *testing.B) {
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if tc.verify && !ed25519.Verify(pub, body, sig) {
						b.Error("signature does not verify")
						return
					}
					if tc.sign {
						_ = node.Sign(reply)
					}
				}
			})
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
		})
	}
}
