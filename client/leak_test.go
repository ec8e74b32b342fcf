package client

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/pkitest"
	"github.com/marionette/mco/internal/security"
)

// TestCloseLeavesNoGoroutines: the client's verification workers and its
// reply subscription end with Close.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	t.Run("connect and close", func(t *testing.T) {
		ca := pkitest.New(t, "leak CA")
		v, err := security.NewVerifier(security.VerifierOptions{CA: ca.Cert})
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(Config{Collective: testCollective, TTL: time.Minute, DiscoveryQuiet: 50 * time.Millisecond},
			ca.Issue(pki.RoleClient, "alice.mcollective"), v, natstest.Connect(t, natstest.Start(t)))
		if err := c.subscribe(testCollective); err != nil {
			t.Fatal(err)
		}
		c.Close()
	})
}
