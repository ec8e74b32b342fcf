//go:build unix

package external

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/marionette/mco/protocol"
)

// TestChoriaLayout loads agents from <libdir>/mcollective/agent, Choria's and
// MCollective's plugin layout; <libdir>/agent wins a name clash.
func TestChoriaLayout(t *testing.T) {
	libdir := t.TempDir()
	choria := filepath.Join(libdir, "mcollective")
	writeAgent(t, choria, "legacy", `printf '{"message":"legacy"}' >"$2"`)
	writeAgent(t, choria, "both", `printf '{"message":"choria layout"}' >"$2"`)
	writeAgent(t, libdir, "both", `printf '{"message":"our layout"}' >"$2"`)

	agents, errs := NewLoader(Options{LibDirs: []string{libdir}}).Load()
	if diff := cmp.Diff([]string{"both", "legacy"}, names(agents)); diff != "" {
		t.Errorf("agents (-want +got):\n%s", diff)
	}
	if len(errs) != 1 || !strings.Contains(errs[0].Error(), filepath.Join(choria, "agent", "both.json")) {
		t.Errorf("errors = %v, want one about the shadowed mcollective/agent/both.json", errs)
	}
	for _, a := range agents {
		rep := call(t, t.Context(), a, "run", nil)
		want := map[string]string{"both": "our layout", "legacy": "legacy"}[a.Name()]
		if rep.Data["message"] != want {
			t.Errorf("%s replied %v, want %q", a.Name(), rep.Data, want)
		}
	}
}

// TestActivation: only an explicit {"activate": false} keeps an agent from
// being offered; agents that ignore the activation request are active.
func TestActivation(t *testing.T) {
	libdir := t.TempDir()
	// Each agent records the activation request it got, to check its content.
	record := `[ "$3" = "` + ActivationProtocol + `" ] && [ "$CHORIA_EXTERNAL_PROTOCOL" = "$3" ] && cp "$1" "` + libdir + `/$(basename "$0").activation"`
	writeAgent(t, libdir, "declines", record+`; printf '{"activate": false}' >"$2"`)
	writeAgent(t, libdir, "accepts", record+`; printf '{"activate": true}' >"$2"`)
	writeAgent(t, libdir, "ignores", `printf '{"message":"whatever"}' >"$2"`)
	writeAgent(t, libdir, "fails", `exit 1`)
	var logs bytes.Buffer
	agents, errs := NewLoader(Options{LibDirs: []string{libdir}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}).Load()
	if len(errs) > 0 {
		t.Errorf("errors: %v", errs)
	}
	if diff := cmp.Diff([]string{"accepts", "fails", "ignores"}, names(agents)); diff != "" {
		t.Errorf("agents (-want +got):\n%s", diff)
	}
	if !strings.Contains(logs.String(), "declined activation") || !strings.Contains(logs.String(), "agent=declines") {
		t.Errorf("no log line about the declining agent:\n%s", logs.String())
	}
	for _, name := range []string{"declines", "accepts"} {
		b, err := os.ReadFile(filepath.Join(libdir, name+".activation"))
		if err != nil {
			t.Fatalf("%s got no activation request: %v", name, err)
		}
		var got map[string]any
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"$schema": ActivationProtocolSchema, "protocol": ActivationProtocol, "agent": name}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s activation request (-want +got):\n%s", name, diff)
		}
	}
}

// TestEnvelopeReplies covers the rule telling Choria's reply envelope from a
// flat MCollective object of outputs (see isEnvelope).
func TestEnvelopeReplies(t *testing.T) {
	tests := []struct {
		name        string
		reply       string
		ddlOutput   string // an extra output declared by the DDL
		wantStatus  protocol.StatusCode
		wantMessage string
		wantData    map[string]any
	}{
		{name: "envelope", reply: `{"statuscode":0,"statusmsg":"OK","data":{"message":"hi","n":2}}`,
			wantData: map[string]any{"message": "hi", "n": float64(2)}},
		{name: "envelope as the Python library writes it", reply: `{"statuscode": 0, "statusmsg": "", "data": {"message": "hi"}, "disableresponse": false}`,
			wantData: map[string]any{"message": "hi"}},
		{name: "failed envelope", reply: `{"statuscode":4,"statusmsg":"bad input","data":{}}`,
			wantStatus: protocol.InvalidData, wantMessage: "bad input", wantData: map[string]any{}},
		{name: "envelope with null data", reply: `{"statuscode":1,"statusmsg":"no","data":null}`,
			wantStatus: protocol.Aborted, wantMessage: "no", wantData: map[string]any{}},
		{name: "flat outputs", reply: `{"message":"hi","statuscode":0}`,
			wantData: map[string]any{"message": "hi"}},
		{name: "flat: data next to another output", reply: `{"data":{"a":1},"message":"hi"}`,
			wantData: map[string]any{"data": map[string]any{"a": float64(1)}, "message": "hi"}},
		{name: "flat: data is not an object", reply: `{"data":"text"}`,
			wantData: map[string]any{"data": "text"}},
		{name: "flat: the action declares an output named data", reply: `{"data":{"a":1}}`, ddlOutput: "data",
			wantData: map[string]any{"data": map[string]any{"a": float64(1)}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			libdir := t.TempDir()
			writeAgent(t, libdir, "env", "cat >\"$2\" <<'EOF'\n"+tt.reply+"\nEOF")
			if tt.ddlOutput != "" {
				d := strings.Replace(testDDL("env", "run"), `"output": {`, `"output": {"`+tt.ddlOutput+`": {"description": "d", "display_as": "D", "type": "hash"}, `, 1)
				writeFile(t, filepath.Join(libdir, "agent", "env.json"), d, 0o644)
			}
			a := loadOne(t, Options{LibDirs: []string{libdir}}, "env")
			rep := call(t, t.Context(), a, "run", nil)
			if rep.Status != tt.wantStatus || rep.Message != tt.wantMessage {
				t.Errorf("status %d %q, want %d %q", rep.Status, rep.Message, tt.wantStatus, tt.wantMessage)
			}
			if diff := cmp.Diff(tt.wantData, rep.Data); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPluginConfig passes plugin.<agent>.<key> settings to the agent in the
// file CHORIA_EXTERNAL_CONFIG names, and through agent.Agent.Config.
func TestPluginConfig(t *testing.T) {
	libdir := t.TempDir()
	writeAgent(t, libdir, "conf", `printf '{"message":"%s"}' "$(tr '\n' ';' <"$CHORIA_EXTERNAL_CONFIG")" >"$2"`)
	opts := Options{LibDirs: []string{libdir}, Config: map[string]map[string]string{
		"conf":  {"port": "8080", "command": "/usr/bin/thing --fast"},
		"other": {"secret": "not for conf"},
	}}
	a := loadOne(t, opts, "conf")
	rep := call(t, t.Context(), a, "run", nil)
	if got, want := rep.Data["message"], "command = /usr/bin/thing --fast;port = 8080;"; got != want {
		t.Errorf("config file = %q, want %q", got, want)
	}
	if v, ok := a.Config("port"); !ok || v != "8080" {
		t.Errorf("Config(port) = %q, %v", v, ok)
	}
	if _, ok := a.Config("secret"); ok {
		t.Error("another agent's setting is visible")
	}
}

// TestStderrOnFailure logs a failing agent's stderr on the node and puts only
// a short tail of it in the reply.
func TestStderrOnFailure(t *testing.T) {
	libdir := t.TempDir()
	writeAgent(t, libdir, "noisy", `[ "$3" = "`+Protocol+`" ] || exit 0
for i in 1 2 3 4 5 6; do echo "line $i" >&2; done; exit 2`)
	var logs bytes.Buffer
	a := loadOne(t, Options{LibDirs: []string{libdir}, Logger: slog.New(slog.NewTextHandler(&logs, nil))}, "noisy")
	rep := call(t, t.Context(), a, "run", nil)
	if want := "external agent noisy failed: exit status 2: ...line 4 | line 5 | line 6"; rep.Message != want {
		t.Errorf("message = %q, want %q", rep.Message, want)
	}
	if !strings.Contains(logs.String(), "external agent failed") || !strings.Contains(logs.String(), `line 1\nline 2`) {
		t.Errorf("node log lacks the whole stderr:\n%s", logs.String())
	}
}

// TestWrongOwnerRefused needs root to give a file away.
func TestWrongOwnerRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can create a file owned by another user")
	}
	libdir := t.TempDir()
	writeAgent(t, libdir, "foreign", "exit 0")
	exe := filepath.Join(libdir, "agent", "foreign")
	if err := os.Chown(exe, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	agents, errs := NewLoader(Options{LibDirs: []string{libdir}}).Load()
	if len(agents) != 0 || len(errs) != 1 || !strings.Contains(errs[0].Error(), "refusing "+exe+": owned by uid 65534") {
		t.Errorf("agents %v, errors %v; want the executable refused", names(agents), errs)
	}
}

// TestPyChoriaExample runs the example agent written like Choria's Python
// library: it rejects any request that does not follow Choria's schemas.
func TestPyChoriaExample(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("python3 is needed by this test")
	}
	opts := Options{LibDirs: []string{examplesLibdir}, Config: map[string]map[string]string{"pychoria": {"greeting": "ahoy"}}}
	a := loadOne(t, opts, "pychoria")
	rep := call(t, t.Context(), a, "echo", map[string]any{"message": "hi"})
	want := map[string]any{"message": "hi", "greeting": "ahoy", "caller": "cert=alice"}
	if rep.Status != protocol.OK || rep.Message != "" {
		t.Fatalf("status %d %q", rep.Status, rep.Message)
	}
	if diff := cmp.Diff(want, rep.Data); diff != "" {
		t.Errorf("reply data (-want +got):\n%s", diff)
	}

	opts.Config["pychoria"]["enabled"] = "false"
	agents, _ := NewLoader(opts).Load()
	for _, a := range agents {
		if a.Name() == "pychoria" {
			t.Error("pychoria was offered although its activation declined")
		}
	}
}
