// Package jobs runs commands detached from the node daemon and keeps their
// records in a spool directory, so that a run outlives both the request that
// started it and the daemon itself (a Puppet run that restarts the daemon
// must not lose its own result).
//
// A job is a directory <spool>/<id> holding job.json (what was run, for
// whom, when), stdout, stderr and, once the command ended, exit (its exit
// code). The command runs under a small /bin/sh wrapper in a session and
// process group of its own: the wrapper, not the daemon, writes the exit
// file, so a daemon that restarts meanwhile finds the result on disk. The
// environment variable MCO_JOB_ID marks every job process, so that tools
// reaping stray agent processes can tell jobs apart.
package jobs

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Job states.
const (
	Running  = "running"  // the command is still running
	Finished = "finished" // the command exited; ExitCode says how
	Lost     = "lost"     // the process is gone without recording an exit (killed with its wrapper, machine rebooted)
)

// EnvJobID is set to the job's id in every job process's environment.
const EnvJobID = "MCO_JOB_ID"

// idPattern keeps ids usable as directory names: a request id from any
// client, never a path.
var idPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ErrNotFound is returned (wrapped) for an id the spool does not hold.
var ErrNotFound = errors.New("no such job")

// ErrExists is returned (wrapped) when a job with the id was already started.
var ErrExists = errors.New("job already exists")

// Spec is what to run and on whose behalf.
type Spec struct {
	ID        string   `json:"id"`
	RequestID string   `json:"request_id"`
	Caller    string   `json:"caller"`
	Agent     string   `json:"agent"`
	Action    string   `json:"action"`
	Argv      []string `json:"argv"`
	Env       []string `json:"env,omitempty"` // added to the daemon's environment
	Dir       string   `json:"dir,omitempty"` // working directory ("" means /)
	// Kind is KindRPC for an agent action run detached by the job runner
	// (mco rpc --async), whose reply is in result.json; "" for a command
	// (a Puppet or Chef run) whose outcome is its exit code and output.
	Kind string `json:"kind,omitempty"`
	// InputHash identifies the action's inputs (KindRPC), so that an
	// identical job is not started twice at once without storing the
	// inputs, which may hold secrets, in job.json.
	InputHash string `json:"input_hash,omitempty"`
	// Timeout is the action's timeout, which the runner enforces (KindRPC).
	Timeout time.Duration `json:"timeout,omitempty"`
	// Files are written into the job's directory (mode 0600) before the
	// command starts: what the command needs to read (the runner's
	// request). Not part of job.json.
	Files   map[string][]byte `json:"-"`
	Created time.Time         `json:"created"`
	PID     int               `json:"pid"`
	// procStart is the process's start time in clock ticks since boot
	// (/proc/PID/stat field 22): with the PID it tells our process from a
	// later one that reused the PID.
	ProcStart uint64 `json:"proc_start,omitempty"`
}

// State is a job's record with what is known of its outcome.
type State struct {
	Spec
	Status   string    `json:"status"`
	ExitCode int       `json:"exit_code"` // -1 unless finished
	Finished time.Time `json:"finished,omitzero"`
}

// Duration is how long the job ran (so far, while running).
func (s *State) Duration(now time.Time) time.Duration {
	if s.Status == Running || s.Finished.IsZero() {
		return now.Sub(s.Created)
	}
	return s.Finished.Sub(s.Created)
}

// Options bounds a spool.
type Options struct {
	// MaxJobs is how many finished jobs are kept (default 100); the oldest
	// go first. Running jobs are never removed.
	MaxJobs int
	// MaxAge removes finished jobs older than this (default 7 days).
	MaxAge time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// OnFinish, when set, is called after a job this process started ends.
	OnFinish func(*State)
	// KeepUnaudited keeps a finished job within MaxAge until its end is
	// in the audit log (MarkAudited), even past MaxJobs: the node audits
	// job ends, and a job removed first would never be.
	KeepUnaudited bool
}

// Spool is a directory of jobs. It is safe for concurrent use; several
// processes may share one spool directory.
type Spool struct {
	dir  string
	opts Options
	mu   sync.Mutex // serialises starts, so "is one running?" checks hold
}

// Open returns the spool in dir. The directory is created (mode 0700: job
// output may be sensitive) when the first job starts, not here, so that a
// node that never runs a job leaves no trace.
func Open(dir string, opts Options) (*Spool, error) {
	if dir == "" {
		return nil, errors.New("job spool: no directory configured")
	}
	if opts.MaxJobs <= 0 {
		opts.MaxJobs = 100
	}
	if opts.MaxAge <= 0 {
		opts.MaxAge = 7 * 24 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Spool{dir: dir, opts: opts}, nil
}

// Dir is the spool directory.
func (s *Spool) Dir() string { return s.dir }

// ValidID reports whether id can name a job.
func ValidID(id string) bool { return idPattern.MatchString(id) }

// wrapper runs the command and records its exit code atomically; the
// command and its arguments are the positional parameters, never parsed
// by the shell.
const wrapper = `"$@" </dev/null >"$MCO_JOB_DIR/stdout" 2>"$MCO_JOB_DIR/stderr"
echo $? >"$MCO_JOB_DIR/exit.tmp" && mv "$MCO_JOB_DIR/exit.tmp" "$MCO_JOB_DIR/exit"`

// Start runs spec detached. check, when not nil, runs under the spool's
// lock just before the job starts: an error from it (e.g. "a run is already
// applying") refuses the start, so two requests never both pass it.
func (s *Spool) Start(spec Spec, check func() error) (*State, error) {
	if !ValidID(spec.ID) {
		return nil, fmt.Errorf("job id %q is not allowed (want %s)", spec.ID, idPattern)
	}
	if len(spec.Argv) == 0 {
		return nil, errors.New("job: no command")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if check != nil {
		if err := check(); err != nil {
			return nil, err
		}
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, fmt.Errorf("job spool: %w", err)
	}
	s.clean()
	jd := filepath.Join(s.dir, spec.ID)
	if err := os.Mkdir(jd, 0o700); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("job %s: %w", spec.ID, ErrExists)
		}
		return nil, fmt.Errorf("job spool: %w", err)
	}
	for name, b := range spec.Files {
		if name != filepath.Base(name) || reserved[name] {
			_ = os.RemoveAll(jd)
			return nil, fmt.Errorf("job %s: file name %q is not allowed", spec.ID, name)
		}
		if err := os.WriteFile(filepath.Join(jd, name), b, 0o600); err != nil {
			_ = os.RemoveAll(jd)
			return nil, fmt.Errorf("job spool: %w", err)
		}
	}
	spec.Created = s.opts.Now()
	cmd := exec.Command("/bin/sh", append([]string{"-c", wrapper, "sh"}, spec.Argv...)...)
	cmd.Dir = spec.Dir
	if cmd.Dir == "" {
		cmd.Dir = "/"
	}
	cmd.Env = append(append(os.Environ(), spec.Env...), "MCO_JOB_DIR="+jd, EnvJobID+"="+spec.ID)
	if err := detach(cmd); err != nil {
		_ = os.RemoveAll(jd)
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		_ = os.RemoveAll(jd)
		return nil, fmt.Errorf("starting job %s: %w", spec.ID, err)
	}
	spec.PID = cmd.Process.Pid
	spec.ProcStart = procStart(spec.PID)
	if err := writeJSON(filepath.Join(jd, "job.json"), spec); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(jd)
		return nil, err
	}
	// Reap the wrapper while we live; after a daemon restart init does.
	go func() {
		_ = cmd.Wait()
		if s.opts.OnFinish != nil {
			if st, err := s.Get(spec.ID); err == nil {
				s.opts.OnFinish(st)
			}
		}
	}()
	return &State{Spec: spec, Status: Running, ExitCode: -1}, nil
}

// Get returns one job's state.
func (s *Spool) Get(id string) (*State, error) {
	if !ValidID(id) {
		return nil, fmt.Errorf("job id %q: %w", id, ErrNotFound)
	}
	jd := filepath.Join(s.dir, id)
	b, err := os.ReadFile(filepath.Join(jd, "job.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", id, err)
	}
	st := &State{ExitCode: -1}
	if err := json.Unmarshal(b, &st.Spec); err != nil {
		return nil, fmt.Errorf("job %s: job.json: %w", id, err)
	}
	exitFile := filepath.Join(jd, "exit")
	if b, err := os.ReadFile(exitFile); err == nil {
		code, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return nil, fmt.Errorf("job %s: exit file: %w", id, err)
		}
		st.Status, st.ExitCode = Finished, code
		if fi, err := os.Stat(exitFile); err == nil {
			st.Finished = fi.ModTime()
		}
		return st, nil
	}
	// Check liveness after the exit file: a job ending in between is
	// then seen as finished on the next look rather than as lost.
	if alive(st.PID, st.ProcStart) {
		st.Status = Running
		return st, nil
	}
	if b, err := os.ReadFile(exitFile); err == nil {
		if code, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			st.Status, st.ExitCode = Finished, code
			return st, nil
		}
	}
	st.Status = Lost
	return st, nil
}

// List returns every job, oldest first.
func (s *Spool) List() ([]*State, error) {
	ents, err := os.ReadDir(s.dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // no job ever started
	}
	if err != nil {
		return nil, fmt.Errorf("job spool: %w", err)
	}
	var out []*State
	for _, e := range ents {
		if !e.IsDir() || !ValidID(e.Name()) {
			continue
		}
		st, err := s.Get(e.Name())
		if err != nil {
			continue // half-created or removed meanwhile
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out, nil
}

// Running returns the running jobs of an agent's action ("" matches any
// action).
func (s *Spool) Running(agent, action string) []*State {
	all, _ := s.List()
	var out []*State
	for _, st := range all {
		if st.Status == Running && st.Agent == agent && (action == "" || st.Action == action) {
			out = append(out, st)
		}
	}
	return out
}

// Output returns the last max bytes of a job's stdout and stderr and
// whether either was cut.
func (s *Spool) Output(id string, max int) (stdout, stderr string, truncated bool, err error) {
	if _, err := s.Get(id); err != nil {
		return "", "", false, err
	}
	read := func(name string) (string, bool) {
		b, err := os.ReadFile(filepath.Join(s.dir, id, name))
		if err != nil {
			return "", false
		}
		if len(b) > max {
			return string(b[len(b)-max:]), true
		}
		return string(b), false
	}
	o, t1 := read("stdout")
	e, t2 := read("stderr")
	return o, e, t1 || t2, nil
}

// Clean removes finished and lost jobs past the spool's bounds.
func (s *Spool) Clean() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.clean()
}

func (s *Spool) clean() {
	all, err := s.List()
	if err != nil {
		return
	}
	now := s.opts.Now()
	var done []*State
	for _, st := range all {
		if st.Status == Running {
			continue
		}
		if s.opts.KeepUnaudited && !s.Audited(st.ID) && now.Sub(st.Created) <= s.opts.MaxAge {
			continue
		}
		done = append(done, st)
	}
	for i, st := range done {
		// done is oldest first: keep the newest MaxJobs-1, leaving room
		// for the job about to start.
		tooMany := len(done)-i >= s.opts.MaxJobs
		if tooMany || now.Sub(st.Created) > s.opts.MaxAge {
			_ = os.RemoveAll(filepath.Join(s.dir, st.ID))
		}
	}
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
