// Package daemon assembles a node daemon from its configuration: identity
// and trust, facts, data plugins, ActionPolicy, the audit log and the agents,
// then connects it to the broker. `mco server run` is a thin wrapper.
package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/agents/auditagent"
	"github.com/marionette/mco/internal/agents/packageagent"
	"github.com/marionette/mco/internal/agents/rpcutil"
	"github.com/marionette/mco/internal/agents/serviceagent"
	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/authz"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/facts"
	"github.com/marionette/mco/internal/filewatch"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/node"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/quiesce"
	"github.com/marionette/mco/internal/reaper"
	"github.com/marionette/mco/internal/registration"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/internal/server"
	"github.com/marionette/mco/internal/transport"
	"github.com/marionette/mco/protocol"
)

// Daemon is a configured node, ready to run.
type Daemon struct {
	cfg      *config.Server
	file     string
	log      *slog.Logger
	id       *security.Identity      // as loaded at start: the node's name
	ids      *security.IdentityFiles // the certificate and key in use, renewed on disk
	verifier *security.Verifier
	facts    *facts.Store
	cm       *CM
	// recollect asks Run to re-run the fact commands (a run ended).
	recollect chan struct{}
	audit     *audit.Log
	node      *node.Node
	// auditWrites counts audit lines written (metrics).
	auditWrites atomic.Uint64
	// publishAudit sends audit lines to the broker once connected.
	publishAudit atomic.Pointer[func([]byte)]
	// jobs is the job spool; jobsEnded is signalled when a job this
	// daemon started ends, to audit its end (watchJobs).
	jobs      *jobs.Spool
	jobsEnded chan struct{}
	// metrics observes every answered request (RegisterMetrics); nil
	// without a metrics endpoint.
	metrics server.Observer
	// activity gets a token when a request is answered, so that the
	// memory a burst of requests brought in is handed back once they stop
	// (settle); it holds at most one.
	activity chan struct{}
	// settleDelay and quietRelease are SettleDelay and QuietRelease
	// (shorter in tests).
	settleDelay, quietRelease time.Duration
}

// Completed implements server.Observer: metrics, and the activity that
// settle waits for.
func (d *Daemon) Completed(agent, action string, status protocol.StatusCode, took time.Duration) {
	if d.metrics != nil {
		d.metrics.Completed(agent, action, status, took)
	}
	select {
	case d.activity <- struct{}{}:
	default: // a token is already waiting
	}
}

// New builds a node from its configuration (file is its path, for reporting).
func New(cfg *config.Server, file, version string, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{cfg: cfg, file: file, log: log, activity: make(chan struct{}, 1),
		settleDelay: SettleDelay, quietRelease: QuietRelease}
	var err error
	if d.ids, err = security.LoadIdentityFiles(cfg.Cert, cfg.Key); err != nil {
		return nil, fmt.Errorf("node certificate: %w", err)
	}
	d.id = d.ids.Current()
	if cfg.Identity != "" && cfg.Identity != d.id.Name() {
		return nil, fmt.Errorf("%s: identity %q does not match the certificate's name %q (the broker only delivers %s's messages to it)", file, cfg.Identity, d.id.Name(), d.id.Name())
	}
	if role, err := pki.RoleOf(d.id.Cert); err != nil || role != pki.RoleNode {
		return nil, fmt.Errorf("%s is not a node certificate (role %q)", cfg.Cert, role)
	}
	if d.verifier, err = node.NewVerifier(&cfg.Security); err != nil {
		return nil, err
	}
	d.facts, err = facts.New(facts.Options{
		Files: cfg.FactFiles, ClassesFile: cfg.ClassesFile, Version: version, Logger: log,
		Builtins: true, Commands: commands(cfg.FactCommand, cfg.FactSources), CommandInterval: cfg.FactInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("facts: %w", err)
	}
	d.jobsEnded = make(chan struct{}, 1)
	if d.jobs, err = OpenJobs(cfg, d.id.Name(), func(*jobs.State) {
		select {
		case d.jobsEnded <- struct{}{}:
		default: // a look at the spool is due anyway
		}
	}); err != nil {
		return nil, err
	}
	// Facts change with a Puppet or Chef run (a package installed, a file
	// written): Run re-collects them when one ends, as the tools' summary
	// or report says, whoever started the run (a run that outlived a
	// daemon restart included).
	d.recollect = make(chan struct{}, 1)
	d.cm, err = ConfigManagement(cfg, d.jobs, CMHooks{
		Classes: d.facts.SetClasses,
		RunFinished: func() {
			select {
			case d.recollect <- struct{}{}:
			default: // one is pending: it will see this run's changes too
			}
		},
	}, log)
	if err != nil {
		return nil, err
	}
	det, err := newDetacher(d.jobs, file, d.facts.Facts, d.facts.Classes)
	if err != nil {
		return nil, err
	}
	spec := node.Spec{
		Identity: d.id, Verifier: d.verifier, Collectives: cfg.Collectives, Facts: d.facts,
		AuditFailOpen: cfg.AuditFailOpen, MaxMessageSize: cfg.MaxMessageSize, Skew: cfg.Skew,
		MaxTTL: cfg.MaxTTL, Version: version, Logger: log, ReplayFile: cfg.ReplayFile,
		MachinePlugins: append(node.MachinePlugins(log), d.cm.Plugins...),
		RPCUtil: rpcutil.Options{ConfigFile: file, ConfigItems: map[string]any{
			"identity": d.id.Name(), "collectives": cfg.Collectives, "libdir": cfg.Libdirs,
			"facts": cfg.FactFiles, "classes": cfg.ClassesFile, "policy.dir": cfg.PolicyDir,
			"policy.default": cfg.PolicyDefault, "audit.log": cfg.AuditLog,
			"request.skew":    cfg.Skew.String(),
			"request.max_ttl": cfg.MaxTTL.String(), "max_message_size": cfg.MaxMessageSize,
		}},
		Agents:   append(BuiltinAgents(cfg, log), d.cm.Agents),
		Disabled: cfg.DisabledAgents,
		Libdirs:  cfg.Libdirs,
		// plugin.<agent>.<key> lines
		PluginConfig: cfg.PluginConfig,
		Jobs:         det,
		// Metrics (RegisterMetrics) and the activity settle waits for.
		Observer: d,
		// A renewed certificate signs replies at once (Watch in Run).
		CurrentIdentity: d.ids.Current,
	}
	if cfg.PolicyDir != "" {
		spec.Authorizer = node.Policy{A: authz.New(authz.Options{
			Dir: cfg.PolicyDir, EnableDefault: cfg.PolicyEnableDef, DefaultName: cfg.PolicyDefaultName,
			AllowUnconfigured: cfg.AllowUnconfigured, PolicyDefault: cfg.PolicyDefault,
			AgentDefaults: cfg.AgentPolicyDefault,
		}, log)}
	} else {
		log.Warn("policy.disabled = true: authorization is off, every authenticated caller may run every action")
	}
	if cfg.PolicyDir != "" {
		if _, err := os.Stat(cfg.PolicyDir); err != nil {
			log.Warn("policy directory unreadable: every request is denied unless policy.allow_unconfigured = true", "policy.dir", cfg.PolicyDir, "err", err)
		}
	}
	if cfg.AuditLog == "" {
		log.Warn("audit.disabled = true: requests are not audited on this node")
	}
	if cfg.AuditLog != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.AuditLog), 0o700); err != nil {
			return nil, fmt.Errorf("audit log directory (set audit.log to a writable path, or audit.disabled = true): %w", err)
		}
		// Central audit: every line is also published once connected (Run).
		aopts := audit.Options{OnAppend: func(line []byte) {
			d.auditWrites.Add(1)
			if publish := d.publishAudit.Load(); publish != nil {
				(*publish)(line)
			}
		}, Node: d.id.Name(), Checkpoint: func(msg []byte) ([]byte, []byte) {
			// Signed with the node's own (current) key: only this node
			// can vouch for its chain.
			id := d.ids.Current()
			return id.Sign(msg), id.Cert.Raw
		}}
		d.audit, err = audit.Open(cfg.AuditLog, aopts)
		if errors.Is(err, audit.ErrTornLine) {
			// A crash mid-write must not keep the node down: the partial
			// line is cut and the cut recorded in the chain (as mco audit
			// repair does). Anything else stays fatal: it may be tampering.
			n, rerr := audit.Repair(cfg.AuditLog, d.id.Name(), audit.Options{})
			if rerr == nil {
				log.Warn("audit log ended in a torn line: removed it and recorded the repair in the chain", "file", cfg.AuditLog, "bytes", n)
				d.audit, err = audit.Open(cfg.AuditLog, aopts)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("audit log (set audit.log to a writable path, or audit.disabled = true): %w", err)
		}
		spec.Audit = d.audit
	}
	if len(cfg.Libdirs) > 0 {
		// Runs a killed predecessor left behind are killed now; only the
		// groups it recorded as its own running actions.
		groups, err := reaper.Open(filepath.Join(filepath.Dir(cfg.ReplayFile), "running-agents"), log)
		if err != nil {
			return nil, err
		}
		spec.AgentGroups = groups
	}
	if d.node, err = node.Build(spec); err != nil {
		if d.audit != nil {
			_ = d.audit.Close()
		}
		return nil, err
	}
	return d, nil
}

// commands are the fact command sources: facts.command, then the named
// sources (facter, ohai) in the order given.
func commands(cmd []string, sources []string) [][]string {
	var out [][]string
	if len(cmd) > 0 {
		out = append(out, cmd)
	}
	for _, name := range sources {
		if argv, err := facts.SourceCommand(name); err == nil {
			out = append(out, argv)
		}
	}
	return out
}

// BuiltinAgents are the agents a daemon hosts beside rpcutil: the audit agent
// when audit.readers is set, and the package and service agents when the
// machine has a package database or service manager. A new built-in agent is
// added here.
func BuiltinAgents(cfg *config.Server, log *slog.Logger) []node.AgentFunc {
	return []node.AgentFunc{
		func(*node.Node) ([]*agent.Agent, error) {
			if cfg.AuditLog == "" || cfg.AuditReaders == "" {
				return nil, nil
			}
			// Lets the collectors named in audit.readers fetch the lines they
			// missed; not quick: it reads a file.
			readers, err := security.ParseMatcher(cfg.AuditReaders)
			if err != nil {
				return nil, fmt.Errorf("audit.readers: %w", err)
			}
			aa, err := auditagent.New(cfg.AuditLog, readers)
			if err != nil {
				return nil, err
			}
			return []*agent.Agent{aa}, nil
		},
		func(*node.Node) ([]*agent.Agent, error) {
			pa, err := packageagent.New(packageagent.Options{Logger: log})
			if errors.Is(err, packageagent.ErrNoBackend) {
				log.Info("package agent inactive", "reason", err)
				return nil, nil
			}
			return []*agent.Agent{pa}, err
		},
		func(*node.Node) ([]*agent.Agent, error) {
			sa, err := serviceagent.New(serviceagent.Options{Logger: log})
			if errors.Is(err, serviceagent.ErrNoBackend) {
				log.Info("service agent inactive", "reason", err)
				return nil, nil
			}
			return []*agent.Agent{sa}, err
		},
	}
}

// ReopenLogs reopens the audit log at its path, for rotation (SIGHUP): the
// chain carries on into the new file.
func (d *Daemon) ReopenLogs() error {
	if d.audit == nil {
		return nil
	}
	return d.audit.Reopen()
}

// Node is the assembled node.
func (d *Daemon) Node() *node.Node { return d.node }

// Run connects to the broker and serves until ctx ends. Every goroutine it
// starts has ended when it returns.
func (d *Daemon) Run(ctx context.Context) error {
	if d.cfg.Insecure {
		d.log.Warn("insecure = true: the broker connection is not encrypted (development only)")
	}
	if err := node.LoadRevocations(d.verifier, d.cfg.RevocationFile); err != nil {
		return err
	}
	nc, err := transport.Dial(transport.Options{
		Brokers: d.cfg.Brokers, CurrentIdentity: d.ids.Current, Roots: d.verifier.Roots(), Insecure: d.cfg.Insecure,
		Name: d.id.Name(), Reconnect: true, Logger: d.log, Revoked: d.verifier.IsRevoked,
	})
	if err != nil {
		return err
	}
	defer nc.Close()
	if d.audit != nil {
		defer d.audit.Close()
		subject := protocol.AuditSubject(d.cfg.Collectives[0], d.id.Name())
		publish := func(line []byte) { _ = nc.Publish(subject, line) }
		d.publishAudit.Store(&publish)
	}
	if err := d.node.Start(nc); err != nil {
		return err
	}
	d.log.Info("node ready", "identity", d.id.Name(), "collectives", d.cfg.Collectives, "agents", d.node.AgentNames())
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait() // after cancel, before the connection closes
	defer cancel()
	var jobAudit *node.Auditor
	if d.audit != nil {
		jobAudit = &node.Auditor{Log: d.audit, Node: d.id.Name()}
	}
	wg.Go(func() { watchJobs(ctx, d.jobs, jobAudit, d.jobsEnded, d.log) })
	wg.Go(func() { d.settle(ctx) })
	wg.Go(func() {
		if err := d.facts.Run(ctx); err != nil {
			d.log.Error("facts watcher stopped", "err", err)
		}
	})
	wg.Go(func() { d.cm.Run(ctx) })
	wg.Go(func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-d.recollect:
				d.log.Debug("a Puppet or Chef run ended: re-collecting facts")
				d.facts.Recollect(ctx)
			}
		}
	})
	// Registration: announce now, on the interval and whenever the facts or
	// the agents change.
	reg := registration.NewPublisher(registration.PublisherOptions{
		CurrentIdentity: d.ids.Current, Source: d.node, Publish: nc.Publish, Interval: d.cfg.RegistrationPeriod,
		FactsChanged: d.facts.Changed, Logger: d.log,
	})
	regDone := make(chan struct{})
	wg.Go(func() { reg.Run(ctx); close(regDone) })
	if d.cfg.RevocationFile != "" {
		wg.Go(func() {
			// A revocation must apply on the node as soon as on the broker
			// (file system events; see RevocationPoll). A newly revoked broker certificate
			// drops the connection to it; the handshake then refuses it
			// and the node reconnects to another broker.
			_ = security.WatchRevocations(ctx, d.cfg.RevocationFile, d.verifier, RevocationPoll, d.log, func() { dropRevokedBroker(nc, d.verifier, d.log) })
		})
	}
	// A certificate and key renewed on disk are used without a restart:
	// for reply and registration signatures at once (both read
	// d.ids.Current), for the broker connection from the next reconnect.
	wg.Go(func() {
		d.ids.Watch(ctx, filewatch.DefaultPoll, d.log, func(id *security.Identity) error {
			_, err := d.verifier.Certificate(id.Cert.Raw, pki.RoleNode)
			return err
		}, nil)
	})
	if loader := d.node.Loader(); loader != nil {
		wg.Go(func() {
			loader.Run(ctx, func(agents []*agent.Agent) {
				names, err := d.node.SetExternal(agents)
				if err != nil {
					d.log.Error("reloading external agents", "err", err)
					return
				}
				d.log.Info("external agents reloaded", "agents", names)
				reg.Trigger()
			})
		})
	}
	<-ctx.Done()
	d.log.Info("shutting down")
	d.node.Stop()
	cancel()
	<-regDone // no announcement on a closing connection
	return nil
}

// SettleDelay is how long the daemon waits after "node ready", and after
// its last request if requests came in the meantime, before it hands its
// start-up memory back: by then the watchers are set up and the first
// registration announcement is out.
const SettleDelay = 2 * time.Second

// QuietRelease is how long requests must have stopped before the daemon
// hands back again the memory they brought in (it checks every
// QuietRelease, so that happens between one and two QuietRelease after the
// last request).
const QuietRelease = 15 * time.Second

// settle returns memory the idle node does not need: once no request has
// come for SettleDelay after start, and again each time requests have
// stopped for QuietRelease. Between those it waits on d.activity, not on a
// timer: an idle node is never woken. While requests come, it wakes once
// per period to see whether they still do (the request counter moved).
func (d *Daemon) settle(ctx context.Context) {
	stats := d.node.Server().Stats()
	for quiet := d.settleDelay; ; quiet = d.quietRelease {
		for {
			seen := stats.Total.Load()
			if !sleep(ctx, quiet) {
				return
			}
			if stats.Total.Load() == seen {
				break
			}
		}
		// Requests answered so far are covered by this release (their
		// token, if any, is dropped): only a later one starts a new wait.
		select {
		case <-d.activity:
		default:
		}
		d.release()
		select {
		case <-ctx.Done():
			return
		case <-d.activity:
		}
	}
}

// release hands back the heap's free memory (most of it start-up or
// request garbage by then: configuration, certificates, DDLs, built-in
// facts, the TLS handshake, decoded requests) and the binary's pages
// (quiesce.ReleaseBinaryPages). What a later request needs faults back in
// when it runs.
func (d *Daemon) release() {
	debug.FreeOSMemory()
	if n, err := quiesce.ReleaseBinaryPages(); err != nil {
		d.log.Warn("pages of the binary kept resident", "err", err)
	} else {
		d.log.Debug(releasedMessage, "mapped_bytes", n)
	}
}

// releasedMessage is release's debug log line (tests count it).
const releasedMessage = "memory released"

// sleep waits for d or for ctx to end, and reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// RevocationPoll is how often the node checks its revocation file even
// without a file system event; events apply a revocation at once.
const RevocationPoll = filewatch.DefaultPoll

// dropRevokedBroker forces a reconnect when the broker the node is connected
// to presents a certificate that is now revoked.
func dropRevokedBroker(nc *nats.Conn, v *security.Verifier, log *slog.Logger) {
	cs, err := nc.TLSConnectionState()
	if err != nil || len(cs.PeerCertificates) == 0 || !v.IsRevoked(cs.PeerCertificates[0]) {
		return
	}
	log.Warn("the connected broker's certificate is revoked: reconnecting elsewhere", "broker", cs.PeerCertificates[0].Subject.CommonName)
	if err := nc.ForceReconnect(); err != nil {
		log.Error("reconnecting away from a revoked broker", "err", err)
	}
}
