package server

import (
	"strings"
	"testing"

	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/protocol"
)

// TestStopStillReplies: a node shutting down stops taking requests but lets
// running actions finish, and their replies still go out — nothing accepted
// is lost silently.
func TestStopStillReplies(t *testing.T) {
	p := newTestPKI(t)
	n := newNode(t, p, natstest.Start(t), nil)
	req := newRequest()
	req.Action, req.Data = "sleep", nil // runs until its 1 s timeout
	n.s.Handle(signed(t, p.alice, req))
	n.s.Stop()
	rep := n.reply(req.ID)
	if rep.Status != protocol.Aborted || !strings.HasPrefix(rep.Message, "timeout after") {
		t.Fatalf("reply during shutdown = %d %q, want the action's timeout reply", rep.Status, rep.Message)
	}
	if got := n.s.Stats().PublishError.Load(); got != 0 {
		t.Fatalf("%d replies failed to publish during shutdown", got)
	}
}
