package daemon

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/agents/chefagent"
	"github.com/marionette/mco/internal/agents/jobagent"
	"github.com/marionette/mco/internal/agents/puppetagent"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/data"
	"github.com/marionette/mco/internal/filewatch"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/node"
)

// defaultJobsRoot holds one spool per node identity when jobs.dir is unset.
const defaultJobsRoot = "/var/lib/marionette/jobs"

// OpenJobs opens the node's job spool (jobs.dir, default
// /var/lib/marionette/jobs/<identity>): Puppet and Chef runs and every
// action run detached (mco rpc --async) keep their records there. The
// directory appears with the first job. onFinish, when not nil, runs (on
// its own goroutine) after a job started by this process ends.
func OpenJobs(cfg *config.Server, identity string, onFinish func(*jobs.State)) (*jobs.Spool, error) {
	dir := cfg.JobsDir
	if dir == "" {
		dir = filepath.Join(defaultJobsRoot, identity)
	}
	// With an audit log, a job's end is audited before the job may go.
	spool, err := jobs.Open(dir, jobs.Options{MaxJobs: cfg.JobsMax, MaxAge: cfg.JobsMaxAge, OnFinish: onFinish,
		KeepUnaudited: cfg.AuditLog != ""})
	if err != nil {
		return nil, fmt.Errorf("jobs.dir: %w", err)
	}
	return spool, nil
}

// CM is what the configuration management tools add to a node: agents, the
// puppet data plugin, and watchers of the tools' own files.
type CM struct {
	// Agents builds the puppet, chef and job agents.
	Agents node.AgentFunc
	// Plugins are the data plugins (puppet).
	Plugins []data.Plugin
	// watch runs the watchers (Run).
	watch []func(context.Context)
}

// Run runs the watchers of Puppet's and Chef's files until ctx ends.
func (c *CM) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, w := range c.watch {
		wg.Go(func() { w(ctx) })
	}
	wg.Wait()
}

// CMHooks receive what the watchers learn; nil fields are not wanted.
type CMHooks struct {
	// Classes sets one source's classes ("puppet", "chef"): the node's
	// facts store (facts.Store.SetClasses).
	Classes func(source string, classes []string)
	// RunFinished is called when a Puppet or Chef run ended (its summary or
	// report was rewritten), to re-collect facts. It must not block.
	RunFinished func()
}

// ConfigManagement builds the configuration management agents — puppet and
// chef, each active only where its tool is installed, and the job agent
// over the spool their runs use — the puppet data plugin, which shares the
// agent's state (one Puppet per node: the data plugin depends on the node's
// puppet.confdir, so it is not one of the machine-wide plugins), and the
// watchers that feed the tools' classes and finished runs to hooks. Their
// runs are detached jobs in spool; the job agent serves the spool on every
// node (any action can run detached).
//
// Classes come from Puppet's classfile when the node sets no classes file
// and puppet.classes is not false (which costs one `puppet config print`
// at start), and from the Chef report's run list unless chef.classes is
// false. Puppet's files are watched for finished runs whenever hooks want
// them and the node has fact commands to re-run.
func ConfigManagement(cfg *config.Server, spool *jobs.Spool, hooks CMHooks, log *slog.Logger) (*CM, error) {
	cm := &CM{}
	pc := cfg.Puppet
	pp, err := puppetagent.New(puppetagent.Options{
		Puppet: pc.Command, ConfDir: pc.ConfDir, RunCommand: pc.RunCommand,
		ResourceAllow: pc.ResourceAllow, ResourceDeny: pc.ResourceDeny, AllowManagedResources: pc.AllowManaged,
		Logger: log,
	})
	havePuppet := err == nil
	if errors.Is(err, puppetagent.ErrNotInstalled) {
		log.Info("puppet agent inactive", "reason", err)
	} else if err != nil {
		return nil, err
	}
	cc := cfg.Chef
	chef, err := chefagent.New(chefagent.Options{
		Command: cc.Command, RunCommand: cc.RunCommand, ReportFile: cc.ReportFile,
		LockFile: cc.LockFile, RunLock: cc.RunLock, PIDFile: cc.PIDFile, Logger: log,
	})
	haveChef := err == nil
	if errors.Is(err, chefagent.ErrNotInstalled) {
		log.Info("chef agent inactive", "reason", err)
	} else if err != nil {
		return nil, err
	}
	wantRuns := hooks.RunFinished != nil && (len(cfg.FactCommand) > 0 || len(cfg.FactSources) > 0)
	if havePuppet {
		pp.SetJobs(spool)
		cm.Plugins = append(cm.Plugins, data.NewPuppet(pp.Data))
		var h puppetagent.Hooks
		if hooks.Classes != nil && pc.Classes && cfg.ClassesFile == "" {
			h.Classes = func(c []string) { hooks.Classes("puppet", c) }
		}
		if wantRuns {
			h.RunFinished = hooks.RunFinished
		}
		// The resource action's managed-resource check reads Puppet's
		// resources.txt and cached catalog from the watcher, when they
		// change, rather than on requests.
		checksManaged := (len(pc.ResourceAllow) > 0 || len(pc.ResourceDeny) > 0) && !pc.AllowManaged
		if h.Classes != nil || h.RunFinished != nil || checksManaged {
			cm.watch = append(cm.watch, func(ctx context.Context) { pp.Watch(ctx, filewatch.DefaultPoll, h) })
		}
	}
	if haveChef {
		chef.SetJobs(spool)
		var h chefagent.Hooks
		if hooks.Classes != nil && cc.Classes {
			h.Classes = func(c []string) { hooks.Classes("chef", c) }
		}
		if wantRuns {
			h.RunFinished = hooks.RunFinished
		}
		if h.Classes != nil || h.RunFinished != nil {
			cm.watch = append(cm.watch, func(ctx context.Context) { chef.Watch(ctx, filewatch.DefaultPoll, h) })
		}
	}
	cm.Agents = func(*node.Node) ([]*agent.Agent, error) {
		var out []*agent.Agent
		if havePuppet {
			pa, err := pp.Agent()
			if err != nil {
				return nil, err
			}
			out = append(out, pa)
		}
		if haveChef {
			ca, err := chef.Agent()
			if err != nil {
				return nil, err
			}
			out = append(out, ca)
		}
		ja, err := jobagent.New(spool, nil)
		if err != nil {
			return nil, err
		}
		return append(out, ja), nil
	}
	return cm, nil
}
