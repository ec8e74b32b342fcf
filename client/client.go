// Package client is the Go API for calling Marionette agents: it signs
// requests, discovers nodes, sends requests to them and streams back verified
// replies with honest statistics (who replied, who failed, who never
// answered). The mco CLI is built on it.
//
//	c, err := client.Connect(client.Config{...})
//	stats, err := c.Call(ctx, client.Request{Agent: "rpcutil", Action: "ping"},
//		func(r client.Result) { fmt.Println(r.Sender, r.Status) })
package client

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/internal/transport"
	"github.com/marionette/mco/protocol"
)

// Config says how to reach the collective and who the client is.
type Config struct {
	Brokers    []string // NATS URLs
	CA         string   // CA certificate file (PEM)
	Cert       string   // client certificate file (PEM)
	Key        string   // client private key file (PEM)
	Insecure   bool     // plaintext transport (development only)
	Collective string   // default collective (default "mcollective")
	// Collectives lists every collective this client may address; empty
	// means only Collective.
	Collectives []string
	// TTL is how long a request stays valid on the nodes (default 60 s).
	TTL time.Duration
	// DiscoveryTimeout caps broadcast discovery (default 2 s).
	DiscoveryTimeout time.Duration
	// DiscoveryQuiet ends broadcasts (discovery, ping) once no reply came for
	// this long (default 100 ms). Only a CPU-starved emulation of thousands
	// of nodes in one process needs more.
	DiscoveryQuiet time.Duration
	// Timeout is the reply timeout of a Request that sets none (default 10 s).
	Timeout time.Duration
	// RevocationFile, when set, lists revoked certificate serials (mco pki
	// revoke): a broker or node presenting one is refused. It is read once,
	// at Connect.
	RevocationFile string
	Logger         *slog.Logger
}

// ConfigFromFile reads a client.conf.
func ConfigFromFile(path string) (Config, error) {
	c, err := config.LoadClient(path)
	if err != nil {
		return Config{}, err
	}
	return Config{
		Collectives: c.Collectives,
		Brokers:     c.Brokers, CA: c.CA, Cert: c.Cert, Key: c.Key, Insecure: c.Insecure,
		Collective: c.Collective, TTL: c.TTL, DiscoveryTimeout: c.DiscoveryTimeout, Timeout: c.Timeout,
		DiscoveryQuiet: c.DiscoveryQuiet, RevocationFile: c.RevocationFile,
	}, nil
}

// Client is a connection to the collective. It is safe for concurrent use.
type Client struct {
	cfg      Config
	id       *security.Identity
	verifier *security.Verifier
	nc       *nats.Conn
	ownsConn bool // Connect dialled nc; New's caller owns it
	hash     string
	log      *slog.Logger

	mu      sync.Mutex
	subs    map[string]*nats.Subscription // collective -> reply wildcard subscription
	pending map[string]*call              // request id -> call
	// Raw replies wait in inbox for the verification workers. It is
	// unbounded so that the connection's delivery never blocks behind
	// verification and every reply is stamped when it arrives.
	inboxMu   sync.Mutex
	inbox     []arrival
	wake      *sync.Cond // on inboxMu: inbox has work, or closed
	closed    bool
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Connect loads the client's certificate and dials the broker.
func Connect(cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	id, err := security.LoadIdentity(cfg.Cert, cfg.Key)
	if err != nil {
		return nil, fmt.Errorf("client certificate: %w", err)
	}
	v, err := verifierFor(cfg)
	if err != nil {
		return nil, err
	}
	nc, err := transport.Dial(transport.Options{
		Brokers: cfg.Brokers, Identity: id, Roots: v.Roots(), Insecure: cfg.Insecure,
		Name: "mco client " + id.Name(), Logger: cfg.Logger, Revoked: v.IsRevoked,
	})
	if err != nil {
		return nil, err
	}
	c := newClient(cfg, id, v, nc)
	c.ownsConn = true
	return c, nil
}

// New returns a client on a NATS connection the caller owns, for programs
// that dial the broker themselves (their own TLS settings, reconnect policy
// or connection sharing). identity is the client's certificate (Leaf set)
// and Ed25519 key, which sign every request; cfg.CA is the collective's CA,
// which replies are verified against; cfg.Brokers, Cert, Key and Insecure
// are not used. Close leaves the connection open.
func New(nc *nats.Conn, cfg Config, identity tls.Certificate) (*Client, error) {
	if nc == nil {
		return nil, errors.New("client.New: no NATS connection")
	}
	cert := identity.Leaf
	if cert == nil {
		if len(identity.Certificate) == 0 {
			return nil, errors.New("client.New: the identity has no certificate")
		}
		var err error
		if cert, err = x509.ParseCertificate(identity.Certificate[0]); err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
	}
	key, ok := identity.PrivateKey.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("client key: an Ed25519 private key is needed, not %T", identity.PrivateKey)
	}
	cfg = cfg.withDefaults()
	v, err := verifierFor(cfg)
	if err != nil {
		return nil, err
	}
	return newClient(cfg, &security.Identity{Cert: cert, Key: key}, v, nc), nil
}

// verifierFor trusts the configuration's CA, minus the revoked
// certificates of cfg.RevocationFile.
func verifierFor(cfg Config) (*security.Verifier, error) {
	ca, err := pki.ReadCert(cfg.CA)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	v, err := security.NewVerifier(security.VerifierOptions{CA: ca})
	if err != nil {
		return nil, err
	}
	if cfg.RevocationFile != "" {
		serials, err := pki.ReadRevoked(cfg.RevocationFile)
		if err != nil {
			return nil, fmt.Errorf("revocation file: %w", err)
		}
		v.SetRevoked(serials)
	}
	return v, nil
}

// withDefaults fills in what the configuration leaves unset.
func (cfg Config) withDefaults() Config {
	if cfg.Collective == "" {
		cfg.Collective = "mcollective"
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 60 * time.Second
	}
	if cfg.DiscoveryTimeout <= 0 {
		cfg.DiscoveryTimeout = 2 * time.Second
	}
	if cfg.DiscoveryQuiet <= 0 {
		cfg.DiscoveryQuiet = 100 * time.Millisecond
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return cfg
}

func newClient(cfg Config, id *security.Identity, v *security.Verifier, nc *nats.Conn) *Client {
	// Reply verification is CPU-bound (an Ed25519 check each): spread it over
	// every core so 10,000 replies do not queue behind one goroutine.
	return newClientWorkers(cfg, id, v, nc, runtime.GOMAXPROCS(0))
}

// newClientWorkers is newClient with a given number of verification workers
// (tests verify replies one by one with none).
func newClientWorkers(cfg Config, id *security.Identity, v *security.Verifier, nc *nats.Conn, workers int) *Client {
	c := &Client{
		cfg: cfg, id: id, verifier: v, nc: nc, hash: protocol.CallerHash(id.Name()), log: cfg.Logger,
		subs: map[string]*nats.Subscription{}, pending: map[string]*call{},
	}
	c.wake = sync.NewCond(&c.inboxMu)
	for range workers {
		c.wg.Add(1)
		go c.verifyLoop()
	}
	return c
}

// Identity is the client's certname.
func (c *Client) Identity() string { return c.id.Name() }

// Collective is the default collective.
func (c *Client) Collective() string { return c.cfg.Collective }

// Close disconnects from the broker (a client made by New only drops its
// subscriptions: the connection is its owner's). Calling it again does
// nothing.
func (c *Client) Close() {
	c.closeOnce.Do(func() {
		if c.ownsConn {
			c.nc.Close()
		} else {
			c.mu.Lock()
			for _, sub := range c.subs {
				_ = sub.Unsubscribe()
			}
			c.mu.Unlock()
		}
		c.inboxMu.Lock()
		c.closed = true
		c.wake.Broadcast()
		c.inboxMu.Unlock()
		c.wg.Wait()
	})
}

// subscribe makes sure the client listens on its reply subjects in a collective.
func (c *Client) subscribe(collective string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.subs[collective]; ok {
		return nil
	}
	subject := protocol.ReplyPrefix(collective, c.hash) + ".>"
	before := c.nc.LastError()
	sub, err := c.nc.Subscribe(subject, c.arrive)
	if err != nil {
		return fmt.Errorf("subscribing to replies: %w", err)
	}
	_ = sub.SetPendingLimits(-1, 256<<20)
	// Make sure the broker has the subscription before any request goes out,
	// and learn about a permission refusal now rather than as missing replies.
	if err := c.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return err
	}
	if err := transport.Refusal(c.nc, before, "subscription", subject); err != nil {
		// Not cached: the next call asks the broker again instead of
		// trusting a subscription that does not exist there.
		_ = sub.Unsubscribe()
		return fmt.Errorf("broker refused the reply subscription %s: %w", subject, err)
	}
	c.subs[collective] = sub
	return nil
}

// arrival is a reply as it came off the connection, before verification.
type arrival struct {
	call *call
	id   string // request id, from the reply subject
	data []byte
	at   time.Time
}

// arrive receives a raw reply from the connection. It stamps the reply's
// arrival time here, before the reply queues for verification, so that RTTs
// and the quiet window are wire times: at thousands of replies the
// verification queue would otherwise add its own delay to both.
func (c *Client) arrive(m *nats.Msg) {
	at := time.Now()
	id := m.Subject[strings.LastIndexByte(m.Subject, '.')+1:]
	c.mu.Lock()
	cl := c.pending[id]
	c.mu.Unlock()
	if cl == nil {
		return // a straggler for a finished call
	}
	cl.arrived(at)
	c.inboxMu.Lock()
	c.inbox = append(c.inbox, arrival{call: cl, id: id, data: m.Data, at: at})
	c.wake.Signal()
	c.inboxMu.Unlock()
}

func (c *Client) verifyLoop() {
	defer c.wg.Done()
	for c.verifyNext() {
	}
}

// verifyNext waits for the next raw reply, verifies it and hands it to its
// call; it reports false once the client is closed.
func (c *Client) verifyNext() bool {
	c.inboxMu.Lock()
	for len(c.inbox) == 0 && !c.closed {
		c.wake.Wait()
	}
	if c.closed {
		c.inboxMu.Unlock()
		return false
	}
	a := c.inbox[0]
	c.inbox[0] = arrival{} // let the reply's bytes go once verified
	c.inbox = c.inbox[1:]
	c.inboxMu.Unlock()
	a.call.add(c.verifyReply(a.data, a.id, a.at))
	return true
}

// verifyReply checks a reply's signature by a node certificate whose certname
// is the reply's sender.
func (c *Client) verifyReply(data []byte, id string, received time.Time) Result {
	var env protocol.SecureReply
	if err := protocol.DecodeSecureReply(data, &env); err != nil || env.Protocol != protocol.SecureReplyProtocol {
		return Result{Received: received, Err: fmt.Errorf("undecodable reply envelope")}
	}
	cert, err := c.verifier.Verify(env.Cert, env.Reply, env.Signature, pki.RoleNode)
	if err != nil {
		return Result{Received: received, Err: fmt.Errorf("reply rejected: %w", err)}
	}
	var rep protocol.Reply
	if err := json.Unmarshal(env.Reply, &rep); err != nil {
		return Result{Sender: cert.Subject.CommonName, Received: received, Err: fmt.Errorf("undecodable reply: %w", err)}
	}
	r := Result{Sender: rep.Sender, Status: rep.Status, Message: rep.Message, Data: rep.Data, Received: received, JobID: rep.JobID}
	switch {
	case rep.Sender != cert.Subject.CommonName:
		r.Err = fmt.Errorf("reply claims sender %q but is signed by %q", rep.Sender, cert.Subject.CommonName)
		r.Sender = cert.Subject.CommonName
	case rep.RequestID != id:
		r.Err = fmt.Errorf("reply for request %q arrived on the subject of %q", rep.RequestID, id)
	}
	return r
}

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// sign builds and signs a request envelope.
func (c *Client) sign(req *protocol.Request) ([]byte, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("encoding request: %w", err)
	}
	return json.Marshal(&protocol.SecureRequest{
		Protocol: protocol.SecureRequestProtocol, Request: body,
		Signature: c.id.Sign(body), Cert: c.id.Cert.Raw,
	})
}
