// Package broker runs Marionette's message broker: an embedded NATS server
// (github.com/nats-io/nats-server/v2) that accepts only TLS connections with a
// certificate from the collective's CA, and gives each connection subject
// permissions derived from its certificate's role (docs/security.md, "The broker"):
//
//   - a node may subscribe to its collectives' agent subjects and its own node
//     subject, and publish only replies, its registration and its audit events;
//   - a client may publish requests to the collectives it is allowed and
//     subscribe only to its own reply subjects;
//   - a collector (a client named in the broker's collectors list) may in
//     addition read registration and audit subjects;
//   - anything else is refused.
package broker

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// Options configures a broker.
type Options struct {
	Identity *security.Identity // the broker's certificate (role broker)
	// CurrentIdentity, when set, is asked for the certificate at every TLS
	// handshake instead of Identity, so a renewed certificate serves new
	// connections without a restart.
	CurrentIdentity func() *security.Identity
	Verifier        *security.Verifier // checks connecting certificates and revocation
	Listen          string             // host:port; port 0 picks a free one
	// Insecure disables TLS and authentication entirely (development only).
	Insecure bool
	// ClusterName, ClusterListen and Routes join brokers into a NATS cluster.
	ClusterName   string
	ClusterListen string
	Routes        []string
	MaxPayload    int
	// Collectives restricts clients and nodes (by certname) to some
	// collectives; a certificate not listed may use any collective.
	Collectives map[string][]string
	// Collectors may subscribe to registration and audit subjects.
	Collectors *security.Matcher
	// NodeGroups lets the connection of a node certificate (the key) carry
	// further nodes (the names): their directed requests, registration and
	// audit subjects. Nodes emulated by the thousand in one process (mco dev,
	// benchmarks) share connections this way instead of holding two file
	// descriptors each; broker.conf cannot set it.
	NodeGroups map[string][]string
	Monitor    string // host:port of the NATS monitoring endpoint, optional
	Logger     *slog.Logger
}

// Broker is a running embedded NATS server.
type Broker struct {
	ns       *server.Server
	verifier *security.Verifier
	log      *slog.Logger
	counters *counters
	peers    *routePeers // nil unless clustering with TLS

	// reloadMu guards opts: the options the NATS server runs with now (it
	// keeps the pointer it was given), cloned for each ReloadOptions.
	reloadMu sync.Mutex
	opts     *server.Options
}

// Start starts the broker and waits until it accepts connections.
func Start(opts Options) (*Broker, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	host, port, err := splitHostPort(opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen %q: %w", opts.Listen, err)
	}
	no := &server.Options{
		ServerName: "",
		Host:       host,
		Port:       port,
		NoSigs:     true,
		MaxPayload: int32(opts.MaxPayload),
		// Many nodes connecting at once (a restart of 10,000 daemons) must not
		// be refused for being slow to handshake.
		MaxPending:    64 << 20,
		WriteDeadline: 10 * time.Second,
	}
	if opts.MaxPayload == 0 {
		no.MaxPayload = 1 << 20
	}
	cs := &counters{}
	if !opts.Insecure {
		if opts.CurrentIdentity == nil && opts.Identity != nil {
			id := opts.Identity
			opts.CurrentIdentity = func() *security.Identity { return id }
		}
		if opts.CurrentIdentity == nil || opts.Verifier == nil {
			return nil, errors.New("a TLS broker needs its identity and a verifier")
		}
		no.TLS = true
		no.TLSVerify = true
		no.TLSTimeout = 5
		no.TLSConfig = security.ServerTLSFrom(opts.CurrentIdentity, opts.Verifier.Roots())
		no.CustomClientAuthentication = &authenticator{opts: opts, counters: cs}
	}
	var peers *routePeers
	if opts.ClusterListen != "" {
		chost, cport, err := splitHostPort(opts.ClusterListen)
		if err != nil {
			return nil, fmt.Errorf("cluster listen %q: %w", opts.ClusterListen, err)
		}
		no.Cluster = server.ClusterOpts{Name: opts.ClusterName, Host: chost, Port: cport}
		if !opts.Insecure {
			ctls := security.ServerTLSFrom(opts.CurrentIdentity, opts.Verifier.Roots())
			ctls.VerifyPeerCertificate = onlyBrokers(opts.Verifier)
			peers = &routePeers{keys: map[string]string{}}
			ctls.VerifyConnection = peers.record
			no.Cluster.TLSConfig = ctls
			no.Cluster.TLSTimeout = 5
		}
		for _, r := range opts.Routes {
			u, err := url.Parse(r)
			if err != nil {
				return nil, fmt.Errorf("cluster route %q: %w", r, err)
			}
			no.Routes = append(no.Routes, u)
		}
	}
	if opts.Monitor != "" {
		mhost, mport, err := monitorAddr(opts.Monitor)
		if err != nil {
			return nil, fmt.Errorf("monitor %q: %w", opts.Monitor, err)
		}
		if ip := net.ParseIP(mhost); mhost != "localhost" && (ip == nil || !ip.IsLoopback()) {
			opts.Logger.Warn("NATS monitoring endpoint reachable beyond this host: it has no authentication and lists every connection and subscription", "monitor", opts.Monitor)
		}
		no.HTTPHost, no.HTTPPort = mhost, mport
	}
	ns, err := server.NewServer(no)
	if err != nil {
		return nil, fmt.Errorf("starting NATS server: %w", err)
	}
	ns.SetLoggerV2(natsLogger{opts.Logger}, false, false, false)
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		return nil, fmt.Errorf("broker did not start listening on %s", opts.Listen)
	}
	return &Broker{ns: ns, verifier: opts.Verifier, log: opts.Logger, counters: cs, peers: peers, opts: no}, nil
}

// URL is the address clients and nodes connect to.
func (b *Broker) URL() string {
	addr := b.ns.Addr().(*net.TCPAddr)
	scheme := "nats"
	if b.ns.ClientURL()[:3] == "tls" {
		scheme = "tls"
	}
	return fmt.Sprintf("%s://%s", scheme, net.JoinHostPort(addr.IP.String(), strconv.Itoa(addr.Port)))
}

// ClusterAddr is the route listener's address, when clustering.
func (b *Broker) ClusterAddr() net.Addr { return b.ns.ClusterAddr() }

// MonitorAddr is the monitoring endpoint's address, nil when it is off.
func (b *Broker) MonitorAddr() *net.TCPAddr { return b.ns.MonitorAddr() }

// NumClients is the number of connected clients and nodes.
func (b *Broker) NumClients() int { return b.ns.NumClients() }

// NumRoutes is the number of connected peer brokers.
func (b *Broker) NumRoutes() int { return b.ns.NumRoutes() }

// Shutdown stops the broker and waits for it to finish.
func (b *Broker) Shutdown() {
	b.ns.Shutdown()
	b.ns.WaitForShutdown()
}

// authenticator maps each TLS connection's certificate to NATS permissions.
type authenticator struct {
	opts     Options
	counters *counters
}

// Check implements server.Authentication.
func (a *authenticator) Check(c server.ClientAuthentication) bool {
	if !a.check(c) {
		a.counters.refused.Add(1)
		return false
	}
	return true
}

func (a *authenticator) check(c server.ClientAuthentication) bool {
	state := c.GetTLSConnectionState()
	if state == nil || len(state.PeerCertificates) == 0 {
		return false
	}
	leaf := state.PeerCertificates[0]
	// The certname becomes part of subject permissions: nothing but a plain
	// name (no '>', '*' or '.'-edge tricks) may get that far.
	if err := pki.ValidName(leaf.Subject.CommonName); err != nil {
		a.opts.Logger.Warn("refusing connection", "remote", c.RemoteAddress(), "reason", err)
		return false
	}
	role, err := pki.RoleOf(leaf)
	if err != nil {
		a.opts.Logger.Warn("refusing connection", "remote", c.RemoteAddress(), "reason", err)
		return false
	}
	if _, err := a.opts.Verifier.Certificate(leaf.Raw, role); err != nil {
		a.opts.Logger.Warn("refusing connection", "remote", c.RemoteAddress(), "reason", err)
		return false
	}
	perms, ok := a.permissions(leaf, role)
	if !ok {
		a.opts.Logger.Warn("refusing connection", "remote", c.RemoteAddress(), "certname", leaf.Subject.CommonName, "reason", "role "+string(role)+" may not connect as a client")
		return false
	}
	// No NATS user name: nats-server closes, at every configuration reload
	// (dropRevokedRoutes), each connection whose user name is not among its
	// configured users. Connections are told apart by their certificate.
	c.RegisterUser(&server.User{Permissions: perms})
	a.counters.certs.Store(certKey(leaf), connCert{name: leaf.Subject.CommonName, serial: leaf.SerialNumber.Text(16), role: role})
	return true
}

// connCert is what the broker remembers of a certificate that connected.
type connCert struct {
	name, serial string
	role         pki.Role
}

// certKey identifies a certificate as nats-server's connection list does
// (ConnInfo.TLSPeerCerts[0].CertSha256): the SHA-256 of its DER.
func certKey(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.Raw)
	return hex.EncodeToString(sum[:])
}

// connCertOf looks up the certificate a listed connection presented.
func (cs *counters) connCertOf(ci *server.ConnInfo) (connCert, bool) {
	if len(ci.TLSPeerCerts) == 0 {
		return connCert{}, false
	}
	v, ok := cs.certs.Load(ci.TLSPeerCerts[0].CertSha256)
	if !ok {
		return connCert{}, false
	}
	return v.(connCert), true
}

// DropRevoked disconnects every client and node whose certificate is now
// revoked: revocation takes effect at once, not at the next connect. Call it
// after the verifier's revocation list changed.
func (b *Broker) DropRevoked() {
	if b.verifier == nil {
		return
	}
	revoked := b.verifier.RevokedSerials()
	if len(revoked) == 0 {
		return
	}
	// Collect first, then disconnect: a disconnect removes the connection
	// from the list at once, and paging while removing would skip some.
	type dropped struct {
		cid  uint64
		ip   string
		cert connCert
	}
	var drop []dropped
	for offset := 0; ; {
		conns, err := b.ns.Connz(&server.ConnzOptions{Username: true, Offset: offset, Limit: 1024})
		if err != nil || len(conns.Conns) == 0 {
			break
		}
		for _, ci := range conns.Conns {
			if cc, ok := b.counters.connCertOf(ci); ok && revoked[cc.serial] {
				drop = append(drop, dropped{ci.Cid, ci.IP, cc})
			}
		}
		offset += len(conns.Conns)
	}
	for _, d := range drop {
		b.log.Warn("disconnecting a revoked certificate", "certname", d.cert.name, "serial", d.cert.serial, "remote", d.ip)
		_ = b.ns.DisconnectClientByID(d.cid)
		b.counters.revokedDrops.Add(1)
	}
	b.dropRevokedRoutes(revoked)
}

// routePeers remembers the certificate of every broker a route handshake
// (accepted or dialled) succeeded with: its serial and the SHA-256 of its
// public key, the form nats-server pins route certificates by. Only broker
// certificates from the collective's CA get this far, one entry each.
type routePeers struct {
	mu   sync.Mutex
	keys map[string]string // serial (hex) -> SPKI SHA-256 (hex)
}

// record is the cluster TLS configuration's VerifyConnection: it runs after
// onlyBrokers accepted the peer, on both sides of a route.
func (p *routePeers) record(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return nil
	}
	leaf := cs.PeerCertificates[0]
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	p.mu.Lock()
	p.keys[leaf.SerialNumber.Text(16)] = hex.EncodeToString(sum[:])
	p.mu.Unlock()
	return nil
}

// split takes the revoked peers out of the record and returns the public
// keys to keep (every other peer's, minus the revoked ones: a key a revoked
// certificate shares with a valid one is dropped too, and its route
// reconnects with the valid certificate) and whether any peer was revoked.
func (p *routePeers) split(revoked map[string]bool) (map[string]struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	gone := map[string]bool{}
	for serial, key := range p.keys {
		if revoked[serial] {
			gone[key] = true
			delete(p.keys, serial)
		}
	}
	if len(gone) == 0 {
		return nil, false
	}
	keep := map[string]struct{}{}
	for _, key := range p.keys {
		if !gone[key] {
			keep[key] = struct{}{}
		}
	}
	return keep, true
}

// dropRevokedRoutes closes every route, accepted or dialled, configured or
// learnt from the cluster, whose peer presented a certificate that is now
// revoked. nats-server has no call to close one route, but re-checks every
// route's certificate against the cluster's pinned keys when a reload
// changes them: the broker pins the keys of the peers still trusted, which
// closes the others, then unpins at once so that new brokers may join
// again. A closed route that dials again meets onlyBrokers and is refused.
func (b *Broker) dropRevokedRoutes(revoked map[string]bool) {
	if b.peers == nil {
		return
	}
	keep, found := b.peers.split(revoked)
	if !found {
		return
	}
	before := b.ns.NumRoutes()
	if err := b.reloadPinned(server.PinnedCertSet(keep)); err != nil {
		b.log.Error("could not drop the routes of a revoked broker certificate", "err", err)
		return
	}
	if err := b.reloadPinned(nil); err != nil {
		b.log.Error("could not let brokers route again after dropping a revoked one", "err", err)
		return
	}
	b.log.Warn("dropped the routes of a revoked broker certificate", "routes_before", before, "routes_after", b.ns.NumRoutes())
}

// reloadPinned reloads the NATS server with its current options but the
// given pinned route keys (nil: none). Any reload also re-checks every
// client connection's certificate through the authenticator.
func (b *Broker) reloadPinned(pinned server.PinnedCertSet) error {
	b.reloadMu.Lock()
	defer b.reloadMu.Unlock()
	next := b.opts.Clone()
	// Clone copies the TLS configurations; the originals carry callbacks,
	// which never compare equal, and would make the reload re-apply them.
	next.TLSConfig, next.Cluster.TLSConfig = b.opts.TLSConfig, b.opts.Cluster.TLSConfig
	next.Cluster.TLSPinnedCerts = pinned
	if err := b.ns.ReloadOptions(next); err != nil {
		return fmt.Errorf("reloading the NATS server: %w", err)
	}
	b.opts = next
	return nil
}

func (a *authenticator) permissions(cert *x509.Certificate, role pki.Role) (*server.Permissions, bool) {
	name := cert.Subject.CommonName
	switch role {
	case pki.RoleNode:
		// A node listed in collectives.<certname> sees only those
		// collectives' requests: a development node never receives
		// production broadcasts.
		collectives, restricted := a.opts.Collectives[name]
		if !restricted {
			collectives = []string{"*"}
		}
		names := append([]string{name}, a.opts.NodeGroups[name]...)
		p := &server.Permissions{Publish: &server.SubjectPermission{}, Subscribe: &server.SubjectPermission{}}
		for _, c := range collectives {
			p.Publish.Allow = append(p.Publish.Allow, c+".reply.>")
			p.Subscribe.Allow = append(p.Subscribe.Allow, protocol.BroadcastSubject(c, ">"))
			for _, n := range names {
				p.Publish.Allow = append(p.Publish.Allow, protocol.RegistrationSubject(c, n), protocol.AuditSubject(c, n))
				p.Subscribe.Allow = append(p.Subscribe.Allow, protocol.NodeSubject(c, n))
			}
		}
		return p, true
	case pki.RoleClient:
		collectives, restricted := a.opts.Collectives[name]
		if !restricted {
			collectives = []string{"*"}
		}
		hash := protocol.CallerHash(name)
		p := &server.Permissions{Publish: &server.SubjectPermission{}, Subscribe: &server.SubjectPermission{}}
		for _, c := range collectives {
			p.Publish.Allow = append(p.Publish.Allow, protocol.BroadcastSubject(c, ">"), protocol.NodeSubject(c, ">"))
			p.Subscribe.Allow = append(p.Subscribe.Allow, protocol.ReplyPrefix(c, hash)+".>")
			if a.opts.Collectors.Match(name) {
				p.Subscribe.Allow = append(p.Subscribe.Allow, protocol.RegistrationSubject(c, ">"), protocol.AuditSubject(c, ">"))
			}
		}
		return p, true
	}
	return nil, false
}

// onlyBrokers refuses route connections from anything but unrevoked broker
// certificates.
func onlyBrokers(v *security.Verifier) func([][]byte, [][]*x509.Certificate) error {
	return func(_ [][]byte, chains [][]*x509.Certificate) error {
		if err := security.CheckBroker(chains, v.IsRevoked); err != nil {
			return fmt.Errorf("only brokers may join the cluster: %w", err)
		}
		return nil
	}
}

// monitorAddr reads the monitor setting: "PORT", ":PORT" or "HOST:PORT".
// Without a host it binds to 127.0.0.1, not to every interface (what
// nats-server would do, following the client listener): the endpoint has no
// authentication and describes every connection, so exposing it must be
// asked for by naming the address.
func monitorAddr(v string) (string, int, error) {
	if _, err := strconv.Atoi(v); err == nil {
		v = ":" + v
	}
	host, port, err := splitHostPort(v)
	if err != nil {
		return "", 0, err
	}
	if host == "" {
		host = "127.0.0.1"
	}
	return host, port, nil
}

func splitHostPort(hp string) (string, int, error) {
	host, p, err := net.SplitHostPort(hp)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil {
		return "", 0, fmt.Errorf("port %q is not a number", p)
	}
	if port == 0 {
		port = -1 // nats-server's "pick a random port"
	}
	return host, port, nil
}

// natsLogger forwards nats-server's log lines to slog.
type natsLogger struct{ l *slog.Logger }

func (n natsLogger) Noticef(f string, v ...any) { n.l.Info(fmt.Sprintf(f, v...), "component", "nats") }
func (n natsLogger) Warnf(f string, v ...any)   { n.l.Warn(fmt.Sprintf(f, v...), "component", "nats") }
func (n natsLogger) Fatalf(f string, v ...any)  { n.l.Error(fmt.Sprintf(f, v...), "component", "nats") }
func (n natsLogger) Errorf(f string, v ...any)  { n.l.Error(fmt.Sprintf(f, v...), "component", "nats") }
func (n natsLogger) Debugf(f string, v ...any)  { n.l.Debug(fmt.Sprintf(f, v...), "component", "nats") }
func (n natsLogger) Tracef(f string, v ...any)  { n.l.Debug(fmt.Sprintf(f, v...), "component", "nats") }
