//go:build unix

package jobs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/marionette/mco/internal/poll"
)

func waitFor(t *testing.T, s *Spool, id, status string) *State {
	t.Helper()
	var st *State
	poll.Until(t, fmt.Sprintf("job %s to be %s", id, status), func() bool {
		var err error
		if st, err = s.Get(id); err != nil {
			t.Fatal(err)
		}
		return st.Status == status
	})
	return st
}

func TestRunRecordsExitAndOutput(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "spool"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// Arguments reach the command as they are: no shell parses them.
	st, err := s.Start(Spec{ID: "j1", Argv: []string{"sh", "-c", `echo "$1"; echo "$MCO_JOB_ID" >&2; exit 7`, "x", "a b;$(true)"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.PID == 0 {
		t.Fatal("no pid")
	}
	fin := waitFor(t, s, "j1", Finished)
	if fin.ExitCode != 7 || fin.Finished.IsZero() {
		t.Fatalf("got %+v", fin)
	}
	out, errOut, cut, err := s.Output("j1", 1000)
	if err != nil || out != "a b;$(true)\n" || errOut != "j1\n" || cut {
		t.Fatalf("output %q %q %v %v", out, errOut, cut, err)
	}
	if _, err := s.Start(Spec{ID: "j1", Argv: []string{"true"}}, nil); !errors.Is(err, ErrExists) {
		t.Fatalf("second start with the same id: %v", err)
	}
}

func TestCheckRefusesStart(t *testing.T) {
	s, _ := Open(t.TempDir(), Options{})
	_, err := s.Start(Spec{ID: "j2", Argv: []string{"true"}}, func() error { return errors.New("busy") })
	if err == nil || err.Error() != "busy" {
		t.Fatalf("got %v", err)
	}
	if _, err := s.Get("j2"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refused job left a record: %v", err)
	}
}

func TestBadIDs(t *testing.T) {
	s, _ := Open(t.TempDir(), Options{})
	for _, id := range []string{"", "../x", "a/b", ".hidden", strings.Repeat("a", 65)} {
		if _, err := s.Start(Spec{ID: id, Argv: []string{"true"}}, nil); err == nil {
			t.Errorf("id %q accepted", id)
		}
		if _, err := s.Get(id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v", id, err)
		}
	}
}

func TestRunningAndLost(t *testing.T) {
	s, _ := Open(t.TempDir(), Options{})
	st, err := s.Start(Spec{ID: "long", Agent: "puppet", Action: "runonce", Argv: []string{"sleep", "60"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := s.Running("puppet", "runonce"); len(got) != 1 || got[0].ID != "long" {
		t.Fatalf("running: %v", got)
	}
	// The job leads a session (and so a process group) of its own.
	if pgid, err := syscall.Getpgid(st.PID); err != nil || pgid != st.PID {
		t.Fatalf("pgid %d, %v; want %d", pgid, err, st.PID)
	}
	// Killing the whole group, wrapper included, loses the exit code.
	if err := syscall.Kill(-st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "long", Lost)
	if got := s.Running("puppet", ""); len(got) != 0 {
		t.Fatalf("lost job still running: %v", got)
	}
}

func TestCleanBoundsTheSpool(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	dir := t.TempDir()
	s, _ := Open(dir, Options{MaxJobs: 3, MaxAge: time.Hour, Now: clock})
	for _, id := range []string{"a1", "a2", "a3", "a4"} {
		if _, err := s.Start(Spec{ID: id, Argv: []string{"true"}}, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, s, id, Finished)
		now = now.Add(time.Minute)
	}
	// Starting a4 left room for it: at most MaxJobs remain, the newest.
	all, _ := s.List()
	var ids []string
	for _, st := range all {
		ids = append(ids, st.ID)
	}
	if strings.Join(ids, ",") != "a2,a3,a4" {
		t.Fatalf("kept %v", ids)
	}
	running, err := s.Start(Spec{ID: "run", Argv: []string{"sleep", "60"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(-running.PID, syscall.SIGKILL)
	now = now.Add(2 * time.Hour)
	s.Clean()
	all, _ = s.List()
	if len(all) != 1 || all[0].ID != "run" {
		t.Fatalf("after expiry: %v", all)
	}
	if _, err := os.Stat(filepath.Join(dir, "a4")); !os.IsNotExist(err) {
		t.Fatalf("expired job dir left: %v", err)
	}
}

// TestFilesResultAndAuditMark: Spec.Files are in place before the command
// starts (it reads them), may not overwrite the spool's own files, and a
// result written by the job and the audited mark read back.
func TestFilesResultAndAuditMark(t *testing.T) {
	s, _ := Open(t.TempDir(), Options{})
	if _, err := s.Start(Spec{ID: "f1", Kind: KindRPC, Argv: []string{"sh", "-c", `cat "$MCO_JOB_DIR/request.json"`},
		Files: map[string][]byte{RequestFile: []byte(`{"x":1}`)}}, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, s, "f1", Finished)
	if out, _, _, _ := s.Output("f1", 100); out != `{"x":1}` {
		t.Fatalf("the command read %q from its request file", out)
	}
	if _, err := s.Result("f1"); !errors.Is(err, ErrNoResult) {
		t.Fatalf("result before one was written: %v", err)
	}
	want := &Result{Status: 1, Message: "timeout after 2s", TimedOut: true, Data: map[string]any{"k": "v"}}
	if err := WriteResult(s.JobDir("f1"), want); err != nil {
		t.Fatal(err)
	}
	got, err := s.Result("f1")
	if err != nil || got.Message != want.Message || !got.TimedOut || got.Data["k"] != "v" {
		t.Fatalf("result %+v, %v", got, err)
	}
	if s.Audited("f1") {
		t.Fatal("audited before the mark")
	}
	if err := s.MarkAudited("f1"); err != nil || !s.Audited("f1") {
		t.Fatalf("mark: %v", err)
	}
	for _, name := range []string{"exit", "job.json", "../x", ResultFile} {
		if _, err := s.Start(Spec{ID: "f2", Argv: []string{"true"}, Files: map[string][]byte{name: nil}}, nil); err == nil {
			t.Errorf("file name %q accepted", name)
		}
		if _, err := s.Get("f2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("refused start with file %q left a job: %v", name, err)
		}
	}
}

// TestCleanKeepsUnaudited: with KeepUnaudited a finished job stays until
// its end is audited, within MaxAge.
func TestCleanKeepsUnaudited(t *testing.T) {
	now := time.Now()
	s, _ := Open(t.TempDir(), Options{MaxJobs: 1, MaxAge: time.Hour, KeepUnaudited: true, Now: func() time.Time { return now }})
	for _, id := range []string{"u1", "u2"} {
		if _, err := s.Start(Spec{ID: id, Argv: []string{"true"}}, nil); err != nil {
			t.Fatal(err)
		}
		waitFor(t, s, id, Finished)
	}
	s.Clean()
	if all, _ := s.List(); len(all) != 2 {
		t.Fatalf("unaudited jobs removed: %d left", len(all))
	}
	_ = s.MarkAudited("u1")
	_ = s.MarkAudited("u2")
	s.Clean()
	if all, _ := s.List(); len(all) != 0 {
		t.Fatalf("audited jobs past MaxJobs kept: %d", len(all))
	}
}
