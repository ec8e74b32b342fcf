package server

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/marionette/mco/internal/natstest"
)

// TestNoGoroutineLeak: a node that served requests and stopped leaves no
// goroutine behind (the embedded NATS server and connections are closed by
// the test's cleanups, which run before the deferred check).
func TestNoGoroutineLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Run("serve and stop", func(t *testing.T) {
		p := newTestPKI(t)
		n := newNode(t, p, natstest.Start(t), nil)
		for range 20 {
			req := newRequest()
			n.s.Handle(signed(t, p.alice, req))
			n.reply(req.ID)
		}
		n.s.Stop()
	})
}
