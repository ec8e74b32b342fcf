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
	spool, err := jobs.Open(dir, jobs.Options{MaxJobs: cfg.JobsMax, MaxAge: cfg.JobsMaxAge, OnFinish: onFinish})
	if err != nil {
		return nil, fmt.Errorf("jobs.dir: %w", err)
	}
	return spool, nil
}

// ConfigManagement builds the configuration management agents — puppet and
// chef, each active only where its tool is installed, their runs detached
// jobs in spool — the job agent over the spool (on every node: any action
// can run detached) and the puppet data plugin, which shares the agent's
// state (one Puppet per node: the data plugin depends on the node's
// puppet.confdir, so it is not one of the machine-wide plugins).
func ConfigManagement(cfg *config.Server, spool *jobs.Spool, log *slog.Logger) (node.AgentFunc, []data.Plugin, error) {
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
