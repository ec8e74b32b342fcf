package audit

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// buildCollection collects two nodes' logs into a directory:
//
//	node a: requests at t+1s (bob, rpcutil ping, completed), t+3s (jill, package
//	        install, denied and completed)
//	node b: requests at t+2s (bob, package install, no completion yet)
func buildCollection(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	col, err := NewCollector(dir, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	logs := map[string]*Log{}
	for _, node := range []string{"a", "b"} {
		l, err := Open(filepath.Join(t.TempDir(), node+".log"), Options{OnAppend: func(line []byte) {
			if err := col.Handle(node, line); err != nil {
				t.Fatal(err)
			}
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		logs[node] = l
	}
	add := func(node string, rec any) {
		t.Helper()
		if err := logs[node].Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	r1 := testRequest(1, "a")
	add("a", r1)
	add("a", CompleteRecord{Kind: KindComplete, Time: r1.Time, RequestID: r1.RequestID, Status: 0, StatusMessage: "OK", DurationMS: 4, Node: "a"})
	r3 := testRequest(3, "a")
	r3.Caller, r3.Agent, r3.Action, r3.Decision = "cert=jill.mcollective", "package", "install", Deny
	add("a", r3)
	add("a", CompleteRecord{Kind: KindComplete, Time: r3.Time, RequestID: r3.RequestID, Status: 1, StatusMessage: "You are not authorized to call this agent or action", Node: "a"})
	r2 := testRequest(2, "b")
	r2.Agent, r2.Action = "package", "install"
	add("b", r2)
	return dir
}

func TestSearch(t *testing.T) {
	dir := buildCollection(t)
	at := func(s int) time.Time { return testEpoch.Add(time.Duration(s) * time.Second) }
	tests := []struct {
		name string
		q    Query
		want []string // "node:request id" in result order
	}{
		{name: "everything, by time across nodes", q: Query{}, want: []string{"a:req-a-1", "b:req-b-2", "a:req-a-3"}},
		{name: "caller", q: Query{Caller: "cert=bob.mcollective"}, want: []string{"a:req-a-1", "b:req-b-2"}},
		{name: "agent and action", q: Query{Agent: "package", Action: "install"}, want: []string{"b:req-b-2", "a:req-a-3"}},
		{name: "node", q: Query{Node: "b"}, want: []string{"b:req-b-2"}},
		{name: "unknown node", q: Query{Node: "zz"}, want: nil},
		{name: "since is inclusive", q: Query{Since: at(2)}, want: []string{"b:req-b-2", "a:req-a-3"}},
		{name: "until is inclusive", q: Query{Until: at(2)}, want: []string{"a:req-a-1", "b:req-b-2"}},
		{name: "window", q: Query{Since: at(2), Until: at(2)}, want: []string{"b:req-b-2"}},
		{name: "no match", q: Query{Caller: "cert=mallory"}, want: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recs, err := Search(dir, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Node+":"+r.Request.RequestID)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Search (-want +got):\n%s", diff)
			}
		})
	}
}

func TestSearchJoinsCompletions(t *testing.T) {
	recs, err := Search(buildCollection(t), Query{})
	if err != nil {
		t.Fatal(err)
	}
	type joined struct {
		ID       string
		Decision Decision
		Status   int // -1: no completion
		Seq      uint64
	}
	var got []joined
	for _, r := range recs {
		j := joined{ID: r.Request.RequestID, Decision: r.Request.Decision, Status: -1, Seq: r.Seq}
		if r.Completion != nil {
			j.Status = r.Completion.Status
		}
		if r.Broken != "" {
			t.Errorf("%s flagged broken: %s", j.ID, r.Broken)
		}
		got = append(got, j)
	}
	want := []joined{
		{ID: "req-a-1", Decision: Allow, Status: 0, Seq: 1},
		{ID: "req-b-2", Decision: Allow, Status: -1, Seq: 1},
		{ID: "req-a-3", Decision: Deny, Status: 1, Seq: 3},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("joined records (-want +got):\n%s", diff)
	}
}

func TestSearchFlagsBrokenLinks(t *testing.T) {
	_, lines := writeTestLog(t, 3, Options{})
	dir := t.TempDir()
	col, err := NewCollector(dir, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range [][]byte{lines[0], lines[2]} { // line 2 lost
		if err := col.Handle("n", line); err != nil {
			t.Fatal(err)
		}
	}
	recs, err := Search(dir, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Broken != "" || recs[1].Broken == "" {
		t.Errorf("Search = %+v, want the second record flagged broken", recs)
	}
}

func TestSearchBadNode(t *testing.T) {
	if _, err := Search(t.TempDir(), Query{Node: "../x"}); err == nil {
		t.Error("Search accepted a node name with a path")
	}
}

// TestSearchJoinsJobEnd: a detached job's end line joins its request by
// the job id, after the completion (which only says it started).
func TestSearchJoinsJobEnd(t *testing.T) {
	dir := t.TempDir()
	col, err := NewCollector(dir, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(filepath.Join(t.TempDir(), "a.log"), Options{OnAppend: func(line []byte) {
		if err := col.Handle("a", line); err != nil {
			t.Fatal(err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	r := testRequest(1, "a")
	r.JobID = r.RequestID
	other := testRequest(2, "a")
	for _, rec := range []any{
		r,
		CompleteRecord{Kind: KindComplete, Time: r.Time, RequestID: r.RequestID, StatusMessage: "started job " + r.RequestID, Node: "a", JobID: r.RequestID},
		other,
		JobRecord{Kind: KindJob, Time: r.Time.Add(time.Minute), RequestID: r.RequestID, JobID: r.RequestID, State: "timeout", Status: 1, Node: "a"},
	} {
		if err := l.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	got, err := Search(dir, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Job == nil || got[0].Job.State != "timeout" || got[0].Completion == nil || got[1].Job != nil {
		t.Fatalf("search: %+v", got)
	}
}
