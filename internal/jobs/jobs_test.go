//go:build unix

package jobs

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func waitFor(t *testing.T, s *Spool, id, status string) *State {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := s.Get(id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Status == status {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s is %s, want %s", id, st.Status, status)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
