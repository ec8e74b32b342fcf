package e2e

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// batchFleet is five daemons with audit logs: a1 and a2 in hagroup a, b1 in
// b, c1 in c, and x1 without the fact.
type batchFleet struct {
	c     *collective
	conf  string
	nodes []string // sorted
}

func newBatchFleet(t *testing.T) *batchFleet {
	t.Helper()
	c := newCollective(t, collectiveOptions{})
	facts := t.TempDir()
	groups := map[string]string{"a1.e2e": "a", "a2.e2e": "a", "b1.e2e": "b", "c1.e2e": "c", "x1.e2e": ""}
	f := &batchFleet{c: c, conf: c.clientConf()}
	for name := range groups {
		f.nodes = append(f.nodes, name)
	}
	slices.Sort(f.nodes)
	for _, name := range f.nodes {
		body := "role: web\n"
		if g := groups[name]; g != "" {
			body += "hagroup: " + g + "\n"
		}
		path := filepath.Join(facts, name+".yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		c.startDaemon(name, "facts = "+path, "audit.log = "+f.auditPath(name))
	}
	return f
}

func (f *batchFleet) auditPath(node string) string {
	return filepath.Join(f.c.dir, "nodes", node, "audit.log")
}

// auditEntry is the part of an audit request record the tests look at.
type auditEntry struct {
	Kind      string    `json:"kind"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"request_id"`
	Agent     string    `json:"agent"`
	Action    string    `json:"action"`
}

// audited returns, per node, the request records of an rpcutil action.
func (f *batchFleet) audited(t *testing.T, action string) map[string][]auditEntry {
	t.Helper()
	out := map[string][]auditEntry{}
	for _, n := range f.nodes {
		file, err := os.Open(f.auditPath(n))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(file)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e auditEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: %v", f.auditPath(n), err)
			}
			if e.Kind == "request" && e.Agent == "rpcutil" && e.Action == action {
				out[n] = append(out[n], e)
			}
		}
		file.Close()
		if err := sc.Err(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// rolloutJSON is the part of `mco rpc --json` the tests look at.
type rolloutJSON struct {
	Replies []struct {
		Sender string `json:"sender"`
	} `json:"replies"`
	Batches []struct {
		Size       int      `json:"size"`
		Label      string   `json:"label"`
		RequestID  string   `json:"request_id"`
		Nodes      []string `json:"nodes"`
		OK         int      `json:"ok"`
		Failed     int      `json:"failed"`
		NoResponse []string `json:"no_response"`
	} `json:"batches"`
	NotSent []string `json:"not_sent"`
	Stopped string   `json:"stopped"`
}

func decodeRollout(t *testing.T, r result) rolloutJSON {
	t.Helper()
	var out rolloutJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s\nstderr:\n%s", err, r.stdout, r.stderr)
	}
	return out
}

func (o rolloutJSON) senders() []string {
	var s []string
	for _, r := range o.Replies {
		s = append(s, r.Sender)
	}
	slices.Sort(s)
	return s
}

// TestRollouts drives --batch, --batch-by, --max-failures and --limit
// through the binary against real daemons, checking what the nodes' own
// audit logs say they received.
func TestRollouts(t *testing.T) {
	t.Parallel()
	f := newBatchFleet(t)
	t.Run("bad flags send nothing", func(t *testing.T) { testRolloutBadFlags(t, f) })
	t.Run("batch size", func(t *testing.T) { testBatchSize(t, f) })
	t.Run("batch by fact", func(t *testing.T) { testBatchBy(t, f) })
	t.Run("max failures", func(t *testing.T) { testMaxFailures(t, f) })
	t.Run("limit", func(t *testing.T) { testLimit(t, f) })
}

func testRolloutBadFlags(t *testing.T, f *batchFleet) {
	tests := []struct {
		args []string
		flag string
	}{
		{[]string{"--batch", "0"}, "--batch"},
		{[]string{"--batch", "150%"}, "--batch"},
		{[]string{"--batch", "abc"}, "--batch"},
		{[]string{"--limit", "-1"}, "--limit"},
		{[]string{"--batch", "1", "--max-failures", "x"}, "--max-failures"},
		{[]string{"--batch-sleep", "1s"}, "--batch-sleep"},
		{[]string{"--limit-seed", "3"}, "--limit-seed"},
	}
	pings := func() int {
		n := 0
		for _, e := range f.audited(t, "ping") {
			n += len(e)
		}
		return n
	}
	before := pings()
	for _, tt := range tests {
		args := append([]string{"-c", f.conf, "rpc", "rpcutil", "daemon_stats"}, tt.args...)
		r := mco(t, "", args...)
		if r.code != 1 || !strings.Contains(r.stderr, tt.flag) {
			t.Errorf("mco %v: exit %d, stderr %q; want exit 1 naming %s", tt.args, r.code, r.stderr, tt.flag)
		}
	}
	// Nothing was sent: not even discovery reached the nodes.
	if got := f.audited(t, "daemon_stats"); len(got) != 0 {
		t.Errorf("nodes received daemon_stats: %v", got)
	}
	if after := pings(); after != before {
		t.Errorf("nodes received %d discovery pings", after-before)
	}
}

func testBatchSize(t *testing.T, f *batchFleet) {
	r := mco(t, "", "-c", f.conf, "rpc", "rpcutil", "collective_info", "--batch", "2")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"Batch 1/3: 2 nodes", "Batch 2/3: 2 nodes", "Batch 3/3: 1 node"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "Finished processing 5 / 5 hosts") || !strings.Contains(r.stdout, "Batches: 3 of 3 sent") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	// ceil(5/2) = 3 separately signed requests, none reaching more than two nodes.
	perID := map[string][]string{}
	for node, entries := range f.audited(t, "collective_info") {
		if len(entries) != 1 {
			t.Errorf("%s audited %d collective_info requests, want 1", node, len(entries))
		}
		for _, e := range entries {
			perID[e.RequestID] = append(perID[e.RequestID], node)
		}
	}
	if len(perID) != 3 {
		t.Errorf("%d distinct request ids, want 3: %v", len(perID), perID)
	}
	for id, nodes := range perID {
		if len(nodes) > 2 {
			t.Errorf("request %s reached %v", id, nodes)
		}
	}
}

func testBatchBy(t *testing.T, f *batchFleet) {
	r := mco(t, "", "-c", f.conf, "rpc", "rpcutil", "agent_inventory", "--batch-by", "hagroup", "--json")
	if r.code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	out := decodeRollout(t, r)
	want := []struct {
		label string
		nodes []string
	}{
		{"hagroup=a", []string{"a1.e2e", "a2.e2e"}},
		{"hagroup=b", []string{"b1.e2e"}},
		{"hagroup=c", []string{"c1.e2e"}},
		{"hagroup=(missing)", []string{"x1.e2e"}},
	}
	if len(out.Batches) != len(want) || len(out.NotSent) != 0 || out.NotSent == nil || len(out.Replies) != 5 {
		t.Fatalf("batches %+v, not sent %v, %d replies", out.Batches, out.NotSent, len(out.Replies))
	}
	audited := f.audited(t, "agent_inventory")
	var prevLatest time.Time
	for i, w := range want {
		b := out.Batches[i]
		if b.Label != w.label || !slices.Equal(b.Nodes, w.nodes) || b.Size != len(w.nodes) || b.OK != len(w.nodes) {
			t.Errorf("batch %d: %+v, want %s %v", i+1, b, w.label, w.nodes)
		}
		// Each group's nodes got that batch's request, and only after every
		// node of the previous group had received its own.
		var earliest, latest time.Time
		for _, n := range w.nodes {
			entries := audited[n]
			if len(entries) != 1 || entries[0].RequestID != b.RequestID {
				t.Fatalf("%s audited %+v, want one request %s", n, entries, b.RequestID)
			}
			at := entries[0].Time
			if earliest.IsZero() || at.Before(earliest) {
				earliest = at
			}
			if at.After(latest) {
				latest = at
			}
		}
		if i > 0 && !earliest.After(prevLatest) {
			t.Errorf("group %s started at %v, before group %s ended at %v", w.label, earliest, want[i-1].label, prevLatest)
		}
		prevLatest = latest
	}
}

func testMaxFailures(t *testing.T, f *batchFleet) {
	// get_config_item of an unknown item fails on every node: the first
	// batch (a1, a2) fails and nothing else may be sent.
	args := []string{"-c", f.conf, "rpc", "rpcutil", "get_config_item", "item=nonexistent", "--batch", "2", "--max-failures", "0"}
	r := mco(t, "", args...)
	if r.code != 2 {
		t.Fatalf("exit %d, want 2\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	notSent := []string{"b1.e2e", "c1.e2e", "x1.e2e"}
	if !strings.Contains(r.stdout, "Batches: 1 of 3 sent") || !strings.Contains(r.stdout, "Not sent to (3):") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	for _, n := range notSent {
		if !strings.Contains(r.stdout, n) {
			t.Errorf("stdout does not list %s as not sent:\n%s", n, r.stdout)
		}
	}
	if strings.Contains(r.stderr, "Batch 2/3") {
		t.Errorf("a second batch was announced:\n%s", r.stderr)
	}

	r = mco(t, "", append(args, "--json")...)
	if r.code != 2 {
		t.Fatalf("--json: exit %d, want 2\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	out := decodeRollout(t, r)
	if len(out.Batches) != 1 || out.Batches[0].Failed != 2 || !slices.Equal(out.NotSent, notSent) || !strings.Contains(out.Stopped, "max-failures 0") {
		t.Errorf("--json: batches %+v, not sent %v, stopped %q", out.Batches, out.NotSent, out.Stopped)
	}
	audited := f.audited(t, "get_config_item")
	for _, n := range f.nodes {
		want := 2 // two runs
		if slices.Contains(notSent, n) {
			want = 0
		}
		if len(audited[n]) != want {
			t.Errorf("%s audited %d get_config_item requests, want %d", n, len(audited[n]), want)
		}
	}
}

func testLimit(t *testing.T, f *batchFleet) {
	pick := func(args ...string) []string {
		t.Helper()
		r := mco(t, "", append([]string{"-c", f.conf, "rpc", "rpcutil", "ping", "--json"}, args...)...)
		if r.code != 0 {
			t.Fatalf("mco %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
		}
		return decodeRollout(t, r).senders()
	}
	first := pick("--limit", "2", "--limit-seed", "1")
	second := pick("--limit", "2", "--limit-seed", "1")
	if len(first) != 2 || !slices.Equal(first, second) {
		t.Errorf("--limit 2 --limit-seed 1 picked %v, then %v", first, second)
	}
	if got := pick("-1"); len(got) != 1 || !slices.Contains(f.nodes, got[0]) {
		t.Errorf("-1 picked %v", got)
	}
	if got := pick("--limit", "40%"); len(got) != 2 {
		t.Errorf("--limit 40%% of 5 picked %v", got)
	}
}
