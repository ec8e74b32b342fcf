package puppetagent

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/jobs"
	"github.com/marionette/mco/internal/poll"
)

// These tests drive the real Puppet from Debian's puppet-agent package
// (.ci/run installs it). Every test gets its own confdir whose puppet.conf
// moves all of Puppet's state into a temporary directory; runs are local
// `puppet apply` runs of a small manifest, configured as the node's run
// command, since there is no Puppet server here.

func needPuppet(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("puppet")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("puppet is not installed (CI must install puppet-agent): %v", err)
		}
		t.Skip("puppet is not installed (apt-get install puppet-agent)")
	}
	return p
}

// puppetHome is one node's Puppet: a confdir and a manifest.
type puppetHome struct {
	dir, confdir, manifest string
}

func newPuppetHome(t testing.TB, manifest string) *puppetHome {
	t.Helper()
	dir := t.TempDir()
	h := &puppetHome{dir: dir, confdir: filepath.Join(dir, "conf"), manifest: filepath.Join(dir, "site.pp")}
	conf := strings.Join([]string{
		"[main]",
		"vardir = " + filepath.Join(dir, "var"),
		"logdir = " + filepath.Join(dir, "var", "log"),
		"rundir = " + filepath.Join(dir, "var", "run"),
		"publicdir = " + filepath.Join(dir, "var", "public"),
		"codedir = " + filepath.Join(dir, "code"),
		"",
	}, "\n")
	if err := os.MkdirAll(h.confdir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.confdir, "puppet.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.manifest, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *puppetHome) runCommand() []string {
	return []string{"puppet", "apply", "--confdir", h.confdir, "--write-catalog-summary", "--color=false", h.manifest}
}

func newTestPuppet(t testing.TB, h *puppetHome, mod func(*Options)) (*Puppet, *agent.Agent, *jobs.Spool) {
	t.Helper()
	spool, err := jobs.Open(filepath.Join(h.dir, "jobs"), jobs.Options{})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{ConfDir: h.confdir, RunCommand: h.runCommand(), Jobs: spool}
	if mod != nil {
		mod(&opts)
	}
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	a, err := p.Agent()
	if err != nil {
		t.Fatal(err)
	}
	waitSettings(t, p)
	return p, a, spool
}

// waitSettings waits for the first read of Puppet's settings, which a
// request waits for only up to firstLoadWait: on a loaded machine
// `puppet config print` can take longer, and the tests are about what
// comes after it.
func waitSettings(t testing.TB, p *Puppet) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for {
		if _, err := p.settings.get(ctx); err == nil || ctx.Err() != nil {
			return // a real error is for the test itself to see
		} else if !strings.Contains(err.Error(), "still being read") {
			return
		}
	}
}

func call(t testing.TB, a *agent.Agent, action string, data map[string]any) *agent.Reply {
	t.Helper()
	act := a.DDL.Action(action)
	in, err := act.ValidateInputs(data)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := a.Handler(action)
	rep := &agent.Reply{Data: act.OutputDefaults()}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h(ctx, &agent.Request{ID: newID(t), CallerID: "cert=tester", Data: in}, rep)
	return rep
}

// newID is a random request id, as a client makes them.
func newID(t testing.TB) string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}

func waitJob(t testing.TB, spool *jobs.Spool, id string) *jobs.State {
	t.Helper()
	var st *jobs.State
	// A real Puppet run on a loaded machine can outlast poll.Deadline.
	if !poll.Within(2*time.Minute, func() bool {
		var err error
		if st, err = spool.Get(id); err != nil {
			t.Fatal(err)
		}
		return st.Status != jobs.Running
	}) {
		t.Fatalf("job %s still running", id)
	}
	return st
}

func onlyJob(t testing.TB, spool *jobs.Spool) *jobs.State {
	t.Helper()
	all, err := spool.List()
	if err != nil || len(all) == 0 {
		t.Fatalf("no job started: %v", err)
	}
	return all[len(all)-1]
}

// The shipped DDL is the published Choria DDL plus one optional boolean
// input, runonce's ignoreschedules; everything published is unchanged, so
// clients holding the published DDL work with our nodes.
func TestDDLIsThePublishedOnePlusIgnoreschedules(t *testing.T) {
	published, err := os.ReadFile("../../../../shared/fixtures/ddl/puppet.json")
	if err != nil {
		t.Skipf("fixtures not beside the repository: %v", err)
	}
	var pub, ours map[string]any
	if err := json.Unmarshal(published, &pub); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(ddlJSON, &ours); err != nil {
		t.Fatal(err)
	}
	var added any
	for _, a := range ours["actions"].([]any) {
		act := a.(map[string]any)
		if act["action"] == "runonce" {
			in := act["input"].(map[string]any)
			added = in["ignoreschedules"]
			delete(in, "ignoreschedules")
		}
	}
	if !reflect.DeepEqual(pub, ours) {
		t.Fatal("puppet.json differs from the published Choria DDL in shared/fixtures beyond runonce's ignoreschedules")
	}
	in, _ := added.(map[string]any)
	if in == nil || in["type"] != "boolean" || in["optional"] != true || in["default"] != nil {
		t.Fatalf("runonce ignoreschedules: %v", added)
	}
}

func TestStatusDisableEnable(t *testing.T) {
	needPuppet(t)
	h := newPuppetHome(t, "notify { 'hello': }\n")
	p, a, _ := newTestPuppet(t, h, nil)

	rep := call(t, a, "status", nil)
	if rep.Status != 0 || rep.Data["enabled"] != true || rep.Data["applying"] != false || rep.Data["status"] != "stopped" ||
		rep.Data["lastrun"] != int64(0) || rep.Data["since_lastrun"] != "Unknown" || rep.Data["daemon_present"] != false {
		t.Fatalf("fresh status: %d %s %v", rep.Status, rep.Message, rep.Data)
	}

	rep = call(t, a, "disable", map[string]any{"message": "maintenance window 42"})
	if rep.Status != 0 || rep.Data["enabled"] != false {
		t.Fatalf("disable: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
	s, err := p.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(s.DisabledLock, h.dir) {
		t.Fatalf("lock file %s is not under the test's confdir settings", s.DisabledLock)
	}
	// Puppet's own agent honours the lock file and quotes our message.
	out, err := exec.Command("puppet", "agent", "--onetime", "--no-daemonize", "--verbose", "--color=false", "--confdir", h.confdir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "administratively disabled (Reason: 'maintenance window 42')") {
		t.Fatalf("puppet agent ran while disabled (err %v):\n%s", err, out)
	}
	rep = call(t, a, "status", nil)
	if rep.Data["enabled"] != false || rep.Data["status"] != "disabled" || rep.Data["disable_message"] != "maintenance window 42" {
		t.Fatalf("disabled status: %v", rep.Data)
	}
	if d, _ := p.Data(context.Background(), ""); d["enabled"] != false {
		t.Fatalf("data plugin: %v", d)
	}
	rep = call(t, a, "disable", map[string]any{"message": "again"})
	if rep.Status == 0 || !strings.Contains(rep.Message, "maintenance window 42") {
		t.Fatalf("second disable: %d %s", rep.Status, rep.Message)
	}
	rep = call(t, a, "runonce", nil)
	if rep.Status == 0 || !strings.Contains(rep.Message, "disabled: maintenance window 42") {
		t.Fatalf("runonce while disabled: %d %s", rep.Status, rep.Message)
	}

	// A lock written by `puppet agent --disable` itself reads the same.
	if rep = call(t, a, "enable", nil); rep.Status != 0 || rep.Data["enabled"] != true {
		t.Fatalf("enable: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
	if out, err := exec.Command("puppet", "agent", "--disable", "by puppet itself", "--confdir", h.confdir).CombinedOutput(); err != nil {
		t.Fatalf("puppet agent --disable: %v\n%s", err, out)
	}
	if rep = call(t, a, "status", nil); rep.Data["disable_message"] != "by puppet itself" {
		t.Fatalf("status after puppet's own disable: %v", rep.Data)
	}
	if rep = call(t, a, "enable", nil); rep.Status != 0 {
		t.Fatalf("enable: %d %s", rep.Status, rep.Message)
	}
	if _, err := os.Stat(s.DisabledLock); !os.IsNotExist(err) {
		t.Fatalf("lock file left after enable: %v", err)
	}
	if rep = call(t, a, "enable", nil); rep.Status == 0 {
		t.Fatal("enabling an enabled Puppet succeeded silently")
	}
}

func TestRealRunWritesSummary(t *testing.T) {
	needPuppet(t)
	h := newPuppetHome(t, "")
	target := filepath.Join(h.dir, "managed.txt")
	gate := filepath.Join(h.dir, "gate")
	manifest := `class marionette_test {
  file { '` + target + `': content => "managed by puppet\n" }
}
include marionette_test
exec { 'wait for the gate':
  command => "/bin/sh -c 'while [ ! -e ` + gate + ` ]; do sleep 0.05; done'",
  timeout => 120,
}
`
	if err := os.WriteFile(h.manifest, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	_, a, spool := newTestPuppet(t, h, nil)

	rep := call(t, a, "runonce", map[string]any{"tags": "marionette_test,exec"})
	if rep.Status != 0 || !strings.Contains(rep.Data["summary"].(string), "Started a Puppet run as job") {
		t.Fatalf("runonce: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
	job := onlyJob(t, spool)
	// The run waits at the gate: a second run is refused meanwhile, with
	// the time the first started.
	rep = call(t, a, "runonce", nil)
	if rep.Status == 0 || !strings.Contains(rep.Message, "already applying since") {
		t.Fatalf("second runonce while applying: %d %s", rep.Status, rep.Message)
	}
	if rep = call(t, a, "status", nil); rep.Data["applying"] != true || rep.Data["status"] != "applying" {
		t.Fatalf("status while applying: %v", rep.Data)
	}
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	st := waitJob(t, spool, job.ID)
	if st.Status != jobs.Finished || st.ExitCode != 0 {
		out, errOut, _, _ := spool.Output(job.ID, 10000)
		t.Fatalf("run: %+v\n%s\n%s", st, out, errOut)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "managed by puppet\n" {
		t.Fatalf("puppet did not manage %s: %q %v", target, b, err)
	}
	rep = call(t, a, "last_run_summary", map[string]any{"logs": true})
	if rep.Status != 0 {
		t.Fatalf("last_run_summary: %s", rep.Message)
	}
	if rep.Data["changed_resources"] != int64(2) || rep.Data["failed_resources"] != int64(0) || rep.Data["total_resources"].(int64) < 2 {
		b, _ := json.MarshalIndent(rep.Data, "", " ")
		t.Fatalf("summary:\n%s", b)
	}
	if rep.Data["lastrun"].(int64) == 0 || rep.Data["config_version"] == "" {
		t.Fatalf("summary lastrun/config_version: %v", rep.Data)
	}
	if td := rep.Data["type_distribution"].(map[string]int); td["File"] != 1 || td["Exec"] != 1 {
		t.Fatalf("type distribution: %v", td)
	}
	if logs := rep.Data["logs"].([]any); len(logs) == 0 {
		t.Fatal("no logs from last_run_report.yaml")
	}
	rep = call(t, a, "status", nil)
	if rep.Data["applying"] != false || rep.Data["lastrun"].(int64) == 0 || rep.Data["since_lastrun"] == "Unknown" {
		t.Fatalf("status after the run: %v", rep.Data)
	}
	classes, err := os.ReadFile(filepath.Join(h.dir, "var", "state", "classes.txt"))
	if err != nil || !strings.Contains(string(classes), "marionette_test") {
		t.Fatalf("classes.txt: %q %v", classes, err)
	}
}

func TestRunOptions(t *testing.T) {
	needPuppet(t)
	h := newPuppetHome(t, "notify { 'x': }\n")
	p, _, _ := newTestPuppet(t, h, nil)
	args, err := p.runArgs(map[string]any{"noop": true, "tags": "a,b", "environment": "dev", "ignoreschedules": true})
	if err != nil || strings.Join(args, " ") != "--noop --tags a,b --environment dev --ignoreschedules" {
		t.Fatalf("apply args %v %v", args, err)
	}
	if _, err := p.runArgs(map[string]any{"server": "puppet:8140"}); err == nil {
		t.Fatal("server accepted for a puppet apply run command")
	}
	p2, _, _ := newTestPuppet(t, h, func(o *Options) { o.RunCommand = nil })
	args, err = p2.runArgs(map[string]any{"force": true, "splay": true, "server": "puppet:8140", "use_cached_catalog": false, "noop": false, "ignoreschedules": false})
	if err != nil || strings.Join(args, " ") != "--no-noop --no-ignoreschedules --server puppet:8140 --no-use_cached_catalog --no-splay" {
		t.Fatalf("agent args %v %v", args, err)
	}
}

func TestResourceAllowDeny(t *testing.T) {
	needPuppet(t)
	h := newPuppetHome(t, "notify { 'x': }\n")
	_, a, _ := newTestPuppet(t, h, nil)
	rep := call(t, a, "resource", map[string]any{"type": "file", "name": "/etc/hostname"})
	if rep.Status == 0 || !strings.Contains(rep.Message, "not enabled") {
		t.Fatalf("resource off by default: %d %s", rep.Status, rep.Message)
	}
	_, a, _ = newTestPuppet(t, h, func(o *Options) { o.ResourceAllow = []string{"file"} })
	if rep = call(t, a, "resource", map[string]any{"type": "service", "name": "ssh"}); rep.Status == 0 || !strings.Contains(rep.Message, "not allowed") {
		t.Fatalf("type outside allow list: %d %s", rep.Status, rep.Message)
	}
	f := filepath.Join(h.dir, "inspect-me")
	if err := os.WriteFile(f, []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	rep = call(t, a, "resource", map[string]any{"type": "file", "name": f})
	if rep.Status != 0 || !strings.Contains(rep.Data["result"].(string), "'0640'") {
		t.Fatalf("resource file: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
	_, a, _ = newTestPuppet(t, h, func(o *Options) { o.ResourceDeny = []string{"exec"} })
	if rep = call(t, a, "resource", map[string]any{"type": "exec", "name": "x"}); rep.Status == 0 || !strings.Contains(rep.Message, "denied") {
		t.Fatalf("denied type: %d %s", rep.Status, rep.Message)
	}
}

func TestSettingsRefreshOnChange(t *testing.T) {
	needPuppet(t)
	h := newPuppetHome(t, "notify { 'x': }\n")
	p, _, _ := newTestPuppet(t, h, nil)
	s1, err := p.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(h.confdir, "puppet.conf")
	b, _ := os.ReadFile(conf)
	newState := filepath.Join(h.dir, "elsewhere")
	b = append(b, []byte("statedir = "+newState+"\n")...)
	if err := os.WriteFile(conf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// Make sure the change is visible even on a coarse mtime clock.
	future := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(conf, future, future)
	var s2 *Settings
	// Each poll may run `puppet config print` again (about a second of CPU).
	if !poll.Within(time.Minute, func() bool {
		var err error
		if s2, err = p.Settings(context.Background()); err != nil {
			t.Fatal(err)
		}
		if s2.StateDir != newState && s2.StateDir != s1.StateDir {
			t.Fatalf("statedir %s, want %s", s2.StateDir, newState)
		}
		return s2.StateDir == newState
	}) {
		t.Fatalf("statedir %s, want %s", s2.StateDir, newState)
	}
}

// BenchmarkStatus is the cost of one status request once Puppet's settings
// are cached: stats and small reads, no fork (docs/benchmarks.md).
func BenchmarkStatus(b *testing.B) {
	needPuppet(b)
	h := newPuppetHome(b, "notify { 'x': }\n")
	_, a, _ := newTestPuppet(b, h, nil)
	call(b, a, "status", nil) // loads the settings
	act := a.DDL.Action("status")
	hd, _ := a.Handler("status")
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep := &agent.Reply{Data: act.OutputDefaults()}
		hd(ctx, &agent.Request{ID: "bench"}, rep)
		if rep.Status != 0 {
			b.Fatal(rep.Message)
		}
	}
}

func TestValidateProperty(t *testing.T) {
	tests := []struct {
		name  string
		value any
		want  string // "" : refused
	}{
		{"ensure", "present", "present"},
		{"content", "hello = world; $(rm -rf /)", "hello = world; $(rm -rf /)"},
		{"mode", "0644", "0644"},
		{"force", true, "true"},
		{"uid", 1000.0, "1000"},
		{"uid", int64(7), "7"},
		{"Ensure", "present", ""},
		{"1ensure", "present", ""},
		{"en-sure", "present", ""},
		{"en sure", "present", ""},
		{"", "present", ""},
		{"ensure\n", "present", ""},
		{"ensure", "", ""},
		{"content", "two\nlines", ""},
		{"content", "cr\rhere", ""},
		{"content", "nul\x00", ""},
		{"content", strings.Repeat("x", 4097), ""},
		{"content", "\xff\xfe", ""},
		{"uid", 1.5, ""},
		{"ensure", nil, ""},
		{"ensure", map[string]any{"a": "b"}, ""},
		{"ensure", []any{"a"}, ""},
		// Parameters that name the resource would override NAME.
		{"path", "/etc/motd", ""},
		{"title", "/etc/motd", ""},
		{"command", "/bin/true", "/bin/true"}, // cron's command is a property; exec's is refused by CheckProperty
	}
	for _, tt := range tests {
		got, err := ValidateProperty(tt.name, tt.value)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("ValidateProperty(%q, %#v) = %q, want refused", tt.name, tt.value, got)
		case tt.want != "" && (err != nil || got != tt.want):
			t.Errorf("ValidateProperty(%q, %#v) = %q, %v; want %q", tt.name, tt.value, got, err, tt.want)
		}
	}
}

// The resource action changes a resource through the real puppet resource
// when given properties (undeclared inputs the node validates), enforces
// the allow and deny lists, and reports a change Puppet could not make.
func TestResourceProperties(t *testing.T) {
	needPuppet(t)
	h := newPuppetHome(t, "notify { 'x': }\n")
	_, a, _ := newTestPuppet(t, h, func(o *Options) { o.ResourceAllow = []string{"file", "notify"}; o.ResourceDeny = []string{"exec"} })
	act := a.DDL.Action("resource")
	if _, err := act.ValidateInputs(map[string]any{"type": "file", "name": "/x", "Bad": "y"}); err == nil || !strings.Contains(err.Error(), `input "Bad": not a resource property name`) {
		t.Fatalf("bad property name: %v", err)
	}
	if _, err := act.ValidateInputs(map[string]any{"type": "file", "name": "/x", "content": "a\nb"}); err == nil || !strings.Contains(err.Error(), "newlines") {
		t.Fatalf("newline in a value: %v", err)
	}
	if other := a.DDL.Action("status"); other.Extra != nil {
		t.Fatal("undeclared inputs accepted beyond the resource action")
	}

	f := filepath.Join(h.dir, "made-by-mco.txt")
	rep := call(t, a, "resource", map[string]any{"type": "file", "name": f, "ensure": "file", "content": "hello from mco"})
	if rep.Status != 0 || rep.Data["changed"] != true || !strings.Contains(rep.Data["result"].(string), "ensure") {
		t.Fatalf("resource change: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
	if b, err := os.ReadFile(f); err != nil || string(b) != "hello from mco" {
		t.Fatalf("file after the change: %q %v", b, err)
	}
	rep = call(t, a, "resource", map[string]any{"type": "file", "name": f, "ensure": "file", "content": "hello from mco"})
	if rep.Status != 0 || rep.Data["changed"] != false {
		t.Fatalf("resource already in sync: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
	rep = call(t, a, "resource", map[string]any{"type": "file", "name": filepath.Join(h.dir, "no", "such", "dir", "x"), "ensure": "file"})
	if rep.Status == 0 || !strings.Contains(rep.Message, "failed") {
		t.Fatalf("failed change reported as success: %d %s %v", rep.Status, rep.Message, rep.Data)
	}
	rep = call(t, a, "resource", map[string]any{"type": "file", "name": f, "bogus_property": "1"})
	if rep.Status == 0 || !strings.Contains(rep.Message, "no parameter named 'bogus_property'") {
		t.Fatalf("unknown property: %d %s", rep.Status, rep.Message)
	}
	rep = call(t, a, "resource", map[string]any{"type": "exec", "name": "/bin/true", "command": "/bin/true"})
	if rep.Status == 0 || !strings.Contains(rep.Message, "resource type exec is denied on this node") {
		t.Fatalf("denied type: %d %s", rep.Status, rep.Message)
	}
	// A namevar given as a property would change another resource than
	// NAME (Puppet lets path= override a file's title): refused, nothing
	// changed.
	victim := filepath.Join(h.dir, "victim.txt")
	if err := os.WriteFile(victim, []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := act.ValidateInputs(map[string]any{"type": "file", "name": f, "path": victim, "ensure": "absent"}); err == nil || !strings.Contains(err.Error(), `input "path": path names the resource`) {
		t.Fatalf("path property: %v", err)
	}
	// The handler checks again, whatever reached it.
	h2, _ := a.Handler("resource")
	rep = &agent.Reply{Data: act.OutputDefaults()}
	h2(context.Background(), &agent.Request{ID: newID(t), CallerID: "cert=tester",
		Data: map[string]any{"type": "file", "name": f, "path": victim, "ensure": "absent"}}, rep)
	if rep.Status != 4 || !strings.Contains(rep.Message, `property "path": path names the resource`) {
		t.Fatalf("path property reached puppet: %d %s", rep.Status, rep.Message)
	}
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep" {
		t.Fatalf("victim after a refused path property: %q %v", b, err)
	}
	if _, err := CheckProperty("exec", "command", "/bin/rm -rf /"); err == nil {
		t.Fatal("exec's command accepted as a property")
	}
	rep = call(t, a, "resource", map[string]any{"type": "user", "name": "nobody", "ensure": "absent"})
	if rep.Status == 0 || !strings.Contains(rep.Message, "not allowed") {
		t.Fatalf("type outside the allow list: %d %s", rep.Status, rep.Message)
	}
}

// resourceCase is the data of one resource call and what it must answer.
type resourceCase struct {
	data map[string]any
	want string // "" : allowed; else a part of the refusal's message
}

// checkResourceCases calls the resource action with each case's data and
// reports every answer that is not the one the case wants.
func checkResourceCases(t *testing.T, a *agent.Agent, tests []resourceCase) {
	t.Helper()
	for _, tt := range tests {
		rep := call(t, a, "resource", tt.data)
		switch {
		case tt.want == "" && rep.Status != 0:
			t.Errorf("%v: %d %s", tt.data, rep.Status, rep.Message)
		case tt.want != "" && (rep.Status == 0 || !strings.Contains(rep.Message, tt.want)):
			t.Errorf("%v: %d %s; want refused with %q", tt.data, rep.Status, rep.Message, tt.want)
		}
	}
}

// TestResourceManagedRefused: a resource Puppet's catalog manages is
// refused, and so is a change to a directory that holds one (ensure=absent
// force=true or recurse=true purge=true would remove it); showing the
// directory is fine.
func TestResourceManagedRefused(t *testing.T) {
	needPuppet(t)
	h := newPuppetHome(t, "notify { 'x': }\n")
	p, a, _ := newTestPuppet(t, h, func(o *Options) { o.ResourceAllow = []string{"file", "tidy"} })
	s, err := p.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(h.dir, "app")
	managedFile := filepath.Join(dir, "app.conf")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(managedFile, []byte("managed"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(s.ResourceFile), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.ResourceFile, []byte("class[main]\nfile["+managedFile+"]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []resourceCase{
		{map[string]any{"type": "file", "name": managedFile, "ensure": "absent"}, "is managed by Puppet's catalog"},
		// Puppet expands the path: these are the managed file too.
		{map[string]any{"type": "file", "name": dir + "/sub/../app.conf", "ensure": "absent"}, "is managed by Puppet's catalog"},
		{map[string]any{"type": "file", "name": dir + "//./app.conf", "ensure": "absent"}, "is managed by Puppet's catalog"},
		{map[string]any{"type": "file", "name": dir + "/sub/..", "ensure": "absent", "force": "true"}, "holds File["},
		{map[string]any{"type": "file", "name": dir, "ensure": "absent", "force": "true"}, "holds File[" + managedFile + "]"},
		{map[string]any{"type": "file", "name": dir + "/", "recurse": "true", "purge": "true", "force": "true"}, "holds File["},
		{map[string]any{"type": "tidy", "name": dir, "recurse": "true", "age": "0s"}, "holds File["},
		{map[string]any{"type": "file", "name": dir}, ""},
	}
	checkResourceCases(t, a, tests)
	if b, err := os.ReadFile(managedFile); err != nil || string(b) != "managed" {
		t.Fatalf("managed file after refused changes: %q %v", b, err)
	}
}

// applyNow runs the home's manifest once with `puppet apply`, writing
// resources.txt and caching the catalog as `puppet agent` does. The
// cached catalog is removed first: given a catalog cache, puppet apply
// applies the cached catalog instead of compiling the manifest.
func applyNow(t testing.TB, h *puppetHome, catalog string) {
	t.Helper()
	if catalog != "" {
		if err := os.Remove(catalog); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	argv := append(h.runCommand(), "--catalog_cache_terminus", "json")
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", argv, err, out)
	}
}

// TestResourceManagedByNamevar: a catalog entry titled otherwise than its
// path (file { 'motd': path => ... }, listed as file[motd] in
// resources.txt) is managed by its path too, as Puppet resolved it from the
// cached catalog; an unmanaged file beside it can be changed. A resource a
// later run starts managing is refused once the watcher saw the new files.
func TestResourceManagedByNamevar(t *testing.T) {
	needPuppet(t)
	h := newPuppetHome(t, "")
	dir := filepath.Join(h.dir, "etc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	motd, other, later := filepath.Join(dir, "motd"), filepath.Join(dir, "unmanaged"), filepath.Join(dir, "later")
	manifest := func(extra string) {
		m := "file { 'motd': path => '" + motd + "', content => 'x' }\n" +
			"notify { 'greeting': name => 'hello-namevar' }\n" + extra
		if err := os.WriteFile(h.manifest, []byte(m), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	manifest("")
	applyNow(t, h, "")
	p, a, _ := newTestPuppet(t, h, func(o *Options) { o.ResourceAllow = []string{"file", "notify"} })
	s, err := p.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(s.ResourceFile); err != nil || !strings.Contains(string(b), "file[motd]") {
		t.Fatalf("resources.txt: %q %v", b, err)
	}
	if _, err := os.Stat(s.Catalog); err != nil {
		t.Fatalf("cached catalog: %v", err)
	}
	tests := []resourceCase{
		{map[string]any{"type": "file", "name": motd, "ensure": "absent"}, "is managed by Puppet's catalog"},
		{map[string]any{"type": "file", "name": dir + "/./motd", "content": "y"}, "is managed by Puppet's catalog"},
		{map[string]any{"type": "file", "name": "motd", "ensure": "absent"}, "is managed by Puppet's catalog"},
		{map[string]any{"type": "file", "name": dir, "ensure": "absent", "force": "true"}, "holds File[" + motd + "]"},
		{map[string]any{"type": "notify", "name": "hello-namevar", "message": "m"}, "is managed by Puppet's catalog"},
		{map[string]any{"type": "file", "name": other, "ensure": "file", "content": "changed by mco"}, ""},
	}
	checkResourceCases(t, a, tests)
	if b, err := os.ReadFile(motd); err != nil || string(b) != "x" {
		t.Fatalf("managed file after refused changes: %q %v", b, err)
	}
	if b, err := os.ReadFile(other); err != nil || string(b) != "changed by mco" {
		t.Fatalf("unmanaged file after the change: %q %v", b, err)
	}

	// With the watcher running the index is refreshed from it when a run
	// rewrites resources.txt and the catalog.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); p.Watch(ctx, time.Second, Hooks{}) }()
	defer func() { cancel(); <-done }()
	manifest("file { 'later': path => '" + later + "', content => 'l' }\n")
	applyNow(t, h, s.Catalog)
	var rep *agent.Reply
	if !poll.Within(time.Minute, func() bool {
		// mode=0644 is what the file has: a change that changes nothing
		// while the watcher has not caught up yet.
		rep = call(t, a, "resource", map[string]any{"type": "file", "name": later, "mode": "0644"})
		return rep.Status != 0 && strings.Contains(rep.Message, "is managed by Puppet's catalog")
	}) {
		t.Fatalf("a newly managed file is not refused after the run: %d %s", rep.Status, rep.Message)
	}
	if b, err := os.ReadFile(later); err != nil || string(b) != "l" {
		t.Fatalf("newly managed file: %q %v", b, err)
	}
}

// TestResourceManagedFailsClosed: when resources.txt or the cached catalog
// exists but cannot be parsed, changes are refused naming the file;
// showing a resource still works.
func TestResourceManagedFailsClosed(t *testing.T) {
	needPuppet(t)
	h := newPuppetHome(t, "notify { 'x': }\n")
	p, a, _ := newTestPuppet(t, h, func(o *Options) { o.ResourceAllow = []string{"file"} })
	s, err := p.Settings(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Catalog == "" {
		t.Fatal("no catalog path in Puppet's settings")
	}
	target := filepath.Join(h.dir, "target")
	tests := []struct {
		name               string
		resources, catalog string // "" : no such file
		want               string
	}{
		{"resources.txt garbage", "file[/ok]\nnot a resource line\n", "", s.ResourceFile + ":2: not a resource"},
		{"catalog not JSON", "", "{not json", s.Catalog + ": not a Puppet catalog"},
		{"catalog without resources", "", `{"name": "x"}`, s.Catalog + ": not a Puppet catalog: no resources"},
		{"catalog resource without type", "", `{"resources": [{"title": "x"}]}`, s.Catalog + ": resources[0]: no type or title"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range []struct{ path, body string }{{s.ResourceFile, tt.resources}, {s.Catalog, tt.catalog}} {
				os.Remove(f.path)
				if f.body == "" {
					continue
				}
				if err := os.MkdirAll(filepath.Dir(f.path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(f.path, []byte(f.body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rep := call(t, a, "resource", map[string]any{"type": "file", "name": target, "ensure": "file"})
			if rep.Status == 0 || !strings.Contains(rep.Message, "cannot tell whether") || !strings.Contains(rep.Message, tt.want) {
				t.Fatalf("change with an unreadable %s: %d %s; want refused with %q", tt.name, rep.Status, rep.Message, tt.want)
			}
			if _, err := os.Stat(target); err == nil {
				t.Fatal("file created despite the refusal")
			}
			if rep := call(t, a, "resource", map[string]any{"type": "file", "name": target}); rep.Status != 0 {
				t.Fatalf("showing a resource: %d %s", rep.Status, rep.Message)
			}
		})
	}
}
