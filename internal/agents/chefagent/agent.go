// Package chefagent is the built-in "chef" agent: status, last run summary,
// enable and disable, detached runs and waking the daemon of Chef Infra
// Client (chef-client), active only where chef-client is installed.
//
// Chef keeps no summary file of its own that a daemon could read cheaply,
// so the agent reads the JSON report that the documented report handler
// (docs/configuration-management.md) writes after every run, and a lock file
// that the documented start handler and runonce respect — Chef has no
// "disabled" state of its own. Returning that data rather than parsing a
// formatter's output is what the Chef seed asks for. Runs are detached jobs
// (package jobs): "MCollective runs Chef, Chef restarts MCollective" loses
// nothing, and a second run while one applies is refused at once instead of
// queueing behind Chef's own run lock past the request's timeout.
package chefagent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	_ "embed"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/pidfile"
)

//go:embed chef.json
var ddlJSON []byte

// DDL returns the agent's DDL, freshly parsed.
func DDL() (*ddl.Agent, error) {
	d, err := ddl.Parse("chefagent/chef.json", ddlJSON)
	if err != nil {
		return nil, fmt.Errorf("chef agent DDL: %w", err)
	}
	return d, nil
}

// ErrNotInstalled is returned (wrapped) by New when chef-client is not
// installed: the daemon then leaves the agent inactive.
var ErrNotInstalled = errors.New("chef-client is not installed")

// Default paths, Chef's own where Chef has one (file_cache_path /var/chef/cache).
const (
	DefaultReportFile = "/var/chef/cache/marionette-report.json"
	DefaultLockFile   = "/var/chef/cache/marionette-disabled.lock"
	DefaultRunLock    = "/var/chef/cache/chef-client-running.pid"
	DefaultPIDFile    = "/var/run/chef/client.pid"
)

// Options configures the agent.
type Options struct {
	// Command is the chef-client executable ("" means chef-client on PATH).
	Command string
	// RunCommand is what runonce runs (default: Command --once).
	RunCommand []string
	// ReportFile is the report handler's JSON file.
	ReportFile string
	// LockFile disables runs while it exists: {"disabled_message": "..."}.
	LockFile string
	// RunLock is chef-client's own run lock (file_cache_path/chef-client-running.pid).
	RunLock string
	// PIDFile is the chef-client daemon's PID file.
	PIDFile string
	// Jobs is the spool runs start in; nil refuses runonce.
	Jobs *jobs.Spool
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger receives warnings (run list entries skipped); nil discards
	// them.
	Logger *slog.Logger
}

// Chef is the agent's state.
type Chef struct {
	opts Options
	log  *slog.Logger
}

// New checks that chef-client is installed.
func New(opts Options) (*Chef, error) {
	if opts.Command == "" {
		opts.Command = "chef-client"
	}
	path, err := exec.LookPath(opts.Command)
	if err != nil {
		return nil, fmt.Errorf("chef agent: %w: %w", ErrNotInstalled, err)
	}
	opts.Command = path
	if len(opts.RunCommand) == 0 {
		opts.RunCommand = []string{path, "--once"}
	}
	set := func(p *string, def string) {
		if *p == "" {
			*p = def
		}
	}
	set(&opts.ReportFile, DefaultReportFile)
	set(&opts.LockFile, DefaultLockFile)
	set(&opts.RunLock, DefaultRunLock)
	set(&opts.PIDFile, DefaultPIDFile)
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Chef{opts: opts, log: log}, nil
}

// SetJobs sets the spool runs start in.
func (c *Chef) SetJobs(s *jobs.Spool) { c.opts.Jobs = s }

// Report is the report handler's JSON file.
type Report struct {
	Status           string   `json:"status"`
	StartTime        string   `json:"start_time"`
	EndTime          string   `json:"end_time"`
	ElapsedTime      float64  `json:"elapsed_time"`
	UpdatedResources int      `json:"updated_resources"`
	TotalResources   int      `json:"total_resources"`
	RunList          []string `json:"run_list"`
	Exception        string   `json:"exception"`
}

// report reads the last run's report; nil when there is none.
func (c *Chef) report() (*Report, time.Time, error) {
	b, err := os.ReadFile(c.opts.ReportFile)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, time.Time{}, nil
	}
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("reading %s: %w", c.opts.ReportFile, err)
	}
	var r Report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, time.Time{}, fmt.Errorf("%s: not a run report: %w", c.opts.ReportFile, err)
	}
	end, err := time.Parse(time.RFC3339, r.EndTime)
	if err != nil {
		if fi, serr := os.Stat(c.opts.ReportFile); serr == nil {
			end = fi.ModTime()
		}
	}
	return &r, end, nil
}

// Classes turns the last run's run list into classes (RunListClasses);
// entries that cannot be classes are logged and skipped.
func (c *Chef) Classes() []string {
	r, _, err := c.report()
	if err != nil {
		c.log.Warn("chef: run report unreadable; no classes from the run list", "file", c.opts.ReportFile, "err", err)
		return nil
	}
	if r == nil {
		return nil
	}
	classes, skipped := RunListClasses(r.RunList)
	for _, item := range skipped {
		c.log.Warn("chef: run list entry skipped: not role[NAME], recipe[COOKBOOK::RECIPE@VERSION] or COOKBOOK::RECIPE", "entry", item, "file", c.opts.ReportFile)
	}
	return classes
}

var (
	// roleName is what Chef allows in a role's name.
	roleName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	// recipeName is COOKBOOK or COOKBOOK::RECIPE, with an optional
	// @VERSION pin (Chef's cookbook and recipe names: letters, digits,
	// '_', '-' and '.').
	recipeName = regexp.MustCompile(`^([A-Za-z0-9_.-]+(?:::[A-Za-z0-9_.-]+)?)(?:@[0-9]+(?:\.[0-9]+){0,2})?$`)
)

// RunListClasses munges a Chef run list to class names, since square
// brackets are not allowed in class names: role[web] becomes role.web,
// recipe[apache2::mod_ssl] recipe.apache2::mod_ssl (the "::" stays, as in
// Puppet's class names, so -C recipe.apache2::mod_ssl matches it), and a
// version pin is dropped (recipe[apache2@1.2.0] is recipe.apache2: the
// class says what the node runs, the pin how it was chosen). An entry
// without brackets is a recipe, as Chef reads it (apache2::mod_ssl is
// recipe.apache2::mod_ssl). recipe[apache2] stays recipe.apache2; Chef's
// implied ::default is not added. Repeats are dropped. Entries that fit none
// of these forms are returned in skipped, for the caller to report.
func RunListClasses(runList []string) (classes, skipped []string) {
	seen := map[string]bool{}
	for _, item := range runList {
		class, ok := runListClass(strings.TrimSpace(item))
		if !ok {
			skipped = append(skipped, item)
			continue
		}
		if !seen[class] {
			seen[class] = true
			classes = append(classes, class)
		}
	}
	return classes, skipped
}

func runListClass(item string) (string, bool) {
	kind, name := "recipe", item
	if k, rest, ok := strings.Cut(item, "["); ok {
		n, closed := strings.CutSuffix(rest, "]")
		if !closed {
			return "", false
		}
		kind, name = k, n
	}
	switch kind {
	case "role":
		if roleName.MatchString(name) {
			return "role." + name, true
		}
	case "recipe":
		if m := recipeName.FindStringSubmatch(name); m != nil {
			return "recipe." + m[1], true
		}
	}
	return "", false
}

func (c *Chef) disabled() (bool, string) {
	b, err := os.ReadFile(c.opts.LockFile)
	if err != nil {
		return false, ""
	}
	var lock struct {
		Message string `json:"disabled_message"`
	}
	_ = json.Unmarshal(b, &lock)
	return true, lock.Message
}

// applying reports a run in progress: chef-client's own run lock or one of
// our jobs.
func (c *Chef) applying() (bool, time.Time) {
	if _, since, ok := pidfile.Live(c.opts.RunLock); ok {
		return true, since
	}
	if c.opts.Jobs != nil {
		if running := c.opts.Jobs.Running("chef", "runonce"); len(running) > 0 {
			return true, running[0].Created
		}
	}
	return false, time.Time{}
}

// Agent returns the chef agent.
func (c *Chef) Agent() (*agent.Agent, error) {
	d, err := DDL()
	if err != nil {
		return nil, err
	}
	a := agent.New(d)
	a.Register("status", c.status)
	a.Register("last_run_summary", c.lastRunSummary)
	a.Register("enable", c.enable)
	a.Register("disable", c.disable)
	a.Register("runonce", c.runonce)
	a.Register("wake_daemon", c.wake)
	return a, nil
}

func since(now, t time.Time) any {
	if t.IsZero() {
		return "Unknown"
	}
	return int64(now.Sub(t).Seconds())
}

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func (c *Chef) status(_ context.Context, _ *agent.Request, rep *agent.Reply) {
	applying, _ := c.applying()
	off, msg := c.disabled()
	_, _, daemon := pidfile.Live(c.opts.PIDFile)
	r, end, err := c.report()
	if err != nil {
		rep.Fail("%v", err)
		return
	}
	rep.Data["applying"], rep.Data["enabled"], rep.Data["disable_message"] = applying, !off, msg
	rep.Data["daemon_present"] = daemon
	if r != nil {
		rep.Data["lastrun"], rep.Data["since_lastrun"] = unix(end), since(c.opts.Now(), end)
		rep.Data["last_run_status"], rep.Data["resources_updated"] = r.Status, r.UpdatedResources
	}
	switch {
	case applying:
		rep.Data["status"] = "applying"
	case off:
		rep.Data["status"] = "disabled"
	case daemon:
		rep.Data["status"] = "idling"
	default:
		rep.Data["status"] = "stopped"
	}
}

func (c *Chef) lastRunSummary(_ context.Context, _ *agent.Request, rep *agent.Reply) {
	r, end, err := c.report()
	switch {
	case err != nil:
		rep.Fail("%v", err)
		return
	case r == nil:
		rep.Fail("chef-client has not completed a run yet (no report in %s; is the report handler configured?)", c.opts.ReportFile)
		return
	}
	rep.Data["status"], rep.Data["start_time"], rep.Data["end_time"] = r.Status, r.StartTime, r.EndTime
	rep.Data["elapsed_time"], rep.Data["updated_resources"], rep.Data["total_resources"] = r.ElapsedTime, r.UpdatedResources, r.TotalResources
	list := []any{}
	for _, item := range r.RunList {
		list = append(list, item)
	}
	rep.Data["run_list"], rep.Data["exception"] = list, r.Exception
	rep.Data["lastrun"], rep.Data["since_lastrun"] = unix(end), since(c.opts.Now(), end)
}

func (c *Chef) enable(_ context.Context, _ *agent.Request, rep *agent.Reply) {
	if off, _ := c.disabled(); !off {
		rep.Data["enabled"], rep.Data["status"] = true, "already enabled"
		rep.Fail("chef-client is already enabled")
		return
	}
	if err := os.Remove(c.opts.LockFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		rep.Data["enabled"] = false
		rep.Fail("could not enable chef-client: %v", err)
		return
	}
	rep.Data["enabled"], rep.Data["status"] = true, "enabled"
}

func (c *Chef) disable(_ context.Context, req *agent.Request, rep *agent.Reply) {
	if off, msg := c.disabled(); off {
		rep.Data["enabled"], rep.Data["status"] = false, "already disabled: "+msg
		rep.Fail("chef-client is already disabled: %s", msg)
		return
	}
	message, _ := req.Data["message"].(string)
	if message == "" {
		message = fmt.Sprintf("disabled via mco by %s at %s", strings.TrimPrefix(req.CallerID, "cert="), c.opts.Now().UTC().Format(time.RFC3339))
	}
	b, _ := json.Marshal(map[string]string{"disabled_message": message})
	if err := os.MkdirAll(filepath.Dir(c.opts.LockFile), 0o755); err == nil {
		err = os.WriteFile(c.opts.LockFile+".tmp", b, 0o644)
		if err == nil {
			err = os.Rename(c.opts.LockFile+".tmp", c.opts.LockFile)
		}
		if err != nil {
			rep.Data["enabled"] = true
			rep.Fail("could not disable chef-client: %v", err)
			return
		}
	} else {
		rep.Fail("could not disable chef-client: %v", err)
		return
	}
	rep.Data["enabled"], rep.Data["status"] = false, "disabled: "+message
}

func (c *Chef) runonce(_ context.Context, req *agent.Request, rep *agent.Reply) {
	if off, msg := c.disabled(); off {
		rep.Fail("chef-client is disabled: %s", msg)
		return
	}
	if on, since := c.applying(); on {
		rep.Fail("chef-client is already applying since %s; not starting another run", since.UTC().Format(time.RFC3339))
		return
	}
	if c.opts.Jobs == nil {
		rep.Fail("runonce needs a job spool (jobs.dir) on this node")
		return
	}
	job, err := c.opts.Jobs.Start(jobs.Spec{
		ID: req.ID, RequestID: req.ID, Caller: req.CallerID, Agent: "chef", Action: "runonce", Argv: slices.Clone(c.opts.RunCommand),
	}, func() error {
		if on, since := c.applying(); on {
			return fmt.Errorf("chef-client is already applying since %s; not starting another run", since.UTC().Format(time.RFC3339))
		}
		return nil
	})
	if err != nil {
		rep.Fail("%v", err)
		return
	}
	rep.Data["summary"] = fmt.Sprintf("Started a chef-client run as job %s (mco job results %s)", job.ID, job.ID)
	rep.Data["initiated_at"] = job.Created.Unix()
}

func (c *Chef) wake(_ context.Context, _ *agent.Request, rep *agent.Reply) {
	if off, msg := c.disabled(); off {
		rep.Fail("chef-client is disabled: %s", msg)
		return
	}
	pid, _, ok := pidfile.Live(c.opts.PIDFile)
	if !ok {
		rep.Fail("no chef-client daemon is running (no live PID in %s)", c.opts.PIDFile)
		return
	}
	if on, since := c.applying(); on {
		rep.Fail("chef-client is already applying since %s", since.UTC().Format(time.RFC3339))
		return
	}
	if err := syscall.Kill(pid, syscall.SIGUSR1); err != nil {
		rep.Fail("could not signal the chef-client daemon (pid %d): %v", pid, err)
		return
	}
	rep.Data["summary"] = fmt.Sprintf("Signalled the chef-client daemon (pid %d) to run now", pid)
}
