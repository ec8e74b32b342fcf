package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/agents/chefagent"
	"github.com/marionette/mco/internal/agents/jobagent"
	"github.com/marionette/mco/internal/agents/puppetagent"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/data"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/node"
)

// defaultJobsRoot holds one spool per node identity when jobs.dir is unset.
const defaultJobsRoot = "/var/lib/marionette/jobs"

// ConfigManagement builds the configuration management agents — puppet and
// chef, each active only where its tool is installed, and the job agent
// over the spool their runs use — and the puppet data plugin, which shares the agent's state
// (one Puppet per node: the data plugin depends on the node's
// puppet.confdir, so it is not one of the machine-wide plugins). Nothing is
// built on a node without Puppet or Chef; the spool directory appears with the first
// job.
//
// afterRun, when not nil, runs (on its own goroutine) after a job started by
// this daemon ends, to re-collect facts.
func ConfigManagement(cfg *config.Server, identity string, afterRun func(), log *slog.Logger) (node.AgentFunc, []data.Plugin, error) {
	none := func(*node.Node) ([]*agent.Agent, error) { return nil, nil }
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
		return nil, nil, err
	}
	cc := cfg.Chef
	chef, err := chefagent.New(chefagent.Options{
		Command: cc.Command, RunCommand: cc.RunCommand, ReportFile: cc.ReportFile,
		LockFile: cc.LockFile, RunLock: cc.RunLock, PIDFile: cc.PIDFile,
	})
	haveChef := err == nil
	if errors.Is(err, chefagent.ErrNotInstalled) {
		log.Info("chef agent inactive", "reason", err)
	} else if err != nil {
		return nil, nil, err
	}
	if !havePuppet && !haveChef {
		return none, nil, nil
	}
	dir := cfg.JobsDir
	if dir == "" {
		dir = filepath.Join(defaultJobsRoot, identity)
	}
	opts := jobs.Options{MaxJobs: cfg.JobsMax, MaxAge: cfg.JobsMaxAge}
	if afterRun != nil {
		opts.OnFinish = func(*jobs.State) { afterRun() }
	}
	spool, err := jobs.Open(dir, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("jobs.dir: %w", err)
	}
	var plugins []data.Plugin
	if havePuppet {
		pp.SetJobs(spool)
		plugins = append(plugins, data.NewPuppet(pp.Data))
	}
	if haveChef {
		chef.SetJobs(spool)
	}
	agents := func(*node.Node) ([]*agent.Agent, error) {
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
	return agents, plugins, nil
}
