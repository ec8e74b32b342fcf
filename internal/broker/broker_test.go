package broker

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/pkitest"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// fixture is a running TLS broker and certificates to connect with.
type fixture struct {
	t        *testing.T
	ca       *pkitest.CA
	verifier *security.Verifier
	broker   *Broker
}

const (
	alice      = "alice.mcollective"
	bob        = "bob.mcollective"
	restricted = "eu-only.mcollective"
	collector  = "collector.mcollective"
	web1       = "web1.example.net"
	euNode     = "eu-node.example.net"
	carrier    = "carrier.dev" // carries the emulated nodes web7 and web8
)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ca := pkitest.New(t, "broker test CA")
	v := ca.Verifier()
	f := &fixture{t: t, ca: ca, verifier: v}
	collectors, err := security.ParseMatcher(collector)
	if err != nil {
		t.Fatal(err)
	}
	f.broker, err = Start(Options{
		Identity:    f.identity(ca, pki.RoleBroker, "broker.test", "127.0.0.1"),
		Verifier:    v,
		Listen:      "127.0.0.1:0",
		Collectives: map[string][]string{restricted: {"eu"}, euNode: {"eu"}},
		Collectors:  collectors,
		NodeGroups:  map[string][]string{carrier: {"web7", "web8"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.broker.Shutdown)
	return f
}

func (f *fixture) identity(ca *pkitest.CA, role pki.Role, name string, hosts ...string) *security.Identity {
	f.t.Helper()
	return ca.Issue(role, name, hosts...)
}

// dial connects with a TLS configuration; it does not fail the test.
func (f *fixture) dial(cfg *tls.Config) (*nats.Conn, error) {
	nc, err := nats.Connect(f.broker.URL(), nats.Secure(cfg), nats.MaxReconnects(0), nats.Timeout(5*time.Second),
		nats.ErrorHandler(func(*nats.Conn, *nats.Subscription, error) {})) // errors are read through LastError
	if err == nil {
		f.t.Cleanup(nc.Close)
	}
	return nc, err
}

func (f *fixture) connect(role pki.Role, name string) *nats.Conn {
	f.t.Helper()
	nc, err := f.dial(security.ClientTLS(f.identity(f.ca, role, name), f.verifier.Roots()))
	if err != nil {
		f.t.Fatalf("%s %s: %v", role, name, err)
	}
	return nc
}

func TestBrokerRefusesConnections(t *testing.T) {
	f := newFixture(t)
	other := pkitest.New(t, "other CA")
	roots := f.verifier.Roots()
	tests := []struct {
		name string
		cfg  *tls.Config
	}{
		{"no client certificate", &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}},
		{"certificate of another CA", security.ClientTLS(f.identity(other, pki.RoleClient, alice), roots)},
		{"node of another CA", security.ClientTLS(f.identity(other, pki.RoleNode, web1), roots)},
		{"broker certificate as a client", security.ClientTLS(f.identity(f.ca, pki.RoleBroker, "rogue.broker"), roots)},
		{"client not on the allow list", security.ClientTLS(f.identity(f.ca, pki.RoleClient, "mallory"), roots)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if nc, err := f.dial(tt.cfg); err == nil {
				nc.Close()
				t.Fatal("connection accepted")
			}
		})
	}
	if _, err := nats.Connect(strings.Replace(f.broker.URL(), "tls://", "nats://", 1), nats.MaxReconnects(0)); err == nil {
		t.Error("a plaintext connection was accepted")
	}
}

func TestBrokerRefusesRevoked(t *testing.T) {
	f := newFixture(t)
	id := f.identity(f.ca, pki.RoleClient, alice)
	cfg := security.ClientTLS(id, f.verifier.Roots())
	f.verifier.SetRevoked(map[string]bool{id.Cert.SerialNumber.Text(16): true})
	if nc, err := f.dial(cfg); err == nil {
		nc.Close()
		t.Fatal("a revoked certificate connected")
	}
	f.verifier.SetRevoked(map[string]bool{})
	if _, err := f.dial(cfg); err != nil {
		t.Fatalf("after un-revoking: %v", err)
	}
}

// TestBrokerPermissions checks each role's subject permissions. The broker
// answers a forbidden PUB or SUB with -ERR before the PONG of the following
// flush, so LastError is set (or not) by the time Flush returns.
func TestBrokerPermissions(t *testing.T) {
	f := newFixture(t)
	aliceReplies := protocol.ReplyPrefix("mcollective", protocol.CallerHash(alice)) + ".>"
	bobReplies := protocol.ReplyPrefix("mcollective", protocol.CallerHash(bob)) + ".>"
	tests := []struct {
		name    string
		role    pki.Role
		who     string
		sub     bool // subscribe rather than publish
		subject string
		ok      bool
	}{
		{"node subscribes to agents", pki.RoleNode, web1, true, "mcollective.agent.>", true},
		{"node subscribes to its node subject", pki.RoleNode, web1, true, protocol.NodeSubject("eu", web1), true},
		{"node subscribes to another node", pki.RoleNode, web1, true, protocol.NodeSubject("mcollective", "web2"), false},
		{"node subscribes to replies", pki.RoleNode, web1, true, aliceReplies, false},
		{"node subscribes to everything", pki.RoleNode, web1, true, ">", false},
		{"node publishes a request", pki.RoleNode, web1, false, "mcollective.agent.x", false},
		{"node publishes to a node", pki.RoleNode, web1, false, protocol.NodeSubject("mcollective", "web2"), false},
		{"node publishes a reply", pki.RoleNode, web1, false, protocol.ReplySubject("mcollective", protocol.CallerHash(alice), "1"), true},
		{"node publishes its registration", pki.RoleNode, web1, false, protocol.RegistrationSubject("mcollective", web1), true},
		{"node publishes another's registration", pki.RoleNode, web1, false, protocol.RegistrationSubject("mcollective", "web2"), false},
		{"node publishes another's audit", pki.RoleNode, web1, false, protocol.AuditSubject("mcollective", "web2"), false},
		{"client publishes a request", pki.RoleClient, alice, false, "mcollective.agent.rpcutil", true},
		{"client publishes to a node", pki.RoleClient, alice, false, protocol.NodeSubject("eu", web1), true},
		{"client publishes a reply", pki.RoleClient, alice, false, protocol.ReplySubject("mcollective", protocol.CallerHash(bob), "1"), false},
		{"client publishes a registration", pki.RoleClient, alice, false, protocol.RegistrationSubject("mcollective", web1), false},
		{"client subscribes to its replies", pki.RoleClient, alice, true, aliceReplies, true},
		{"client subscribes to another caller's replies", pki.RoleClient, alice, true, bobReplies, false},
		{"client subscribes to all replies", pki.RoleClient, alice, true, "mcollective.reply.>", false},
		{"client subscribes to requests", pki.RoleClient, alice, true, "mcollective.agent.>", false},
		{"client subscribes to registrations", pki.RoleClient, alice, true, "mcollective.registration.>", false},
		{"collector subscribes to registrations", pki.RoleClient, collector, true, "mcollective.registration.>", true},
		{"collector subscribes to audit", pki.RoleClient, collector, true, "eu.audit.>", true},
		{"restricted client in its collective", pki.RoleClient, restricted, false, "eu.agent.rpcutil", true},
		{"restricted client to a node in its collective", pki.RoleClient, restricted, false, protocol.NodeSubject("eu", web1), true},
		{"restricted client elsewhere", pki.RoleClient, restricted, false, "mcollective.agent.rpcutil", false},
		{"restricted client to a node elsewhere", pki.RoleClient, restricted, false, protocol.NodeSubject("us", web1), false},
		{"restricted client replies in its collective", pki.RoleClient, restricted, true, protocol.ReplyPrefix("eu", protocol.CallerHash(restricted)) + ".>", true},
		{"restricted client replies elsewhere", pki.RoleClient, restricted, true, protocol.ReplyPrefix("mcollective", protocol.CallerHash(restricted)) + ".>", false},
		{"restricted node hears its collective", pki.RoleNode, euNode, true, "eu.agent.>", true},
		{"restricted node hears another collective", pki.RoleNode, euNode, true, "mcollective.agent.>", false},
		{"restricted node's node subject elsewhere", pki.RoleNode, euNode, true, protocol.NodeSubject("mcollective", euNode), false},
		{"restricted node replies in its collective", pki.RoleNode, euNode, false, protocol.ReplySubject("eu", protocol.CallerHash(alice), "1"), true},
		{"restricted node replies elsewhere", pki.RoleNode, euNode, false, protocol.ReplySubject("mcollective", protocol.CallerHash(alice), "1"), false},
		{"carrier subscribes to its own node subject", pki.RoleNode, carrier, true, protocol.NodeSubject("mcollective", carrier), true},
		{"carrier subscribes to a carried node", pki.RoleNode, carrier, true, protocol.NodeSubject("mcollective", "web8"), true},
		{"carrier subscribes to a node it does not carry", pki.RoleNode, carrier, true, protocol.NodeSubject("mcollective", "web9"), false},
		{"carrier publishes a carried node's registration", pki.RoleNode, carrier, false, protocol.RegistrationSubject("mcollective", "web7"), true},
		{"carrier publishes a carried node's audit", pki.RoleNode, carrier, false, protocol.AuditSubject("mcollective", "web7"), true},
		{"carrier publishes another's registration", pki.RoleNode, carrier, false, protocol.RegistrationSubject("mcollective", "web9"), false},
		{"carrier publishes a request", pki.RoleNode, carrier, false, "mcollective.agent.rpcutil", false},
		{"client subscribes to a carried node", pki.RoleClient, alice, true, protocol.NodeSubject("mcollective", "web7"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			nc := f.connect(tt.role, tt.who)
			var err error
			if tt.sub {
				_, err = nc.SubscribeSync(tt.subject)
			} else {
				err = nc.Publish(tt.subject, []byte("x"))
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := nc.Flush(); err != nil {
				t.Fatal(err)
			}
			last := nc.LastError()
			violation := last != nil && strings.Contains(strings.ToLower(last.Error()), "permissions violation")
			if tt.ok && last != nil {
				t.Fatalf("refused: %v", last)
			}
			if !tt.ok && !violation {
				t.Fatalf("allowed (last error %v)", last)
			}
		})
	}
}

// TestBrokerDelivers: what is allowed actually flows — a client's broadcast
// reaches a node, and the node's reply reaches that client only.
func TestBrokerDelivers(t *testing.T) {
	f := newFixture(t)
	node := f.connect(pki.RoleNode, web1)
	client := f.connect(pki.RoleClient, alice)
	requests, err := node.SubscribeSync(protocol.BroadcastSubject("mcollective", ">"))
	if err != nil {
		t.Fatal(err)
	}
	replies, err := client.SubscribeSync(protocol.ReplyPrefix("mcollective", protocol.CallerHash(alice)) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	for _, nc := range []*nats.Conn{node, client} {
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if err := client.Publish(protocol.BroadcastSubject("mcollective", "rpcutil"), []byte("req")); err != nil {
		t.Fatal(err)
	}
	if m, err := requests.NextMsg(10 * time.Second); err != nil || string(m.Data) != "req" {
		t.Fatalf("node did not get the request: %v", err)
	}
	subj := protocol.ReplySubject("mcollective", protocol.CallerHash(alice), "42")
	if err := node.Publish(subj, []byte("rep")); err != nil {
		t.Fatal(err)
	}
	if m, err := replies.NextMsg(10 * time.Second); err != nil || string(m.Data) != "rep" || m.Subject != subj {
		t.Fatalf("client did not get the reply: %v", err)
	}
	if f.broker.NumClients() != 2 {
		t.Errorf("NumClients = %d, want 2", f.broker.NumClients())
	}
}

func TestStartBadOptions(t *testing.T) {
	for _, o := range []Options{
		{Listen: "127.0.0.1:0"}, // TLS without identity
		{Listen: "nonsense", Insecure: true},
		{Listen: "127.0.0.1:port", Insecure: true},
		{Listen: "127.0.0.1:0", Insecure: true, ClusterListen: "bad"},
	} {
		if b, err := Start(o); err == nil {
			b.Shutdown()
			t.Errorf("Start(%+v) succeeded", o)
		}
	}
}

// TestBrokerDropsRevokedConnections: revoking a certificate disconnects its
// open connections at once; others stay.
func TestBrokerDropsRevokedConnections(t *testing.T) {
	f := newFixture(t)
	aliceID := f.identity(f.ca, pki.RoleClient, alice)
	aliceConn, err := f.dial(security.ClientTLS(aliceID, f.verifier.Roots()))
	if err != nil {
		t.Fatal(err)
	}
	bobConn := f.connect(pki.RoleClient, bob)
	f.verifier.SetRevoked(map[string]bool{aliceID.Cert.SerialNumber.Text(16): true})
	f.broker.DropRevoked()
	poll.Until(t, "the revoked certificate's connection to close", func() bool { return !aliceConn.IsConnected() })
	if err := bobConn.Flush(); err != nil || !bobConn.IsConnected() {
		t.Fatalf("an unrevoked connection was dropped: %v", err)
	}
}
