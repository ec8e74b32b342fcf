package daemon

import (
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/agents/jobagent"
	"github.com/marionette/mco/internal/agents/puppetagent"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/data"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/node"
)

// defaultJobsRoot holds one spool per node identity when jobs.dir is unset.
const defaultJobsRoot = "/var/lib/marionette/jobs"

// ConfigManagement builds the configuration management agents — puppet,
// active only where Puppet is installed, and the job agent over the spool
// its runs use — and the puppet data plugin, which shares the agent's state
// (one Puppet per node: the data plugin depends on the node's
// puppet.confdir, so it is not one of the machine-wide plugins). Nothing is
// built on a node without Puppet; the spool directory appears with the first
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
	if errors.Is(err, puppetagent.ErrNotInstalled) {
		log.Info("puppet agent inactive", "reason", err)
		return none, nil, nil
	}
	if err != nil {
		return nil, nil, err
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
	pp.SetJobs(spool)
	agents := func(*node.Node) ([]*agent.Agent, error) {
		pa, err := pp.Agent()
		if err != nil {
			return nil, err
		}
		ja, err := jobagent.New(spool, nil)
		if err != nil {
			return nil, err
		}
		return []*agent.Agent{pa, ja}, nil
	}
	return agents, []data.Plugin{data.NewPuppet(pp.Data)}, nil
}
