package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// targetFleet is two daemons with audit logs, for the tests of issue 8
// ("every request reaches exactly the nodes meant"):
//
//	web1.e2e  role=web  hagroup=a
//	db1.e2e   role=db   (no hagroup)
type targetFleet struct {
	c       *collective
	conf    string
	dir     string
	daemons map[string]*daemon
}

func newTargetFleet(t *testing.T) *targetFleet {
	t.Helper()
	c := newCollective(t, collectiveOptions{})
	f := &targetFleet{c: c, conf: c.clientConf(), dir: t.TempDir(), daemons: map[string]*daemon{}}
	// web1's facts.command is relative: it resolves against the directory
	// of its server.conf (nodes/web1.e2e), not the daemon's working directory.
	bin := filepath.Join(c.dir, "nodes", "web1.e2e", "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(bin, "facts.sh"), "#!/bin/sh\necho '{\"cmdb\": \"yes\"}'\n")
	if err := os.Chmod(filepath.Join(bin, "facts.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, facts := range map[string]string{"web1.e2e": "role: web\nhagroup: a\n", "db1.e2e": "role: db\n"} {
		path := writeAtomic(t, filepath.Join(f.dir, name+".yaml"), facts)
		extra := []string{"facts = " + path, "audit.log = " + f.auditPath(name)}
		if name == "web1.e2e" {
			extra = append(extra, "facts.command = bin/facts.sh")
		}
		f.daemons[name] = c.startDaemon(name, extra...)
	}
	return f
}

func (f *targetFleet) auditPath(node string) string {
	return filepath.Join(f.c.dir, "nodes", node, "audit.log")
}

// received counts, per node, the audited requests for rpcutil action.
func (f *targetFleet) received(t *testing.T, action string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for name := range f.daemons {
		data, err := os.ReadFile(f.auditPath(name))
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var e auditEntry
			if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
				t.Fatalf("%s: %v", f.auditPath(name), err)
			}
			if e.Kind == "request" && e.Agent == "rpcutil" && e.Action == action {
				out[name]++
			}
		}
	}
	return out
}

// mcoWith runs the binary with stdin connected to r through a pipe (exec
// makes one for any reader that is not a file).
func mcoWith(t *testing.T, stdin io.Reader, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, mcoBin, args...)
	cmd.Env = append(os.Environ(), "MCO_CONFIG=", "NO_COLOR=1")
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr, cmd.Stdin = &out, &errb, stdin
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("running mco %v: %v", args, err)
	}
	return r
}

func TestTargeting(t *testing.T) {
	t.Parallel()
	f := newTargetFleet(t)
	t.Run("stdin", func(t *testing.T) { testStdinRules(t, f) })
	t.Run("options", func(t *testing.T) { testOptionValues(t, f) })
	t.Run("json documents", func(t *testing.T) { testJSONDocuments(t, f) })
	t.Run("external discovery", func(t *testing.T) { testExternalDiscovery(t, f) })
	t.Run("fstat and facts.command", func(t *testing.T) { testFStatAndFactsCommand(t, f) })
	// Last: it stops a node for a moment.
	t.Run("slow node", func(t *testing.T) { testSlowNode(t, f) })
}

func testStdinRules(t *testing.T, f *targetFleet) {
	t.Run("an empty pipe is not every node", func(t *testing.T) {
		before := f.received(t, "daemon_stats")
		for _, args := range [][]string{{"rpc", "rpcutil", "daemon_stats"}, {"ping"}, {"rpc", "rpcutil", "daemon_stats", "--nodes", "-"}} {
			r := mcoWith(t, strings.NewReader(""), append([]string{"-c", f.conf}, args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, "stdin gave no node identities; refusing to fall back to every node") {
				t.Errorf("mco %v < empty pipe: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
			}
		}
		// What `mco find -F role=nonexistent | mco rpc ...` pipes: nothing.
		found := mco(t, "", "-c", f.conf, "find", "-F", "role=nonexistent")
		r := mcoWith(t, strings.NewReader(found.stdout), "-c", f.conf, "rpc", "rpcutil", "daemon_stats")
		if found.code != 1 || r.code != 1 {
			t.Errorf("find with no match piped into rpc: find exit %d, rpc exit %d\n%s", found.code, r.code, r.stderr)
		}
		if after := f.received(t, "daemon_stats"); !maps2Equal(before, after) {
			t.Errorf("nodes received requests: before %v, after %v", before, after)
		}
	})

	t.Run("an idle pipe does not stall and is not every node", func(t *testing.T) {
		pr, pw, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer pw.Close() // held open, never written, as a parent process might
		r := mcoWith(t, pr, "-c", f.conf, "rpc", "rpcutil", "daemon_stats")
		pr.Close()
		if r.code != 1 || !strings.Contains(r.stderr, "gave nothing within") {
			t.Errorf("idle pipe: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("--nodes - reads stdin and -v counts", func(t *testing.T) {
		r := mcoWith(t, strings.NewReader("web1.e2e\n"), "-c", f.conf, "rpc", "rpcutil", "ping", "--nodes", "-", "-v")
		if r.code != 0 || !strings.Contains(r.stdout, "web1.e2e") || strings.Contains(r.stdout, "db1.e2e") || !strings.Contains(r.stderr, "Took 1 node identities from standard input") {
			t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		r = mcoWith(t, strings.NewReader("web1.e2e\ndb1.e2e\n"), "-c", f.conf, "rpc", "rpcutil", "ping", "--json")
		var doc struct {
			Stats struct {
				Method    string `json:"discovery_method"`
				FromStdin *int   `json:"from_stdin"`
			} `json:"stats"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil || doc.Stats.Method != "stdin" || doc.Stats.FromStdin == nil || *doc.Stats.FromStdin != 2 {
			t.Errorf("automatic stdin --json: %v %+v\n%s%s", err, doc, r.stdout, r.stderr)
		}
	})

	t.Run("a shell loop keeps its input", func(t *testing.T) {
		roles := writeAtomic(t, filepath.Join(f.dir, "roles.txt"), "web\ndb\n")
		loop := `while read r; do "$MCO" -c "$CONF" find -F role=$r; done`
		for name, script := range map[string]string{
			"from a file": loop + ` < "$ROLES"`,
			"from a pipe": `cat "$ROLES" | ` + loop,
		} {
			cmd := exec.Command("sh", "-c", script)
			cmd.Env = append(os.Environ(), "MCO_CONFIG=", "MCO="+mcoBin, "CONF="+f.conf, "ROLES="+roles)
			out, err := cmd.CombinedOutput()
			if err != nil || !strings.Contains(string(out), "web1.e2e") || !strings.Contains(string(out), "db1.e2e") {
				t.Errorf("%s: %v\n%s", name, err, out)
			}
		}
		// A regular file on stdin is never read as a node list.
		fh, err := os.Open(roles)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		r := mcoWith(t, fh, "-c", f.conf, "rpc", "rpcutil", "ping", "--json")
		if !strings.Contains(r.stdout, `"discovery_method": "broadcast"`) {
			t.Errorf("stdin from a regular file was read: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	})
}

func maps2Equal(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func testOptionValues(t *testing.T, f *targetFleet) {
	before := f.received(t, "daemon_stats")
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"--display", "bogus"}, "ok, failed and all"},
		{[]string{"--dm", "carrier-pigeon"}, "broadcast, flatfile, stdin, inventory, external"},
		{[]string{"--batch", "abc"}, "N or N%"},
		{[]string{"--json", "--jsonl"}, "--json and --jsonl exclude each other"},
		{[]string{"--batch-by", "hagrup"}, "no discovered node has fact hagrup; did you mean hagroup?"},
		{[]string{"-F", "fstat('/etc/hosts').size>0"}, "compound filter (-S)"},
		{[]string{"-W", `role="web`}, "unterminated"},
		{[]string{"-F", "os..family=x"}, "empty path segment"},
		{[]string{"-S", "os..family=x"}, "empty path segment"},
		{[]string{"-I", "//"}, "empty regex"},
	} {
		r := mco(t, "", append([]string{"-c", f.conf, "rpc", "rpcutil", "daemon_stats"}, tt.args...)...)
		if r.code != 1 || !strings.Contains(r.stderr, tt.want) {
			t.Errorf("mco rpc %v: exit %d, stderr %q; want exit 1 naming %q", tt.args, r.code, r.stderr, tt.want)
		}
	}
	if after := f.received(t, "daemon_stats"); !maps2Equal(before, after) {
		t.Errorf("refused commands reached nodes: before %v, after %v", before, after)
	}
	// A malformed filter exits 1 in every client command.
	for _, cmd := range [][]string{{"find"}, {"ping"}, {"facts", "role"}, {"rpc", "rpcutil", "ping"}} {
		r := mco(t, "", append(append([]string{"-c", f.conf}, cmd...), "-I", "/[/")...)
		if r.code != 1 || !strings.Contains(r.stderr, "regex") {
			t.Errorf("mco %v -I /[/: exit %d, stderr %q; want 1", cmd, r.code, r.stderr)
		}
	}
	// Nodes lacking the --batch-by fact form their own, named, last batch.
	r := mco(t, "", "-c", f.conf, "rpc", "rpcutil", "ping", "--batch-by", "hagroup")
	if r.code != 0 || !strings.Contains(r.stderr, "Batch 1/2: 1 node (hagroup=a)") || !strings.Contains(r.stderr, "Batch 2/2: 1 node (hagroup=(missing))") {
		t.Errorf("batch by a fact one node lacks: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	// An allow list of // would admit every certname: the daemon refuses it.
	conf := filepath.Join(f.dir, "open.conf")
	writeFile(t, conf, "broker = "+f.c.broker.URL()+"\ntls.ca = "+f.c.store.CACertPath()+"\ntls.cert = "+f.c.store.CertPath("web1.e2e")+
		"\ntls.key = "+f.c.store.KeyPath("web1.e2e")+"\nsecurity.certname_allowlist = //\n")
	r = mco(t, "", "server", "run", "-c", conf)
	if r.code == 0 || !strings.Contains(r.stderr, "certname_allowlist") || !strings.Contains(r.stderr, "empty regex") {
		t.Errorf("allow list //: exit %d, stderr %q", r.code, r.stderr)
	}
}

func testJSONDocuments(t *testing.T, f *targetFleet) {
	for _, args := range [][]string{
		{"rpc", "rpcutil", "ping", "--no-results"},
		{"rpc", "rpcutil", "ping", "--reply-to", "elsewhere"},
		{"rpc", "rpcutil", "ping", "-F", "role=nonexistent"},
		{"ping", "--nodes", "-"},
		{"facts", "role", "-F", "role=nonexistent"},
		{"find", "-F", "role=nonexistent"},
		{"rpc", "rpcutil", "ping", "-I", "ghost.e2e", "-t", "1s"},
	} {
		r := mcoWith(t, strings.NewReader("ghost.e2e\n"), append(append([]string{"-c", f.conf}, args...), "--json")...)
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			t.Errorf("mco %v --json: stdout is not a JSON document: %v\n%s\nstderr:\n%s", args, err, r.stdout, r.stderr)
			continue
		}
		if dec.More() {
			t.Errorf("mco %v --json: more than one document\n%s", args, r.stdout)
		}
	}
}

func testExternalDiscovery(t *testing.T, f *targetFleet) {
	input := filepath.Join(f.dir, "external-input.json")
	env := filepath.Join(f.dir, "external-env.json")
	script := writeAtomic(t, filepath.Join(f.dir, "discover.sh"),
		"#!/bin/sh\necho 'looking in the CMDB' >&2\ncat > "+input+"\nprintf '%s' \"$MCO_DISCOVERY_FILTER\" > "+env+"\necho web1.e2e\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}
	r := mco(t, "", "-c", f.conf, "rpc", "rpcutil", "ping", "--dm", "external", "--nodes", script, "-F", "role=web")
	if r.code != 0 || !strings.Contains(r.stdout, "web1.e2e") || !strings.Contains(r.stderr, "looking in the CMDB") {
		t.Fatalf("external discovery: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	for _, p := range []string{input, env} {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Filter struct {
				Fact []struct {
					Fact  string `json:"fact"`
					Value string `json:"value"`
				} `json:"fact"`
			} `json:"filter"`
		}
		if err := json.Unmarshal(data, &doc); err != nil || len(doc.Filter.Fact) != 1 || doc.Filter.Fact[0].Fact != "role" || doc.Filter.Fact[0].Value != "web" {
			t.Errorf("%s: %v %+v\n%s", filepath.Base(p), err, doc, data)
		}
	}
	slow := writeAtomic(t, filepath.Join(f.dir, "slow.sh"), "#!/bin/sh\nsleep 30\necho web1.e2e\n")
	if err := os.Chmod(slow, 0o755); err != nil {
		t.Fatal(err)
	}
	r = mco(t, "", "-c", f.conf, "find", "--dm", "external", "--nodes", slow, "--discovery-timeout", "500ms")
	if r.code != 1 || !strings.Contains(r.stderr, "killed after the discovery timeout") {
		t.Errorf("slow external program: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// testSlowNode: a node the client has seen answer before is stopped
// (SIGSTOP) for half a second during a broadcast. Discovery must wait for it
// (it is expected) and either include it or list it under "No response
// from"; before, the quiet window ended discovery without it and it was
// listed nowhere.
func testSlowNode(t *testing.T, f *targetFleet) {
	// Seen once: the discovery cache now expects both nodes.
	if r := mco(t, "", "-c", f.conf, "find"); r.code != 0 || !strings.Contains(r.stdout, "db1.e2e") {
		t.Fatalf("find: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	stop := func() {
		p := f.daemons["db1.e2e"].cmd.Process
		if err := p.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		go func() {
			time.Sleep(500 * time.Millisecond)
			_ = p.Signal(syscall.SIGCONT)
		}()
		t.Cleanup(func() { _ = p.Signal(syscall.SIGCONT) })
	}

	stop()
	r := mco(t, "", "-c", f.conf, "rpc", "rpcutil", "ping", "--json", "--discovery-timeout", "5s", "-v")
	var doc struct {
		Replies []struct {
			Sender string `json:"sender"`
		} `json:"replies"`
		NoResponse []string `json:"no_response"`
		Stats      struct {
			Ended    string   `json:"discovery_ended"`
			Expected *int     `json:"discovery_expected"`
			Missing  []string `json:"discovery_missing"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("rpc --json: %v\n%s\n%s", err, r.stdout, r.stderr)
	}
	var seen []string
	for _, rep := range doc.Replies {
		seen = append(seen, rep.Sender)
	}
	if !slices.Contains(seen, "db1.e2e") && !slices.Contains(doc.NoResponse, "db1.e2e") {
		t.Errorf("the stopped node is neither answered nor listed: replies %v, no response %v\n%s", seen, doc.NoResponse, r.stderr)
	}
	if doc.Stats.Ended == "" || doc.Stats.Expected == nil || *doc.Stats.Expected != 2 || doc.Stats.Missing == nil {
		t.Errorf("discovery stats %+v", doc.Stats)
	}
	if !strings.Contains(r.stderr, "ended by:") || !strings.Contains(r.stderr, "expected nodes missing") {
		t.Errorf("-v does not say how discovery ended:\n%s", r.stderr)
	}

	// mco ping is its own broadcast and waits the same way.
	stop()
	r = mco(t, "", "-c", f.conf, "ping", "--discovery-window", "50ms")
	if !strings.Contains(r.stdout, "db1.e2e") {
		t.Errorf("ping lost the stopped node: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// testFStatAndFactsCommand: fstat answers in MCollective's forms (present
// 1/0, mode as st_mode in octal, name, output) so old filters match, and a
// relative facts.command ran from the configuration's directory.
func testFStatAndFactsCommand(t *testing.T, f *targetFleet) {
	file := writeAtomic(t, filepath.Join(f.dir, "probe.txt"), "x\n")
	if err := os.Chmod(file, 0o644); err != nil {
		t.Fatal(err)
	}
	both := []string{"db1.e2e", "web1.e2e"}
	for _, tt := range []struct {
		filter string
		want   []string
	}{
		{"fstat('" + file + "').present=1", both},
		{"fstat('" + file + "').present=true", both},
		{"fstat('" + file + "').mode=100644", both},
		{"fstat('" + file + "').output=present", both},
		{"fstat('" + file + "').name='" + file + "'", both},
		{"fstat('" + file + ".absent').present=0", both},
		{"fstat('" + file + ".absent').present=1", nil},
		{"cmdb=yes", []string{"web1.e2e"}},
	} {
		r := mco(t, "", "-c", f.conf, "find", "-S", tt.filter)
		got := strings.Fields(r.stdout)
		slices.Sort(got)
		if !slices.Equal(got, tt.want) {
			t.Errorf("find -S %q: %v, want %v (exit %d)\n%s", tt.filter, got, tt.want, r.code, r.stderr)
		}
	}
}
