package ddl

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestShouldDisplay(t *testing.T) {
	tests := []struct {
		display, override string
		ok, want          bool
	}{
		{"", "", true, true},
		{"", "", false, false},
		{"ok", "", true, true},
		{"ok", "", false, false},
		{"failed", "", true, false},
		{"failed", "", false, true},
		{"always", "", true, true},
		{"always", "", false, true},
		{"failed", "ok", true, true},
		{"failed", "ok", false, false},
		{"ok", "failed", true, false},
		{"ok", "failed", false, true},
		{"ok", "all", false, true},
		{"failed", "all", true, true},
		{"failed", "bogus", true, false}, // unknown override: DDL rule
	}
	for _, tt := range tests {
		act := &Action{Display: tt.display}
		if got := act.ShouldDisplay(tt.ok, tt.override); got != tt.want {
			t.Errorf("display %q override %q ok=%v: got %v, want %v", tt.display, tt.override, tt.ok, got, tt.want)
		}
	}
}

func TestFormatOutputs(t *testing.T) {
	act := configure(t)
	got := act.FormatOutputs(map[string]any{
		"status":   "done",
		"changed":  true,
		"duration": 1.5,
		"count":    412.0,
		"files":    []any{"/etc/a", "/etc/<b>"},
		"details":  map[string]any{"k": "v", "n": 1.0},
		"zextra":   nil,
		"aextra":   "line one\nline two",
	})
	want := []string{
		"       Status: done",
		"      Changed: true",
		"     Duration: 1.5",
		"Files Written: [\"/etc/a\",\"/etc/<b>\"]",
		"      Details: {\"k\":\"v\",\"n\":1}",
		"        Count: 412",
		"       aextra: line one",
		"               line two",
		"       zextra:",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got := act.FormatOutputs(nil); len(got) != 0 {
		t.Errorf("empty data rendered %q", got)
	}
}

func TestOutputDefaults(t *testing.T) {
	act := configure(t)
	want := map[string]any{
		"status": "unknown", "changed": false, "duration": 0.0, "files": []any{}, "details": map[string]any{},
	}
	got := act.OutputDefaults()
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	got["details"].(map[string]any)["x"] = 1
	if len(act.Output["details"].Default.(map[string]any)) != 0 {
		t.Error("OutputDefaults shares maps with the DDL")
	}
}

func TestSummarize(t *testing.T) {
	act := configure(t)
	var replies []map[string]any
	add := func(n int, r map[string]any) {
		for range n {
			replies = append(replies, r)
		}
	}
	add(412, map[string]any{"status": "1.1.1n-0+deb11u5", "changed": true, "duration": 1.0, "count": 2.0, "files": []any{"/a", "/b"}})
	add(3, map[string]any{"status": "1.1.1w-0+deb11u1", "changed": false, "duration": 4.0, "count": 1.0, "files": []any{"/a"}})
	add(1, map[string]any{"status": nil, "changed": "not a bool", "duration": "slow"}) // unusable values are skipped

	got := act.Summarize(replies)
	var rendered []string
	for _, s := range got {
		rendered = append(rendered, s.String())
	}
	want := []string{
		"Summary of Status:\n\n" +
			"   1.1.1n-0+deb11u5 = 412\n" +
			"   1.1.1w-0+deb11u1 = 3\n",
		"Summary of Changed:\n\n" +
			"     Changed = 412\n" +
			"   Unchanged = 3\n",
		"Summary of Duration:\n\n" +
			"   Average: 1.0 s\n",
		"Summary of Count:\n\n" +
			"   Total: 827\n",
		"Summary of Status:\n\n" +
			"   1.1.1n-0+deb11u5 | ######################################## 412\n" +
			"   1.1.1w-0+deb11u1 | # 3\n",
		"Summary of Files Written:\n\n" +
			"   /a written on 415 node(s)\n" +
			"   /b written on 412 node(s)\n",
	}
	if diff := cmp.Diff(want, rendered); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	if got[0].Counts["1.1.1w-0+deb11u1"] != 3 || *got[3].Value != 827 {
		t.Errorf("structured results wrong: %+v", got)
	}
}

func TestSummarizeFixtures(t *testing.T) {
	puppet := mustLoad(t, "testdata/fixtures/puppet.json")
	sums := puppet.Action("last_run_summary").Summarize([]map[string]any{
		{"config_retrieval_time": 1.0, "total_time": 3.0, "total_resources": 10.0},
		{"config_retrieval_time": 2.0, "total_time": 4.0, "total_resources": 13.0},
	})
	var got []string
	for _, s := range sums {
		got = append(got, s.String())
	}
	want := []string{
		"Summary of Config Retrieval Time:\n\n   Average: 1.50\n",
		"Summary of Total Time:\n\n   Average: 3.50\n",
		"Summary of Total Resources:\n\n   Average: 12\n", // Ruby %d of 11.5, rounded
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	status := puppet.Action("status").Summarize([]map[string]any{
		{"enabled": true, "daemon_present": false, "applying": false, "status": "idling", "idling": true},
		{"enabled": false, "daemon_present": false, "applying": false, "status": "stopped", "idling": false},
	})
	if len(status) != 5 || status[1].String() != "Summary of Daemon Running:\n\n   stopped = 2\n" {
		t.Errorf("status summaries: %q", status)
	}

	scout := mustLoad(t, "testdata/fixtures/scout.json")
	for _, act := range scout.Actions {
		for _, s := range act.Summarize([]map[string]any{act.OutputDefaults()}) {
			if strings.Contains(s.String(), "%!") {
				t.Errorf("%s: bad formatting %q", act.Name, s)
			}
		}
	}
}

func TestSummarizeNothing(t *testing.T) {
	act := configure(t)
	if got := act.Summarize(nil); len(got) != 0 {
		t.Errorf("no replies gave %v", got)
	}
	deploy := mustLoad(t, "testdata/deploy.json").Action("release")
	got := deploy.Summarize([]map[string]any{{"restarted": true, "version": "1"}})
	if len(got) != 2 || got[1].Lines[0] != "true = 1" {
		t.Errorf("default boolean labels: %+v", got)
	}
}

// TestDocGolden pins the layout of `mco plugin doc` on the hand-written DDL.
// Run with UPDATE_GOLDEN=1 to rewrite testdata/full.doc.golden.
func TestDocGolden(t *testing.T) {
	got := Doc(mustLoad(t, "testdata/full.json"))
	const golden = "testdata/full.doc.golden"
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("doc differs from %s (-want +got):\n%s", golden, diff)
	}
}
