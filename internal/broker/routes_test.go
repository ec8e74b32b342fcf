package broker

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/internal/logtest"
	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// TestRevokedBrokerRoutesDropped: three brokers with certificates of their
// own form a full-mesh cluster; the certificate of C is revoked on A and B
// (C, the attacker, keeps its own list clean). A and B drop every
// established route to C, whichever side dialled it, refuse C's reconnects,
// and stay routed to each other: messages cross between A and B, never to C.
func TestRevokedBrokerRoutesDropped(t *testing.T) {
	f := newFixture(t)
	honest := f.verifier // A and B share the list the operator updates
	hostile, err := security.NewVerifier(security.VerifierOptions{CA: f.ca.Cert})
	if err != nil {
		t.Fatal(err)
	}
	ports, routes := natstest.MeshRoutes(t, "a", "b", "c")
	logs := map[string]*logtest.Buffer{}
	ids := map[string]*security.Identity{}
	brokers := map[string]*Broker{}
	for _, n := range []string{"a", "b", "c"} {
		v := honest
		if n == "c" {
			v = hostile
		}
		logs[n] = &logtest.Buffer{}
		ids[n] = f.identity(f.ca, pki.RoleBroker, "broker-"+n+".test", "127.0.0.1")
		b, err := Start(Options{
			Identity: ids[n], Verifier: v, Listen: "127.0.0.1:0",
			ClusterName: "t", ClusterListen: fmt.Sprintf("127.0.0.1:%d", ports[n]), Routes: routes[n],
			Logger: slog.New(slog.NewTextHandler(logs[n], nil)),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.Shutdown)
		brokers[n] = b
	}
	a, b, c := brokers["a"], brokers["b"], brokers["c"]
	for n, br := range brokers {
		poll.Until(t, "broker "+n+" to route to both peers", func() bool { return peersOf(br) == 2 })
	}
	subs := map[string]*nats.Subscription{}
	var conns []*nats.Conn
	for n, br := range brokers {
		nc := f.dialTo(br, pki.RoleNode, "node-"+n)
		conns = append(conns, nc)
		sub, err := nc.SubscribeSync(protocol.BroadcastSubject("mcollective", ">"))
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		subs[n] = sub
	}
	pub := f.dialTo(a, pki.RoleClient, alice)
	seq := 0
	// Before: a message published on A reaches every broker's node.
	waitDelivered(t, pub, &seq, subs, "a", "b", "c")

	refusedBefore := logs["a"].Count("only brokers may join the cluster") + logs["b"].Count("only brokers may join the cluster")
	honest.SetRevoked(map[string]bool{ids["c"].Cert.SerialNumber.Text(16): true})
	a.DropRevoked()
	b.DropRevoked()
	poll.Until(t, "C's routes to close on A and B", func() bool {
		return peersOf(a) == 1 && peersOf(b) == 1 && peersOf(c) == 0
	})
	// C dials again (its routes to A and B are configured): refused.
	poll.Until(t, "A or B to refuse C reconnecting", func() bool {
		return logs["a"].Count("only brokers may join the cluster")+logs["b"].Count("only brokers may join the cluster") > refusedBefore
	})
	if peersOf(a) != 1 || peersOf(b) != 1 || peersOf(c) != 0 {
		t.Fatalf("after C's reconnect attempt: routes A %d, B %d, C %d; want 1, 1, 0", peersOf(a), peersOf(b), peersOf(c))
	}
	// Dropping routes reloads the NATS server; its clients stay connected
	// (they do not reconnect: MaxReconnects is 0).
	for _, nc := range append(conns, pub) {
		if !nc.IsConnected() {
			t.Fatalf("a client or node connection closed when the routes were dropped: %v", nc.LastError())
		}
	}
	for _, n := range []string{"a", "b"} {
		if logs[n].Count("dropped the routes of a revoked broker certificate") != 1 {
			t.Errorf("broker %s did not log the drop:\n%s", n, logs[n].String())
		}
	}
	t.Cleanup(func() {
		if t.Failed() {
			for n, l := range logs {
				t.Logf("broker %s:\n%s", n, l.String())
			}
		}
	})
	// After: A's message reaches A's and B's nodes, not C's; a message
	// published on C reaches no node on A or B.
	waitDelivered(t, pub, &seq, subs, "a", "b")
	onC := f.dialTo(c, pki.RoleClient, bob)
	if err := onC.Publish(protocol.BroadcastSubject("mcollective", "rpcutil"), []byte("from C")); err != nil {
		t.Fatal(err)
	}
	if err := onC.Flush(); err != nil {
		t.Fatal(err)
	}
	waitDelivered(t, pub, &seq, subs, "a", "b") // later than C's message on A and B
	for _, n := range []string{"a", "b", "c"} {
		for {
			m, err := subs[n].NextMsg(200 * time.Millisecond)
			if err != nil {
				break
			}
			if n != "c" && string(m.Data) == "from C" {
				t.Errorf("C's message reached broker %s's node", n)
			}
			if n == "c" && strings.HasPrefix(string(m.Data), "probe") {
				t.Errorf("A's message %q reached C's node", m.Data)
			}
		}
	}
	// The honest brokers still accept a new broker (the pins are gone).
	d := startRouted(t, f, honest, "d", []string{fmt.Sprintf("nats-route://127.0.0.1:%d", ports["a"])})
	poll.Until(t, "a new broker D to join A and B", func() bool { return peersOf(d) == 2 && peersOf(a) == 2 })
}

// waitDelivered publishes probes from pub (numbered from *seq) until each
// broker named has delivered one to its node (it drains what came before).
func waitDelivered(t *testing.T, pub *nats.Conn, seq *int, subs map[string]*nats.Subscription, on ...string) {
	t.Helper()
	for _, name := range on {
		poll.Until(t, "a message from A to reach broker "+name+"'s node", func() bool {
			*seq++
			want := fmt.Sprintf("probe %d", *seq)
			if err := pub.Publish(protocol.BroadcastSubject("mcollective", "rpcutil"), []byte(want)); err != nil {
				t.Fatal(err)
			}
			for {
				m, err := subs[name].NextMsg(100 * time.Millisecond)
				if err != nil {
					return false
				}
				if string(m.Data) == want {
					return true
				}
			}
		})
	}
}

// peersOf counts the distinct brokers br has routes to (NATS pools several
// connections per peer).
func peersOf(br *Broker) int {
	rz, err := br.ns.Routez(nil)
	if err != nil {
		return -1
	}
	peers := map[string]bool{}
	for _, r := range rz.Routes {
		peers[r.RemoteID] = true
	}
	return len(peers)
}

// dialTo connects a certificate of role to br.
func (f *fixture) dialTo(br *Broker, role pki.Role, name string) *nats.Conn {
	f.t.Helper()
	nc, err := nats.Connect(br.URL(), nats.Secure(security.ClientTLS(f.identity(f.ca, role, name), f.verifier.Roots())),
		nats.MaxReconnects(0), nats.Timeout(5*time.Second), nats.NoEcho())
	if err != nil {
		f.t.Fatalf("%s %s: %v", role, name, err)
	}
	f.t.Cleanup(nc.Close)
	return nc
}

// startRouted starts a broker with its own certificate routing to routes.
func startRouted(t *testing.T, f *fixture, v *security.Verifier, name string, routes []string) *Broker {
	t.Helper()
	b, err := Start(Options{
		Identity: f.identity(f.ca, pki.RoleBroker, "broker-"+name+".test", "127.0.0.1"), Verifier: v, Listen: "127.0.0.1:0",
		ClusterName: "t", ClusterListen: "127.0.0.1:0", Routes: routes,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Shutdown)
	return b
}
