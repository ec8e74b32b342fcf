package facts

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"go.uber.org/goleak"

	"github.com/marionette/mco/internal/logtest"
	"github.com/marionette/mco/internal/poll"
)

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes like an editor or configuration management does: a
// temporary file renamed over the old one.
func replaceFile(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	writeFile(t, tmp, content)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// waitFor polls cond until it holds; the deadline only bounds a hung test.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, what, cond)
}

// factScript writes a shell script printing the content of out and exiting
// with the code in rc, and returns an argv running it. sh runs the script
// rather than exec'ing it directly, which avoids ETXTBSY ("text file busy")
// when another test forks while the script is still open for writing.
func factScript(t *testing.T, out string) (argv []string, outFile, rcFile string) {
	t.Helper()
	dir := t.TempDir()
	outFile = filepath.Join(dir, "out")
	rcFile = filepath.Join(dir, "rc")
	writeFile(t, outFile, out)
	writeFile(t, rcFile, "0")
	script := filepath.Join(dir, "facts.sh")
	writeFile(t, script, "cat '"+outFile+"'\necho 'some warning' >&2\nexit $(cat '"+rcFile+"')\n")
	return []string{"/bin/sh", script}, outFile, rcFile
}

func newLogger(b *logtest.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func mustFact(t *testing.T, s *Store, path string) any {
	t.Helper()
	v, ok := s.Fact(path)
	if !ok {
		t.Fatalf("fact %q missing", path)
	}
	return v
}

func TestMergeOrder(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first.yaml")
	second := filepath.Join(dir, "second.json")
	writeFile(t, first, "kernel: from-file\nlayer: first\nfirst_only: 1\nos:\n  release:\n    major: '99'\n")
	writeFile(t, second, `{"layer": "second"}`)
	cmd1, _, _ := factScript(t, `{"kernel": "from-cmd1", "layer": "cmd1", "cmd": "cmd1", "cmd1_only": true, "os": {"name": "CmdOS"}}`)
	cmd2, _, _ := factScript(t, `{"cmd": "cmd2"}`)

	s, err := New(Options{
		Files:    []string{first, second},
		Commands: [][]string{cmd1, cmd2},
		Builtins: true,
		Version:  "9.9.9",
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		path string
		want any
	}{
		{"kernel", "from-file"},    // file beats command beats built-in
		{"layer", "second"},        // later file beats earlier file
		{"first_only", int64(1)},   // earlier file keys survive
		{"cmd", "cmd2"},            // later command beats earlier command
		{"cmd1_only", true},        // command keys survive
		{"os.release.major", "99"}, // file beats command beats built-in
		{"mco_version", "9.9.9"},   // built-in survives
	}
	for _, tt := range tests {
		if diff := cmp.Diff(tt.want, mustFact(t, s, tt.path)); diff != "" {
			t.Errorf("%s (-want +got):\n%s", tt.path, diff)
		}
	}
	// The file's os replaced the command's and the built-in one whole.
	if diff := cmp.Diff(map[string]any{"release": map[string]any{"major": "99"}}, mustFact(t, s, "os")); diff != "" {
		t.Errorf("os is a mix of layers (-want +got):\n%s", diff)
	}
}

func TestBrokenFileKeepsLastGoodFacts(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "facts.yaml")
	other := filepath.Join(dir, "other.json")
	writeFile(t, path, "role: web\n")
	writeFile(t, other, `{"dc": "ams"}`)
	var logs logtest.Buffer
	s, err := New(Options{Files: []string{path, other}, Logger: newLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}

	writeFile(t, path, "role: db\nbroken: [\n")
	writeFile(t, other, `{"dc": "fra"}`)
	err = s.Refresh(t.Context())
	if err == nil || !strings.Contains(err.Error(), path+": yaml: line") {
		t.Fatalf("Refresh error = %v, want one naming %s and the line", err, path)
	}
	if !strings.Contains(logs.String(), path) {
		t.Errorf("log does not name the broken file:\n%s", logs.String())
	}
	if got := mustFact(t, s, "role"); got != "web" {
		t.Errorf("role = %v, want the last good value web", got)
	}
	if got := mustFact(t, s, "dc"); got != "fra" {
		t.Errorf("dc = %v, want fra: a broken file must not block the others", got)
	}

	writeFile(t, path, "role: db\n")
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := mustFact(t, s, "role"); got != "db" {
		t.Errorf("role = %v, want db after the fix", got)
	}
}

func TestMissingFileAtStart(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "later.yaml")
	good := filepath.Join(dir, "good.yaml")
	writeFile(t, good, "a: 1\n")
	s, err := New(Options{Files: []string{missing, good}, ClassesFile: filepath.Join(dir, "classes.txt")})
	if err != nil {
		t.Fatalf("New must come up despite a missing file: %v", err)
	}
	if diff := cmp.Diff(map[string]any{"a": int64(1)}, s.Facts()); diff != "" {
		t.Errorf("facts (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{}, s.Classes()); diff != "" {
		t.Errorf("classes (-want +got):\n%s", diff)
	}
	err = s.Refresh(t.Context())
	if err == nil || !strings.Contains(err.Error(), "later.yaml") || !strings.Contains(err.Error(), "classes.txt") {
		t.Errorf("Refresh error = %v, want both missing files named", err)
	}
}

// TestRunReloadsChangedFiles runs twice: polling every 10 ms, and with an
// hour-long poll so that only file system events can tell the store.
func TestRunReloadsChangedFiles(t *testing.T) {
	for _, tc := range []struct {
		name string
		poll time.Duration
	}{{"polling", 10 * time.Millisecond}, {"events", time.Hour}} {
		t.Run(tc.name, func(t *testing.T) { testRunReloadsChangedFiles(t, tc.poll) })
	}
}

func testRunReloadsChangedFiles(t *testing.T, poll time.Duration) {
	defer goleak.VerifyNone(t)

	dir := t.TempDir()
	factsFile := filepath.Join(dir, "facts.yaml")
	lateFile := filepath.Join(dir, "late.json")
	classesFile := filepath.Join(dir, "classes.txt")
	writeFile(t, factsFile, "role: web\n")
	writeFile(t, classesFile, "base\n")
	var logs logtest.Buffer
	s, err := New(Options{
		Files:        []string{factsFile, lateFile},
		ClassesFile:  classesFile,
		PollInterval: poll,
		Logger:       newLogger(&logs),
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	before := s.Snapshot()
	replaceFile(t, factsFile, "role: database\n")
	waitFor(t, "the changed fact", func() bool { v, _ := s.Fact("role"); return v == "database" })
	select {
	case <-before.Changed():
	default:
		t.Error("the old snapshot's Changed channel is still open")
	}
	if s.Version() <= before.Version {
		t.Errorf("version %d did not grow past %d", s.Version(), before.Version)
	}

	replaceFile(t, factsFile, "role: [broken\n")
	waitFor(t, "the broken file to be logged", func() bool { return strings.Contains(logs.String(), "facts.yaml: yaml: line") })
	if got := mustFact(t, s, "role"); got != "database" {
		t.Errorf("role = %v, want the last good value", got)
	}

	writeFile(t, lateFile, `{"late": true}`)
	waitFor(t, "a file created after start", func() bool { _, ok := s.Fact("late"); return ok })

	replaceFile(t, classesFile, "base\r\nnginx\r\n")
	waitFor(t, "the new classes", func() bool { return cmp.Equal(s.Classes(), []string{"base", "nginx"}) })

	if err := os.Remove(lateFile); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a removed file's facts to go", func() bool { _, ok := s.Fact("late"); return !ok })

	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
}

func TestRunStartsCommandSources(t *testing.T) {
	defer goleak.VerifyNone(t)

	argv, _, _ := factScript(t, `{"from_command": "yes"}`)
	s, err := New(Options{Commands: [][]string{argv}, Builtins: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Fact("from_command"); ok {
		t.Fatal("New ran the command; it should wait for Run")
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	waitFor(t, "the command's facts", func() bool { v, _ := s.Fact("from_command"); return v == "yes" })
	if err := s.Run(ctx); err == nil || !strings.Contains(err.Error(), "already running") {
		t.Errorf("second Run = %v, want an already running error", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
}

func TestRunCancelStopsRunningCommand(t *testing.T) {
	defer goleak.VerifyNone(t)

	s, err := New(Options{Commands: [][]string{{"/bin/sh", "-c", "sleep 60 & wait"}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	waitFor(t, "Run to start", s.running.Load)
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Run = %v, want nil after cancel", err)
	}
}

func TestCommandFailureKeepsLastGoodOutput(t *testing.T) {
	argv, outFile, rcFile := factScript(t, `{"pkg": {"count": 10}}`)
	var logs logtest.Buffer
	s, err := New(Options{Commands: [][]string{argv}, Logger: newLogger(&logs)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(t.Context()); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name, out, rc, wantErr string
	}{
		{"non-zero exit", `{"pkg": {"count": 11}}`, "3", "exit status 3: some warning"},
		{"not json", "sh: facter: not found", "0", "output: line 1, column 1: invalid character"},
		{"list output", "[1, 2]", "0", "top level is a list"},
		{"broken json", `{"pkg": `, "0", "unexpected end of JSON input"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			writeFile(t, outFile, tt.out)
			writeFile(t, rcFile, tt.rc)
			err := s.Refresh(t.Context())
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Refresh error = %v, want it to contain %q", err, tt.wantErr)
			}
			if got := mustFact(t, s, "pkg.count"); got != int64(10) {
				t.Errorf("pkg.count = %v, want the last good 10", got)
			}
		})
	}
	if !strings.Contains(logs.String(), "fact command failed") {
		t.Errorf("failures were not logged:\n%s", logs.String())
	}
}

func TestCommandTimeout(t *testing.T) {
	// The grandchild sleep keeps stdout open; the process-group kill and
	// WaitDelay must still let Refresh return.
	s, err := New(Options{
		Commands:       [][]string{{"/bin/sh", "-c", "sleep 60 & wait"}},
		CommandTimeout: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Refresh(t.Context()); err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("Refresh error = %v, want a timeout", err)
	}
}

func TestVolatileFactsDoNotBumpVersion(t *testing.T) {
	s, err := New(Options{Builtins: true})
	if err != nil {
		t.Fatal(err)
	}
	before := s.Snapshot()

	s.mu.Lock()
	s.builtins = merge(s.builtins, map[string]any{"uptime_seconds": int64(123456789)})
	s.publish()
	s.mu.Unlock()
	if s.Version() != before.Version {
		t.Errorf("version moved from %d to %d on an uptime refresh", before.Version, s.Version())
	}
	if got := mustFact(t, s, "uptime_seconds"); got != int64(123456789) {
		t.Errorf("uptime_seconds = %v, want the fresh value", got)
	}

	s.mu.Lock()
	s.builtins = merge(s.builtins, map[string]any{"hostname": "renamed"})
	s.publish()
	s.mu.Unlock()
	if s.Version() != before.Version+1 {
		t.Errorf("version = %d, want %d after a real change", s.Version(), before.Version+1)
	}
	select {
	case <-before.Changed():
	default:
		t.Error("Changed was not closed by a real change")
	}
}

func TestNewRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opts Options
		want string
	}{
		{"empty command", Options{Commands: [][]string{{"facter", "-j"}, {}}}, "command source 2 is empty"},
		{"empty program", Options{Commands: [][]string{{""}}}, "command source 1 is empty"},
		{"negative interval", Options{PollInterval: -time.Second}, "must not be negative"},
		{"empty file path", Options{Files: []string{"a.yaml", ""}}, "facts file 2 has an empty path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New error = %v, want it to contain %q", err, tt.want)
			}
		})
	}
}

func TestZeroStore(t *testing.T) {
	s, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Facts()) != 0 || len(s.Classes()) != 0 || s.Version() != 1 {
		t.Errorf("got facts %v classes %v version %d, want empty at version 1", s.Facts(), s.Classes(), s.Version())
	}
}

func TestSetClassesMergesSources(t *testing.T) {
	dir := t.TempDir()
	classes := filepath.Join(dir, "classes.txt")
	writeFile(t, classes, "base\nweb\n")
	s, err := New(Options{ClassesFile: classes})
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		source  string
		classes []string
		want    []string
	}{
		{"puppet", []string{"settings", "web", "apache"}, []string{"base", "web", "settings", "apache"}},
		{"chef", []string{"role.web", "recipe.nginx"}, []string{"base", "web", "settings", "apache", "role.web", "recipe.nginx"}},
		// A source's new classes replace its old ones, in place.
		{"puppet", []string{"nginx"}, []string{"base", "web", "nginx", "role.web", "recipe.nginx"}},
		{"puppet", nil, []string{"base", "web", "role.web", "recipe.nginx"}},
	}
	for i, st := range steps {
		before := s.Snapshot()
		s.SetClasses(st.source, st.classes)
		if diff := cmp.Diff(st.want, s.Classes()); diff != "" {
			t.Fatalf("step %d (%s): classes (-want +got):\n%s", i, st.source, diff)
		}
		select {
		case <-before.Changed():
		default:
			t.Fatalf("step %d: no change notification", i)
		}
	}
	v := s.Version()
	s.SetClasses("chef", []string{"role.web", "recipe.nginx"})
	if s.Version() != v {
		t.Fatal("setting the same classes again bumped the version")
	}
}
