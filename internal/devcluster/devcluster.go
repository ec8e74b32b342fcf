// Package devcluster starts a complete throw-away collective in one process: a
// fresh CA in a directory, an embedded broker on a random loopback port, and
// N nodes, each with its own certificate, facts and subscriptions (nodes
// share broker connections, NodesPerConnection to one). It is
// what `mco demo` and `mco dev` run, and what end-to-end tests build on.
package devcluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/agents/rpcutil"
	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/authz"
	"github.com/marionette/mco/internal/broker"
	"github.com/marionette/mco/internal/data"
	"github.com/marionette/mco/internal/node"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/internal/server"
	"github.com/marionette/mco/internal/transport"
)

// Options configures a dev cluster.
type Options struct {
	Dir        string // CA, client certificate and client.conf go here
	Nodes      int
	Collective string // default "mcollective"
	// Client is the certname of the client certificate to issue (default
	// "dev.mcollective"); ExtraClients are issued too (e.g. a denied user).
	Client       string
	ExtraClients []string
	// Agents build extra built-in agents for each node (after rpcutil).
	Agents []node.AgentFunc
	// Configure adjusts each node's spec before it is built.
	Configure func(i int, name string, s *node.Spec)
	// PolicyDir enables ActionPolicy on every node (shared policy files).
	PolicyDir string
	// AuditDir enables a hash-chained audit log per node: AuditDir/<node>.log.
	AuditDir string
	// Libdirs load external agents (<libdir>/agent/*) into every node, and
	// reload them when the files change.
	Libdirs []string
	Version string
	Logger  *slog.Logger
}

// Cluster is a running dev collective.
type Cluster struct {
	Dir          string
	ClientConfig string // path of the generated client.conf
	Broker       *broker.Broker
	Nodes        []*node.Node
	Store        pki.Store
	Verifier     *security.Verifier
	conns        []*nats.Conn // shared: node i uses conns[i/NodesPerConnection]
	audits       []*audit.Log
	auditDir     string
	quiet        time.Duration
	libdirs      []string
	cancel       context.CancelFunc
	wg           sync.WaitGroup
}

// Start builds and starts the cluster. ctx bounds the start (a cancelled
// start stops what it started) and the cluster's life: when it ends, the
// cluster stops watching its libdirs; Close stops the rest.
func Start(ctx context.Context, o Options) (*Cluster, error) {
	if o.Nodes < 0 {
		return nil, errors.New("node count must not be negative")
	}
	if o.Collective == "" {
		o.Collective = "mcollective"
	}
	if o.Client == "" {
		o.Client = "dev.mcollective"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if err := CheckDescriptors(o.Nodes, o.AuditDir != ""); err != nil {
		return nil, err
	}
	st := pki.Store{Dir: filepath.Join(o.Dir, "pki")}
	ca, err := st.Init("Marionette dev CA")
	if err != nil {
		return nil, err
	}
	// One verifier for every emulated node: each broadcast's signature is
	// checked once, not once per node.
	v, err := security.NewVerifier(security.VerifierOptions{CA: ca.Cert, SharedSignatures: true})
	if err != nil {
		return nil, err
	}
	c := &Cluster{Dir: o.Dir, Store: st, Verifier: v, auditDir: o.AuditDir, libdirs: o.Libdirs}
	ok := false
	defer func() {
		if !ok {
			c.Close()
		}
	}()

	bcert, bkey, err := ca.Issue(pki.LeafRequest{Name: "broker.dev", Role: pki.RoleBroker, Hosts: []string{"127.0.0.1", "localhost"}})
	if err != nil {
		return nil, err
	}
	collectors, _ := security.ParseMatcher(o.Client)
	c.Broker, err = broker.Start(broker.Options{
		Identity: &security.Identity{Cert: bcert, Key: bkey}, Verifier: v,
		Listen: "127.0.0.1:0", Collectors: collectors, Logger: o.Logger.With("role", "broker"),
		NodeGroups: nodeGroups(o.Nodes),
	})
	if err != nil {
		return nil, err
	}
	for _, name := range append([]string{o.Client}, o.ExtraClients...) {
		if _, err := st.Issue(pki.RoleClient, name, nil); err != nil {
			return nil, err
		}
	}
	c.ClientConfig = filepath.Join(o.Dir, "client.conf")
	c.quiet = quietWindow(o.Nodes)
	if err := c.writeClientConfig(c.ClientConfig, o.Client, o.Collective); err != nil {
		return nil, err
	}
	for _, name := range o.ExtraClients {
		if err := c.writeClientConfig(filepath.Join(o.Dir, name+".conf"), name, o.Collective); err != nil {
			return nil, err
		}
	}

	c.Nodes = make([]*node.Node, o.Nodes)
	c.audits = make([]*audit.Log, o.Nodes)
	if err := c.dialGroups(ctx, ca, v, o.Nodes); err != nil {
		return nil, err
	}
	if o.AuditDir != "" {
		if err := os.MkdirAll(o.AuditDir, 0o700); err != nil {
			return nil, err
		}
	}
	// package and service describe this machine, not a node: built once.
	machine := node.MachinePlugins(o.Logger)
	var authorizer server.Authorizer
	if o.PolicyDir != "" {
		authorizer = node.Policy{A: authz.New(authz.Options{Dir: o.PolicyDir, EnableDefault: true}, o.Logger)}
	}
	errs := make([]error, o.Nodes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for i := range o.Nodes {
		if err := ctx.Err(); err != nil {
			errs[i] = err
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = c.startNode(ca, v, o, i, authorizer, machine)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if len(o.Libdirs) > 0 && o.Nodes > 0 {
		c.watchLibdirs(ctx, o)
	}
	ok = true
	return c, nil
}

// quietWindow is the broadcast quiet window for an emulated collective. All
// nodes share this process's CPU, so a broadcast to thousands of them
// saturates it: the first replies get out at once and the rest follow in a
// burst after every node has verified the request. Real fleets, where every
// node has its own CPU, keep the 100 ms default. The floor is 250 ms since
// the window runs from replies' arrival rather than from their verification:
// with a 100 ms floor, discovery of 500 emulated nodes on a loaded 2-core
// machine ended after 400 of them.
func quietWindow(nodes int) time.Duration {
	return max(250*time.Millisecond, time.Duration(nodes)*150*time.Microsecond)
}

func (c *Cluster) writeClientConfig(path, name, collective string) error {
	conf := fmt.Sprintf(`# Marionette dev collective client configuration (generated by mco dev)
broker = %s
collective = %s
tls.ca = %s
tls.cert = %s
tls.key = %s
discovery_quiet = %s
`, c.Broker.URL(), collective, c.Store.CACertPath(), c.Store.CertPath(name), c.Store.KeyPath(name), c.quiet)
	if len(c.libdirs) > 0 {
		// The client needs the external agents' DDLs too.
		conf += "libdir = " + strings.Join(c.libdirs, ", ") + "\n"
	}
	return os.WriteFile(path, []byte(conf), 0o600)
}

func (c *Cluster) startNode(ca *pki.CA, v *security.Verifier, o Options, i int, authorizer server.Authorizer, machine []data.Plugin) error {
	name := NodeName(i)
	cert, key, err := ca.Issue(pki.LeafRequest{Name: name, Role: pki.RoleNode})
	if err != nil {
		return err
	}
	id := &security.Identity{Cert: cert, Key: key}
	spec := node.Spec{
		Identity: id, Verifier: v, Collectives: []string{o.Collective},
		Facts: NewStaticFacts(NodeFacts(i), NodeClasses(i)), Version: o.Version,
		Logger: o.Logger, Authorizer: authorizer, MachinePlugins: machine,
		RPCUtil: rpcutil.Options{ConfigItems: map[string]any{"identity": name, "collectives": o.Collective}},
		Agents:  o.Agents, Libdirs: o.Libdirs,
		QuietLoad: i > 0, // the same files: reported once
		// Thousands of nodes share this process: each handles its requests
		// on its own subscription's goroutine (see server.Options.Concurrency).
		Concurrency: 1,
	}
	if o.AuditDir != "" {
		log, err := audit.Open(filepath.Join(o.AuditDir, name+".log"), audit.Options{})
		if err != nil {
			return err
		}
		c.audits[i] = log
		spec.Audit = log
	}
	if o.Configure != nil {
		o.Configure(i, name, &spec)
	}
	n, err := node.Build(spec)
	if err != nil {
		return err
	}
	if err := n.Start(c.conns[i/NodesPerConnection]); err != nil {
		return fmt.Errorf("node %s: %w", name, err)
	}
	c.Nodes[i] = n
	return nil
}

// groupName is the certname of the connection carrying group g's nodes.
func groupName(g int) string { return fmt.Sprintf("conn%d.devcluster", g) }

// nodeGroups tells the broker which nodes each shared connection carries.
func nodeGroups(nodes int) map[string][]string {
	groups := map[string][]string{}
	for i := range nodes {
		g := groupName(i / NodesPerConnection)
		groups[g] = append(groups[g], NodeName(i))
	}
	return groups
}

// dialGroups opens one broker connection per NodesPerConnection nodes, each
// with a certificate of its own (role node) that the broker lets carry
// those nodes' subjects. The nodes still sign with their own keys.
func (c *Cluster) dialGroups(ctx context.Context, ca *pki.CA, v *security.Verifier, nodes int) error {
	c.conns = make([]*nats.Conn, (nodes+NodesPerConnection-1)/NodesPerConnection)
	errs := make([]error, len(c.conns))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16) // TLS handshakes in parallel, but not hundreds at once
	for g := range c.conns {
		if err := ctx.Err(); err != nil {
			errs[g] = err
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			cert, key, err := ca.Issue(pki.LeafRequest{Name: groupName(g), Role: pki.RoleNode})
			if err != nil {
				errs[g] = err
				return
			}
			c.conns[g], errs[g] = transport.Dial(transport.Options{
				Brokers: []string{c.Broker.URL()}, Identity: &security.Identity{Cert: cert, Key: key},
				Roots: v.Roots(), Name: groupName(g), Reconnect: true,
			})
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// watchLibdirs reloads every node's external agents when the files change,
// until ctx ends or the cluster closes. One watcher serves the whole
// cluster; each node then reloads with its own facts.
func (c *Cluster) watchLibdirs(ctx context.Context, o Options) {
	ctx, c.cancel = context.WithCancel(ctx)
	c.wg.Go(func() {
		c.Nodes[0].Loader().Run(ctx, func(ext []*agent.Agent) {
			first, err := c.Nodes[0].SetExternal(ext)
			if err != nil {
				o.Logger.Error("reloading external agents", "node", c.Nodes[0].Identity(), "err", err)
			}
			for _, n := range c.Nodes[1:] {
				if _, err := n.Reload(); err != nil {
					o.Logger.Error("reloading external agents", "node", n.Identity(), "err", err)
				}
			}
			o.Logger.Info("external agents reloaded", "agents", first)
		})
	})
}

// AuditLog returns the path of a node's audit log ("" without AuditDir).
func (c *Cluster) AuditLog(i int) string {
	if c.audits[i] == nil {
		return ""
	}
	return filepath.Join(c.auditDir, NodeName(i)+".log")
}

// Close stops every node and the broker.
func (c *Cluster) Close() {
	if c.cancel != nil {
		c.cancel()
		c.wg.Wait()
	}
	for i, s := range c.Nodes {
		if s != nil {
			s.Stop()
		}
		if c.audits[i] != nil {
			_ = c.audits[i].Close()
		}
	}
	for _, nc := range c.conns {
		if nc != nil {
			nc.Close()
		}
	}
	if c.Broker != nil {
		c.Broker.Shutdown()
	}
}
