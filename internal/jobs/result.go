package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/marionette/mco/protocol"
)

// KindRPC is the Spec.Kind of an agent action run detached (mco rpc
// --async) by the job runner.
const KindRPC = "rpc"

// Files of a job directory besides Spec.Files.
const (
	// ResultFile holds a KindRPC job's Result, written by the runner.
	ResultFile = "result.json"
	// RequestFile holds what the runner runs (written by the daemon).
	RequestFile = "request.json"
	// auditedFile marks a job whose end is in the audit log.
	auditedFile = "audited"
)

// reserved are the names Spec.Files may not use.
var reserved = map[string]bool{"job.json": true, "stdout": true, "stderr": true, "exit": true,
	"exit.tmp": true, ResultFile: true, auditedFile: true}

// ErrNoResult is returned (wrapped) for a job without a result file: still
// running, or ended without writing one.
var ErrNoResult = errors.New("no result recorded")

// Result is the reply of an action run as a detached job: what the action
// would have replied in the foreground, and when it ran.
type Result struct {
	Status  protocol.StatusCode `json:"statuscode"`
	Message string              `json:"statusmsg"`
	Data    map[string]any      `json:"data"`
	// TimedOut: the action ran past its timeout and was stopped (its
	// processes killed); Status is then Aborted and Message "timeout after
	// Ns".
	TimedOut bool      `json:"timed_out,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
}

// WriteResult records res in the job directory dir atomically (a temporary
// file renamed into place), so that a reader never sees half of it.
func WriteResult(dir string, res *Result) error {
	return writeJSON(filepath.Join(dir, ResultFile), res)
}

// Result returns a job's recorded result.
func (s *Spool) Result(id string) (*Result, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("job id %q: %w", id, ErrNotFound)
	}
	b, err := os.ReadFile(filepath.Join(s.dir, id, ResultFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("job %s: %w", id, ErrNoResult)
	}
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	var res Result
	if err := json.Unmarshal(b, &res); err != nil {
		return nil, fmt.Errorf("job %s: %s: %w", id, ResultFile, err)
	}
	return &res, nil
}

// JobDir is the directory of job id.
func (s *Spool) JobDir(id string) string { return filepath.Join(s.dir, id) }

// Audited reports whether the job's end was recorded in the audit log
// (MarkAudited).
func (s *Spool) Audited(id string) bool {
	_, err := os.Stat(filepath.Join(s.dir, id, auditedFile))
	return err == nil
}

// MarkAudited records that the job's end is in the audit log, so that the
// next daemon does not audit it again. A crash between the audit line and
// this mark audits the end twice, never not at all.
func (s *Spool) MarkAudited(id string) error {
	if !ValidID(id) {
		return fmt.Errorf("job id %q: %w", id, ErrNotFound)
	}
	if err := os.WriteFile(filepath.Join(s.dir, id, auditedFile), nil, 0o600); err != nil {
		return fmt.Errorf("job %s: %w", id, err)
	}
	return nil
}
