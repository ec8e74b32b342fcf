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
		{"missing_author", "metadata.author", "required"},
		{"zero_timeout", "metadata.timeout", "positive"},
		{"unknown_type", "actions[2].input.port.type", `unknown type "port"`},
		{"bad_regex", "actions[2].input.port.validation", "invalid regular expression"},
		{"default_wrong_type", "actions[2].input.port.default", "must be an integer, not string"},
		{"default_fraction", "actions[2].input.port.default", "must be an integer"},
		{"unknown_validator", "actions[2].input.port.validation", `unknown validator "port_number"`},
		{"validation_on_integer", "actions[2].input.port.validation", "only string inputs"},
		{"list_without_values", "actions[2].input.port.list", "non-empty list"},
		{"list_default_not_in_list", "actions[2].input.port.default", "not in the list"},
		{"bad_agent_name", "metadata.name", "not a valid agent name"},
		{"bad_action_name", "actions[1].action", "not a valid action name"},
		{"duplicate_action", "actions[2].action", `duplicate action "first"`},
		{"bad_display", "actions[0].display", `unknown display rule "sometimes"`},
		{"aggregate_unknown_output", "actions[2].aggregate[0].args[0]", `no output "nope"`},
		{"aggregate_unknown_function", "actions[2].aggregate[0].function", `unknown aggregate function "median"`},
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
