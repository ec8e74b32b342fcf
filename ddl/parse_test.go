package ddl

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func mustLoad(t *testing.T, path string) *Agent {
	t.Helper()
	a, err := Load(path)
	if err != nil {
		t.Fatalf("Load(%s): %v", path, err)
	}
	return a
}

// TestFixturesLoadAndRender loads every real-world DDL (copied from public
// agents, see testdata/fixtures/README.md) and every hand-written one.
func TestFixturesLoadAndRender(t *testing.T) {
	files, err := filepath.Glob("testdata/fixtures/*.json")
	if err != nil {
		t.Fatal(err)
	}
	hand, _ := filepath.Glob("testdata/*.json")
	files = append(files, hand...)
	if len(files) < 10 {
		t.Fatalf("found only %d DDLs: %v", len(files), files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			a := mustLoad(t, f)
			doc := Doc(a)
			if !strings.HasPrefix(doc, a.Metadata.Name+"\n") {
				t.Errorf("doc does not start with the agent name:\n%s", doc)
			}
			for _, act := range a.Actions {
				if !strings.Contains(doc, "   "+act.Name+" action:\n") {
					t.Errorf("doc lacks action %s", act.Name)
				}
				for _, in := range act.InputNames() {
					if !strings.Contains(doc, "           "+in+":\n") {
						t.Errorf("doc lacks input %s.%s", act.Name, in)
					}
				}
				// Defaults must render and validate: the node applies them.
				if _, err := act.ValidateInputs(requiredValues(act)); err != nil {
					t.Errorf("%s: defaults do not validate: %v", act.Name, err)
				}
				act.FormatOutputs(act.OutputDefaults())
			}
		})
	}
}

// requiredValues fills required inputs with a plausible value of their type.
func requiredValues(act *Action) map[string]any {
	data := map[string]any{}
	for name, in := range act.Input {
		if in.Optional {
			continue
		}
		switch in.Type {
		case TypeString:
			data[name] = "abc"
			switch in.Validation {
			case "ipaddress", "ipv4address":
				data[name] = "192.0.2.1"
			case "ipv6address":
				data[name] = "2001:db8::1"
			}
		case TypeList:
			data[name] = in.List[0]
		case TypeBoolean:
			data[name] = true
		case TypeInteger, TypeFloat, TypeNumber:
			data[name] = float64(1)
		case TypeHash:
			data[name] = map[string]any{}
		case TypeArray:
			data[name] = []any{}
		}
	}
	return data
}

func TestFixtureDetails(t *testing.T) {
	pkg := mustLoad(t, "testdata/fixtures/package.json")
	if got, want := pkg.Action("install").InputNames(), []string{"package", "version"}; !cmp.Equal(got, want) {
		t.Errorf("install inputs %v, want file order %v", got, want)
	}
	if got := pkg.Action("install").OutputNames(); !cmp.Equal(got, []string{"output", "epoch", "arch", "ensure", "version", "provider", "name", "release"}) {
		t.Errorf("install outputs not in file order: %v", got)
	}
	yum := pkg.Action("yum_clean").Input["mode"]
	if yum.Type != TypeList || len(yum.List) == 0 {
		t.Errorf("yum_clean mode = %+v", yum)
	}
	if pkg.Action("nope") != nil {
		t.Error("Action(nope) should be nil")
	}

	// nrpe's summary uses the aggregate plugin that ships with that agent.
	nrpe := mustLoad(t, "testdata/fixtures/nrpe.json")
	if len(nrpe.Warnings) != 1 || !strings.Contains(nrpe.Warnings[0], `"nagios_states"`) {
		t.Errorf("nrpe warnings = %q", nrpe.Warnings)
	}
	if got := nrpe.Action("runcommand").Skipped(); len(got) != 1 {
		t.Errorf("nrpe runcommand skipped = %q", got)
	}
	for _, f := range []string{"filemgr", "iptables", "shell", "service", "puppet", "package", "rpcutil", "scout", "executor", "choria_util"} {
		if w := mustLoad(t, "testdata/fixtures/"+f+".json").Warnings; len(w) != 0 {
			t.Errorf("%s: unexpected warnings %q", f, w)
		}
	}

	puppet := mustLoad(t, "testdata/fixtures/puppet.json")
	logs := puppet.Action("last_run_summary").Input["logs"]
	if logs.Default != false {
		t.Errorf("logs default = %#v", logs.Default)
	}
	agg := puppet.Action("status").Aggregate[0]
	if agg.Function != AggregateBooleanSummary || agg.Output() != "enabled" || agg.labels[true] != "enabled" {
		t.Errorf("status aggregate = %+v", agg)
	}
	if puppet.Action("runonce").Input["server"].check == nil {
		t.Error("named validator puppet_server_address not compiled")
	}
}

func TestFullDDL(t *testing.T) {
	a := mustLoad(t, "testdata/full.json")
	want := Metadata{
		Name: "demo", Description: "Exercises every DDL field", Author: "Marionette authors",
		License: "Apache-2.0", Version: "1.2.3", URL: "https://example.net/demo", Timeout: 30,
		Provider: "external", Service: true,
	}
	if diff := cmp.Diff(want, a.Metadata); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
	if a.Schema == "" {
		t.Error("schema not kept")
	}
	if got := a.ActionNames(); !cmp.Equal(got, []string{"configure", "check", "ping", "report"}) {
		t.Errorf("actions %v", got)
	}
	c := a.Action("configure")
	defaults := map[string]any{}
	for name, in := range c.Input {
		if in.Default != nil {
			defaults[name] = in.Default
		}
	}
	wantDefaults := map[string]any{
		"comment": "none", "mode": "soft", "force": false, "retries": int64(3), "ratio": 0.5,
		"size": int64(10), "labels": map[string]any{"team": "ops"}, "hosts": []any{"a", "b"},
	}
	if diff := cmp.Diff(wantDefaults, defaults); diff != "" {
		t.Errorf("input defaults (-want +got):\n%s", diff)
	}
	if !c.Input["token"].Secret || c.Input["name"].MaxLength != 20 {
		t.Errorf("secret/maxlength not parsed")
	}
	if len(c.Aggregate) != 6 || c.Aggregate[2].format == nil {
		t.Errorf("aggregates = %+v", c.Aggregate)
	}
	if c.Output["files"].Type != TypeArray || c.Output["status"].Default != "unknown" {
		t.Errorf("outputs = %+v", c.Output)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		file   string
		path   string // JSON path named by the error; empty for syntax errors
		reason string // substring of the reason
	}{
		{"not_a_ddl", "metadata", "required"}, // JSON, but no DDL at all
		{"missing_author", "metadata.author", "required"},
		{"zero_timeout", "metadata.timeout", "positive"},
		{"unknown_type", "actions[2].input.port.type", `unknown type "port"`},
		{"bad_regex", "actions[2].input.port.validation", "invalid regular expression"},
		{"default_wrong_type", "actions[2].input.port.default", "must be an integer, not string"},
		{"default_fraction", "actions[2].input.port.default", "must be an integer"},
		{"list_without_values", "actions[2].input.port.list", "non-empty list"},
		{"list_default_not_in_list", "actions[2].input.port.default", "not in the list"},
		{"bad_agent_name", "metadata.name", "not a valid agent name"},
		{"bad_action_name", "actions[1].action", "not a valid action name"},
		{"duplicate_action", "actions[2].action", `duplicate action "first"`},
		{"bad_display", "actions[0].display", `unknown display rule "sometimes"`},
		{"aggregate_bad_format", "actions[2].aggregate[0].args[1].format", "too many directives, at most 1"},
		{"optional_not_bool", "actions[2].input.port.optional", "must be a boolean, not string"},
		{"no_actions", "actions", "at least one action"},
		{"syntax_error", "", "invalid JSON"},
		{"duplicate_key", "", `duplicate key "name"`},
		{"truncated", "", "unexpected end"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			file := filepath.Join("testdata", "bad", tt.file+".json")
			_, err := Load(file)
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("Load: got %v, want a *ParseError", err)
			}
			if pe.Path != tt.path || !strings.Contains(pe.Reason, tt.reason) {
				t.Errorf("got path %q reason %q, want path %q reason containing %q", pe.Path, pe.Reason, tt.path, tt.reason)
			}
			if !strings.HasPrefix(err.Error(), file+":") {
				t.Errorf("error %q does not name the file", err)
			}
			if tt.path != "" && !strings.Contains(err.Error(), file+": "+tt.path+": ") {
				t.Errorf("error %q does not read file: path: reason", err)
			}
			if tt.path == "" && pe.Line == 0 {
				t.Errorf("syntax error %q has no line", err)
			}
		})
	}
}

// TestParseWarnings loads DDLs that Choria accepts but that name what we do
// not ship: each loads, with one warning naming the file and JSON path, and
// the part concerned degrades as documented.
func TestParseWarnings(t *testing.T) {
	tests := []struct {
		file, path, reason string
	}{
		{"unknown_validator", "actions[2].input.port.validation", `unknown validator "port_number"`},
		{"validation_on_integer", "actions[2].input.port.validation", "only string inputs"},
		{"aggregate_unknown_output", "actions[2].aggregate[0].args[0]", `no output "nope"`},
		{"aggregate_unknown_function", "actions[2].aggregate[0].function", `unknown aggregate function "median"`},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			file := filepath.Join("testdata", "warn", tt.file+".json")
			a := mustLoad(t, file)
			if len(a.Warnings) != 1 {
				t.Fatalf("warnings = %q, want one", a.Warnings)
			}
			w := a.Warnings[0]
			if !strings.HasPrefix(w, file+": "+tt.path+": ") || !strings.Contains(w, tt.reason) {
				t.Errorf("warning %q, want %q: %q...", w, file+": "+tt.path, tt.reason)
			}
			if !strings.Contains(Doc(a), "WARNINGS:\n=========\n   "+w+"\n") {
				t.Errorf("doc does not show the warning:\n%s", Doc(a))
			}
		})
	}

	t.Run("unknown validator degrades to type and maxlength", func(t *testing.T) {
		a := mustLoad(t, "testdata/warn/unknown_validator.json")
		act := a.Action("third")
		if _, err := act.ValidateInputs(map[string]any{"port": "anything; at all"}); err != nil {
			t.Errorf("unchecked validator still applied: %v", err)
		}
		if _, err := act.ValidateInputs(map[string]any{"port": 80}); err == nil {
			t.Error("type no longer checked")
		}
		if !strings.Contains(Doc(a), "Validation: port_number (validator not available: not checked)") {
			t.Errorf("doc does not say the validator is not checked:\n%s", Doc(a))
		}
	})

	t.Run("unknown aggregate is skipped with a note", func(t *testing.T) {
		a := mustLoad(t, "testdata/warn/aggregate_unknown_function.json")
		act := a.Action("third")
		if got := act.Summarize([]map[string]any{{"result": "x"}}); len(got) != 0 {
			t.Errorf("Summarize = %+v, want nothing", got)
		}
		want := []string{"summary median(result) skipped: aggregate function median is not available"}
		if diff := cmp.Diff(want, act.Skipped()); diff != "" {
			t.Errorf("Skipped (-want +got):\n%s", diff)
		}
	})
}

// TestChoriaSpelling loads a DDL written the way Choria's schema allows:
// capitalised type names, a validator plugin we do not ship.
func TestChoriaSpelling(t *testing.T) {
	a := mustLoad(t, "testdata/choria_style.json")
	act := a.Action("check")
	if act.Input["target"].Type != TypeString || act.Input["options"].Type != TypeHash || act.Output["hops"].Type != TypeArray {
		t.Errorf("types not normalized: %+v %+v %+v", act.Input["target"], act.Input["options"], act.Output["hops"])
	}
	if len(a.Warnings) != 1 || !strings.Contains(a.Warnings[0], `unknown validator "nettest_fqdn"`) {
		t.Errorf("warnings = %q", a.Warnings)
	}
	if _, err := act.ValidateInputs(map[string]any{"target": strings.Repeat("a", 300)}); err == nil || !strings.Contains(err.Error(), "longer than 255") {
		t.Errorf("maxlength not applied with an unknown validator: %v", err)
	}
	got, err := act.ValidateInputs(map[string]any{"target": "host.example.net", "options": map[string]any{"ttl": 3.0}})
	if err != nil || got["target"] != "host.example.net" {
		t.Errorf("ValidateInputs = %v, %v", got, err)
	}
}

func TestSyntaxErrorPosition(t *testing.T) {
	_, err := Parse("x.json", []byte("{\n  \"a\": 1,\n  \"b\" 2\n}"))
	if err == nil || !strings.HasPrefix(err.Error(), "x.json:3:") {
		t.Fatalf("got %v, want an error at x.json:3:col", err)
	}
	_, err = Parse("x.json", []byte(`{"metadata": {}} {}`))
	if err == nil || !strings.Contains(err.Error(), "invalid JSON") {
		t.Fatalf("trailing data: got %v", err)
	}
	_, err = Parse("x.json", []byte(strings.Repeat("[", 500)+strings.Repeat("]", 500)))
	if err == nil || !strings.Contains(err.Error(), "nesting") {
		t.Fatalf("deep nesting: got %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/does-not-exist.json")
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("got %v, want a wrapped ErrNotExist", err)
	}
}

// TestConcurrentUse runs validation, rendering and aggregation of one parsed
// Agent from many goroutines; go test -race checks the Agent stays read-only.
func TestConcurrentUse(t *testing.T) {
	a := mustLoad(t, "testdata/full.json")
	act := a.Action("configure")
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			out, err := act.ValidateInputs(map[string]any{"name": "abc"})
			if err != nil {
				t.Error(err)
				return
			}
			out["labels"].(map[string]any)["team"] = "changed" // must not leak into the DDL
			d := act.OutputDefaults()
			d["files"] = append(d["files"].([]any), "x")
			act.Summarize([]map[string]any{d})
			act.FormatOutputs(d)
			Doc(a)
		})
	}
	wg.Wait()
	if got := act.Input["labels"].Default.(map[string]any)["team"]; got != "ops" {
		t.Errorf("default was modified through a returned map: %v", got)
	}
}
