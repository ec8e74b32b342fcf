package broker

import (
	"testing"

	"github.com/marionette/mco/internal/pki"
)

// TestMonitorBindsLoopbackByDefault: a monitor setting without a host binds
// the unauthenticated endpoint to 127.0.0.1 even when the client listener is
// on every interface (nats-server would follow the listener).
func TestMonitorBindsLoopbackByDefault(t *testing.T) {
	for _, monitor := range []string{":0", "0"} {
		t.Run(monitor, func(t *testing.T) {
			f := newFixture(t)
			b, err := Start(Options{
				Identity: f.identity(f.ca, pki.RoleBroker, "broker.test", "127.0.0.1"),
				Verifier: f.verifier, Listen: "0.0.0.0:0", Monitor: monitor,
			})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Shutdown()
			if a := b.MonitorAddr(); a == nil || !a.IP.IsLoopback() {
				t.Fatalf("monitor bound to %v, want 127.0.0.1", a)
			}
		})
	}
	if _, _, err := monitorAddr("nope"); err == nil {
		t.Error("monitor = nope accepted")
	}
}
