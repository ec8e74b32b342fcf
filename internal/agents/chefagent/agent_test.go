package chefagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/logtest"
	"github.com/marionette/mco/internal/poll"
)

// Chef Infra Client cannot be installed here (Debian does not package it),
// so these tests put a stand-in chef-client shell script first on PATH. It
// behaves as chef-client does with the documented Marionette handlers: with
// --once it refuses while the lock file exists (the start handler), holds
// Chef's run lock while it runs, and writes the report handler's JSON.
const standIn = `#!/bin/sh
case "$1" in
--once) ;;
*) echo "stand-in chef-client: only --once" >&2; exit 2;;
esac
if [ -e "$DIR/disabled.lock" ]; then
	echo "Marionette: chef-client is disabled: $(cat "$DIR/disabled.lock")" >&2
	exit 3
fi
echo $$ > "$DIR/running.pid"
while [ -e "$DIR/hold" ]; do sleep 0.05; done
start=$(date -u +%Y-%m-%dT%H:%M:%SZ)
echo "Starting Chef Infra Client (stand-in)"
printf '{"status":"success","start_time":"%s","end_time":"%s","elapsed_time":1.5,"updated_resources":2,"total_resources":7,"run_list":["role[web]","recipe[nginx::default]"],"exception":null}' "$start" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$DIR/report.json"
rm -f "$DIR/running.pid"
echo "Chef Infra Client finished, 2/7 resources updated"
`

func setup(t *testing.T) (string, *agent.Agent, *jobs.Spool) {
	t.Helper()
	dir, bin := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "chef-client"), []byte(strings.ReplaceAll(standIn, "$DIR", dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	spool, _ := jobs.Open(filepath.Join(dir, "jobs"), jobs.Options{})
	c, err := New(Options{
		ReportFile: filepath.Join(dir, "report.json"), LockFile: filepath.Join(dir, "disabled.lock"),
		RunLock: filepath.Join(dir, "running.pid"), PIDFile: filepath.Join(dir, "daemon.pid"), Jobs: spool,
	})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Agent()
	if err != nil {
		t.Fatal(err)
	}
	return dir, a, spool
}

func call(t *testing.T, a *agent.Agent, action string, data map[string]any) *agent.Reply {
	t.Helper()
	act := a.DDL.Action(action)
	in, err := act.ValidateInputs(data)
	if err != nil {
		t.Fatal(err)
	}
	var b [8]byte
	_, _ = rand.Read(b[:])
	h, _ := a.Handler(action)
	rep := &agent.Reply{Data: act.OutputDefaults()}
	h(context.Background(), &agent.Request{ID: hex.EncodeToString(b[:]), CallerID: "cert=tester", Data: in}, rep)
	return rep
}

func waitDone(t *testing.T, spool *jobs.Spool) *jobs.State {
	t.Helper()
	var last *jobs.State
	poll.Until(t, "the run to finish", func() bool {
		all, _ := spool.List()
		if len(all) == 0 {
			return false
		}
		last = all[len(all)-1]
		return last.Status != jobs.Running
	})
	return last
}

func TestChefLifecycle(t *testing.T) {
	dir, a, spool := setup(t)
	rep := call(t, a, "status", nil)
	if rep.Data["enabled"] != true || rep.Data["status"] != "stopped" || rep.Data["since_lastrun"] != "Unknown" {
		t.Fatalf("fresh status: %v", rep.Data)
	}
	if rep = call(t, a, "last_run_summary", nil); rep.Status == 0 {
		t.Fatal("summary without a report succeeded")
	}
	if rep = call(t, a, "disable", map[string]any{"message": "db migration"}); rep.Status != 0 {
		t.Fatalf("disable: %s", rep.Message)
	}
	if rep = call(t, a, "runonce", nil); rep.Status == 0 || !strings.Contains(rep.Message, "db migration") {
		t.Fatalf("runonce while disabled: %d %s", rep.Status, rep.Message)
	}
	// chef-client run by anything else honours the lock too (the start
	// handler, played by the stand-in).
	if out, err := exec.Command("chef-client", "--once").CombinedOutput(); err == nil || !strings.Contains(string(out), "db migration") {
		t.Fatalf("chef-client ran while disabled: %v %s", err, out)
	}
	if rep = call(t, a, "enable", nil); rep.Status != 0 {
		t.Fatalf("enable: %s", rep.Message)
	}

	hold := filepath.Join(dir, "hold")
	if err := os.WriteFile(hold, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if rep = call(t, a, "runonce", nil); rep.Status != 0 || !strings.Contains(rep.Data["summary"].(string), "as job") {
		t.Fatalf("runonce: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
	if rep = call(t, a, "runonce", nil); rep.Status == 0 || !strings.Contains(rep.Message, "already applying since") {
		t.Fatalf("second runonce: %d %s", rep.Status, rep.Message)
	}
	if rep = call(t, a, "status", nil); rep.Data["applying"] != true {
		t.Fatalf("status while applying: %v", rep.Data)
	}
	_ = os.Remove(hold)
	if st := waitDone(t, spool); st.Status != jobs.Finished || st.ExitCode != 0 {
		t.Fatalf("run: %+v", st)
	}
	rep = call(t, a, "last_run_summary", nil)
	if rep.Status != 0 || rep.Data["status"] != "success" || rep.Data["updated_resources"] != 2 || rep.Data["lastrun"].(int64) == 0 {
		t.Fatalf("summary: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
	rep = call(t, a, "status", nil)
	if rep.Data["last_run_status"] != "success" || rep.Data["resources_updated"] != 2 || rep.Data["applying"] != false {
		t.Fatalf("status after the run: %v", rep.Data)
	}
}

func TestWakeDaemon(t *testing.T) {
	dir, a, _ := setup(t)
	if rep := call(t, a, "wake_daemon", nil); rep.Status == 0 || !strings.Contains(rep.Message, "no chef-client daemon") {
		t.Fatalf("wake without a daemon: %d %s", rep.Status, rep.Message)
	}
	// A stand-in daemon: records each SIGUSR1.
	woken := filepath.Join(dir, "woken")
	d := exec.Command("sh", "-c", `trap 'echo run >> `+woken+`' USR1; echo $$ > `+filepath.Join(dir, "daemon.pid")+`; while :; do sleep 0.05; done`)
	if err := d.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = d.Process.Signal(syscall.SIGKILL); _ = d.Wait() }()
	poll.Until(t, "the stand-in daemon to start", func() bool {
		_, err := os.Stat(filepath.Join(dir, "daemon.pid"))
		return err == nil
	})
	if rep := call(t, a, "status", nil); rep.Data["daemon_present"] != true || rep.Data["status"] != "idling" {
		t.Fatalf("status with a daemon: %v", rep.Data)
	}
	if rep := call(t, a, "wake_daemon", nil); rep.Status != 0 {
		t.Fatalf("wake: %s", rep.Message)
	}
	poll.Until(t, "the daemon to be signalled", func() bool {
		b, _ := os.ReadFile(woken)
		return strings.Contains(string(b), "run")
	})
}

func TestRunListClasses(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		classes []string
		skipped []string
	}{
		{"role", []string{"role[web]"}, []string{"role.web"}, nil},
		{"recipe with ::", []string{"recipe[apache2::mod_ssl]"}, []string{"recipe.apache2::mod_ssl"}, nil},
		{"recipe, default recipe not added", []string{"recipe[apache2]"}, []string{"recipe.apache2"}, nil},
		{"version pin dropped", []string{"recipe[apache2::mod_ssl@1.2.0]", "recipe[ntp@2]"}, []string{"recipe.apache2::mod_ssl", "recipe.ntp"}, nil},
		{"bare entries are recipes", []string{"apache2::mod_ssl", "ntp"}, []string{"recipe.apache2::mod_ssl", "recipe.ntp"}, nil},
		{"repeats dropped", []string{"role[web]", "recipe[ntp]", "ntp", "role[web]"}, []string{"role.web", "recipe.ntp"}, nil},
		{"surrounding space trimmed", []string{" role[db] "}, []string{"role.db"}, nil},
		{"bad entries skipped", []string{
			"role[]", "recipe[]", "role[web", "environment[prod]", "role[web::x]", "role[a b]",
			"recipe[a:::b]", "recipe[nginx@latest]", "recipe[x]]", "", "recipe[a\nb]", "role[web]",
		}, []string{"role.web"}, []string{
			"role[]", "recipe[]", "role[web", "environment[prod]", "role[web::x]", "role[a b]",
			"recipe[a:::b]", "recipe[nginx@latest]", "recipe[x]]", "", "recipe[a\nb]",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			classes, skipped := RunListClasses(tt.in)
			if strings.Join(classes, ",") != strings.Join(tt.classes, ",") || strings.Join(skipped, "|") != strings.Join(tt.skipped, "|") {
				t.Fatalf("RunListClasses(%q) = %q, skipped %q; want %q, skipped %q", tt.in, classes, skipped, tt.classes, tt.skipped)
			}
		})
	}
}

// Watch reports the run list's classes at start and after a run rewrote
// the report, logs the entries it skips by name, and reports the run.
func TestWatchReport(t *testing.T) {
	defer goleak.VerifyNone(t)
	dir := t.TempDir()
	report := filepath.Join(dir, "report.json")
	var logs logtest.Buffer
	bin := t.TempDir()
	if err := os.WriteFile(filepath.Join(bin, "chef-client"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	c, err := New(Options{ReportFile: report, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got [][]string
	runs := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		c.Watch(ctx, time.Hour, Hooks{
			Classes:     func(cl []string) { mu.Lock(); got = append(got, cl); mu.Unlock() },
			RunFinished: func() { mu.Lock(); runs++; mu.Unlock() },
		})
		close(done)
	}()
	defer func() { cancel(); <-done }()
	wait := func(what string, cond func() bool) {
		t.Helper()
		if !poll.Wait(func() bool { mu.Lock(); defer mu.Unlock(); return cond() }) {
			mu.Lock()
			defer mu.Unlock()
			t.Fatalf("timed out waiting for %s (classes %q, runs %d)", what, got, runs)
		}
	}
	wait("the first report", func() bool { return len(got) == 1 })
	if got[0] != nil || runs != 0 {
		t.Fatalf("without a report: classes %q, runs %d", got[0], runs)
	}
	tmp := report + ".tmp"
	if err := os.WriteFile(tmp, []byte(`{"status":"success","run_list":["role[web]","recipe[apache2::mod_ssl@1.0.0]","role[bad name]"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, report); err != nil {
		t.Fatal(err)
	}
	wait("classes after the run", func() bool { return len(got) == 2 && runs == 1 })
	if strings.Join(got[1], ",") != "role.web,recipe.apache2::mod_ssl" {
		t.Fatalf("classes %q", got[1])
	}
	if !strings.Contains(logs.String(), `entry="role[bad name]"`) {
		t.Fatalf("skipped entry not logged by name:\n%s", logs.String())
	}
}
