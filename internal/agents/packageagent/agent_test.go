package packageagent

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/protocol"
)

// fakeBackend is an in-memory package database. Every test of install,
// update, uninstall and purge goes through it: the tests never change the
// packages of the machine they run on.
type fakeBackend struct {
	provider string
	pkgs     map[string]Package
	calls    []string
	fail     error // returned by the next mutating call
}

func newFake(pkgs ...Package) *fakeBackend {
	f := &fakeBackend{provider: "dpkg", pkgs: map[string]Package{}}
	for _, p := range pkgs {
		f.pkgs[p.Name] = p
	}
	return f
}

func (f *fakeBackend) Provider() string { return f.provider }

func (f *fakeBackend) Status(_ context.Context, name string) (Package, error) {
	if p, ok := f.pkgs[name]; ok {
		return p, nil
	}
	return Package{Name: name, Ensure: Purged}, nil
}

func (f *fakeBackend) List(context.Context) ([]Package, error) {
	var out []Package
	for _, p := range f.pkgs {
		if p.Installed() {
			out = append(out, p)
		}
	}
	return out, nil
}

func (f *fakeBackend) mutate(call, name, ensure string) (Result, error) {
	f.calls = append(f.calls, call+" "+name)
	if f.fail != nil {
		return Result{Output: "E: boom", ExitCode: 100}, f.fail
	}
	f.pkgs[name] = Package{Name: name, Ensure: ensure, Arch: "amd64"}
	return Result{Output: call + " done"}, nil
}

func (f *fakeBackend) Install(_ context.Context, name, version string) (Result, error) {
	if version == "" {
		version = "1.0"
	}
	return f.mutate("install", name, version)
}

func (f *fakeBackend) Update(_ context.Context, name string) (Result, error) {
	return f.mutate("update", name, "2.0")
}

func (f *fakeBackend) Uninstall(_ context.Context, name string) (Result, error) {
	return f.mutate("uninstall", name, Absent)
}

func (f *fakeBackend) Purge(_ context.Context, name string) (Result, error) {
	return f.mutate("purge", name, Purged)
}

func (f *fakeBackend) CheckUpdates(context.Context) ([]Update, Result, error) {
	return []Update{{Package: "bash", Version: "5.3", Repo: "stable"}}, Result{Output: "Inst bash"}, nil
}

// call runs one action the way the daemon does: reply pre-filled with the
// action's output defaults.
func call(t *testing.T, a *agent.Agent, action string, data map[string]any) *agent.Reply {
	t.Helper()
	h, ok := a.Handler(action)
	if !ok {
		t.Fatalf("no handler for action %q", action)
	}
	rep := &agent.Reply{Data: a.DDL.Action(action).OutputDefaults()}
	h(context.Background(), &agent.Request{Agent: "package", Action: action, Data: data}, rep)
	return rep
}

func newTestAgent(t *testing.T, be Backend) *agent.Agent {
	t.Helper()
	a, err := New(Options{Backend: be})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestDDL(t *testing.T) {
	d, err := DDL()
	if err != nil {
		t.Fatal(err)
	}
	m := d.Metadata
	for field, v := range map[string]string{"name": m.Name, "description": m.Description, "author": m.Author,
		"license": m.License, "version": m.Version, "url": m.URL} {
		if v == "" {
			t.Errorf("metadata %s is empty", field)
		}
	}
	if m.Name != "package" || m.Timeout <= 0 {
		t.Errorf("metadata name %q timeout %d, want package and > 0", m.Name, m.Timeout)
	}

	a := newTestAgent(t, newFake())
	var actions []string
	for _, act := range d.Actions {
		actions = append(actions, act.Name)
		if _, ok := a.Handler(act.Name); !ok {
			t.Errorf("DDL action %q has no handler", act.Name)
		}
		// The DDL validation and the code's must be the same rule.
		for name, in := range act.Input {
			want := map[string]string{"package": namePattern, "version": versionPattern}[name]
			if want != "" && in.Validation != want {
				t.Errorf("action %s input %s: validation %q, want %q", act.Name, name, in.Validation, want)
			}
		}
	}
	for _, want := range []string{"status", "install", "update", "uninstall", "purge", "count", "md5", "checkupdates"} {
		if !slices.Contains(actions, want) {
			t.Errorf("DDL lacks action %q", want)
		}
	}
	st := d.Action("status")
	if st.Output["ensure"].DisplayAs != "Ensure" || !slices.ContainsFunc(st.Aggregate, func(ag ddl.Aggregate) bool {
		return ag.Function == "summary" && len(ag.Args) > 0 && ag.Args[0] == "ensure"
	}) {
		t.Errorf("status needs output ensure displayed as Ensure with a summary aggregate, got %+v", st.Aggregate)
	}
}

// badNames are names a shell would treat specially, or apt-get as options.
func badNames() []string {
	return []string{"foo;rm -rf /", "$(x)", "a b", "`id`", "foo|bar", "foo&&bar", "foo\nbar", "-oAPT::Foo=1", "../x", "x>y", ""}
}

// TestDDLValidation checks the node's DDL check, which runs before a handler
// is called, refuses what the handlers refuse.
func TestDDLValidation(t *testing.T) {
	d, err := DDL()
	if err != nil {
		t.Fatal(err)
	}
	install := d.Action("install")
	for _, name := range badNames() {
		if name == "" {
			continue // emptiness is the handler's check, not the pattern's
		}
		var ie *ddl.InputError
		if _, err := install.ValidateInputs(map[string]any{"package": name}); !errors.As(err, &ie) || ie.Missing {
			t.Errorf("DDL accepts package %q (err %v)", name, err)
		}
		if _, err := install.ValidateInputs(map[string]any{"package": "nginx", "version": name}); !errors.As(err, &ie) {
			t.Errorf("DDL accepts version %q (err %v)", name, err)
		}
	}
	for _, name := range []string{"bash", "libc6:amd64", "g++", "python3.11", "libstdc++6"} {
		if _, err := install.ValidateInputs(map[string]any{"package": name, "version": "1:2.3~rc1-4+b1"}); err != nil {
			t.Errorf("DDL rejects package %q: %v", name, err)
		}
	}
}

// TestEnsureSummary checks the status action's aggregate is what the client
// prints as "Summary of Ensure:".
func TestEnsureSummary(t *testing.T) {
	a := newTestAgent(t, newFake(Package{Name: "bash", Ensure: "5.2", Arch: "amd64"}))
	var replies []map[string]any
	for range 3 {
		replies = append(replies, call(t, a, "status", map[string]any{"package": "bash"}).Data)
	}
	sums := a.DDL.Action("status").Summarize(replies)
	if len(sums) == 0 || sums[0].Title != "Summary of Ensure" || sums[0].Counts["5.2"] != 3 {
		t.Errorf("summaries %+v, want Summary of Ensure with 5.2 = 3", sums)
	}
}

func TestInvalidInputsNeverReachTheBackend(t *testing.T) {
	for _, action := range []string{"status", "install", "update", "uninstall", "purge"} {
		for _, name := range badNames() {
			t.Run(fmt.Sprintf("%s/%q", action, name), func(t *testing.T) {
				fake := newFake()
				rep := call(t, newTestAgent(t, fake), action, map[string]any{"package": name})
				if rep.Status != protocol.InvalidData {
					t.Errorf("status %d (%s), want 4", rep.Status, rep.Message)
				}
				if len(fake.calls) > 0 {
					t.Errorf("backend was called: %v", fake.calls)
				}
			})
		}
	}
	for _, version := range []string{"1.0;reboot", "$(x)", "1 2", "-1"} {
		fake := newFake()
		rep := call(t, newTestAgent(t, fake), "install", map[string]any{"package": "nginx", "version": version})
		if rep.Status != protocol.InvalidData || len(fake.calls) > 0 {
			t.Errorf("install version %q: status %d, calls %v; want 4 and none", version, rep.Status, fake.calls)
		}
	}
	if rep := call(t, newTestAgent(t, newFake()), "status", nil); rep.Status != protocol.MissingData {
		t.Errorf("status without package: status %d, want 3", rep.Status)
	}
	if rep := call(t, newTestAgent(t, newFake()), "status", map[string]any{"package": 7}); rep.Status != protocol.InvalidData {
		t.Errorf("status with a number: status %d, want 4", rep.Status)
	}
}

// TestChanges covers the mutating actions through the fake backend only.
func TestChanges(t *testing.T) {
	installed := Package{Name: "nginx", Ensure: "1.0", Arch: "amd64"}
	configOnly := Package{Name: "nginx", Ensure: Absent}
	tests := []struct {
		name       string
		action     string
		version    string
		have       []Package
		fail       error
		wantCalls  []string
		wantEnsure string
		wantStatus protocol.StatusCode
	}{
		{"install absent", "install", "", nil, nil, []string{"install nginx"}, "1.0", protocol.OK},
		{"install version", "install", "1.2", nil, nil, []string{"install nginx"}, "1.2", protocol.OK},
		{"install already installed is a no-op", "install", "", []Package{installed}, nil, nil, "1.0", protocol.OK},
		{"install same version is a no-op", "install", "1.0", []Package{installed}, nil, nil, "1.0", protocol.OK},
		{"install other version", "install", "0.9", []Package{installed}, nil, []string{"install nginx"}, "0.9", protocol.OK},
		{"install fails", "install", "", nil, errors.New("apt-get install failed"), []string{"install nginx"}, Purged, protocol.Aborted},
		{"update installed", "update", "", []Package{installed}, nil, []string{"update nginx"}, "2.0", protocol.OK},
		{"update absent is a no-op", "update", "", nil, nil, nil, Purged, protocol.OK},
		{"uninstall installed", "uninstall", "", []Package{installed}, nil, []string{"uninstall nginx"}, Absent, protocol.OK},
		{"uninstall absent is a no-op", "uninstall", "", nil, nil, nil, Purged, protocol.OK},
		{"purge installed", "purge", "", []Package{installed}, nil, []string{"purge nginx"}, Purged, protocol.OK},
		{"purge leftover config", "purge", "", []Package{configOnly}, nil, []string{"purge nginx"}, Purged, protocol.OK},
		{"purge purged is a no-op", "purge", "", nil, nil, nil, Purged, protocol.OK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fake := newFake(tt.have...)
			fake.fail = tt.fail
			data := map[string]any{"package": "nginx"}
			if tt.version != "" {
				data["version"] = tt.version
			}
			rep := call(t, newTestAgent(t, fake), tt.action, data)
			if rep.Status != tt.wantStatus {
				t.Errorf("status %d (%q), want %d", rep.Status, rep.Message, tt.wantStatus)
			}
			if diff := cmp.Diff(tt.wantCalls, fake.calls); diff != "" {
				t.Errorf("backend calls (-want +got):\n%s", diff)
			}
			if rep.Data["ensure"] != tt.wantEnsure || rep.Data["provider"] != "dpkg" || rep.Data["name"] != "nginx" {
				t.Errorf("reply data %v, want ensure %q provider dpkg name nginx", rep.Data, tt.wantEnsure)
			}
			if rep.Data["output"] == nil {
				t.Errorf("reply has no output")
			}
		})
	}
}

func TestCountAndMD5(t *testing.T) {
	fake := newFake(Package{Name: "a", Ensure: "1", Arch: "all"}, Package{Name: "b", Ensure: "2", Arch: "amd64"},
		Package{Name: "c", Ensure: Absent})
	a := newTestAgent(t, fake)
	if rep := call(t, a, "count", nil); rep.Data["output"] != 2 {
		t.Errorf("count = %v, want 2", rep.Data["output"])
	}
	// map iteration makes List's order vary; the digest must not.
	want := packageListMD5([]Package{{Name: "a", Ensure: "1", Arch: "all"}, {Name: "b", Ensure: "2", Arch: "amd64"}})
	for range 5 {
		if rep := call(t, a, "md5", nil); rep.Data["output"] != want {
			t.Fatalf("md5 = %v, want %s", rep.Data["output"], want)
		}
	}
}

func TestCheckUpdates(t *testing.T) {
	a := newTestAgent(t, newFake())
	rep := call(t, a, "checkupdates", nil)
	want := []Update{{Package: "bash", Version: "5.3", Repo: "stable"}}
	if rep.Status != protocol.OK || rep.Data["package_manager"] != "dpkg" || !cmp.Equal(rep.Data["outdated_packages"], want) {
		t.Errorf("checkupdates: status %d data %v", rep.Status, rep.Data)
	}
	if rep := call(t, a, "apt_checkupdates", nil); rep.Status != protocol.OK {
		t.Errorf("apt_checkupdates on dpkg: status %d (%s)", rep.Status, rep.Message)
	}
	if rep := call(t, a, "yum_checkupdates", nil); rep.Status != protocol.Aborted {
		t.Errorf("yum_checkupdates on dpkg: status %d, want 1", rep.Status)
	}
	if rep := call(t, a, "yum_clean", nil); rep.Status != protocol.Aborted {
		t.Errorf("yum_clean on dpkg: status %d, want 1", rep.Status)
	}
}
