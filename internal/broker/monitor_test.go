package broker

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/marionette/mco/internal/logtest"
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

// TestMonitorBeyondLoopbackWarns: the monitoring endpoint has no
// authentication, so a monitor address other than loopback is logged as a
// warning naming it; loopback addresses (and the default host) are not.
// The wildcard endpoint is reached through 127.0.0.1 only.
func TestMonitorBeyondLoopbackWarns(t *testing.T) {
	const warning = "NATS monitoring endpoint reachable beyond this host"
	tests := []struct {
		monitor string
		warn    bool
	}{
		{"0.0.0.0:0", true},
		{"127.0.0.1:0", false},
		{"localhost:0", false},
		{":0", false},
		{"0", false},
	}
	for _, tt := range tests {
		t.Run(tt.monitor, func(t *testing.T) {
			f := newFixture(t)
			logs := &logtest.Buffer{}
			b, err := Start(Options{
				Identity: f.identity(f.ca, pki.RoleBroker, "broker.test", "127.0.0.1"),
				Verifier: f.verifier, Listen: "127.0.0.1:0", Monitor: tt.monitor,
				Logger: slog.New(slog.NewTextHandler(logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer b.Shutdown()
			a := b.MonitorAddr()
			if a == nil {
				t.Fatal("no monitoring endpoint")
			}
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/varz", a.Port))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("monitoring endpoint through 127.0.0.1: %s", resp.Status)
			}
			// The warning names the configured host; the port it logs for
			// port 0 is nats-server's -1, so only the host is checked.
			host, _, _ := net.SplitHostPort(tt.monitor)
			var warned []string
			for _, l := range strings.Split(logs.String(), "\n") {
				if strings.Contains(l, warning) {
					warned = append(warned, l)
				}
			}
			switch {
			case !tt.warn && len(warned) != 0:
				t.Fatalf("warned of a loopback monitor: %q", warned)
			case tt.warn && (len(warned) != 1 || !strings.Contains(warned[0], "level=WARN") || !strings.Contains(warned[0], "monitor="+host+":")):
				t.Fatalf("want one warning naming monitor=%s:…, got %q in\n%s", host, warned, logs.String())
			}
		})
	}
}
