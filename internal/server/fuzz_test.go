package server

import (
	"github.com/marionette/mco/internal/agents"
	"sync/atomic"
	"testing"

	"github.com/marionette/mco/internal/security"
)

// FuzzHandle feeds arbitrary bytes through the node's whole pipeline: wire
// decoding must never panic or wedge the node, whatever arrives.
func FuzzHandle(f *testing.F) {
	p := newTestPKI(f)
	good := signed(f, p.alice, newRequest())
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"protocol":"marionette.secure_request.1","request":"e30=","signature":"","cert":""}`))
	f.Add([]byte(`{"protocol":"marionette.secure_request.1","request":null,"signature":null,"cert":"AAAA"}`))
	f.Add([]byte(`[1,2,3]`))
	f.Add([]byte{0xff, 0xfe, 0x00})

	v, err := security.NewVerifier(security.VerifierOptions{CA: p.ca.Cert})
	if err != nil {
		f.Fatal(err)
	}
	// No broker: replies fail to publish, which the node counts and survives.
	s, err := New(Options{Identity: p.node, Verifier: v, Collectives: []string{testCollective}, Agents: agents.NewRegistry(testAgent(f, new(atomic.Int64)))})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		before := s.Stats().Total.Load()
		s.Handle(data)
		if s.Stats().Total.Load() != before+1 {
			t.Fatal("message not counted")
		}
	})
}
