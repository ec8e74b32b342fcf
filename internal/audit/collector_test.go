package audit

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/poll"
)

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestCollectorHandle(t *testing.T) {
	localPath, lines := writeTestLog(t, 5, Options{})
	local, err := os.ReadFile(localPath)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		feed       [][]byte
		wantBroken uint64
		wantSame   bool     // the collected file equals the local log
		stored     [][]byte // what the file holds; nil: feed
	}{
		{name: "all lines", feed: lines, wantSame: true},
		{name: "a line lost", feed: [][]byte{lines[0], lines[1], lines[3], lines[4]}, wantBroken: 1},
		// A line delivered twice adds nothing: skipped, not flagged.
		{name: "a line delivered twice", feed: [][]byte{lines[0], lines[1], lines[1], lines[2]}, stored: lines[:3]},
		{name: "an old line delivered again", feed: [][]byte{lines[0], lines[1], lines[2], lines[0]}, stored: lines[:3]},
		{name: "a line replaced", feed: [][]byte{lines[0], lines[1], lines[2], edited(t, lines[1])}, wantBroken: 1},
		{name: "collection starts late", feed: lines[2:], wantBroken: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			col, err := NewCollector(dir, quietLogger())
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range tt.feed {
				if err := col.Handle("node1.example.com", line); err != nil {
					t.Fatal(err)
				}
			}
			want := tt.stored
			if want == nil {
				want = tt.feed
			}
			got := col.Stats().Nodes["node1.example.com"]
			if got.Records != uint64(len(want)) || got.Broken != tt.wantBroken || got.Duplicates != uint64(len(tt.feed)-len(want)) {
				t.Errorf("stats = %+v, want %d records, %d broken, %d duplicates", got, len(want), tt.wantBroken, len(tt.feed)-len(want))
			}
			// Broken or not, every line is stored as sent.
			path := filepath.Join(dir, "node1.example.com.log")
			stored, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(stored, joinLines(want)) {
				t.Errorf("stored file differs from the lines fed")
			}
			if tt.wantSame && !bytes.Equal(stored, local) {
				t.Errorf("collected file differs from the node's local log")
			}
			if _, err := VerifyFile(path); (err == nil) != (tt.wantBroken == 0) {
				t.Errorf("VerifyFile(collected) err = %v, want error: %v", err, tt.wantBroken != 0)
			}
		})
	}
}

func TestCollectorRejects(t *testing.T) {
	_, lines := writeTestLog(t, 1, Options{})
	tests := []struct {
		name     string
		identity string
		line     []byte
	}{
		{name: "empty identity", identity: "", line: lines[0]},
		{name: "path traversal", identity: "../etc", line: lines[0]},
		{name: "hidden file", identity: ".x", line: lines[0]},
		{name: "slash", identity: "a/b", line: lines[0]},
		{name: "not JSON", identity: "n", line: []byte("hello")},
		{name: "two lines", identity: "n", line: append(append(bytes.Clone(lines[0]), '\n'), lines[0]...)},
		{name: "empty line", identity: "n", line: []byte{}},
	}
	dir := t.TempDir()
	col, err := NewCollector(dir, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := col.Handle(tt.identity, tt.line); err == nil {
				t.Error("Handle accepted it")
			}
		})
	}
	if s := col.Stats(); s.Rejected != uint64(len(tests)) || len(s.Nodes) != 0 {
		t.Errorf("stats = %+v, want %d rejected and no nodes", s, len(tests))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("rejected lines created files: %v", entries)
	}
}

func TestCollectorResumesFromFiles(t *testing.T) {
	_, lines := writeTestLog(t, 5, Options{})
	dir := t.TempDir()
	first, err := NewCollector(dir, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range lines[:3] {
		if err := first.Handle("n1", line); err != nil {
			t.Fatal(err)
		}
	}
	// A torn write from a crash in another node's file is terminated and
	// flagged once, not fatal.
	torn := filepath.Join(dir, "n2.log")
	if err := os.WriteFile(torn, append(joinLines(lines[:1]), lines[1][:20]...), 0o600); err != nil {
		t.Fatal(err)
	}

	second, err := NewCollector(dir, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range lines[3:] {
		if err := second.Handle("n1", line); err != nil {
			t.Fatal(err)
		}
		if err := second.Handle("n2", line); err != nil {
			t.Fatal(err)
		}
	}
	stats := second.Stats().Nodes
	if s := stats["n1"]; s.Broken != 0 || s.Records != 2 {
		t.Errorf("n1 stats = %+v, want 2 records, none broken", s)
	}
	if s := stats["n2"]; s.Broken != 1 || s.Records != 2 {
		t.Errorf("n2 stats = %+v, want 2 records, 1 broken", s)
	}
	if n, err := VerifyFile(filepath.Join(dir, "n1.log")); n != 5 || err != nil {
		t.Errorf("VerifyFile(n1) = %d, %v; want 5, nil", n, err)
	}
	if got := readLines(t, torn); len(got) != 4 {
		t.Errorf("n2 file has %d lines, want 4 (torn line terminated, then 2 appended)", len(got))
	}
}

func TestCollectorOverNATS(t *testing.T) {
	const collective, identity = "mcollective", "node1.example.com"
	url := natstest.Start(t)

	dir := t.TempDir()
	col, err := NewCollector(dir, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	collectorConn := natstest.Connect(t, url)
	sub, err := col.Subscribe(collectorConn, collective)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := collectorConn.Flush(); err != nil { // the server has the subscription
		t.Fatal(err)
	}

	// The daemon's wiring: publish every line to <collective>.audit.<identity>
	// (protocol.AuditSubject).
	nodeConn := natstest.Connect(t, url)
	localPath := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(localPath, Options{OnAppend: func(line []byte) {
		if err := nodeConn.Publish(collective+".audit."+identity, line); err != nil {
			t.Error(err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	const requests = 20
	for i := 1; i <= requests; i++ {
		req := testRequest(i, identity)
		if err := l.Append(req); err != nil {
			t.Fatal(err)
		}
		if err := l.Append(CompleteRecord{Kind: KindComplete, Time: req.Time, RequestID: req.RequestID, DurationMS: 1, Node: identity}); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := nodeConn.Flush(); err != nil {
		t.Fatal(err)
	}

	if !poll.Wait(func() bool { return col.Stats().Nodes[identity].Records >= 2*requests }) {
		t.Fatalf("collector has %+v, want %d records", col.Stats(), 2*requests)
	}

	if s := col.Stats().Nodes[identity]; s.Broken != 0 {
		t.Errorf("collector saw %d broken links", s.Broken)
	}
	local, _ := os.ReadFile(localPath)
	central, _ := os.ReadFile(filepath.Join(dir, identity+".log"))
	if !bytes.Equal(local, central) {
		t.Error("central copy differs from the node's local log")
	}
	recs, err := Search(dir, Query{Node: identity})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != requests || recs[0].Completion == nil {
		t.Errorf("Search found %d records (first %+v), want %d joined with completions", len(recs), recs[0], requests)
	}
}
