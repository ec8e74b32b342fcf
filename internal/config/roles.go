package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Security is the part of the configuration every role shares: where the
// broker is and which certificates to trust and present.
type Security struct {
	Brokers        []string // NATS URLs, e.g. tls://broker1:4222
	CA             string   // CA certificate (PEM)
	Cert           string   // this role's certificate (PEM)
	Key            string   // its private key (PEM)
	Insecure       bool     // plaintext connections, development only
	Allowlist      string   // client certname allow list
	Privileged     string   // certnames that may act for another caller
	RevocationFile string   // revoked serial numbers, re-read when it changes
}

// declare adds the shared keys; trust adds the rules only nodes and brokers
// apply to other certificates (allow list, privileged names, revocation).
func (s *Security) declare(ks keys, base string, trust bool) {
	ks["broker"] = key{"NATS URLs of the brokers, comma separated (default tls://127.0.0.1:4222)", strs(&s.Brokers)}
	ks["tls.ca"] = key{"CA certificate that signed every certificate of the collective", path(base, &s.CA)}
	ks["tls.cert"] = key{"this process's certificate", path(base, &s.Cert)}
	ks["tls.key"] = key{"this process's private key", path(base, &s.Key)}
	ks["insecure"] = key{"plaintext transport; development only (default false)", boolean(&s.Insecure)}
	// Every role checks the broker's certificate (and the nodes' and
	// clients') against the revocation list when it has one.
	ks["security.revocation_file"] = key{"file of revoked certificate serials (see mco pki revoke); a revoked broker or node certificate is refused", path(base, &s.RevocationFile)}
	if !trust {
		return
	}
	ks["security.certname_allowlist"] = key{`client certnames accepted (default /\.mcollective$/)`, str(&s.Allowlist)}
	ks["security.privileged_certnames"] = key{`certnames that may sign for another caller (default /\.privileged\.mcollective$/)`, str(&s.Privileged)}
}

func (s *Security) defaults() {
	s.Brokers = []string{"tls://127.0.0.1:4222"}
}

func (s *Security) check(file string) error {
	if s.CA == "" || s.Cert == "" || s.Key == "" {
		return fmt.Errorf("%s: tls.ca, tls.cert and tls.key are required", file)
	}
	if len(s.Brokers) == 0 {
		return fmt.Errorf("%s: broker must name at least one URL", file)
	}
	return nil
}

// Observability is the log.* and metrics.* part of the daemons'
// configurations.
type Observability struct {
	LogLevel      string // debug, info, warn or error
	LogFormat     string // text or json
	LogFile       string // "" logs to stderr (the journal under systemd)
	MetricsListen string // host:port serving /metrics; "" is off
}

func (l *Observability) declare(ks keys, base string) {
	ks["metrics.listen"] = key{"host:port serving Prometheus metrics at /metrics (unset: off)", str(&l.MetricsListen)}
	ks["log.level"] = key{"debug, info, warn or error (default info; --log-level overrides)", func(v string) error {
		switch v {
		case "debug", "info", "warn", "error":
			l.LogLevel = v
			return nil
		}
		return fmt.Errorf("%q: use debug, info, warn or error", v)
	}}
	ks["log.format"] = key{"text or json (default text)", func(v string) error {
		if v != "text" && v != "json" {
			return fmt.Errorf("%q: use text or json", v)
		}
		l.LogFormat = v
		return nil
	}}
	ks["log.file"] = key{"log file, reopened on SIGHUP for logrotate (unset: standard error, i.e. the journal under systemd)", path(base, &l.LogFile)}
}

// Server is the node daemon's configuration (server.conf).
type Server struct {
	Security
	Observability
	Identity           string            // defaults to the certificate's certname
	Collectives        []string          // first is the main collective
	FactFiles          []string          // YAML/JSON, merged in order
	ClassesFile        string            // one class per line
	Libdirs            []string          // external agents in <libdir>/agent
	DisabledAgents     []string          // agents not to activate
	PolicyDir          string            // ActionPolicy files; "" only when PolicyDisabled
	PolicyDisabled     bool              // policy.disabled: authorization off, every caller allowed
	PolicyDefault      string            // "", allow or deny: overrides files without a default
	PolicyEnableDef    bool              // use <policydir>/<default_name>.policy for agents without one
	PolicyDefaultName  string            // default policy file name
	AllowUnconfigured  bool              // allow agents with no policy file at all
	AuditLog           string            // local hash-chained audit log; "" only when AuditDisabled
	AuditDisabled      bool              // audit.disabled: no local audit log
	AuditFailOpen      bool              // keep serving when the audit log cannot be written
	AuditReaders       string            // collectors allowed to fetch audit lines (audit agent)
	MaxMessageSize     int               // bytes
	Skew               time.Duration     // allowed future clock skew of requests
	MaxTTL             time.Duration     // cap on a request's ttl
	ReplayFile         string            // ids of accepted requests, kept across restarts until they expire
	RegistrationPeriod time.Duration     // 0 disables periodic registration
	AgentPolicyDefault map[string]string // agent -> allow|deny for that agent's files without a default
	FactCommand        []string          // e.g. facter -j: JSON facts refreshed on an interval
	FactInterval       time.Duration     // how often FactCommand runs
	FactSources        []string          // facter, ohai: named fact commands
	// PluginConfig holds plugin.<agent>.<key> = value lines by agent, then key
	// (without the "plugin.<agent>." prefix): agents' own settings, as in
	// MCollective and Choria.
	PluginConfig map[string]map[string]string
	Puppet       Puppet        // the puppet agent
	Chef         Chef          // the chef agent
	JobsDir      string        // spool of detached jobs ("" : <state dir>/jobs)
	JobsMax      int           // finished jobs kept
	JobsMaxAge   time.Duration // finished jobs older than this are removed
}

// Chef configures the built-in chef agent; empty paths take the agent's
// defaults (Chef's /var/chef/cache).
type Chef struct {
	Command    string   // chef-client executable (default chef-client on PATH)
	RunCommand []string // what runonce runs (default chef-client --once)
	ReportFile string   // the report handler's JSON
	LockFile   string   // disables runs while it exists
	RunLock    string   // chef-client's own run lock
	PIDFile    string   // the chef-client daemon's PID file
	Classes    bool     // add the report's run list to the node's classes (default true)
}

// Puppet configures the built-in puppet agent.
type Puppet struct {
	Command       string   // puppet executable (default puppet on PATH)
	ConfDir       string   // --confdir for every puppet command
	RunCommand    []string // replaces `puppet agent --onetime --no-daemonize` for runonce
	ResourceAllow []string // resource types the resource action may manage
	ResourceDeny  []string // resource types it may not
	AllowManaged  bool     // allow resources Puppet's catalog manages
	Classes       bool     // classes from Puppet's classfile when classes is unset (default true)
}

// Packaged defaults: a node is secure without any policy or audit key. With
// no policy file in DefaultPolicyDir every request is denied, and every
// request is audited to DefaultAuditLog; policy.disabled and audit.disabled
// are the explicit opt-outs.
const (
	DefaultPolicyDir = "/etc/marionette/policy"
	DefaultAuditLog  = "/var/log/marionette/audit.log"
	// DefaultReplayFile keeps the ids of accepted requests across restarts,
	// so a restart cannot make a node run a request twice.
	DefaultReplayFile = "/var/lib/marionette/replay.seen"
)

// DefaultServer returns the server defaults.
func DefaultServer() *Server {
	s := &Server{
		PolicyDir:          DefaultPolicyDir,
		AuditLog:           DefaultAuditLog,
		ReplayFile:         DefaultReplayFile,
		Collectives:        []string{"mcollective"},
		PolicyDefaultName:  "default",
		MaxMessageSize:     1 << 20,
		Skew:               5 * time.Second,
		MaxTTL:             time.Hour,
		AgentPolicyDefault: map[string]string{},
		PluginConfig:       map[string]map[string]string{},
		Puppet:             Puppet{Classes: true},
		Chef:               Chef{Classes: true},
	}
	s.defaults()
	return s
}

func (s *Server) keys(base string) keys {
	ks := keys{
		"identity":                  {"node identity (default: the certificate's certname)", str(&s.Identity)},
		"collectives":               {"collectives this node belongs to; the first is the main one (default mcollective)", strs(&s.Collectives)},
		"facts":                     {"fact files (YAML or JSON), merged in order", paths(base, &s.FactFiles)},
		"classes":                   {"classes file, one class per line", path(base, &s.ClassesFile)},
		"libdir":                    {"directories holding external agents in agent/", paths(base, &s.Libdirs)},
		"agents.disabled":           {"agents not to load, comma separated", strs(&s.DisabledAgents)},
		"policy.dir":                {"ActionPolicy directory (default " + DefaultPolicyDir + "; an agent without a policy file is denied)", path(base, &s.PolicyDir)},
		"policy.disabled":           {"turn authorization off: every authenticated caller may run every action (default false; warned at start)", boolean(&s.PolicyDisabled)},
		"policy.default":            {"allow or deny for policy files without a default line (default deny)", str(&s.PolicyDefault)},
		"policy.enable_default":     {"use <policy.dir>/<policy.default_name>.policy for agents without a file", boolean(&s.PolicyEnableDef)},
		"policy.default_name":       {"name of the default policy file (default default)", str(&s.PolicyDefaultName)},
		"policy.allow_unconfigured": {"allow agents that have no policy file (default false)", boolean(&s.AllowUnconfigured)},
		"audit.log":                 {"local audit log, hash chained (default " + DefaultAuditLog + ")", path(base, &s.AuditLog)},
		"audit.disabled":            {"write no local audit log (default false; warned at start)", boolean(&s.AuditDisabled)},
		"audit.fail_open":           {"keep serving when the audit log cannot be written (default false: fail closed)", boolean(&s.AuditFailOpen)},
		"audit.readers":             {"client certnames (and /regexes/) that may fetch this node's audit lines to repair central audit (unset: nobody; the audit agent is not offered)", str(&s.AuditReaders)},
		"max_message_size":          {"largest accepted message in bytes (default 1048576)", integer(&s.MaxMessageSize)},
		"request.skew":              {"tolerated future clock skew of requests (default 5s)", duration(&s.Skew)},
		"request.max_ttl":           {"largest accepted request ttl (default 1h)", duration(&s.MaxTTL)},
		"request.replay_file":       {"where the ids of accepted requests are kept until they expire, so a restarted node refuses a replay (default " + DefaultReplayFile + ")", path(base, &s.ReplayFile)},
		"policy.agent_default.*": {"policy.agent_default.<agent> = allow|deny: per-agent default for files without a default line", func(v string) error {
			name, val, _ := cutEq(v)
			if val != "allow" && val != "deny" {
				return fmt.Errorf("must be allow or deny, not %q", val)
			}
			s.AgentPolicyDefault[name] = val
			return nil
		}},
		"plugin.*": {"plugin.<agent>.<key> = value: a setting of that agent, passed to external agents in CHORIA_EXTERNAL_CONFIG and to Go agents by agent.Agent.Config", func(v string) error {
			name, val, _ := cutEq(v)
			agent, k, ok := strings.Cut(name, ".")
			if !ok || agent == "" || k == "" {
				return fmt.Errorf("want plugin.<agent>.<key>, not plugin.%s", name)
			}
			if s.PluginConfig[agent] == nil {
				s.PluginConfig[agent] = map[string]string{}
			}
			s.PluginConfig[agent][k] = val
			return nil
		}},
		"facts.command": {"command printing JSON facts, run without a shell (e.g. facter -j); a relative program path with a / is relative to this file's directory, a bare name is looked up in PATH", func(v string) error {
			s.FactCommand = strings.Fields(v)
			if len(s.FactCommand) > 0 && strings.ContainsRune(s.FactCommand[0], '/') {
				s.FactCommand[0] = resolve(base, s.FactCommand[0])
			}
			return nil
		}},
		"facts.sources": {"fact sources run on facts.interval and after Puppet runs: facter (facter -j --show-legacy) and/or ohai (flattened to dotted names), comma separated", func(v string) error {
			for _, name := range list(v) {
				if name != "facter" && name != "ohai" {
					return fmt.Errorf("unknown fact source %q (facter or ohai)", name)
				}
				s.FactSources = append(s.FactSources, name)
			}
			return nil
		}},
		"facts.interval":                {"how often facts.command runs (default 5m)", duration(&s.FactInterval)},
		"registration.interval":         {"how often the node re-announces itself to registration collectors, with a random splay (default 0: only at start and when facts or agents change)", duration(&s.RegistrationPeriod)},
		"puppet.command":                {"puppet executable for the puppet agent (default puppet on PATH; the agent is active only where it is installed)", str(&s.Puppet.Command)},
		"puppet.confdir":                {"Puppet confdir passed to every puppet command (default Puppet's own)", path(base, &s.Puppet.ConfDir)},
		"puppet.run_command":            {"command runonce runs instead of puppet agent --onetime --no-daemonize, without a shell (e.g. puppet apply /etc/puppet/code/site.pp)", func(v string) error { s.Puppet.RunCommand = strings.Fields(v); return nil }},
		"puppet.resource.allow":         {"resource types the puppet resource action may manage, comma separated (unset with no deny list: the action is refused)", strs(&s.Puppet.ResourceAllow)},
		"puppet.resource.deny":          {"resource types the puppet resource action may not manage, comma separated", strs(&s.Puppet.ResourceDeny)},
		"puppet.resource.allow_managed": {"let the resource action touch resources Puppet's catalog manages (default false)", boolean(&s.Puppet.AllowManaged)},
		"puppet.classes":                {"when classes is unset, take the node's classes from Puppet's classfile (its classfile setting, followed when puppet.conf changes); default true", boolean(&s.Puppet.Classes)},
		"chef.classes":                  {"add the last chef-client run's run list to the node's classes, as role.NAME and recipe.NAME; default true", boolean(&s.Chef.Classes)},
		"chef.command":                  {"chef-client executable for the chef agent (default chef-client on PATH; the agent is active only where it is installed)", str(&s.Chef.Command)},
		"chef.run_command":              {"command chef runonce runs, without a shell (default chef-client --once)", func(v string) error { s.Chef.RunCommand = strings.Fields(v); return nil }},
		"chef.report":                   {"JSON report written by the documented report handler (default /var/chef/cache/marionette-report.json)", path(base, &s.Chef.ReportFile)},
		"chef.lock":                     {"lock file that disables chef-client runs (default /var/chef/cache/marionette-disabled.lock)", path(base, &s.Chef.LockFile)},
		"chef.run_lock":                 {"chef-client's own run lock (default /var/chef/cache/chef-client-running.pid)", path(base, &s.Chef.RunLock)},
		"chef.pidfile":                  {"the chef-client daemon's PID file (default /var/run/chef/client.pid)", path(base, &s.Chef.PIDFile)},
		"jobs.dir":                      {"spool of detached jobs (Puppet and Chef runs, mco rpc --async); default /var/lib/marionette/jobs/<identity>", path(base, &s.JobsDir)},
		"jobs.max":                      {"finished jobs kept in the spool (default 100)", integer(&s.JobsMax)},
		"jobs.max_age":                  {"finished jobs older than this are removed (default 168h)", duration(&s.JobsMaxAge)},
	}
	s.Security.declare(ks, base, true)
	s.Observability.declare(ks, base)
	return ks
}

// LoadServer reads a server configuration file over the defaults.
func LoadServer(file string) (*Server, error) {
	s := DefaultServer()
	if err := load(file, s.keys(filepath.Dir(file))); err != nil {
		return nil, err
	}
	if err := s.Security.check(file); err != nil {
		return nil, err
	}
	if len(s.Collectives) == 0 {
		return nil, fmt.Errorf("%s: collectives must name at least one collective", file)
	}
	switch s.PolicyDefault {
	case "", "allow", "deny":
	default:
		return nil, fmt.Errorf("%s: policy.default must be allow or deny, not %q", file, s.PolicyDefault)
	}
	if err := s.optOuts(file); err != nil {
		return nil, err
	}
	return s, nil
}

// optOuts applies policy.disabled and audit.disabled. Turning a feature off
// while configuring it is contradictory, so it is an error rather than a
// guess; an empty policy.dir or audit.log is refused because it used to mean
// "off" and must now be said explicitly.
func (s *Server) optOuts(file string) error {
	switch {
	case s.PolicyDisabled && s.PolicyDir != DefaultPolicyDir:
		return fmt.Errorf("%s: policy.disabled = true and policy.dir are both set: remove one", file)
	case !s.PolicyDisabled && s.PolicyDir == "":
		return fmt.Errorf("%s: policy.dir is empty: name a directory, or set policy.disabled = true to turn authorization off", file)
	case s.AuditDisabled && s.AuditLog != DefaultAuditLog:
		return fmt.Errorf("%s: audit.disabled = true and audit.log are both set: remove one", file)
	case !s.AuditDisabled && s.AuditLog == "":
		return fmt.Errorf("%s: audit.log is empty: name a file, or set audit.disabled = true to write no audit log", file)
	case s.ReplayFile == "":
		return fmt.Errorf("%s: request.replay_file is empty: a node must remember the requests it ran across restarts", file)
	case s.AuditDisabled && s.AuditReaders != "":
		return fmt.Errorf("%s: audit.readers needs the audit log, but audit.disabled = true", file)
	}
	if s.PolicyDisabled {
		s.PolicyDir = ""
	}
	if s.AuditDisabled {
		s.AuditLog = ""
	}
	return nil
}

// ServerKeys documents every server.conf key.
func ServerKeys() string { return DefaultServer().keys("").doc() }

// Client is the client's configuration (client.conf).
type Client struct {
	Security
	Collective       string        // main collective
	Collectives      []string      // collectives that may be addressed with -T
	Timeout          time.Duration // overrides the DDL timeout when set
	DiscoveryTimeout time.Duration // cap on broadcast discovery
	DiscoveryQuiet   time.Duration // broadcast ends after this long without a reply
	TTL              time.Duration // request ttl
	Libdirs          []string      // where client-side DDLs of external agents live (<libdir>/agent/NAME.json)
	RegistrationDir  string        // registration store read by --dm inventory and mco nodes
}

// DefaultClient returns the client defaults.
func DefaultClient() *Client {
	c := &Client{Collective: "mcollective", DiscoveryTimeout: 2 * time.Second, DiscoveryQuiet: 100 * time.Millisecond, TTL: 60 * time.Second}
	c.defaults()
	return c
}

func (c *Client) keys(base string) keys {
	ks := keys{
		"collective":        {"main collective (default mcollective)", str(&c.Collective)},
		"collectives":       {"all collectives this client may address (default: the main one)", strs(&c.Collectives)},
		"timeout":           {"reply timeout; default: the action's DDL timeout", duration(&c.Timeout)},
		"discovery_timeout": {"longest broadcast discovery (default 2s; it ends earlier when replies stop)", duration(&c.DiscoveryTimeout)},
		"ttl":               {"how long a request stays valid (default 60s)", duration(&c.TTL)},
		"discovery_quiet":   {"broadcast discovery and ping end after this long without a new reply (default 100ms)", duration(&c.DiscoveryQuiet)},
		"libdir":            {"directories with agent DDLs in agent/ (for agents not built in)", paths(base, &c.Libdirs)},
		"registration.dir":  {"directory written by mco registration collect, read by --dm inventory and mco nodes", path(base, &c.RegistrationDir)},
	}
	c.Security.declare(ks, base, false)
	return ks
}

// LoadClient reads a client configuration file over the defaults.
func LoadClient(file string) (*Client, error) {
	c := DefaultClient()
	if err := load(file, c.keys(filepath.Dir(file))); err != nil {
		return nil, err
	}
	if err := c.Security.check(file); err != nil {
		return nil, err
	}
	if c.TTL < time.Second {
		return nil, fmt.Errorf("%s: ttl %s: requests must stay valid for at least 1s", file, c.TTL)
	}
	return c, nil
}

// ClientKeys documents every client.conf key.
func ClientKeys() string { return DefaultClient().keys("").doc() }

// FindClient locates the client configuration: explicit (-c), else
// $MCO_CONFIG, else ~/.config/marionette/client.conf, else
// /etc/marionette/client.conf. The environment is read through getenv (the
// App's, so that tests need not change the process environment; nil means
// os.Getenv).
func FindClient(explicit string, getenv func(string) string) (string, error) {
	if explicit != "" {
		return explicit, nil
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if env := getenv("MCO_CONFIG"); env != "" {
		return env, nil
	}
	var candidates []string
	if home := getenv("HOME"); home != "" {
		candidates = append(candidates, filepath.Join(home, ".config", "marionette", "client.conf"))
	}
	candidates = append(candidates, "/etc/marionette/client.conf")
	for _, p := range candidates {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", errors.New("no client configuration: pass -c FILE, set MCO_CONFIG, or create ~/.config/marionette/client.conf (try 'mco dev' for a ready-made one)")
}

// Broker is the embedded broker's configuration (broker.conf).
type Broker struct {
	Security
	Observability
	Listen        string              // client listener, host:port
	ClusterName   string              // NATS cluster name
	ClusterListen string              // route listener, host:port (unset: no clustering)
	Routes        []string            // other brokers' route URLs
	MaxPayload    int                 // largest message, bytes
	Collectives   map[string][]string // certname -> collectives a client may reach
	Monitor       string              // NATS monitoring listener, host:port (unset: off)
	Collectors    string              // client certnames that may read registration and audit subjects
}

// DefaultBroker returns the broker defaults.
func DefaultBroker() *Broker {
	b := &Broker{Listen: "127.0.0.1:4222", ClusterName: "marionette", MaxPayload: 1 << 20, Collectives: map[string][]string{}}
	b.defaults()
	return b
}

func (b *Broker) keys(base string) keys {
	ks := keys{
		"listen":         {"client and node listener (default 127.0.0.1:4222)", str(&b.Listen)},
		"cluster.name":   {"cluster name shared by all brokers (default marionette)", str(&b.ClusterName)},
		"cluster.listen": {"listener for other brokers (unset: no clustering)", str(&b.ClusterListen)},
		"cluster.routes": {"route URLs of the other brokers, comma separated", strs(&b.Routes)},
		"max_payload":    {"largest message in bytes (default 1048576)", integer(&b.MaxPayload)},
		"monitor":        {"NATS monitoring listener: PORT or :PORT (on 127.0.0.1) or HOST:PORT; unauthenticated, so name a host only to expose it (unset: off)", str(&b.Monitor)},
		"collectors":     {"client certnames (and /regexes/) that may read registration and audit subjects", str(&b.Collectors)},
		"collectives.*": {"collectives.<client certname> = list: restrict a client to these collectives", func(v string) error {
			name, cols, _ := cutEq(v)
			b.Collectives[name] = list(cols)
			return nil
		}},
	}
	b.Security.declare(ks, base, true)
	b.Observability.declare(ks, base)
	delete(ks, "broker")
	return ks
}

func cutEq(v string) (string, string, bool) {
	for i := 0; i < len(v); i++ {
		if v[i] == '=' {
			return v[:i], v[i+1:], true
		}
	}
	return v, "", false
}

// LoadBroker reads a broker configuration file over the defaults.
func LoadBroker(file string) (*Broker, error) {
	b := DefaultBroker()
	if err := load(file, b.keys(filepath.Dir(file))); err != nil {
		return nil, err
	}
	b.Brokers = []string{"unused"}
	if err := b.Security.check(file); err != nil {
		return nil, err
	}
	return b, nil
}

// BrokerKeys documents every broker.conf key.
func BrokerKeys() string { return DefaultBroker().keys("").doc() }
