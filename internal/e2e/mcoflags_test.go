package e2e

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// mcoFleet is three nodes for the MCollective option tests: web1 and web2
// (role=web, the package agent), db1 (role=db, class role::db, no package
// agent).
type mcoFleet struct {
	conf  string
	nodes string // a flatfile naming web1 and db1
}

func newMCOFleet(t *testing.T) *mcoFleet {
	t.Helper()
	c := newCollective(t, collectiveOptions{})
	fx := t.TempDir()
	w := func(name, body string) string { return writeAtomic(t, filepath.Join(fx, name), body) }
	c.startDaemon("web1.e2e", "facts = "+w("web1.yaml", "role: web\n"), "classes = "+w("web1.classes", "role::web\n"))
	c.startDaemon("web2.e2e", "facts = "+w("web2.yaml", "role: web\n"))
	c.startDaemon("db1.e2e", "facts = "+w("db1.yaml", "role: db\n"), "classes = "+w("db1.classes", "role::db\n"), "agents.disabled = package")
	return &mcoFleet{conf: c.clientConf(), nodes: w("nodes.txt", "web1.e2e\ndb1.e2e\n")}
}

// selected runs mco with the client configuration and returns the nodes its
// JSON output names: find's node list, the senders of replies, or the nodes
// of a facts report.
func (f *mcoFleet) selected(t *testing.T, args ...string) []string {
	t.Helper()
	r := mco(t, "", append([]string{"-c", f.conf}, args...)...)
	if r.code != 0 && (r.code != 2 || args[0] != "service") { // 2: the service's status failed, as it should
		t.Fatalf("mco %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	var out struct {
		Nodes   []string `json:"nodes"`
		Replies []struct {
			Sender string `json:"sender"`
		} `json:"replies"`
		Values map[string][]string `json:"values"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("mco %s: not JSON: %v\n%s", strings.Join(args, " "), err, r.stdout)
	}
	got := out.Nodes
	for _, rep := range out.Replies {
		got = append(got, rep.Sender)
	}
	for _, nodes := range out.Values {
		got = append(got, nodes...)
	}
	slices.Sort(got)
	return got
}

// TestMCollectiveOptions runs every MCollective 2.12 option and alias we
// accept through the binary, against real daemons (docs/usage.md lists them).
func TestMCollectiveOptions(t *testing.T) {
	t.Parallel()
	f := newMCOFleet(t)
	all := []string{"db1.e2e", "web1.e2e", "web2.e2e"}
	web := []string{"web1.e2e", "web2.e2e"}

	selections := []struct {
		name string
		args []string
		want []string // nil: any one node
	}{
		{"find --wf", []string{"find", "--wf", "role=web", "-j"}, web},
		{"find --with-fact", []string{"find", "--with-fact", "role=web", "--json"}, web},
		{"find --wc", []string{"find", "--wc", "role::db", "-j"}, []string{"db1.e2e"}},
		{"find --with-class", []string{"find", "--with-class", "role::db", "-j"}, []string{"db1.e2e"}},
		{"find --wi", []string{"find", "--wi", "web1.e2e", "-j"}, []string{"web1.e2e"}},
		{"find --with-identity", []string{"find", "--with-identity", "/^web2/", "-j"}, []string{"web2.e2e"}},
		{"find --wa", []string{"find", "--wa", "package", "-j"}, web},
		{"find --with-agent", []string{"find", "--with-agent", "package", "-j"}, web},
		{"find --agent is the agent filter outside rpc", []string{"find", "--agent", "package", "-j"}, web},
		{"find --dt bare seconds", []string{"find", "--dt", "1", "-j"}, all},
		{"find --discovery-timeout", []string{"find", "--discovery-timeout", "1.5", "-j"}, all},
		{"find -t and --timeout", []string{"find", "-t", "3", "--timeout", "2", "-j"}, all},
		{"find -q --np --no-progress", []string{"find", "-q", "--np", "--no-progress", "-j"}, all},
		{"find --quiet", []string{"find", "--quiet", "-j"}, all},
		{"find --dm flatfile --do", []string{"find", "--dm", "flatfile", "--do", f.nodes, "-j"}, []string{"db1.e2e", "web1.e2e"}},
		{"find --disc-method --discovery-options", []string{"find", "--disc-method", "flatfile", "--discovery-options", f.nodes, "-j"}, []string{"db1.e2e", "web1.e2e"}},
		{"find -1", []string{"find", "-1", "-j"}, nil},
		{"find --one", []string{"find", "--one", "-j"}, nil},
		{"find --limit", []string{"find", "--limit", "1", "-j"}, nil},
		{"find --ln", []string{"find", "--ln", "1", "-j"}, nil},
		{"find --limit-nodes", []string{"find", "--limit-nodes", "1", "-j"}, nil},

		{"ping --wf -j", []string{"ping", "--wf", "role=web", "-j"}, web},
		{"ping -t --dt -q --np", []string{"ping", "-t", "3", "--dt", "1", "-q", "--np", "-j"}, all},
		{"ping --limit", []string{"ping", "--limit", "1", "-j"}, nil},
		{"ping -1", []string{"ping", "-1", "-j"}, nil},
		{"ping --wc --with-agent", []string{"ping", "--wc", "role::web", "--with-agent", "rpcutil", "-j"}, []string{"web1.e2e"}},

		{"facts --wf -j", []string{"facts", "role", "--wf", "role=web", "-j"}, web},
		{"facts --ln", []string{"facts", "role", "--ln", "1", "-j"}, nil},
		{"facts -1 --dt -t -q", []string{"facts", "role", "-1", "--dt", "1", "-t", "3", "-q", "-j"}, nil},
		{"facts --wi --with-class", []string{"facts", "role", "--wi", "/e2e/", "--with-class", "/role::/", "-j"}, []string{"db1.e2e", "web1.e2e"}},

		{"rpc --wf --np --dt -t", []string{"rpc", "rpcutil", "ping", "--wf", "role=web", "--np", "--dt", "1", "-t", "5", "-j"}, web},
		{"rpc --agent --action --arg", []string{"rpc", "--agent", "rpcutil", "--action", "get_fact", "--arg", "fact=role", "--wi", "web1.e2e", "-j"}, []string{"web1.e2e"}},
		{"rpc --agent --action with a positional argument", []string{"rpc", "--agent", "rpcutil", "--action", "get_fact", "fact=role", "-I", "db1.e2e", "-j"}, []string{"db1.e2e"}},
		{"rpc --action and --argument", []string{"rpc", "rpcutil", "--action", "get_fact", "--argument", "fact=role", "-j", "-I", "web2.e2e"}, []string{"web2.e2e"}},
		{"rpc --batch --batch-sleep seconds", []string{"rpc", "rpcutil", "ping", "--batch", "1", "--batch-sleep", "0.1", "-j"}, all},
		{"rpc --ttl seconds", []string{"rpc", "rpcutil", "ping", "--ttl", "30", "--json"}, all},
		{"rpc -1", []string{"rpc", "rpcutil", "ping", "-1", "-j"}, nil},
		{"rpc --limit-nodes", []string{"rpc", "rpcutil", "ping", "--limit-nodes", "1", "-j"}, nil},
		{"rpc --wa -q", []string{"rpc", "rpcutil", "ping", "--wa", "package", "-q", "-j"}, web},
		{"rpc --dm --do", []string{"rpc", "rpcutil", "ping", "--dm", "flatfile", "--do", f.nodes, "-j"}, []string{"db1.e2e", "web1.e2e"}},

		{"package --wf -j", []string{"package", "dpkg", "status", "--wf", "role=web", "-j", "--np", "-t", "20"}, web},
		{"package -1 --dt", []string{"package", "status", "dpkg", "-1", "--dt", "1", "-j"}, nil},
		{"service --wi -j", []string{"service", "e2e-no-such-service", "status", "--wi", "web1.e2e", "-j", "-q"}, []string{"web1.e2e"}},
		{"service --limit", []string{"service", "e2e-no-such-service", "status", "--with-fact", "role=web", "--limit", "1", "-j"}, nil},
	}
	for _, tt := range selections {
		t.Run(tt.name, func(t *testing.T) {
			got := f.selected(t, tt.args...)
			switch {
			case tt.want == nil && len(got) != 1:
				t.Errorf("got %v, want one node", got)
			case tt.want != nil && !slices.Equal(got, tt.want):
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("rpc --arg reaches the node", func(t *testing.T) {
		r := mco(t, "", "-c", f.conf, "rpc", "--agent", "rpcutil", "--action", "get_fact", "--arg", "fact=role", "-I", "db1.e2e")
		if r.code != 0 || !matchLine(r.stdout, "Value:", "db") {
			t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("--nr and --no-results send without replies", func(t *testing.T) {
		for _, args := range [][]string{
			{"rpc", "rpcutil", "ping", "--nr"},
			{"rpc", "rpcutil", "ping", "--no-results"},
			{"package", "dpkg", "status", "--nr", "--wf", "role=web"},
			{"service", "e2e-no-such-service", "status", "--no-results", "--wi", "web1.e2e"},
		} {
			r := mco(t, "", append([]string{"-c", f.conf}, args...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "(no replies requested)") {
				t.Errorf("mco %v: exit %d\n%s\n%s", args, r.code, r.stdout, r.stderr)
			}
		}
	})

	t.Run("inventory without a node counts collectives and agents", func(t *testing.T) {
		r := mco(t, "", "-c", f.conf, "inventory")
		if r.code != 0 || !matchLine(r.stdout, "mcollective", "3") || !matchLine(r.stdout, "Total nodes:", "3") ||
			!matchLine(r.stdout, "package", "2") || !matchLine(r.stdout, "rpcutil", "3") {
			t.Errorf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		r = mco(t, "", "-c", f.conf, "inventory", "--list-collectives")
		if r.code != 0 || !matchLine(r.stdout, "mcollective", "3") || strings.Contains(r.stdout, "rpcutil") {
			t.Errorf("--list-collectives: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		r = mco(t, "", "-c", f.conf, "inventory", "-j", "--wf", "role=web")
		var out struct {
			Collectives map[string]int `json:"collectives"`
			Agents      map[string]int `json:"agents"`
			Nodes       int            `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Nodes != 2 || out.Collectives["mcollective"] != 2 || out.Agents["package"] != 2 {
			t.Errorf("inventory -j --wf role=web: %v %+v\n%s\n%s", err, out, r.stdout, r.stderr)
		}
		r = mco(t, "", "-c", f.conf, "inventory", "web1.e2e", "-j", "-t", "5")
		if r.code != 0 || !strings.Contains(r.stdout, `"identity": "web1.e2e"`) {
			t.Errorf("inventory NODE -j: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("bad durations and --do misuse are refused", func(t *testing.T) {
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"find", "-t", "soon"}, "neither a number of seconds nor a duration"},
			{[]string{"rpc", "rpcutil", "ping", "--batch-sleep", "-1"}, "not a duration in range"},
			{[]string{"find", "--do", f.nodes}, "give --dm too"},
			{[]string{"find", "--dm", "broadcast", "--do", "x"}, "takes no option"},
		} {
			r := mco(t, "", append([]string{"-c", f.conf}, tc.args...)...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("mco %v: exit %d, stderr %q, want %q", tc.args, r.code, r.stderr, tc.want)
			}
		}
	})
}
