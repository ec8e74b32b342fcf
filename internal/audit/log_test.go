package audit

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/marionette/mco/internal/pkitest"
)

func TestRestartContinuesChain(t *testing.T) {
	tests := []struct {
		name  string
		crash func(*testing.T, *Log) // how the first Log ends
	}{
		{name: "clean close", crash: func(t *testing.T, l *Log) {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "crash without close", crash: func(_ *testing.T, l *Log) { crash(l) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "audit.log")
			l, err := Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			for i := 1; i <= 3; i++ {
				if err := l.Append(testRequest(i, "node1")); err != nil {
					t.Fatal(err)
				}
			}
			seq, hash := l.Head()
			tt.crash(t, l)

			l, err = Open(path, Options{})
			if err != nil {
				t.Fatal(err)
			}
			if s, h := l.Head(); s != seq || h != hash {
				t.Errorf("reopened head = %d %s, want %d %s", s, h, seq, hash)
			}
			for i := 4; i <= 5; i++ {
				if err := l.Append(testRequest(i, "node1")); err != nil {
					t.Fatal(err)
				}
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if n, err := VerifyFile(path); n != 5 || err != nil {
				t.Fatalf("VerifyFile = %d, %v; want 5, nil", n, err)
			}
		})
	}
}

func TestOpenRefusesTornLog(t *testing.T) {
	path, lines := writeTestLog(t, 3, Options{})
	b := joinLines(lines)
	if err := os.WriteFile(path, b[:len(b)-5], 0o600); err != nil {
		t.Fatal(err)
	}
	os.Remove(headPath(path)) // the torn line alone must stop Open
	if l, err := Open(path, Options{}); err == nil || !strings.Contains(err.Error(), "no newline") {
		t.Errorf("Open torn log: err = %v, want a 'no newline' error", err)
		if l != nil {
			l.Close()
		}
	}
}

func TestLogFileFormat(t *testing.T) {
	var published [][]byte
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{Sync: true, OnAppend: func(line []byte) {
		published = append(published, bytes.Clone(line))
	}})
	if err != nil {
		t.Fatal(err)
	}
	req := testRequest(1, "node1")
	done := CompleteRecord{Kind: KindComplete, Time: testEpoch, RequestID: req.RequestID, Status: 1, StatusMessage: "denied", DurationMS: 3, Node: "node1"}
	for _, rec := range []any{req, &done} {
		if err := l.Append(rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	lines := readLines(t, path)
	if diff := cmp.Diff(lines, published); diff != "" {
		t.Errorf("OnAppend lines differ from the file (-file +published):\n%s", diff)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("log mode = %v, %v; want 0600", st.Mode().Perm(), err)
	}

	// Each line is the record plus the chain fields.
	var got RequestRecord
	if err := json.Unmarshal(lines[0], &got); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(req, got); diff != "" {
		t.Errorf("request round trip (-want +got):\n%s", diff)
	}
	var h header
	if err := json.Unmarshal(lines[1], &h); err != nil || *h.Seq != 2 || *h.Prev != hashLine(lines[0]) {
		t.Errorf("second line header = %+v, %v; want seq 2 and prev = hash of line 1", h, err)
	}
}

func TestAppendRejects(t *testing.T) {
	tests := []struct {
		name string
		rec  any
		want string
	}{
		{name: "not an object", rec: []int{1}, want: "not a JSON object"},
		{name: "owns seq", rec: map[string]any{"seq": 9}, want: `"seq" key`},
		{name: "owns prev", rec: map[string]any{"prev": ""}, want: `"prev" key`},
		{name: "unmarshalable", rec: map[string]any{"f": func() {}}, want: "unsupported type"},
	}
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := l.Append(tt.rec); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Append err = %v, want %q", err, tt.want)
			}
		})
	}
	if seq, _ := l.Head(); seq != 0 {
		t.Errorf("rejected records advanced the chain to seq %d", seq)
	}
	if err := l.Append(struct{}{}); err != nil {
		t.Errorf("Append empty object: %v", err)
	}
}

func TestAppendAfterClose(t *testing.T) {
	l, err := Open(filepath.Join(t.TempDir(), "audit.log"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(testRequest(1, "n")); err == nil {
		t.Error("Append after Close succeeded")
	}
}

func TestMaskArguments(t *testing.T) {
	tests := []struct {
		name    string
		args    map[string]any
		secrets []string
		want    map[string]any
	}{
		{name: "no args", args: nil, secrets: []string{"password"}, want: nil},
		{name: "no secrets", args: map[string]any{"a": 1}, want: map[string]any{"a": 1}},
		{
			name:    "secret masked, others kept",
			args:    map[string]any{"user": "bob", "password": "hunter2", "token": 42},
			secrets: []string{"password", "token"},
			want:    map[string]any{"user": "bob", "password": Mask, "token": Mask},
		},
		{
			name:    "absent secret not added",
			args:    map[string]any{"user": "bob"},
			secrets: []string{"password"},
			want:    map[string]any{"user": "bob"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			orig := make(map[string]any, len(tt.args))
			for k, v := range tt.args {
				orig[k] = v
			}
			got := MaskArguments(tt.args, tt.secrets)
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("MaskArguments (-want +got):\n%s", diff)
			}
			if len(tt.args) > 0 && !cmp.Equal(orig, tt.args) {
				t.Errorf("MaskArguments changed its input to %v", tt.args)
			}
		})
	}
}

func TestMaskedSecretNeverReachesTheLog(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rec := testRequest(1, "node1")
	rec.Arguments = MaskArguments(map[string]any{"password": "hunter2"}, []string{"password"})
	if err := l.Append(rec); err != nil {
		t.Fatal(err)
	}
	l.Close()
	data, _ := os.ReadFile(path)
	if bytes.Contains(data, []byte("hunter2")) || !bytes.Contains(data, []byte(Mask)) {
		t.Errorf("log line %s: want the secret masked", data)
	}
}

func TestConcurrentAppends(t *testing.T) {
	const writers, each = 8, 250
	path := filepath.Join(t.TempDir(), "audit.log")
	dir := t.TempDir()
	col, err := NewCollector(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(path, Options{HeadEvery: 64, OnAppend: func(line []byte) {
		if err := col.Handle("node1", line); err != nil {
			t.Error(err)
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	appendConcurrently(t, l, writers, each)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n, err := VerifyFile(path); n != writers*each || err != nil {
		t.Fatalf("VerifyFile = %d, %v; want %d, nil", n, err, writers*each)
	}
	// Publication order is log order, so the central chain is intact too.
	if s := col.Stats().Nodes["node1"]; s.Records != writers*each || s.Broken != 0 {
		t.Errorf("collector stats = %+v, want %d records, 0 broken", s, writers*each)
	}
}

func BenchmarkAppend(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "audit.log"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	rec := testRequest(1, "node1.example.com")
	rec.Time = time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if err := l.Append(&rec); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAppendSeveral: records appended together become consecutive chained
// lines in one write, published in order; a checkpoint due between them
// goes between them, so no unsigned run is longer than CheckpointEvery.
func TestAppendSeveral(t *testing.T) {
	ca := pkitest.New(t, "audit CA")
	id := ca.Node("node1")
	var published [][]byte
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{Node: "node1", CheckpointEvery: 3,
		Checkpoint: func(msg []byte) ([]byte, []byte) { return id.Sign(msg), id.Cert.Raw },
		OnAppend:   func(line []byte) { published = append(published, bytes.Clone(line)) }})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 7; i += 2 {
		req := testRequest(i, "node1")
		done := &CompleteRecord{Kind: KindComplete, Time: req.Time, RequestID: req.RequestID, Status: 0, Node: "node1"}
		if err := l.Append(req, done); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	lines := readLines(t, path)
	if n, err := Verify(bytes.NewReader(joinLines(lines))); err != nil || n != len(lines) {
		t.Fatalf("verify: %d lines, %v", n, err)
	}
	if res, err := VerifyCheckpoints(path, ca.Cert, 3); err != nil || res.Unsigned != 0 {
		t.Fatalf("checkpoints: %+v, %v\n%s", res, err, joinLines(lines))
	}
	if !bytes.Equal(joinLines(published), joinLines(lines)) {
		t.Fatalf("published:\n%s\nwritten:\n%s", joinLines(published), joinLines(lines))
	}
	var kinds []string
	for _, line := range lines {
		var rec struct{ Kind string }
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		kinds = append(kinds, rec.Kind)
	}
	want := "request complete request checkpoint complete request complete checkpoint request complete checkpoint"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("kinds %s, want %s", got, want)
	}
}

// TestHeadFollowsConcurrentAppends: the periodic head sync runs while other
// appends go on, and still leaves the head file at the last line written:
// after a crash (no Close) it matches the log's end, and the log opens.
func TestHeadFollowsConcurrentAppends(t *testing.T) {
	const writers, each = 4, 200
	path := filepath.Join(t.TempDir(), "audit.log")
	l, err := Open(path, Options{HeadEvery: 3})
	if err != nil {
		t.Fatal(err)
	}
	appendConcurrently(t, l, writers, each)

	// The last line goes in while the last head sync is under way: the
	// head that sync renames into place is one line behind until it is
	// brought up to date.
	synced := make(chan struct{})
	l.headMu.Lock() // no sync under way
	l.mu.Lock()
	l.whileSyncing = func() {
		if err := l.Append(testRequest(writers*each, "node1")); err != nil {
			t.Error(err)
		}
		close(synced)
	}
	l.mu.Unlock()
	l.headMu.Unlock()
	for hooked := true; hooked; {
		if err := l.Append(testRequest(writers*each, "node1")); err != nil {
			t.Fatal(err)
		}
		l.mu.Lock()
		hooked = l.whileSyncing != nil
		l.mu.Unlock()
	}
	<-synced
	l.headMu.Lock() // the sync is done
	l.headMu.Unlock()

	seq, hash := l.Head()
	crash(l)
	head, err := readHeadFile(headPath(path))
	if err != nil {
		t.Fatal(err)
	}
	if head == nil || head.Seq != seq || head.Hash != hash {
		t.Fatalf("head file %+v, want seq %d hash %s", head, seq, hash)
	}
	l2, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := l2.Close(); err != nil {
		t.Fatal(err)
	}
}

// appendConcurrently has writers goroutines append each records apiece to l,
// numbered 0 to writers*each-1, and waits for them.
func appendConcurrently(t *testing.T, l *Log, writers, each int) {
	t.Helper()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if err := l.Append(testRequest(w*each+i, "node1")); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}
