package audit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/marionette/mco/internal/poll"
)

const backfillNode = "node1.example.com"

// edited returns line with one character of its body changed: same seq and
// prev, different hash.
func edited(t *testing.T, line []byte) []byte {
	t.Helper()
	out := bytes.Replace(line, []byte(`"ping"`), []byte(`"pong"`), 1)
	if bytes.Equal(out, line) {
		t.Fatal("edited: nothing to change")
	}
	return out
}

// fakeNode serves a node's local log to Collector.Fetch, page lines at a time
// (0: all), and records the ranges asked for.
type fakeNode struct {
	lines [][]byte
	page  int
	fail  error                         // returned instead of lines
	serve func(lines [][]byte) [][]byte // rewrites what is returned
	gate  chan struct{}                 // when set, each fetch waits for it

	mu    sync.Mutex
	asked [][2]uint64
}

func (n *fakeNode) fetch(ctx context.Context, node string, from, to uint64) ([][]byte, error) {
	n.mu.Lock()
	n.asked = append(n.asked, [2]uint64{from, to})
	n.mu.Unlock()
	if n.gate != nil {
		select {
		case <-n.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	if node != backfillNode {
		return nil, errors.New("unknown node")
	}
	if n.fail != nil {
		return nil, n.fail
	}
	end := min(to, uint64(len(n.lines)))
	if n.page > 0 {
		end = min(end, from-1+uint64(n.page))
	}
	out := slices.Clone(n.lines[from-1 : end])
	if n.serve != nil {
		out = n.serve(out)
	}
	return out, nil
}

func (n *fakeNode) ranges() [][2]uint64 {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.asked)
}

// waitIdle waits until no line of the node waits for a repair and n lines
// are stored or skipped.
func waitIdle(t *testing.T, col *Collector, n uint64) NodeStats {
	t.Helper()
	var s NodeStats
	poll.Until(t, fmt.Sprintf("the collector to handle %d lines", n), func() bool {
		s = col.Stats().Nodes[backfillNode]
		return s.Pending == 0 && s.Records+s.Duplicates >= n
	})
	return s
}

func TestCollectorBackfill(t *testing.T) {
	_, lines := writeTestLog(t, 10, Options{})
	pick := func(seqs ...int) [][]byte {
		var out [][]byte
		for _, s := range seqs {
			out = append(out, lines[s-1])
		}
		return out
	}
	tests := []struct {
		name       string
		node       *fakeNode // nil: serves every line
		feed       [][]byte
		stored     [][]byte // nil: the whole log
		wantBroken uint64
		wantAsked  [][2]uint64 // nil: not checked
		wantFilled uint64
	}{
		{
			name: "gap filled in order", feed: pick(1, 2, 5, 6, 7, 8, 9, 10),
			wantAsked: [][2]uint64{{3, 4}}, wantFilled: 2,
		},
		{
			name: "late start", feed: pick(5, 6, 7, 8, 9, 10),
			wantAsked: [][2]uint64{{1, 4}}, wantFilled: 4,
		},
		{
			name: "paging", node: &fakeNode{page: 3}, feed: pick(1, 9, 10),
			wantAsked: [][2]uint64{{2, 8}, {5, 8}, {8, 8}}, wantFilled: 7,
		},
		{
			name: "two gaps", feed: pick(1, 3, 4, 6, 7, 8, 9, 10),
			wantAsked: [][2]uint64{{2, 2}, {5, 5}}, wantFilled: 2,
		},
		{
			name: "node does not answer", node: &fakeNode{fail: errors.New("no response")},
			feed: pick(1, 2, 5, 6), stored: pick(1, 2, 5, 6), wantBroken: 1,
			wantAsked: [][2]uint64{{3, 4}, {3, 4}, {3, 4}},
		},
		{
			name: "fetched lines do not chain",
			node: &fakeNode{serve: func(l [][]byte) [][]byte { return l[1:] }}, // seq 3 left out
			feed: pick(1, 2, 5, 6), stored: pick(1, 2, 5, 6), wantBroken: 1,
			wantAsked: [][2]uint64{{3, 4}, {3, 4}, {3, 4}},
		},
		{
			name: "a line in the node's log was edited",
			node: &fakeNode{serve: func(l [][]byte) [][]byte { l[len(l)-1] = edited(t, l[len(l)-1]); return l }},
			// The edited line 4 itself chains; the break shows at line 5.
			feed: pick(1, 2, 5, 6), stored: append(pick(1, 2, 3), append([][]byte{edited(t, lines[3])}, pick(5, 6)...)...),
			wantBroken: 1, wantAsked: [][2]uint64{{3, 4}}, wantFilled: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.node == nil {
				tt.node = &fakeNode{}
			}
			tt.node.lines = lines
			dir := t.TempDir()
			col, err := NewCollectorWith(dir, CollectorOptions{Logger: quietLogger(), Fetch: tt.node.fetch,
				Retry: []time.Duration{time.Millisecond, time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			defer col.Close()
			for _, line := range tt.feed {
				if err := col.Handle(backfillNode, line); err != nil {
					t.Fatal(err)
				}
			}
			want := tt.stored
			if want == nil {
				want = lines
			}
			s := waitIdle(t, col, uint64(len(want)))
			if s.Records != uint64(len(want)) || s.Broken != tt.wantBroken || s.Backfilled != tt.wantFilled {
				t.Errorf("stats = %+v, want %d records, %d broken, %d backfilled", s, len(want), tt.wantBroken, tt.wantFilled)
			}
			path := filepath.Join(dir, backfillNode+".log")
			if got := readLines(t, path); !slices.EqualFunc(got, want, bytes.Equal) {
				t.Errorf("stored %d lines, want %d:\n%s", len(got), len(want), joinLines(got))
			}
			if tt.wantAsked != nil && !slices.Equal(tt.node.ranges(), tt.wantAsked) {
				t.Errorf("fetched ranges %v, want %v", tt.node.ranges(), tt.wantAsked)
			}
			if _, err := VerifyFile(path); (err == nil) != (tt.wantBroken == 0) {
				t.Errorf("VerifyFile = %v, want broken: %v", err, tt.wantBroken != 0)
			}
		})
	}
}

// TestCollectorBackfillDuplicates delivers lines live while their fetch is
// under way: each is stored once and nothing is flagged.
func TestCollectorBackfillDuplicates(t *testing.T) {
	_, lines := writeTestLog(t, 6, Options{})
	node := &fakeNode{lines: lines, gate: make(chan struct{})}
	dir := t.TempDir()
	col, err := NewCollectorWith(dir, CollectorOptions{Logger: quietLogger(), Fetch: node.fetch})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	// 3 and 4 go missing; 4 arrives late while they are fetched, 5 and 6 twice.
	for _, i := range []int{0, 1, 4, 3, 5, 4, 5} {
		if err := col.Handle(backfillNode, lines[i]); err != nil {
			t.Fatal(err)
		}
	}
	if s := col.Stats().Nodes[backfillNode]; s.Pending != 5 || s.Records != 2 {
		t.Errorf("while fetching: stats %+v, want 2 records and 5 lines pending", s)
	}
	close(node.gate)
	s := waitIdle(t, col, 9)
	if s.Records != 6 || s.Duplicates != 3 || s.Broken != 0 || s.Backfilled != 2 {
		t.Errorf("stats = %+v, want 6 records (2 backfilled), 3 duplicates, none broken", s)
	}
	// Once more after the repair: still skipped.
	if err := col.Handle(backfillNode, lines[2]); err != nil {
		t.Fatal(err)
	}
	local := joinLines(lines)
	if got, _ := os.ReadFile(filepath.Join(dir, backfillNode+".log")); !bytes.Equal(got, local) {
		t.Errorf("collected file differs from the node's log:\n%s", got)
	}
	if s := col.Stats().Nodes[backfillNode]; s.Duplicates != 4 || s.Records != 6 {
		t.Errorf("stats = %+v, want the late copy skipped", s)
	}
}

// TestCollectorBackfillLimits: a repair that takes too long for the lines
// piling up, or is cut short by Close, stores what arrived with the gap
// flagged.
func TestCollectorBackfillLimits(t *testing.T) {
	_, lines := writeTestLog(t, 6, Options{})
	for _, tt := range []struct {
		name  string
		close bool
	}{{name: "pending buffer full"}, {name: "closed", close: true}} {
		t.Run(tt.name, func(t *testing.T) {
			node := &fakeNode{lines: lines, gate: make(chan struct{})}
			dir := t.TempDir()
			col, err := NewCollectorWith(dir, CollectorOptions{Logger: quietLogger(), Fetch: node.fetch, MaxPendingLines: 2})
			if err != nil {
				t.Fatal(err)
			}
			feed := [][]byte{lines[0], lines[3], lines[4]}
			if !tt.close {
				feed = append(feed, lines[5]) // one too many
			}
			for _, line := range feed {
				if err := col.Handle(backfillNode, line); err != nil {
					t.Fatal(err)
				}
			}
			if tt.close {
				col.Close()
			} else {
				defer col.Close()
				close(node.gate) // the abandoned fetch's answer must be ignored
			}
			s := waitIdle(t, col, uint64(len(feed)))
			if s.Records != uint64(len(feed)) || s.Broken != 1 || s.Backfilled != 0 {
				t.Errorf("stats = %+v, want %d records, 1 broken", s, len(feed))
			}
			col.Close() // the abandoned backfill has ended
			if got := readLines(t, filepath.Join(dir, backfillNode+".log")); !slices.EqualFunc(got, feed, bytes.Equal) {
				t.Errorf("stored %d lines, want the %d fed", len(got), len(feed))
			}
		})
	}
}

// TestCollectorBackfillResumed: a restarted collector repairs a gap from its
// file's head and skips a re-delivered last line.
func TestCollectorBackfillResumed(t *testing.T) {
	_, lines := writeTestLog(t, 6, Options{})
	dir := t.TempDir()
	first, err := NewCollector(dir, quietLogger())
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range lines[:2] {
		if err := first.Handle(backfillNode, line); err != nil {
			t.Fatal(err)
		}
	}
	node := &fakeNode{lines: lines}
	col, err := NewCollectorWith(dir, CollectorOptions{Logger: quietLogger(), Fetch: node.fetch})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	for _, line := range [][]byte{lines[1], lines[4], lines[5]} {
		if err := col.Handle(backfillNode, line); err != nil {
			t.Fatal(err)
		}
	}
	if s := waitIdle(t, col, 5); s.Records != 4 || s.Duplicates != 1 || s.Broken != 0 {
		t.Errorf("stats = %+v, want 4 records, 1 duplicate", s)
	}
	if n, err := VerifyFile(filepath.Join(dir, backfillNode+".log")); n != 6 || err != nil {
		t.Errorf("VerifyFile = %d, %v; want 6 intact lines", n, err)
	}
}

// TestCollectorBackfillBoundedRetries: a node that never answers a fetch
// (each attempt would wait for its own long timeout) does not stretch the
// repair past the documented retry budget: every retry runs under the
// repair's deadline, and the gap is stored flagged (issue 11 #6: the
// collector once retried ~150 s where the docs said ~30 s).
func TestCollectorBackfillBoundedRetries(t *testing.T) {
	_, lines := writeTestLog(t, 6, Options{})
	var mu sync.Mutex
	var calls int
	var deadlines []bool
	fetch := func(ctx context.Context, node string, from, to uint64) ([][]byte, error) {
		mu.Lock()
		calls++
		first := calls == 1
		_, has := ctx.Deadline()
		deadlines = append(deadlines, has)
		mu.Unlock()
		if first {
			return nil, errors.New("no response")
		}
		<-ctx.Done() // a node that never answers
		return nil, ctx.Err()
	}
	col, err := NewCollectorWith(t.TempDir(), CollectorOptions{Logger: quietLogger(), Fetch: fetch,
		Retry: []time.Duration{time.Millisecond, time.Millisecond, time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer col.Close()
	for _, i := range []int{0, 1, 4, 5} {
		if err := col.Handle(backfillNode, lines[i]); err != nil {
			t.Fatal(err)
		}
	}
	if s := waitIdle(t, col, 4); s.Broken != 1 {
		t.Fatalf("stats %+v, want the gap stored flagged", s)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(deadlines) < 2 || deadlines[0] {
		t.Fatalf("fetch deadlines %v: want the first attempt on its own timeout, retries under the repair's", deadlines)
	}
	for i, has := range deadlines[1:] {
		if !has {
			t.Errorf("retry %d ran without the repair's deadline", i+1)
		}
	}
}
