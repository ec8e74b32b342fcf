package filewatch

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// wait fails the test unless w signals within a generous bound; the poll
// interval of these watchers is an hour, so a signal can only come from an
// event.
func wait(t *testing.T, w *Watcher, what string) {
	t.Helper()
	select {
	case <-w.C:
	case <-time.After(10 * time.Second):
		t.Fatalf("no signal after %s", what)
	}
}

// drain empties a pending signal, so the next wait sees a new one.
func drain(w *Watcher) {
	time.Sleep(2 * settle)
	select {
	case <-w.C:
	default:
	}
}

func TestEventsSignalChanges(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "facts.yaml")
	w := New(time.Hour, path)
	defer w.Stop()
	wait(t, w, "the start of watching")
	drain(w)

	if err := os.WriteFile(path, []byte("a: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait(t, w, "creating the file")
	drain(w)

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("b: 2\n"); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	wait(t, w, "writing in place")
	drain(w)

	tmp := filepath.Join(dir, ".facts.tmp")
	if err := os.WriteFile(tmp, []byte("c: 3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	wait(t, w, "renaming a new file over it")
	drain(w)

	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	wait(t, w, "removing it")
}

func TestSymlinkTargetIsWatched(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(t.TempDir(), "real.yaml")
	if err := os.WriteFile(target, []byte("a: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "facts.yaml")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	w := New(time.Hour, link)
	defer w.Stop()
	wait(t, w, "the start of watching")
	drain(w)
	if err := os.WriteFile(target, []byte("a: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	wait(t, w, "writing the symlink's target")
}

// TestDirsFollowTheirList: NewDirs signals for any entry of a listed
// directory, and watches directories its list names once they exist,
// including one removed and created again.
func TestDirsFollowTheirList(t *testing.T) {
	root := t.TempDir()
	sub := filepath.Join(root, "agent")
	w := NewDirs(time.Hour, 0, func() []string { return []string{root, sub} })
	defer w.Stop()
	if w.Polling() {
		t.Fatal("no file system events on this machine")
	}
	wait(t, w, "the start of watching")
	drain(w)

	steps := []struct {
		what   string
		change func() error
	}{
		{"creating a file in the root", func() error { return os.WriteFile(filepath.Join(root, "a"), nil, 0o644) }},
		{"creating the listed subdirectory", func() error { return os.Mkdir(sub, 0o755) }},
		{"creating a file in it", func() error { return os.WriteFile(filepath.Join(sub, "b"), nil, 0o644) }},
		{"chmod-ing that file", func() error { return os.Chmod(filepath.Join(sub, "b"), 0o755) }},
		{"removing the subdirectory", func() error { return os.RemoveAll(sub) }},
		{"creating it again", func() error { return os.Mkdir(sub, 0o755) }},
		{"creating a file in the new one", func() error { return os.WriteFile(filepath.Join(sub, "c"), nil, 0o644) }},
	}
	for _, s := range steps {
		if err := s.change(); err != nil {
			t.Fatal(err)
		}
		wait(t, w, s.what)
		drain(w)
	}
}
