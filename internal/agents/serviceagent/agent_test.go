package serviceagent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/protocol"
)

// The machine the tests run on has no init system (PID 1 is not systemd), so
// the tests put fake systemctl and service shell scripts first on PATH. They
// keep each running service as a file in a temp directory, log every call,
// refuse to start services whose name begins with "broken", and know no
// service whose name begins with "nope".

const fakeSystemctl = `#!/bin/sh
echo "systemctl $*" >> "$STATE/calls"
verb=$1; shift
[ "$1" = "--" ] && shift
unit=$1
case $verb in
is-active)
	if [ -f "$STATE/$unit" ]; then echo active; exit 0; fi
	echo inactive; exit 3;;
start|restart)
	case $unit in broken*)
		echo "Job for $unit.service failed because the control process exited with error code." >&2; exit 1;;
	esac
	touch "$STATE/$unit";;
stop)
	rm -f "$STATE/$unit";;
*)
	echo "Unknown command verb $verb." >&2; exit 1;;
esac
`

const fakeService = `#!/bin/sh
echo "service $*" >> "$STATE/calls"
name=$1
case $name in nope*) echo "$name: unrecognized service" >&2; exit 1;; esac
case $2 in
status)
	if [ -f "$STATE/$name" ]; then echo "$name is running"; exit 0; fi
	echo "$name is not running"; exit 3;;
start|restart)
	case $name in broken*) echo "Starting $name: failed" >&2; exit 1;; esac
	touch "$STATE/$name";;
stop)
	rm -f "$STATE/$name";;
*)
	echo "Usage: $name {start|stop|status|restart}" >&2; exit 2;;
esac
`

// fakeInit installs the fake tools and returns the state directory.
func fakeInit(t *testing.T) string {
	t.Helper()
	bin, state := t.TempDir(), t.TempDir()
	for name, script := range map[string]string{"systemctl": fakeSystemctl, "service": fakeService} {
		script = strings.ReplaceAll(script, "$STATE", state)
		if err := os.WriteFile(filepath.Join(bin, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	return state
}

func setRunning(t *testing.T, state, name string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(state, name), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

func call(t *testing.T, a *agent.Agent, action, service string) *agent.Reply {
	t.Helper()
	h, ok := a.Handler(action)
	if !ok {
		t.Fatalf("no handler for %q", action)
	}
	rep := &agent.Reply{Data: a.DDL.Action(action).OutputDefaults()}
	h(context.Background(), &agent.Request{Agent: "service", Action: action, Data: map[string]any{"service": service}}, rep)
	return rep
}

func TestActions(t *testing.T) {
	tests := []struct {
		action     string
		service    string
		running    bool
		wantStatus protocol.StatusCode
		wantState  string
		wantMsg    string
	}{
		{"status", "nginx", true, protocol.OK, Running, ""},
		{"status", "nginx", false, protocol.OK, Stopped, ""},
		{"start", "nginx", false, protocol.OK, Running, ""},
		{"start", "nginx", true, protocol.Aborted, Running, "nginx is already running"},
		{"stop", "nginx", true, protocol.OK, Stopped, ""},
		{"stop", "nginx", false, protocol.Aborted, Stopped, "nginx is already stopped"},
		{"restart", "nginx", true, protocol.OK, Running, ""},
		{"restart", "nginx", false, protocol.OK, Running, ""},
		{"start", "broken-app", false, protocol.Aborted, Stopped, "could not start broken-app"},
		{"restart", "broken-app", true, protocol.Aborted, Running, "could not restart broken-app"},
		{"start", "getty@tty1", false, protocol.OK, Running, ""},
	}
	for _, initSys := range []InitSystem{Systemd, SysVinit} {
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s/%s/%s/running=%v", initSys, tt.action, tt.service, tt.running), func(t *testing.T) {
				state := fakeInit(t)
				if tt.running {
					setRunning(t, state, tt.service)
				}
				a, err := New(Options{Init: initSys})
				if err != nil {
					t.Fatal(err)
				}
				rep := call(t, a, tt.action, tt.service)
				if rep.Status != tt.wantStatus || rep.Data["status"] != tt.wantState || !strings.Contains(rep.Message, tt.wantMsg) {
					t.Errorf("got status %d %q data %v; want %d %q with status %s",
						rep.Status, rep.Message, rep.Data, tt.wantStatus, tt.wantMsg, tt.wantState)
				}
			})
		}
	}
}

func TestUnknownSysVService(t *testing.T) {
	fakeInit(t)
	a, err := New(Options{Init: SysVinit})
	if err != nil {
		t.Fatal(err)
	}
	rep := call(t, a, "status", "nope")
	if rep.Status != protocol.Aborted || !strings.Contains(rep.Message, "unrecognized service") || rep.Data["status"] != "unknown" {
		t.Errorf("got %d %q %v", rep.Status, rep.Message, rep.Data)
	}
}

func TestInvalidNamesNeverRunACommand(t *testing.T) {
	bad := []string{"nginx;reboot", "$(id)", "a b", "`id`", "x|y", "x&y", "x>y", "x\ny", "--now", "../etc", ""}
	for _, initSys := range []InitSystem{Systemd, SysVinit} {
		for _, action := range []string{"status", "start", "stop", "restart"} {
			for _, name := range bad {
				t.Run(fmt.Sprintf("%s/%s/%q", initSys, action, name), func(t *testing.T) {
					state := fakeInit(t)
					a, err := New(Options{Init: initSys})
					if err != nil {
						t.Fatal(err)
					}
					if rep := call(t, a, action, name); rep.Status != protocol.InvalidData {
						t.Errorf("status %d (%s), want 4", rep.Status, rep.Message)
					}
					if _, err := os.Stat(filepath.Join(state, "calls")); !errors.Is(err, os.ErrNotExist) {
						t.Errorf("a command ran (calls file: %v)", err)
					}
				})
			}
		}
	}
}

func TestMissingInput(t *testing.T) {
	fakeInit(t)
	a, err := New(Options{Init: Systemd})
	if err != nil {
		t.Fatal(err)
	}
	rep := &agent.Reply{}
	h, _ := a.Handler("status")
	h(context.Background(), &agent.Request{Action: "status"}, rep)
	if rep.Status != protocol.MissingData {
		t.Errorf("status %d, want 3", rep.Status)
	}
}

func TestNew(t *testing.T) {
	empty := t.TempDir()
	if _, err := New(Options{Init: Systemd, Path: empty}); !errors.Is(err, ErrNoBackend) {
		t.Errorf("systemd without systemctl: %v, want ErrNoBackend", err)
	}
	if _, err := New(Options{Init: "upstart"}); err == nil {
		t.Error("unknown init system accepted")
	}
}

func TestDDL(t *testing.T) {
	d, err := DDL()
	if err != nil {
		t.Fatal(err)
	}
	m := d.Metadata
	if m.Name != "service" || m.Description == "" || m.Author == "" || m.License == "" || m.Version == "" || m.URL == "" || m.Timeout <= 0 {
		t.Errorf("incomplete metadata: %+v", m)
	}
	re := regexp.MustCompile(namePattern)
	for _, want := range []string{"status", "start", "stop", "restart"} {
		act := d.Action(want)
		if act == nil {
			t.Fatalf("DDL lacks action %q", want)
		}
		if v := act.Input["service"].Validation; v != namePattern {
			t.Errorf("%s: validation %q, want %q", want, v, namePattern)
		}
		out := act.Output["status"]
		if out == nil || out.DisplayAs != "Service Status" {
			t.Errorf("%s: output status must be displayed as Service Status", want)
		}
		if len(act.Aggregate) == 0 || act.Aggregate[0].Function != "summary" || act.Aggregate[0].Args[0] != "status" {
			t.Errorf("%s: want a summary aggregate of status, got %+v", want, act.Aggregate)
		}
	}
	if re.MatchString("a;b") || !re.MatchString("getty@tty1.service") {
		t.Error("name pattern is wrong")
	}
}

// TestDDLValidationAndSummary checks the node's DDL check refuses the names
// the handlers refuse, and that replies summarize as "Summary of Service
// Status:".
func TestDDLValidationAndSummary(t *testing.T) {
	d, err := DDL()
	if err != nil {
		t.Fatal(err)
	}
	start := d.Action("start")
	for _, name := range []string{"nginx;reboot", "$(id)", "a b", "`id`", "--now"} {
		var ie *ddl.InputError
		if _, err := start.ValidateInputs(map[string]any{"service": name}); !errors.As(err, &ie) || ie.Missing {
			t.Errorf("DDL accepts service %q (err %v)", name, err)
		}
	}
	if _, err := start.ValidateInputs(map[string]any{"service": "getty@tty1.service"}); err != nil {
		t.Errorf("DDL rejects a template unit: %v", err)
	}
	replies := []map[string]any{{"status": Running}, {"status": Running}, {"status": Stopped}}
	sums := d.Action("status").Summarize(replies)
	if len(sums) != 1 || sums[0].Title != "Summary of Service Status" || sums[0].Counts[Running] != 2 {
		t.Errorf("summaries %+v, want Summary of Service Status with running = 2", sums)
	}
}
