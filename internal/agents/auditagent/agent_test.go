package auditagent

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

// writeLog writes n completion records with the real audit log and returns
// its path and lines.
func writeLog(t *testing.T, n int) (string, []string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := audit.Open(path, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		rec := audit.CompleteRecord{Kind: audit.KindComplete, Time: time.Unix(int64(i), 0).UTC(),
			RequestID: strings.Repeat("r", 400), Node: "n1"}
		if err := l.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return path, strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
}

// call runs the agent's lines action like the node would after validation.
func call(t *testing.T, path string, data map[string]any) *agent.Reply {
	t.Helper()
	readers, err := security.ParseMatcher("collector.mcollective")
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(path, readers)
	if err != nil {
		t.Fatal(err)
	}
	h, ok := a.Handler("lines")
	if !ok {
		t.Fatal("no lines handler")
	}
	rep := &agent.Reply{Data: map[string]any{}}
	caller := "cert=collector.mcollective"
	if c, ok := data["caller"].(string); ok {
		caller = c
		delete(data, "caller")
	}
	h(context.Background(), &agent.Request{Agent: "audit", Action: "lines", CallerID: caller, Data: data}, rep)
	return rep
}

func TestLines(t *testing.T) {
	path, lines := writeLog(t, 10)
	tests := []struct {
		name       string
		data       map[string]any
		wantStatus protocol.StatusCode
		want       []string
	}{
		{name: "all", data: map[string]any{"from": int64(1)}, want: lines},
		{name: "to the end", data: map[string]any{"from": int64(8)}, want: lines[7:]},
		{name: "range", data: map[string]any{"from": int64(3), "to": int64(5)}, want: lines[2:5]},
		{name: "one line", data: map[string]any{"from": int64(4), "to": int64(4)}, want: lines[3:4]},
		{name: "to past the end", data: map[string]any{"from": int64(9), "to": int64(50)}, want: lines[8:]},
		{name: "from past the end", data: map[string]any{"from": int64(11)}, want: []string{}},
		{name: "from zero", data: map[string]any{"from": int64(0)}, wantStatus: protocol.InvalidData},
		{name: "no from", data: map[string]any{}, wantStatus: protocol.InvalidData},
		{name: "to before from", data: map[string]any{"from": int64(5), "to": int64(4)}, wantStatus: protocol.InvalidData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := call(t, path, tt.data)
			if rep.Status != tt.wantStatus {
				t.Fatalf("status %d (%s), want %d", rep.Status, rep.Message, tt.wantStatus)
			}
			if tt.wantStatus != protocol.OK {
				return
			}
			got, _ := rep.Data["lines"].([]string)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") || len(got) != len(tt.want) {
				t.Errorf("lines = %q, want %q", got, tt.want)
			}
			if rep.Data["head"] != uint64(10) || rep.Data["next"] != uint64(0) {
				t.Errorf("head %v next %v, want 10 and 0", rep.Data["head"], rep.Data["next"])
			}
		})
	}
}

func TestReadPages(t *testing.T) {
	path, lines := writeLog(t, 10)
	// Room for three lines per page (the last line is the longest).
	page := 3 * jsonSize([]byte(lines[9]))
	var got []string
	for from, pages := uint64(1), 0; from != 0; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		res, err := Read(context.Background(), path, from, 0, page)
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Lines) != 3 && res.Next != 0 {
			t.Errorf("page from %d has %d lines with next %d, want 3", from, len(res.Lines), res.Next)
		}
		if res.Head != 10 {
			t.Errorf("head = %d, want 10", res.Head)
		}
		got = append(got, res.Lines...)
		from = res.Next
	}
	if strings.Join(got, "\n") != strings.Join(lines, "\n") {
		t.Errorf("paged lines differ from the log")
	}

	// A line longer than the cap still comes back, alone.
	res, err := Read(context.Background(), path, 2, 0, 10)
	if err != nil || len(res.Lines) != 1 || res.Next != 3 {
		t.Errorf("Read with a tiny cap = %+v, %v; want one line and next 3", res, err)
	}
}

func TestReadPartialLastLine(t *testing.T) {
	path, lines := writeLog(t, 3)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(`{"seq":4,"prev":"ab`); err != nil { // a write in progress
		t.Fatal(err)
	}
	f.Close()
	res, err := Read(context.Background(), path, 1, 0, MaxReplyBytes)
	if err != nil || len(res.Lines) != 3 || res.Head != 3 || res.Lines[2] != lines[2] {
		t.Errorf("Read = %+v, %v; want the 3 complete lines", res, err)
	}

	// The same bytes in the middle of the log are corruption, not ignored.
	if err := os.WriteFile(path, []byte(lines[0]+"\nnot json\n"+lines[1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Read(context.Background(), path, 1, 0, MaxReplyBytes); err == nil || !strings.Contains(err.Error(), "line 2") {
		t.Errorf("Read of a corrupt log: err = %v, want one naming line 2", err)
	}
}

func TestMissingLog(t *testing.T) {
	rep := call(t, filepath.Join(t.TempDir(), "nope.log"), map[string]any{"from": int64(1)})
	if rep.Status != protocol.Aborted || !strings.Contains(rep.Message, "nope.log") || !strings.Contains(rep.Message, "no such file") {
		t.Errorf("reply = %d %q, want status 1 naming the missing file", rep.Status, rep.Message)
	}
}

func TestDDL(t *testing.T) {
	d, err := DDL()
	if err != nil {
		t.Fatal(err)
	}
	a := d.Action("lines")
	if d.Metadata.Name != "audit" || a == nil || a.Input["from"].Optional || !a.Input["to"].Optional {
		t.Errorf("DDL = %+v", d)
	}
	for _, o := range []string{"lines", "next", "head"} {
		if a.Output[o] == nil {
			t.Errorf("DDL lacks output %q", o)
		}
	}
}

// TestLinesOnlyForReaders: a caller not in audit.readers is refused even if
// ActionPolicy let the request through.
func TestLinesOnlyForReaders(t *testing.T) {
	path, _ := writeLog(t, 3)
	rep := call(t, path, map[string]any{"from": int64(1), "caller": "cert=alice.mcollective"})
	if rep.Status != protocol.Aborted || !strings.Contains(rep.Message, "audit.readers") || rep.Data["lines"] != nil {
		t.Fatalf("reply to a non-reader: %d %q %v", rep.Status, rep.Message, rep.Data)
	}
}

// TestReadSeeksInLongLogs: in a log far larger than the binary search's
// window, any range comes back exactly, and the head is the last line.
func TestReadSeeksInLongLogs(t *testing.T) {
	path, lines := writeLog(t, 20000) // about 12 MB
	for _, r := range []struct{ from, to uint64 }{{1, 3}, {9999, 10001}, {15000, 15000}, {19998, 0}} {
		res, err := Read(context.Background(), path, r.from, r.to, MaxReplyBytes)
		if err != nil {
			t.Fatal(err)
		}
		last := r.to
		if last == 0 {
			last = 20000
		}
		want := lines[r.from-1 : last]
		if len(res.Lines) != len(want) || res.Lines[0] != want[0] || res.Lines[len(res.Lines)-1] != want[len(want)-1] {
			t.Fatalf("Read(%d, %d): %d lines, want %d", r.from, r.to, len(res.Lines), len(want))
		}
		if res.Head != 20000 {
			t.Fatalf("head = %d, want 20000", res.Head)
		}
	}
}
