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
	"sync/atomic"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/agents/auditagent"
	"github.com/marionette/mco/internal/agents/external"
	"github.com/marionette/mco/internal/agents/packageagent"
	"github.com/marionette/mco/internal/agents/rpcutil"
	"github.com/marionette/mco/internal/agents/serviceagent"
	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/authz"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/data"
	"github.com/marionette/mco/internal/facts"
	"github.com/marionette/mco/internal/pki"
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
	audit    *audit.Log
	srv      *server.Server
	external *external.Loader
	extNames []string
	builtin  map[string]bool // names external agents may not take
	// auditWrites counts audit lines written (metrics).
	auditWrites atomic.Uint64
	// publishAudit sends audit lines to the broker once connected.
	publishAudit atomic.Pointer[func([]byte)]
}

// New builds a node from its configuration (file is its path, for reporting).
func New(cfg *config.Server, file, version string, log *slog.Logger) (*Daemon, error) {
	d := &Daemon{cfg: cfg, file: file, log: log}
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
	if d.verifier, err = NewVerifier(&cfg.Security); err != nil {
		return nil, err
	}
	d.facts, err = facts.New(facts.Options{
		Files: cfg.FactFiles, ClassesFile: cfg.ClassesFile, Version: version, Logger: log,
		Builtins: true, Commands: commands(cfg.FactCommand), CommandInterval: cfg.FactInterval,
	})
	if err != nil {
		return nil, fmt.Errorf("facts: %w", err)
	}
	opts := server.Options{
		Identity: d.id, Verifier: d.verifier, Collectives: cfg.Collectives, Facts: d.facts,
		AuditFailOpen: cfg.AuditFailOpen, MaxMessageSize: cfg.MaxMessageSize, Skew: cfg.Skew,
		MaxTTL: cfg.MaxTTL, Version: version, Logger: log, ReplayFile: cfg.ReplayFile,
	}
	if cfg.PolicyDir != "" {
		opts.Authorizer = Policy{authz.New(authz.Options{
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
	if d.srv, err = server.New(opts); err != nil {
		return nil, err
	}
	d.srv.SetData(NewDataPlugins(d.srv, MachinePlugins(log)...))
	if cfg.AuditLog != "" {
		if err := os.MkdirAll(filepath.Dir(cfg.AuditLog), 0o700); err != nil {
			return nil, fmt.Errorf("audit log directory (set audit.log to a writable path, or audit.disabled = true): %w", err)
		}
		// Central audit: every line is also published once connected (Run).
		d.audit, err = audit.Open(cfg.AuditLog, audit.Options{OnAppend: func(line []byte) {
			d.auditWrites.Add(1)
			if publish := d.publishAudit.Load(); publish != nil {
				(*publish)(line)
			}
		}})
		if err != nil {
			return nil, fmt.Errorf("audit log (set audit.log to a writable path, or audit.disabled = true): %w", err)
		}
		d.srv.SetAuditor(&Auditor{Log: d.audit, Node: d.id.Name(), Secrets: SecretsOf(d.srv)})
	}
	agents, err := d.builtinAgents()
	if err != nil {
		return nil, err
	}
	d.builtin = agentNames(agents)
	for _, a := range agents {
		a.SetConfig(cfg.PluginConfig[a.Name()]) // plugin.<agent>.<key> lines
	}
	if len(cfg.Libdirs) > 0 {
		d.external = external.NewLoader(external.Options{LibDirs: cfg.Libdirs, Facts: d.facts.Facts, Logger: log, Config: cfg.PluginConfig})
		ext, errs := d.external.Load()
		for _, e := range errs {
			log.Error("external agent not loaded", "err", e)
		}
		ext = d.enabled(WithoutNames(ext, agentNames(agents), log))
		for _, a := range ext {
			d.extNames = append(d.extNames, a.Name())
		}
		agents = append(agents, ext...)
	}
	if err := d.srv.AddAgents(agents...); err != nil {
		return nil, err
	}
	return d, nil
}

func commands(cmd []string) [][]string {
	if len(cmd) == 0 {
		return nil
	}
	return [][]string{cmd}
}

// NewVerifier builds the trust rules shared by nodes and brokers.
func NewVerifier(s *config.Security) (*security.Verifier, error) {
	ca, err := pki.ReadCert(s.CA)
	if err != nil {
		return nil, fmt.Errorf("CA certificate: %w", err)
	}
	opts := security.VerifierOptions{CA: ca}
	if s.Allowlist != "" {
		if opts.Allowlist, err = security.ParseMatcher(s.Allowlist); err != nil {
			return nil, fmt.Errorf("security.certname_allowlist: %w", err)
		}
	}
	if s.Privileged != "" {
		if opts.Privileged, err = security.ParseMatcher(s.Privileged); err != nil {
			return nil, fmt.Errorf("security.privileged_certnames: %w", err)
		}
	}
	return security.NewVerifier(opts)
}

func (d *Daemon) builtinAgents() ([]*agent.Agent, error) {
	ru, err := rpcutil.New(d.srv, rpcutil.Options{ConfigFile: d.file, ConfigItems: map[string]any{
		"identity": d.id.Name(), "collectives": d.cfg.Collectives, "libdir": d.cfg.Libdirs,
		"facts": d.cfg.FactFiles, "classes": d.cfg.ClassesFile, "policy.dir": d.cfg.PolicyDir,
		"policy.default": d.cfg.PolicyDefault, "audit.log": d.cfg.AuditLog,
		"request.skew":    d.cfg.Skew.String(),
		"request.max_ttl": d.cfg.MaxTTL.String(), "max_message_size": d.cfg.MaxMessageSize,
	}})
	if err != nil {
		return nil, err
	}
	agents := []*agent.Agent{ru}
	if d.cfg.AuditLog != "" && d.cfg.AuditReaders != "" {
		// Lets the collectors named in audit.readers fetch the lines they
		// missed; not quick: it reads a file.
		readers, err := security.ParseMatcher(d.cfg.AuditReaders)
		if err != nil {
			return nil, fmt.Errorf("audit.readers: %w", err)
		}
		aa, err := auditagent.New(d.cfg.AuditLog, readers)
		if err != nil {
			return nil, err
		}
		agents = append(agents, aa)
	}
	if pa, err := packageagent.New(packageagent.Options{Logger: d.log}); err == nil {
		agents = append(agents, pa)
	} else if errors.Is(err, packageagent.ErrNoBackend) {
		d.log.Info("package agent inactive", "reason", err)
	} else {
		return nil, err
	}
	if sa, err := serviceagent.New(serviceagent.Options{Logger: d.log}); err == nil {
		agents = append(agents, sa)
	} else if errors.Is(err, serviceagent.ErrNoBackend) {
		d.log.Info("service agent inactive", "reason", err)
	} else {
		return nil, err
	}
	return d.enabled(agents), nil
}

// enabled drops the agents disabled in the configuration (rpcutil never is).
func (d *Daemon) enabled(agents []*agent.Agent) []*agent.Agent {
	var out []*agent.Agent
	for _, a := range agents {
		disabled := false
		for _, n := range d.cfg.DisabledAgents {
			if n == a.Name() && n != "rpcutil" {
				disabled = true
			}
		}
		if !disabled {
			out = append(out, a)
		}
	}
	return out
}

// ReopenLogs reopens the audit log at its path, for rotation (SIGHUP): the
// chain carries on into the new file.
func (d *Daemon) ReopenLogs() error {
	if d.audit == nil {
		return nil
	}
	return d.audit.Reopen()
}

// Server is the assembled node.
func (d *Daemon) Server() *server.Server { return d.srv }

// Run connects to the broker and serves until ctx ends.
func (d *Daemon) Run(ctx context.Context) error {
	if d.cfg.Insecure {
		d.log.Warn("insecure = true: the broker connection is not encrypted (development only)")
	}
	if d.cfg.RevocationFile != "" {
		serials, err := pki.ReadRevoked(d.cfg.RevocationFile)
		if err != nil {
			return fmt.Errorf("revocation file: %w", err)
		}
		d.verifier.SetRevoked(serials)
	}
	nc, err := transport.Dial(transport.Options{
		Brokers: d.cfg.Brokers, CurrentIdentity: d.ids.Current, Roots: d.verifier.Roots(), Insecure: d.cfg.Insecure,
		Name: d.id.Name(), Reconnect: true, Logger: d.log,
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
	if err := d.srv.Start(nc); err != nil {
		return err
	}
	d.log.Info("node ready", "identity", d.id.Name(), "collectives", d.cfg.Collectives, "agents", d.srv.AgentNames())
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		if err := d.facts.Run(ctx); err != nil {
			d.log.Error("facts watcher stopped", "err", err)
		}
	}()
	// Registration (SPEC §6): announce now, on the interval and on changes.
	reg := registration.NewPublisher(registration.PublisherOptions{
		CurrentIdentity: d.ids.Current, Source: d.srv, Publish: nc.Publish, Interval: d.cfg.RegistrationPeriod,
		FactsChanged: d.facts.Changed, Logger: d.log,
	})
	regDone := make(chan struct{})
	go func() { reg.Run(ctx); close(regDone) }()
	if d.cfg.RevocationFile != "" {
		go func() {
			_ = security.WatchRevocations(ctx, d.cfg.RevocationFile, d.verifier, 2*time.Second, d.log, nil)
		}()
	}
	// A certificate and key renewed on disk are used without a restart:
	// for reply and registration signatures at once, for the broker
	// connection from the next reconnect.
	go d.ids.Watch(ctx, 2*time.Second, d.log, func(id *security.Identity) error {
		_, err := d.verifier.Certificate(id.Cert.Raw, pki.RoleNode)
		return err
	}, func(id *security.Identity) {
		if err := d.srv.SetIdentity(id); err != nil {
			d.log.Error("renewed certificate not used", "err", err)
		}
	})
	if d.external != nil {
		go d.external.Run(ctx, func(agents []*agent.Agent) {
			agents = d.enabled(WithoutNames(agents, d.builtin, d.log))
			var names []string
			for _, a := range agents {
				names = append(names, a.Name())
			}
			if err := d.srv.ReplaceAgents(d.extNames, agents); err != nil {
				d.log.Error("reloading external agents", "err", err)
				return
			}
			d.extNames = names
			d.log.Info("external agents reloaded", "agents", names)
			reg.Trigger()
		})
	}
	<-ctx.Done()
	d.log.Info("shutting down")
	d.srv.Stop()
	<-regDone // no announcement on a closing connection
	return nil
}

// NewDataPlugins returns the data plugins a node answers for -S filters,
// ActionPolicy compound rules and rpcutil get_data: the node's own (fstat,
// sysctl, fact, agent, collective) plus the machine-wide ones given (see
// MachinePlugins).
func NewDataPlugins(s *server.Server, machine ...data.Plugin) *data.Registry {
	plugins := []data.Plugin{
		data.NewFStat(time.Now),
		data.NewSysctl("/proc/sys"),
		data.NewFact(s.Fact),
		data.NewAgent(func(name string) (map[string]any, bool) {
			a, ok := s.Agent(name)
			if !ok {
				return nil, false
			}
			m := a.DDL.Metadata
			return map[string]any{"name": m.Name, "description": m.Description, "author": m.Author,
				"version": m.Version, "license": m.License, "timeout": m.Timeout, "url": m.URL}, true
		}),
		data.NewCollective(s.Collectives),
	}
	return data.New(append(plugins, machine...)...)
}

// MachinePlugins returns the data plugins that describe the machine rather
// than one node — package and service — present only when the machine has a
// package database or service manager, so that the plugin list a node
// reports is what it can answer. Build them once per process: an in-process
// collective shares them between its nodes.
func MachinePlugins(log *slog.Logger) []data.Plugin {
	var out []data.Plugin
	if status, err := packageagent.StatusQuery("", log); err == nil {
		out = append(out, data.NewPackage(status))
	}
	if status, err := serviceagent.StatusQuery(serviceagent.Options{Logger: log}); err == nil {
		out = append(out, data.NewService(status))
	}
	return out
}

// WithoutNames drops the external agents whose names are taken (by built-in
// agents): an agent directory must not replace rpcutil, nor leave a node
// without it when the file goes away again.
func WithoutNames(ext []*agent.Agent, taken map[string]bool, log *slog.Logger) []*agent.Agent {
	out := ext[:0:0]
	for _, a := range ext {
		if taken[a.Name()] {
			log.Error("external agent ignored: a built-in agent has that name", "agent", a.Name())
			continue
		}
		out = append(out, a)
	}
	return out
}

func agentNames(agents []*agent.Agent) map[string]bool {
	m := make(map[string]bool, len(agents))
	for _, a := range agents {
		m[a.Name()] = true
	}
	return m
}
