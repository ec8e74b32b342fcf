// Package puppetagent is the built-in "puppet" agent: it reports and
// changes the state of the Puppet agent on a node, starts Puppet runs and
// shows or changes single resources, implementing the Choria puppet agent's
// DDL — unchanged but for one optional input, runonce's ignoreschedules —
// so that existing clients work.
//
// State comes from Puppet's own files — agent_disabled.lock,
// agent_catalog_run.lock, last_run_summary.yaml, the daemon's PID file —
// whose paths are read once from `puppet config print` and again only when
// puppet.conf changes, so status requests never fork Puppet. Disabling
// writes Puppet's own lock file, which `puppet agent` honours. Runs are
// detached jobs (package jobs): they outlive the request and the daemon.
package puppetagent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode"
	"unicode/utf8"

	_ "embed"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/pidfile"
	"github.com/marionette/mco/protocol"
)

//go:embed puppet.json
var ddlJSON []byte

// DDLJSON returns a copy of the agent's DDL file.
func DDLJSON() []byte { return bytes.Clone(ddlJSON) }

// DDL returns the agent's DDL, freshly parsed.
func DDL() (*ddl.Agent, error) {
	d, err := ddl.Parse("puppetagent/puppet.json", ddlJSON)
	if err != nil {
		return nil, fmt.Errorf("puppet agent DDL: %w", err)
	}
	return d, nil
}

// ErrNotInstalled is returned (wrapped) by New when the puppet command is
// not installed: the daemon then leaves the agent inactive.
var ErrNotInstalled = errors.New("puppet is not installed")

// Options configures the agent.
type Options struct {
	// Puppet is the puppet executable ("" means puppet on PATH).
	Puppet string
	// ConfDir is passed to every puppet command as --confdir ("" means
	// Puppet's default).
	ConfDir string
	// RunCommand, when set, replaces `puppet agent --onetime
	// --no-daemonize` for runonce, e.g. a masterless `puppet apply
	// site.pp`. Run options Puppet apply also takes (noop, tags,
	// skip_tags, environment) are appended; the others are refused.
	RunCommand []string
	// ResourceAllow and ResourceDeny are the resource types the resource
	// action may manage. With both empty the action is refused: managing
	// arbitrary resources from the collective is opt-in.
	ResourceAllow, ResourceDeny []string
	// AllowManagedResources lets the resource action change resources that
	// Puppet's own catalog manages (listed in resources.txt); by default
	// such changes are refused, since the next run would revert them.
	AllowManagedResources bool
	// Jobs is the spool runs are started in; nil refuses runonce.
	Jobs *jobs.Spool
	// Logger receives debug logs; nil discards them.
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Puppet is the agent's state: the Puppet settings and parsed files it
// caches. One Puppet serves both the agent and the puppet data plugin.
type Puppet struct {
	opts     Options
	settings *settingsCache
	summary  summaryCache
	managed  managedCache
	log      *slog.Logger
}

// New checks that Puppet is installed and returns its manager. Puppet's
// settings are read on first use, not here, so a daemon on a machine with
// Puppet pays for `puppet config print` only when Puppet is asked about.
func New(opts Options) (*Puppet, error) {
	if opts.Puppet == "" {
		opts.Puppet = "puppet"
	}
	path, err := exec.LookPath(opts.Puppet)
	if err != nil {
		return nil, fmt.Errorf("puppet agent: %w: %w", ErrNotInstalled, err)
	}
	opts.Puppet = path
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Puppet{opts: opts, settings: newSettingsCache(path, opts.ConfDir), log: log}, nil
}

// SetJobs sets the spool runs start in (Options.Jobs). Call it before the
// agent serves requests.
func (p *Puppet) SetJobs(s *jobs.Spool) { p.opts.Jobs = s }

// Settings returns Puppet's settings (loading them on first use).
func (p *Puppet) Settings(ctx context.Context) (*Settings, error) {
	return p.settings.get(ctx)
}

// Status reads the Puppet agent's state.
func (p *Puppet) Status(ctx context.Context) (*Status, error) {
	s, err := p.settings.get(ctx)
	if err != nil {
		return nil, err
	}
	st := &Status{}
	disabled, msg, err := readDisabled(s.DisabledLock)
	if err != nil {
		return nil, err
	}
	st.Enabled, st.DisableMessage = !disabled, msg
	if _, since, ok := pidfile.Live(s.CatalogLock); ok {
		st.Applying, st.ApplyingSince = true, since
	}
	if !st.Applying && p.opts.Jobs != nil {
		// A masterless run (puppet apply) takes no catalog lock: our own
		// job record says it is applying.
		if running := p.opts.Jobs.Running("puppet", "runonce"); len(running) > 0 {
			st.Applying, st.ApplyingSince = true, running[0].Created
		}
	}
	// The daemon's PID file is also the PID file of a one-off run
	// (`puppet agent --onetime` writes it too): while applying, only a
	// PID that is not the catalog lock holder is a daemon.
	if pid, _, ok := pidfile.Live(s.PIDFile); ok {
		lockPID, _, locked := pidfile.Live(s.CatalogLock)
		if !locked || lockPID != pid || p.isDaemon(pid) {
			st.DaemonPresent, st.DaemonPID = true, pid
		}
	}
	st.Idling = st.DaemonPresent && !st.Applying
	sum, err := p.summary.get(s.Summary)
	if err != nil {
		p.log.Debug("puppet: unreadable run summary", "err", err)
	}
	if sum != nil {
		st.LastRun = sum.LastRun
	}
	switch {
	case st.Applying:
		st.Status = "applying"
	case !st.Enabled:
		st.Status = "disabled"
	case st.Idling:
		st.Status = "idling"
	default:
		st.Status = "stopped"
	}
	return st, nil
}

// isDaemon tells a daemonized puppet agent from a one-off run by its
// command line.
func (p *Puppet) isDaemon(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		return false
	}
	return !bytes.Contains(b, []byte("--onetime")) && !bytes.Contains(b, []byte("--test"))
}

// Data is the puppet data plugin's answer: puppet() in -S filters and
// ActionPolicy rules, e.g. puppet().enabled=false.
func (p *Puppet) Data(ctx context.Context, _ string) (map[string]any, error) {
	st, err := p.Status(ctx)
	if err != nil {
		return nil, err
	}
	now := p.opts.Now()
	return map[string]any{
		"applying": st.Applying, "enabled": st.Enabled, "daemon_present": st.DaemonPresent,
		"idling": st.Idling, "status": st.Status, "disable_message": st.DisableMessage,
		"lastrun": unix(st.LastRun), "since_lastrun": since(now, st.LastRun),
	}, nil
}

// Agent returns the puppet agent over p.
func (p *Puppet) Agent() (*agent.Agent, error) {
	d, err := DDL()
	if err != nil {
		return nil, err
	}
	// The resource action's properties are undeclared inputs, as with
	// MCollective's puppet agent (the published DDL declares only type,
	// name and environment): accepted for this action only, each checked
	// by ValidateProperty on the node whatever the client did.
	if act := d.Action("resource"); act != nil {
		act.Extra = ValidateProperty
	}
	a := agent.New(d)
	a.Register("status", p.status)
	a.Register("last_run_summary", p.lastRunSummary)
	a.Register("enable", p.enable)
	a.Register("disable", p.disable)
	a.Register("runonce", p.runonce)
	a.Register("resource", p.resource)
	return a, nil
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

// since is the DDL's since_lastrun: seconds, or "Unknown" when Puppet never
// ran (the DDL's default).
func since(now, t time.Time) any {
	if t.IsZero() {
		return "Unknown"
	}
	return int64(now.Sub(t).Seconds())
}

func (p *Puppet) status(ctx context.Context, _ *agent.Request, rep *agent.Reply) {
	st, err := p.Status(ctx)
	if err != nil {
		rep.Fail("could not read Puppet's state: %v", err)
		return
	}
	now := p.opts.Now()
	rep.Data["applying"] = st.Applying
	rep.Data["enabled"] = st.Enabled
	rep.Data["daemon_present"] = st.DaemonPresent
	rep.Data["idling"] = st.Idling
	rep.Data["lastrun"] = unix(st.LastRun)
	rep.Data["since_lastrun"] = since(now, st.LastRun)
	rep.Data["status"] = st.Status
	rep.Data["disable_message"] = st.DisableMessage
	rep.Data["message"] = statusMessage(now, st)
}

func statusMessage(now time.Time, st *Status) string {
	what := "Currently " + st.Status
	if st.Status == "disabled" && st.DisableMessage != "" {
		what += " (" + st.DisableMessage + ")"
	}
	if st.Applying && !st.ApplyingSince.IsZero() {
		what += " since " + st.ApplyingSince.UTC().Format(time.RFC3339)
	}
	if st.LastRun.IsZero() {
		return what + "; never completed a run"
	}
	return fmt.Sprintf("%s; last completed run %s ago", what, now.Sub(st.LastRun).Truncate(time.Second))
}

func (p *Puppet) lastRunSummary(ctx context.Context, req *agent.Request, rep *agent.Reply) {
	s, err := p.settings.get(ctx)
	if err != nil {
		rep.Fail("could not read Puppet's settings: %v", err)
		return
	}
	sum, err := p.summary.get(s.Summary)
	if err != nil {
		rep.Fail("%v", err)
		return
	}
	if sum == nil {
		rep.Fail("Puppet has not completed a run yet (no %s)", s.Summary)
		return
	}
	logs, _ := req.Data["logs"].(bool)
	types, lines, err := readReport(s.Report, logs)
	if err != nil {
		p.log.Debug("puppet: unreadable run report", "err", err)
		types, lines = map[string]int{}, []any{}
	}
	r := sum.Resources
	rep.Data["out_of_sync_resources"] = int64(r["out_of_sync"])
	rep.Data["failed_resources"] = int64(r["failed"])
	rep.Data["corrected_resources"] = int64(r["corrective_change"])
	rep.Data["changed_resources"] = int64(r["changed"])
	rep.Data["total_resources"] = int64(r["total"])
	rep.Data["config_retrieval_time"] = sum.Time["config_retrieval"]
	rep.Data["total_time"] = sum.Time["total"]
	rep.Data["lastrun"] = unix(sum.LastRun)
	rep.Data["since_lastrun"] = since(p.opts.Now(), sum.LastRun)
	rep.Data["config_version"] = sum.Version.Config
	rep.Data["type_distribution"] = types
	rep.Data["logs"] = lines
	rep.Data["summary"] = sum.Raw
}

func (p *Puppet) enable(ctx context.Context, _ *agent.Request, rep *agent.Reply) {
	s, err := p.settings.get(ctx)
	if err != nil {
		rep.Fail("could not read Puppet's settings: %v", err)
		return
	}
	disabled, _, err := readDisabled(s.DisabledLock)
	switch {
	case err != nil:
		rep.Fail("%v", err)
		return
	case !disabled:
		rep.Data["enabled"] = true
		rep.Data["status"] = "already enabled"
		rep.Fail("Puppet is already enabled")
		return
	}
	if err := os.Remove(s.DisabledLock); err != nil && !errors.Is(err, os.ErrNotExist) {
		rep.Data["enabled"] = false
		rep.Fail("could not enable Puppet: %v", err)
		return
	}
	rep.Data["enabled"] = true
	rep.Data["status"] = "enabled"
}

func (p *Puppet) disable(ctx context.Context, req *agent.Request, rep *agent.Reply) {
	s, err := p.settings.get(ctx)
	if err != nil {
		rep.Fail("could not read Puppet's settings: %v", err)
		return
	}
	disabled, msg, err := readDisabled(s.DisabledLock)
	switch {
	case err != nil:
		rep.Fail("%v", err)
		return
	case disabled:
		rep.Data["enabled"] = false
		rep.Data["status"] = "already disabled: " + msg
		rep.Fail("Puppet is already disabled: %s", msg)
		return
	}
	message, _ := req.Data["message"].(string)
	if message == "" {
		message = fmt.Sprintf("disabled via mco by %s at %s", strings.TrimPrefix(req.CallerID, "cert="), p.opts.Now().UTC().Format(time.RFC3339))
	}
	if err := os.MkdirAll(filepath.Dir(s.DisabledLock), 0o755); err != nil {
		rep.Fail("could not disable Puppet: %v", err)
		return
	}
	if err := writeDisabled(s.DisabledLock, message); err != nil {
		rep.Data["enabled"] = true
		rep.Fail("could not disable Puppet: %v", err)
		return
	}
	rep.Data["enabled"] = false
	rep.Data["status"] = "disabled: " + message
}

// runArgs turns the runonce inputs into puppet command-line options.
func (p *Puppet) runArgs(data map[string]any) ([]string, error) {
	var args []string
	custom := len(p.opts.RunCommand) > 0
	boolFlag := func(name, flag string) {
		if v, ok := data[name].(bool); ok {
			if v {
				args = append(args, "--"+flag)
			} else {
				args = append(args, "--no-"+flag)
			}
		}
	}
	strFlag := func(name, flag string) {
		if v, ok := data[name].(string); ok && v != "" {
			args = append(args, "--"+flag, v)
		}
	}
	if custom {
		for _, name := range []string{"server", "splay", "splaylimit", "use_cached_catalog"} {
			if _, ok := data[name]; ok {
				return nil, fmt.Errorf("option %s does not apply to this node's run command (%s)", name, strings.Join(p.opts.RunCommand, " "))
			}
		}
	}
	boolFlag("noop", "noop")
	strFlag("tags", "tags")
	strFlag("skip_tags", "skip_tags")
	strFlag("environment", "environment")
	// Not in the published DDL (ours adds it): both puppet agent and
	// puppet apply take the setting.
	boolFlag("ignoreschedules", "ignoreschedules")
	if !custom {
		strFlag("server", "server")
		boolFlag("use_cached_catalog", "use_cached_catalog")
		force, _ := data["force"].(bool)
		if force {
			args = append(args, "--no-splay") // force: run now, never splay
		} else {
			boolFlag("splay", "splay")
			if v, ok := data["splaylimit"]; ok {
				args = append(args, "--splaylimit", fmt.Sprint(v))
			}
		}
	}
	return args, nil
}

// runonce starts a Puppet run: refused while disabled or applying; a
// running, idle daemon is woken (SIGUSR1) rather than duplicated when no
// option asks for something the daemon would not do; otherwise a one-off
// run starts as a detached job whose id is the request id.
func (p *Puppet) runonce(ctx context.Context, req *agent.Request, rep *agent.Reply) {
	st, err := p.Status(ctx)
	if err != nil {
		rep.Fail("could not read Puppet's state: %v", err)
		return
	}
	if !st.Enabled {
		rep.Fail("Puppet is disabled: %s", orUnknown(st.DisableMessage))
		return
	}
	if st.Applying {
		rep.Fail("Puppet is already applying since %s; not starting another run", st.ApplyingSince.UTC().Format(time.RFC3339))
		return
	}
	args, err := p.runArgs(req.Data)
	if err != nil {
		rep.Fail("%v", err)
		return
	}
	now := p.opts.Now()
	if st.Idling && len(args) == 0 && len(p.opts.RunCommand) == 0 {
		if err := syscall.Kill(st.DaemonPID, syscall.SIGUSR1); err != nil {
			rep.Fail("could not signal the Puppet daemon (pid %d): %v", st.DaemonPID, err)
			return
		}
		rep.Data["summary"] = fmt.Sprintf("Signalled the running Puppet daemon (pid %d) to run now", st.DaemonPID)
		rep.Data["initiated_at"] = now.Unix()
		return
	}
	if p.opts.Jobs == nil {
		rep.Fail("runonce needs a job spool (jobs.dir) on this node")
		return
	}
	var argv []string
	if len(p.opts.RunCommand) > 0 {
		argv = append(slices.Clone(p.opts.RunCommand), args...)
	} else {
		argv = []string{p.opts.Puppet, "agent", "--onetime", "--no-daemonize", "--verbose", "--color=false"}
		if p.opts.ConfDir != "" {
			argv = append(argv, "--confdir", p.opts.ConfDir)
		}
		argv = append(argv, args...)
	}
	s, _ := p.settings.get(ctx)
	job, err := p.opts.Jobs.Start(jobs.Spec{
		ID: req.ID, RequestID: req.ID, Caller: req.CallerID, Agent: "puppet", Action: "runonce", Argv: argv,
	}, func() error {
		// Checked again under the spool's lock: two requests arriving
		// together must not both start a run.
		if running := p.opts.Jobs.Running("puppet", "runonce"); len(running) > 0 {
			return fmt.Errorf("Puppet is already applying since %s (job %s); not starting another run", running[0].Created.UTC().Format(time.RFC3339), running[0].ID)
		}
		if s != nil {
			if _, since, ok := pidfile.Live(s.CatalogLock); ok {
				return fmt.Errorf("Puppet is already applying since %s; not starting another run", since.UTC().Format(time.RFC3339))
			}
		}
		return nil
	})
	if err != nil {
		rep.Fail("%v", err)
		return
	}
	p.log.Info("puppet run started", "job", job.ID, "caller", req.CallerID, "argv", argv)
	rep.Data["summary"] = fmt.Sprintf("Started a Puppet run as job %s (mco job results %s)", job.ID, job.ID)
	rep.Data["initiated_at"] = job.Created.Unix()
}

func orUnknown(s string) string {
	if s == "" {
		return "no reason given"
	}
	return s
}

// validResourceType reports whether t is a Puppet resource type name
// (file, service, apt::source...).
func validResourceType(t string) bool {
	if t == "" || len(t) > 100 {
		return false
	}
	for _, part := range strings.Split(t, "::") {
		if part == "" {
			return false
		}
		for i, r := range part {
			if !(r >= 'a' && r <= 'z' || r == '_' || (i > 0 && r >= '0' && r <= '9')) {
				return false
			}
		}
	}
	return true
}

// propertyName is what a property of `puppet resource TYPE NAME key=value`
// may be called: Puppet's parameter names are lower-case words.
var propertyName = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

// maxPropertyValue bounds one property's value (bytes).
const maxPropertyValue = 4096

// ValidateProperty checks one property of the resource action (an input
// the DDL does not declare) and returns its value as the string passed to
// puppet resource: the name must match ^[a-z][a-z0-9_]*$; the value must be
// a non-empty string (booleans and integers are accepted and spelled as
// Puppet does) of at most 4096 bytes without newlines or other control
// characters, which puppet resource's key=value parsing cannot carry.
// Nothing reaches a shell: properties are argv elements.
func ValidateProperty(name string, v any) (any, error) {
	if !propertyName.MatchString(name) || len(name) > 64 {
		return nil, errors.New("not a resource property name (lower-case letters, digits and _, starting with a letter); the resource action takes type, name, environment and properties")
	}
	if identityProperty("", name) {
		return nil, identityError(name)
	}
	var s string
	switch x := v.(type) {
	case string:
		s = x
	case bool:
		s = strconv.FormatBool(x)
	case float64:
		if x != math.Trunc(x) || math.Abs(x) > 1<<53 {
			return nil, errors.New("a property value must be a string, a boolean or an integer")
		}
		s = strconv.FormatInt(int64(x), 10)
	case int64:
		s = strconv.FormatInt(x, 10)
	case int:
		s = strconv.Itoa(x)
	default:
		return nil, errors.New("a property value must be a string, a boolean or an integer")
	}
	switch {
	case s == "":
		return nil, errors.New("a property value may not be empty")
	case len(s) > maxPropertyValue:
		return nil, fmt.Errorf("a property value may not be longer than %d bytes", maxPropertyValue)
	case !utf8.ValidString(s):
		return nil, errors.New("a property value must be UTF-8")
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return nil, errors.New("a property value may not contain newlines or other control characters")
	}
	return s, nil
}

// identityProperty reports whether a property of a resource of type typ
// ("" when not known yet) names the resource rather than describes it.
// Puppet lets such a parameter override the title — `puppet resource file
// /tmp/x path=/etc/motd ensure=absent` removes /etc/motd — so the type
// lists' and the managed-resource check's idea of which resource changes
// would be wrong: the resource is named by NAME only. title and path (the
// namevar of file, tidy and of many module types) are refused for every
// type, exec's command for exec.
func identityProperty(typ, name string) bool {
	switch name {
	case "title", "path":
		return true
	case "command":
		return typ == "exec"
	}
	return false
}

// identityError is why an identity property is refused.
func identityError(name string) error {
	return fmt.Errorf("%s names the resource (it would override NAME, and change another resource than the one named): give the resource as NAME", name)
}

// CheckProperty checks one property of a resource of type typ as the node
// does: ValidateProperty, and the type's own identifying parameters.
func CheckProperty(typ, name string, v any) (string, error) {
	if identityProperty(strings.ToLower(typ), name) {
		return "", identityError(name)
	}
	val, err := ValidateProperty(name, v)
	if err != nil {
		return "", err
	}
	return val.(string), nil
}

// resourceInputs are the resource action's declared inputs; every other
// input is a property.
var resourceInputs = []string{"type", "name", "environment"}

// resource runs `puppet resource TYPE NAME [key=value...]` when the
// resource type is allowed: without properties it shows the resource; with
// them (undeclared inputs, validated by ValidateProperty) Puppet changes the
// resource to match, and changed says whether it did.
func (p *Puppet) resource(ctx context.Context, req *agent.Request, rep *agent.Reply) {
	typ, _ := req.Data["type"].(string)
	name, _ := req.Data["name"].(string)
	typ = strings.ToLower(typ)
	if !validResourceType(typ) {
		rep.Fail("%q is not a Puppet resource type name", typ)
		return
	}
	if err := p.typeAllowed(typ); err != nil {
		rep.Fail("%v", err)
		return
	}
	if strings.HasPrefix(name, "-") {
		rep.Fail("resource name %q may not start with '-'", name)
		return
	}
	var props []string
	for k, v := range req.Data {
		if slices.Contains(resourceInputs, k) {
			continue
		}
		// Checked again here: the handler may be reached without the
		// node's validation (tests, another host of the agent).
		val, err := CheckProperty(typ, k, v)
		if err != nil {
			rep.FailWith(protocol.InvalidData, "property %q: %v", k, err)
			return
		}
		props = append(props, k+"="+val)
	}
	slices.Sort(props) // a stable argv, for the logs and the audit
	if !p.opts.AllowManagedResources {
		if err := p.checkManaged(ctx, typ, name, len(props) > 0); err != nil {
			rep.Fail("%v", err)
			return
		}
	}
	args := []string{"resource", "--color=false"}
	if p.opts.ConfDir != "" {
		args = append(args, "--confdir", p.opts.ConfDir)
	}
	if env, _ := req.Data["environment"].(string); env != "" {
		args = append(args, "--environment", env)
	}
	args = append(append(args, "--", typ, name), props...)
	if len(props) > 0 {
		p.log.Info("puppet resource change", "caller", req.CallerID, "type", typ, "name", name, "properties", props)
	}
	cmd := exec.CommandContext(ctx, p.opts.Puppet, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	rep.Data["result"] = strings.TrimSpace(string(out))
	if err != nil {
		rep.Fail("puppet resource %s %s: %v: %s", typ, name, err, puppetError(stderr.String()))
		return
	}
	// A change Puppet could not make is an error on stderr
	// ("Error: /File[/x]/ensure: change from 'absent' to 'file' failed:
	// ..."), yet puppet resource exits 0.
	for line := range strings.Lines(stderr.String()) {
		if strings.HasPrefix(line, "Error: /") {
			rep.Fail("puppet resource %s %s: %s", typ, name, strings.TrimSpace(line))
			return
		}
	}
	// Puppet reports each change as a notice on stdout
	// ("Notice: /File[/tmp/x]/ensure: created") before the resource.
	changed := false
	for line := range strings.Lines(string(out)) {
		if strings.HasPrefix(line, "Notice: /") {
			changed = true
		}
	}
	rep.Data["changed"] = changed
}

// puppetError picks Puppet's own error from its stderr: the first "Error:"
// line that is not one of Facter's complaints about facts it cannot read
// (which come first when Puppet does not run as root).
func puppetError(stderr string) string {
	for line := range strings.Lines(stderr) {
		if strings.HasPrefix(line, "Error: ") && !strings.HasPrefix(line, "Error: Facter:") {
			return strings.TrimSpace(line)
		}
	}
	return strings.TrimSpace(firstLine(stderr))
}

// typeAllowed applies the resource type allow and deny lists: with
// neither set, no type is allowed.
func (p *Puppet) typeAllowed(typ string) error {
	allow, deny := p.opts.ResourceAllow, p.opts.ResourceDeny
	switch {
	case len(allow) == 0 && len(deny) == 0:
		return errors.New("the resource action is not enabled on this node (set puppet.resource.allow or puppet.resource.deny in server.conf)")
	case slices.Contains(deny, typ):
		return fmt.Errorf("resource type %s is denied on this node (puppet.resource.deny)", typ)
	case len(allow) > 0 && !slices.Contains(allow, typ):
		return fmt.Errorf("resource type %s is not allowed on this node (puppet.resource.allow: %s)", typ, strings.Join(allow, ", "))
	}
	return nil
}

// checkManaged refuses a resource Puppet's catalog manages (by title or by
// namevar as Puppet resolved it: file { 'motd': path => '/etc/motd' } is
// /etc/motd too), and a change to a file or tidy directory that holds a
// managed file: ensure=absent force=true, recurse=true purge=true or tidy
// reach into it. It fails closed: when Puppet's settings or its
// resources.txt or cached catalog cannot be read, changes are refused.
func (p *Puppet) checkManaged(ctx context.Context, typ, name string, change bool) error {
	const allow = "set puppet.resource.allow_managed = true to allow"
	s, err := p.settings.get(ctx)
	if err != nil {
		if change {
			return fmt.Errorf("cannot tell whether %s[%s] is managed by Puppet's catalog, so it is not changed: %w", typ, name, err)
		}
		return nil // showing changes nothing; puppet resource reports its own error
	}
	ix, err := p.managed.get(s)
	if err != nil {
		if change {
			return fmt.Errorf("cannot tell whether %s[%s] is managed by Puppet's catalog, so it is not changed: %w (%s)", typ, name, err, allow)
		}
		return nil
	}
	if ix.has(typ, name) {
		return fmt.Errorf("%s[%s] is managed by Puppet's catalog on this node; the next Puppet run would revert a change (%s)", typ, name, allow)
	}
	if change && (typ == "file" || typ == "tidy") {
		if inside := ix.below(name); inside != "" {
			return fmt.Errorf("%s[%s] holds File[%s], which Puppet's catalog manages on this node; a change to the directory could remove or rewrite it (%s)", typ, name, inside, allow)
		}
	}
	return nil
}

// pathOf is a file or tidy resource's name as Puppet resolves it: Puppet
// expands a path (File.expand_path: "//", "/./", "/../" and a trailing "/"
// go), so /etc/app/../motd changes /etc/motd and is checked as /etc/motd.
// Other types' names are left as they are.
func pathOf(typ, name string) string {
	if (typ == "file" || typ == "tidy") && strings.HasPrefix(name, "/") {
		return filepath.Clean(name)
	}
	return name
}

// ParseList splits a comma- or space-separated list of resource types.
func ParseList(v string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ',' || r == ' ' }) {
		out = append(out, strings.ToLower(f))
	}
	return out
}
