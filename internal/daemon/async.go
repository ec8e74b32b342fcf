package daemon

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/node"
	"github.com/marionette/mco/protocol"
)

// Any action can run detached (mco rpc --async): the daemon checks the
// request like any other, then starts `mco server job-run` (RunJob) as a
// job of the spool — a session and process group of its own, outside the
// daemon's lifetime — which runs the action in its own process and writes
// the reply to the job's result.json. The daemon that started it, or the
// next one after a restart, audits the job's end (watchJobs).

// jobRequest is a detached action's request.json: the validated request
// and the node's facts and classes when it was accepted (the runner does
// not collect facts again: a Puppet-sized facter run per job would cost
// seconds, and the action sees the node as the request's filter did).
type jobRequest struct {
	ID         string         `json:"id"`
	Agent      string         `json:"agent"`
	Action     string         `json:"action"`
	CallerID   string         `json:"caller"`
	Sender     string         `json:"sender"`
	Collective string         `json:"collective"`
	Time       time.Time      `json:"time"`
	TTL        time.Duration  `json:"ttl"`
	Data       map[string]any `json:"data"`
	Timeout    time.Duration  `json:"timeout"`
	Facts      map[string]any `json:"facts"`
	Classes    []string       `json:"classes"`
}

// notDetachable says why an action cannot usefully run detached, or nil.
// rpcutil and the job agent answer from the daemon's memory or spool at
// once — a detached copy of the daemon would answer for itself, not the
// node — and Puppet's and Chef's runonce always start a detached job
// already.
func notDetachable(agentName, action string) error {
	switch {
	case agentName == "rpcutil":
		return errors.New("rpcutil actions answer at once from the daemon itself and cannot run detached: run it without --async")
	case agentName == "job":
		return errors.New("the job agent reads the job spool at once and cannot run detached: run it without --async")
	case (agentName == "puppet" || agentName == "chef") && action == "runonce":
		return fmt.Errorf("%s runonce always runs detached: run it without --async (its reply names the job)", agentName)
	}
	return nil
}

// maxRunningJobsPerCaller bounds one caller's running detached actions on
// a node, as server.DefaultMaxRunningPerCaller bounds its foreground ones.
const maxRunningJobsPerCaller = 20

// detacher implements server.Detacher over the node's spool.
type detacher struct {
	spool   *jobs.Spool
	exe     string // this binary, re-executed as the job runner
	config  string // server.conf, absolute
	facts   func() map[string]any
	classes func() []string
}

// inputHash identifies an action's inputs; encoding/json sorts map keys,
// so equal inputs hash equal.
func inputHash(data map[string]any) string {
	b, _ := json.Marshal(data)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Detach implements server.Detacher.
func (d *detacher) Detach(a *agent.Agent, req *agent.Request) error {
	if err := notDetachable(req.Agent, req.Action); err != nil {
		return err
	}
	jr := jobRequest{
		ID: req.ID, Agent: req.Agent, Action: req.Action, CallerID: req.CallerID, Sender: req.Sender,
		Collective: req.Collective, Time: req.Time, TTL: req.TTL, Data: req.Data, Timeout: a.Timeout(),
		Facts: d.facts(), Classes: d.classes(),
	}
	body, err := json.Marshal(&jr)
	if err != nil {
		return fmt.Errorf("encoding the job's request: %w", err)
	}
	hash := inputHash(req.Data)
	// Two identical runs at once are a mistake more often than not (a
	// retried command line): the second is refused with the first's id,
	// never queued behind it. And one caller may not fill the machine with
	// processes the daemon's own per-caller limit never sees.
	same := func() error {
		all, err := d.spool.List()
		if err != nil {
			return err
		}
		mine := 0
		for _, st := range all {
			if st.Status != jobs.Running {
				continue
			}
			if st.Agent == req.Agent && st.Action == req.Action && st.InputHash == hash {
				return fmt.Errorf("an identical job is already running: %s, started %s by %s", st.ID, st.Created.UTC().Format(time.RFC3339), st.Caller)
			}
			if st.Caller == req.CallerID && st.Kind == jobs.KindRPC {
				mine++
			}
		}
		if mine >= maxRunningJobsPerCaller {
			return fmt.Errorf("%d detached jobs of %s are already running on this node (the limit): try again later", mine, req.CallerID)
		}
		return nil
	}
	_, err = d.spool.Start(jobs.Spec{
		ID: req.ID, RequestID: req.ID, Caller: req.CallerID, Agent: req.Agent, Action: req.Action,
		Kind: jobs.KindRPC, InputHash: hash, Timeout: a.Timeout(),
		Argv:  []string{d.exe, "server", "job-run", "-c", d.config, "--job", d.spool.JobDir(req.ID)},
		Files: map[string][]byte{jobs.RequestFile: body},
	}, same)
	if errors.Is(err, jobs.ErrExists) {
		return fmt.Errorf("a job with id %s already exists on this node", req.ID)
	}
	return err
}

// newDetacher returns the daemon's detacher: jobs re-execute this binary.
func newDetacher(spool *jobs.Spool, file string, facts func() map[string]any, classes func() []string) (*detacher, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("detached jobs: locating the mco binary: %w", err)
	}
	conf, err := filepath.Abs(file)
	if err != nil {
		return nil, fmt.Errorf("detached jobs: %w", err)
	}
	return &detacher{spool: spool, exe: exe, config: conf, facts: facts, classes: classes}, nil
}

// jobWatch is how often the daemon looks for the end of detached jobs it
// did not start itself (started by a predecessor before a restart) while
// any is running; it does not poll when none is.
const jobWatch = 2 * time.Second

// jobClean is how often the spool is cleaned to its bounds (jobs.max,
// jobs.max_age) besides before every start, so that a node that stopped
// starting jobs still lets old ones go.
const jobClean = time.Hour

// watchJobs audits the end of every job in the spool once (when aud is
// not nil): at start (jobs that ended while no daemon ran), when a job
// this daemon started ends (ended), and on a timer while jobs a
// predecessor started still run. It cleans the spool to its bounds at
// start, after every end and hourly.
func watchJobs(ctx context.Context, spool *jobs.Spool, aud *node.Auditor, ended <-chan struct{}, log *slog.Logger) {
	clean := time.NewTicker(jobClean)
	defer clean.Stop()
	for {
		running := false
		if aud != nil {
			running = auditEnded(spool, aud, log)
		}
		spool.Clean()
		var tick <-chan time.Time
		if running {
			tick = time.After(jobWatch)
		}
		select {
		case <-ctx.Done():
			return
		case <-ended:
		case <-tick:
		case <-clean.C:
		}
	}
}

// auditEnded audits the jobs that ended and are not audited yet; it reports
// whether any job still runs.
func auditEnded(spool *jobs.Spool, aud *node.Auditor, log *slog.Logger) bool {
	all, err := spool.List()
	if err != nil {
		log.Warn("job spool unreadable", "err", err)
		return false
	}
	running := false
	for _, st := range all {
		if st.Status == jobs.Running {
			running = true
			continue
		}
		if spool.Audited(st.ID) {
			continue
		}
		end := jobEnd(spool, st)
		if err := aud.AuditJob(end); err != nil {
			log.Error("audit write failed", "job", st.ID, "err", err)
			continue
		}
		if err := spool.MarkAudited(st.ID); err != nil {
			log.Warn("job end audited but not marked: it will be audited again", "job", st.ID, "err", err)
		}
		log.Info("detached job ended", "job", st.ID, "agent", st.Agent, "action", st.Action, "state", end.State, "status", end.Status)
	}
	return running
}

// jobEnd is what the audit records of an ended job.
func jobEnd(spool *jobs.Spool, st *jobs.State) node.JobEnd {
	end := node.JobEnd{ID: st.ID, Agent: st.Agent, Action: st.Action, Caller: st.Caller, State: st.Status,
		ExitCode: st.ExitCode, Duration: st.Duration(time.Now())}
	switch {
	case st.Status == jobs.Lost:
		end.Status, end.Message = protocol.Aborted, "job lost: its process ended without recording an exit code"
	case st.Kind == jobs.KindRPC:
		res, err := spool.Result(st.ID)
		if err != nil {
			end.Status, end.Message = protocol.UnknownError, fmt.Sprintf("job runner exited %d without a result", st.ExitCode)
			break
		}
		end.Status, end.Message = res.Status, res.Message
		if res.TimedOut {
			end.State = "timeout"
		}
	case st.ExitCode != 0:
		end.Status, end.Message = protocol.Aborted, fmt.Sprintf("exit code %d", st.ExitCode)
	}
	return end
}
