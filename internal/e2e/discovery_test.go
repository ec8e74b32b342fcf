package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/poll"
)

// discoveryFleet is a collective of four daemons with distinct facts and
// classes, used by the discovery tests:
//
//	node        collective  role  weight  site.dc  tags         env      classes           agents
//	web1.e2e    mcollective web   10      ams      blue, green  prod     role::web apache  all
//	web2.e2e    mcollective web   25      lon      red          staging  role::web nginx   all
//	db1.e2e     mcollective db    100     ams      blue         prod     role::db mysql    no package
//	other1.e2e  other       web   5       par      -            -        role::web         all
type discoveryFleet struct {
	*collective
	conf   string // alice's client configuration (both collectives)
	fx     string // directory of the facts and classes files
	exists string // a file present on every node (they share this machine)
}

func newDiscoveryFleet(t *testing.T) *discoveryFleet {
	t.Helper()
	c := newCollective(t, collectiveOptions{})
	fx := t.TempDir()
	f := &discoveryFleet{collective: c, fx: fx}
	w := func(name, body string) string { return writeAtomic(t, filepath.Join(fx, name), body) }

	common := w("common.json", `{"env": "prod"}`)
	f.exists = common
	web1 := w("web1.yaml", "role: web\nweight: 10\nsite:\n  dc: ams\n  rack:\n    row: 3\ntags: [blue, green]\n")
	web2 := w("web2.json", `{"role": "web", "weight": 25, "env": "staging", "site": {"dc": "lon"}, "tags": ["red"]}`)
	db1 := w("db1.yaml", "role: db\nweight: 100\nenv: prod\nsite:\n  dc: ams\ntags:\n  - blue\n")
	db1Marker := w("db1-marker.json", `{"marker": 0}`)
	other1 := w("other1.yaml", "role: web\nweight: 5\nsite: {dc: par}\n")

	// Classes files use CRLF and blanks on purpose: they must be tolerated.
	c.startDaemon("web1.e2e", "facts = "+web1+", "+common, "classes = "+w("web1.classes", "role::web\r\napache\r\n"))
	c.startDaemon("web2.e2e", "facts = "+web2, "classes = "+w("web2.classes", "role::web\n\nnginx\n"))
	// The marker file comes first: when a change to it is visible, the same
	// poll has already looked at db1.yaml (see the reload test).
	c.startDaemon("db1.e2e", "facts = "+db1Marker+", "+db1, "classes = "+w("db1.classes", "role::db\nmysql\n"), "agents.disabled = package")

	// startDaemon waits with a directed ping in alice's main collective, so
	// make "other" the main one while other1 (a member of "other" only)
	// starts, then switch back.
	c.client("alice.mcollective", "collective = other", "collectives = other, mcollective")
	c.startDaemon("other1.e2e", "collectives = other", "facts = "+other1, "classes = "+w("other1.classes", "role::web\n"))
	f.conf = c.client("alice.mcollective", "collectives = mcollective, other")
	return f
}

// writeAtomic writes a file by renaming a temporary one into place, so that a
// polling daemon never sees it half written.
func writeAtomic(t *testing.T, path, body string) string {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	return path
}

// find runs `mco find` and returns the identities it printed (exit 0 with
// nodes, exit 1 without).
func (f *discoveryFleet) find(t *testing.T, stdin string, args ...string) []string {
	t.Helper()
	r := mco(t, stdin, append([]string{"-c", f.conf, "find"}, args...)...)
	nodes := strings.Fields(r.stdout)
	if (r.code == 0) != (len(nodes) > 0) || (r.code != 0 && r.code != 1) {
		t.Fatalf("mco find %q: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, r.stdout, r.stderr)
	}
	return nodes
}

// rpcJSON runs `mco rpc ... --json` and returns the senders of OK replies
// and the discovery method reported.
func (f *discoveryFleet) rpcJSON(t *testing.T, stdin string, args ...string) (senders []string, method string, out result) {
	t.Helper()
	out = mco(t, stdin, append([]string{"-c", f.conf, "rpc"}, append(args, "--json")...)...)
	var doc struct {
		Replies []struct {
			Sender     string `json:"sender"`
			StatusCode int    `json:"statuscode"`
		} `json:"replies"`
		Stats struct {
			DiscoveryMethod string `json:"discovery_method"`
		} `json:"stats"`
	}
	if err := json.Unmarshal([]byte(out.stdout), &doc); err != nil {
		t.Fatalf("mco rpc %q --json: %v (exit %d)\nstdout:\n%s\nstderr:\n%s", args, err, out.code, out.stdout, out.stderr)
	}
	for _, r := range doc.Replies {
		if r.StatusCode == 0 {
			senders = append(senders, r.Sender)
		}
	}
	slices.Sort(senders)
	return senders, doc.Stats.DiscoveryMethod, out
}

// requestsSeen returns web1's count of received requests (the daemon_stats
// call itself included).
func (f *discoveryFleet) requestsSeen(t *testing.T) float64 {
	t.Helper()
	cl := f.connect(f.conf)
	var total float64
	var got bool
	_, err := cl.Call(context.Background(), client.Request{Agent: "rpcutil", Action: "daemon_stats", Targets: []string{"web1.e2e"}, Timeout: 5 * time.Second},
		func(r client.Result) { total, got = r.Data["total"].(float64) })
	if err != nil || !got {
		t.Fatalf("daemon_stats from web1.e2e: err %v, got total %v", err, got)
	}
	return total
}

// TestDiscovery drives every filter kind, discovery method and fact command
// through the binary against one fleet; the facts reload comes last since it
// changes db1's facts.
func TestDiscovery(t *testing.T) {
	f := newDiscoveryFleet(t)
	t.Run("filters", func(t *testing.T) { testDiscoveryFilters(t, f) })
	t.Run("methods", func(t *testing.T) { testDiscoveryMethods(t, f) })
	t.Run("facts inventory data", func(t *testing.T) { testDiscoveryFactsInventoryData(t, f) })
	t.Run("client errors", func(t *testing.T) { testDiscoveryClientErrors(t, f) })
	t.Run("facts reload", func(t *testing.T) { testDiscoveryFactsReload(t, f) })
}

func testDiscoveryFilters(t *testing.T, f *discoveryFleet) {
	absent := filepath.Join(f.fx, "absent")
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"identity exact skips discovery", []string{"-I", "web1.e2e"}, []string{"web1.e2e"}},
		{"identity regex", []string{"-I", "/^web/"}, []string{"web1.e2e", "web2.e2e"}},
		{"identity alternatives", []string{"-I", "/^db/", "-I", "/^web2/"}, []string{"db1.e2e", "web2.e2e"}},
		{"identity and fact", []string{"-I", "web1.e2e", "-F", "role=db"}, nil},
		{"fact equal", []string{"-F", "role=web"}, []string{"web1.e2e", "web2.e2e"}},
		{"fact double equal", []string{"-F", "role==db"}, []string{"db1.e2e"}},
		{"fact not equal", []string{"-F", "role!=web"}, []string{"db1.e2e"}},
		{"fact numeric less", []string{"-F", "weight<50"}, []string{"web1.e2e", "web2.e2e"}},
		{"fact numeric not string", []string{"-F", "weight<9"}, nil}, // "10" < "9" as strings
		{"fact numeric at least", []string{"-F", "weight>=25"}, []string{"db1.e2e", "web2.e2e"}},
		{"fact regex operator", []string{"-F", "role=~/^w/"}, []string{"web1.e2e", "web2.e2e"}},
		{"fact regex value", []string{"-F", "role=/^d/"}, []string{"db1.e2e"}},
		{"fact nested", []string{"-F", "site.dc=ams"}, []string{"db1.e2e", "web1.e2e"}},
		{"fact deeply nested", []string{"-F", "site.rack.row=3"}, []string{"web1.e2e"}},
		{"fact array element", []string{"-F", "tags=blue"}, []string{"db1.e2e", "web1.e2e"}},
		{"fact from second file", []string{"-F", "env=prod"}, []string{"db1.e2e", "web1.e2e"}},
		{"facts are ANDed", []string{"-F", "role=web", "-F", "env=prod"}, []string{"web1.e2e"}},
		{"missing fact matches nothing", []string{"-F", "nonexistent=true"}, nil},
		{"class exact", []string{"-C", "role::web"}, []string{"web1.e2e", "web2.e2e"}},
		{"class regex", []string{"-C", "/sql/"}, []string{"db1.e2e"}},
		{"classes are ANDed", []string{"-C", "role::web", "-C", "apache"}, []string{"web1.e2e"}},
		{"agent exact", []string{"-A", "package"}, []string{"web1.e2e", "web2.e2e"}},
		{"agent regex", []string{"-A", "/^rpc/"}, []string{"db1.e2e", "web1.e2e", "web2.e2e"}},
		{"combined", []string{"-W", "role=web nginx"}, []string{"web2.e2e"}},
		{"compound not", []string{"-S", "role=web and not apache"}, []string{"web2.e2e"}},
		{"compound bang", []string{"-S", "!role=web"}, []string{"db1.e2e"}},
		{"compound or", []string{"-S", "role=db or nginx"}, []string{"db1.e2e", "web2.e2e"}},
		{"compound parentheses", []string{"-S", "(site.dc=ams or tags=red) and weight<50"}, []string{"web1.e2e", "web2.e2e"}},
		{"compound precedence", []string{"-S", "site.dc=lon or site.dc=ams and role=db"}, []string{"db1.e2e", "web2.e2e"}},
		{"compound class regex", []string{"-S", "/^role::d/ or apache"}, []string{"db1.e2e", "web1.e2e"}},
		{"compound fstat present", []string{"-S", "fstat('" + f.exists + "').present=true"}, []string{"db1.e2e", "web1.e2e", "web2.e2e"}},
		{"compound fstat absent", []string{"-S", "fstat('" + absent + "').present=true"}, nil},
		{"compound fstat bare", []string{"-S", "fstat(\"" + f.exists + "\") and role=db"}, []string{"db1.e2e"}},
		{"compound fact function", []string{"-S", "fact('site.dc').value=ams and not mysql"}, []string{"web1.e2e"}},
		{"several compounds are ANDed", []string{"-S", "role=web", "-S", "tags=red"}, []string{"web2.e2e"}},
		{"collective", []string{"-T", "other"}, []string{"other1.e2e"}},
		{"collective and fact", []string{"-T", "other", "-F", "weight<10"}, []string{"other1.e2e"}},
		{"collective and other fact", []string{"-T", "other", "-F", "role=db"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := f.find(t, "", tt.args...)
			if !slices.Equal(got, tt.want) {
				t.Errorf("mco find %q = %v, want %v", tt.args, got, tt.want)
			}
		})
	}
}

func testDiscoveryMethods(t *testing.T, f *discoveryFleet) {
	dir := t.TempDir()
	web := []string{"web1.e2e", "web2.e2e"}

	t.Run("broadcast by default", func(t *testing.T) {
		got, method, _ := f.rpcJSON(t, "", "rpcutil", "ping", "-F", "role=web")
		if !slices.Equal(got, web) || method != "broadcast" {
			t.Errorf("got %v by %q, want %v by broadcast", got, method, web)
		}
	})

	text := writeAtomic(t, filepath.Join(dir, "nodes.txt"), "# web servers\nweb1.e2e   # the first\n\n  db1.e2e\n")
	list := writeAtomic(t, filepath.Join(dir, "nodes.json"), `["web2.e2e", "db1.e2e", "web2.e2e"]`)
	_, _, prev := f.rpcJSON(t, "", "rpcutil", "ping", "-F", "role=web")
	previous := writeAtomic(t, filepath.Join(dir, "previous.json"), prev.stdout)
	found := mco(t, "", "-c", f.conf, "find", "--json", "-C", "role::db")
	findJSON := writeAtomic(t, filepath.Join(dir, "find.json"), found.stdout)
	script := writeAtomic(t, filepath.Join(dir, "discover.sh"), "#!/bin/sh\necho web2.e2e\necho '# not a node'\necho db1.e2e\n")
	if err := os.Chmod(script, 0o755); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		stdin      string
		args       []string
		want       []string
		wantMethod string
	}{
		{"flatfile text with comments", "", []string{"--nodes", text}, []string{"db1.e2e", "web1.e2e"}, "flatfile"},
		{"flatfile JSON list", "", []string{"--nodes", list}, []string{"db1.e2e", "web2.e2e"}, "flatfile"},
		{"flatfile previous rpc --json", "", []string{"--nodes", previous}, web, "flatfile"},
		{"flatfile find --json", "", []string{"--nodes", findJSON}, []string{"db1.e2e"}, "flatfile"},
		{"flatfile narrowed by -I", "", []string{"--nodes", text, "-I", "/^web/"}, []string{"web1.e2e"}, "flatfile"},
		{"explicit --dm flatfile", "", []string{"--dm", "flatfile", "--nodes", list}, []string{"db1.e2e", "web2.e2e"}, "flatfile"},
		{"external program", "", []string{"--dm", "external", "--nodes", script}, []string{"db1.e2e", "web2.e2e"}, "external"},
		{"stdin identities", "web2.e2e\n", nil, []string{"web2.e2e"}, "stdin"},
		{"stdin previous rpc --json", prev.stdout, nil, web, "stdin"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, method, _ := f.rpcJSON(t, tt.stdin, append([]string{"rpcutil", "ping"}, tt.args...)...)
			if !slices.Equal(got, tt.want) || method != tt.wantMethod {
				t.Errorf("got %v by %q, want %v by %q", got, method, tt.want, tt.wantMethod)
			}
		})
	}

	t.Run("find piped into rpc", func(t *testing.T) {
		r := mco(t, "", "-c", f.conf, "find", "-F", "role=web")
		if r.code != 0 {
			t.Fatalf("mco find: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		out := mco(t, r.stdout, "-c", f.conf, "rpc", "rpcutil", "ping")
		if out.code != 0 || !strings.Contains(out.stdout, "web1.e2e") || !strings.Contains(out.stdout, "web2.e2e") || strings.Contains(out.stdout, "db1.e2e") {
			t.Errorf("mco rpc rpcutil ping < find output: exit %d\nstdout:\n%s\nstderr:\n%s", out.code, out.stdout, out.stderr)
		}
	})

	t.Run("flatfile with a silent node", func(t *testing.T) {
		ghost := writeAtomic(t, filepath.Join(dir, "ghost.txt"), "web1.e2e\nghost.e2e\n")
		out := mco(t, "", "-c", f.conf, "rpc", "rpcutil", "ping", "--nodes", ghost, "-t", "2s")
		if out.code == 0 || !strings.Contains(out.stdout, "ghost.e2e") {
			t.Errorf("silent node not reported: exit %d\nstdout:\n%s\nstderr:\n%s", out.code, out.stdout, out.stderr)
		}
	})

	t.Run("empty pipe falls back to broadcast", func(t *testing.T) {
		// A script or CI job pipes nothing: stdin is a pipe but empty.
		cmd := exec.Command(mcoBin, "-c", f.conf, "find", "-F", "role=web")
		cmd.Env = append(os.Environ(), "MCO_CONFIG=", "NO_COLOR=1")
		cmd.Stdin = strings.NewReader("")
		out, err := cmd.Output()
		if err != nil || !strings.Contains(string(out), "web1.e2e") || !strings.Contains(string(out), "web2.e2e") {
			t.Fatalf("find with an empty pipe: %v\n%s", err, out)
		}
	})

	errs := []struct {
		name, want string
		args       []string
	}{
		{"missing nodes file", "absent.txt", []string{"--nodes", filepath.Join(dir, "absent.txt")}},
		{"not an identity", "is not a node identity", []string{"--nodes", writeAtomic(t, filepath.Join(dir, "bad.txt"), "web1.e2e\ntwo words\n")}},
		{"failing program", "discovery program", []string{"--dm", "external", "--nodes", filepath.Join(dir, "absent.sh")}},
		{"unknown method", "unknown discovery method", []string{"--dm", "carrier-pigeon"}},
		// Non-matching listed nodes would look like silent ones: refused.
		{"fact filter on a node list", "narrow it with -I only", []string{"--nodes", writeAtomic(t, filepath.Join(dir, "two.txt"), "web1.e2e\ndb1.e2e\n"), "-F", "role=web"}},
	}
	for _, tt := range errs {
		t.Run(tt.name, func(t *testing.T) {
			r := mco(t, "", append([]string{"-c", f.conf, "find"}, tt.args...)...)
			if r.code == 0 || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("exit %d, stderr %q; want failure mentioning %q", r.code, r.stderr, tt.want)
			}
		})
	}
}

func testDiscoveryFactsInventoryData(t *testing.T, f *discoveryFleet) {

	t.Run("facts value counts", func(t *testing.T) {
		r := mco(t, "", "-c", f.conf, "facts", "role")
		if r.code != 0 || !matchLine(r.stdout, "web", "found 2 times") || !matchLine(r.stdout, "db", "found 1 times") {
			t.Fatalf("mco facts role: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		r = mco(t, "", "-c", f.conf, "facts", "site.dc", "-v")
		if r.code != 0 || !matchLine(r.stdout, "ams", "found 2 times") || !matchLine(r.stdout, "lon", "found 1 times") {
			t.Fatalf("mco facts site.dc -v: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		// -v lists the nodes under their value.
		ams := r.stdout[strings.Index(r.stdout, "ams"):strings.Index(r.stdout, "lon")]
		if !strings.Contains(ams, "db1.e2e") || !strings.Contains(ams, "web1.e2e") || strings.Contains(ams, "web2.e2e") {
			t.Errorf("mco facts site.dc -v: ams section:\n%s", ams)
		}
		r = mco(t, "", "-c", f.conf, "facts", "role", "-F", "site.dc=lon")
		if r.code != 0 || !matchLine(r.stdout, "web", "found 1 times") || strings.Contains(r.stdout, "db ") {
			t.Errorf("mco facts role -F site.dc=lon: exit %d\nstdout:\n%s", r.code, r.stdout)
		}
	})

	t.Run("inventory", func(t *testing.T) {
		r := mco(t, "", "-c", f.conf, "inventory", "web1.e2e")
		for _, want := range []string{"Inventory for web1.e2e", "role::web", "apache", "role => web", "env => prod", "package", "fstat", "mcollective"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("mco inventory web1.e2e lacks %q: exit %d\nstdout:\n%s\nstderr:\n%s", want, r.code, r.stdout, r.stderr)
			}
		}
		r = mco(t, "", "-c", f.conf, "inventory", "db1.e2e", "--json")
		var doc struct {
			Inventory struct {
				Agents  []string `json:"agents"`
				Classes []string `json:"classes"`
			} `json:"inventory"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
			t.Fatalf("mco inventory db1.e2e --json: %v\n%s%s", err, r.stdout, r.stderr)
		}
		if slices.Contains(doc.Inventory.Agents, "package") || !slices.Equal(doc.Inventory.Classes, []string{"role::db", "mysql"}) {
			t.Errorf("db1 inventory: agents %v, classes %v", doc.Inventory.Agents, doc.Inventory.Classes)
		}
	})

	t.Run("get_data", func(t *testing.T) {
		got, _, out := f.rpcJSON(t, "", "rpcutil", "get_data", "source=fstat", "query="+f.exists, "-I", "web1.e2e")
		if !slices.Equal(got, []string{"web1.e2e"}) || !strings.Contains(out.stdout, `"present": 1`) /* MCollective's form (issue 8) */ || !strings.Contains(out.stdout, `"type": "file"`) {
			t.Errorf("get_data fstat: exit %d\nstdout:\n%s\nstderr:\n%s", out.code, out.stdout, out.stderr)
		}
		out = mco(t, "", "-c", f.conf, "rpc", "rpcutil", "get_data", "source=fact", "query=site.rack.row", "-F", "role=web")
		if out.code != 0 || !strings.Contains(out.stdout, "web1.e2e") || !strings.Contains(out.stdout, "web2.e2e") {
			t.Errorf("get_data fact: exit %d\nstdout:\n%s\nstderr:\n%s", out.code, out.stdout, out.stderr)
		}
	})
}

// matchLine reports whether a line of out contains all the parts, in order.
func matchLine(out string, parts ...string) bool {
	for line := range strings.Lines(out) {
		rest, ok := line, true
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return true
		}
	}
	return false
}

func testDiscoveryFactsReload(t *testing.T, f *discoveryFleet) {
	db1 := filepath.Join(f.fx, "db1.yaml")
	marker := filepath.Join(f.fx, "db1-marker.json")

	// A changed file is picked up without restarting the daemon.
	writeAtomic(t, db1, "role: cache\nweight: 100\n")
	f.waitForFind(t, []string{"db1.e2e"}, "-F", "role=cache")
	if got := f.find(t, "", "-F", "role=db"); len(got) != 0 {
		t.Fatalf("old fact still matches: %v", got)
	}

	// A broken file keeps its last good facts. The marker file is listed
	// before db1.yaml, so once its new value is visible the same poll has
	// already tried (and failed) to load the broken db1.yaml.
	writeAtomic(t, db1, "role: [unclosed\n")
	writeAtomic(t, marker, `{"marker": 1}`)
	f.waitForFind(t, []string{"db1.e2e"}, "-F", "marker=1")
	if got := f.find(t, "", "-F", "role=cache", "-F", "marker=1"); !slices.Equal(got, []string{"db1.e2e"}) {
		t.Errorf("after a broken facts file: -F role=cache found %v, want the last good facts kept", got)
	}

	// Fixing it is picked up again.
	writeAtomic(t, db1, "role: db\n")
	f.waitForFind(t, []string{"db1.e2e"}, "-F", "role=db")
}

// waitForFind polls `mco find args` until it prints want (or fails the test
// after a deadline).
func (f *discoveryFleet) waitForFind(t *testing.T, want []string, args ...string) {
	t.Helper()
	var got []string
	if !poll.Wait(func() bool { got = f.find(t, "", args...); return slices.Equal(got, want) }) {
		t.Fatalf("mco find %q: still %v, want %v", args, got, want)
	}
}

func testDiscoveryClientErrors(t *testing.T, f *discoveryFleet) {
	tests := []struct {
		name string
		args []string
		want string // in stderr
	}{
		{"fact without operator", []string{"-F", "role"}, "no comparison operator"},
		{"fact without name", []string{"-F", "=web"}, "empty fact name"},
		{"fact bad regex", []string{"-F", "role=~/[/"}, "invalid regex"},
		{"identity bad regex", []string{"-I", "/(/"}, "invalid regex"},
		{"class bad regex", []string{"-C", "/[/"}, "invalid regex"},
		{"unclosed parenthesis", []string{"-S", "(role=web or role=db"}, `unclosed "("`},
		{"unbalanced parenthesis", []string{"-S", "role=web)"}, `unbalanced ")"`},
		{"dangling and", []string{"-S", "role=web and"}, "-S"},
		{"compound bad regex", []string{"-S", "role=~/[/"}, "-S"},
		{"unknown data function", []string{"-S", "nosuch('x')"}, `unknown data plugin "nosuch"`},
		{"unquoted function argument", []string{"-S", "fstat(/etc/hostname)"}, "quoted"},
	}
	before := f.requestsSeen(t)
	baseline := f.requestsSeen(t) - before // what one daemon_stats call adds
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, cmd := range [][]string{{"find"}, {"rpc", "rpcutil", "ping"}, {"ping"}, {"facts", "role"}, {"filter", "explain"}} {
				args := append(append([]string{"-c", f.conf}, cmd...), tt.args...)
				r := mco(t, "", args...)
				if r.code == 0 || !strings.Contains(r.stderr, tt.want) || r.stdout != "" {
					t.Errorf("mco %q: exit %d, stdout %q, stderr %q; want a failure mentioning %q", args[2:], r.code, r.stdout, r.stderr, tt.want)
				}
			}
		})
	}
	after := f.requestsSeen(t)
	if sent := after - before - 2*baseline; sent != 0 {
		t.Errorf("web1.e2e received %v requests from malformed filters; want none", sent)
	}
}

func TestFilterTestCommand(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	yamlFacts := writeAtomic(t, filepath.Join(dir, "facts.yaml"), "role: web\nweight: 10\nos:\n  release:\n    major: \"12\"\ntags: [blue, green]\n")
	jsonFacts := writeAtomic(t, filepath.Join(dir, "facts.json"), `{"role": "db", "weight": 100, "site": {"dc": "ams"}}`)
	broken := writeAtomic(t, filepath.Join(dir, "broken.yaml"), "role: [web\n")
	notMap := writeAtomic(t, filepath.Join(dir, "list.json"), `["role"]`)
	classes := writeAtomic(t, filepath.Join(dir, "classes.txt"), "role::web\r\napache\n")
	present := filepath.Join(dir, "present")
	writeAtomic(t, present, "x")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		want     string // in stdout for 0/1, stderr for 2
	}{
		{"fact match", []string{"-F", "role=web", "--facts", yamlFacts}, 0, "match"},
		{"fact no match", []string{"-F", "role=db", "--facts", yamlFacts}, 1, "no match"},
		{"json facts", []string{"-F", "site.dc=ams", "-F", "weight>=100", "--facts", jsonFacts}, 0, "match"},
		{"numeric", []string{"-F", "weight<9", "--facts", yamlFacts}, 1, "no match"},
		{"nested", []string{"-F", "os.release.major>=11", "--facts", yamlFacts}, 0, "match"},
		{"array", []string{"-F", "tags=green", "--facts", yamlFacts}, 0, "match"},
		{"missing fact", []string{"-F", "nonexistent=true", "--facts", yamlFacts}, 1, "no match"},
		{"class", []string{"-C", "apache", "--facts", yamlFacts, "--classes", classes}, 0, "match"},
		{"class without classes file", []string{"-C", "apache", "--facts", yamlFacts}, 1, "no match"},
		{"identity default", []string{"-I", "localhost", "--facts", yamlFacts}, 0, "match"},
		{"identity given", []string{"-I", "/^web/", "--node", "web3.example", "--facts", yamlFacts}, 0, "match"},
		{"identity mismatch", []string{"-I", "/^web/", "--facts", yamlFacts}, 1, "no match"},
		{"agent", []string{"-A", "package", "--agents", "rpcutil,package", "--facts", yamlFacts}, 0, "match"},
		{"agent missing", []string{"-A", "package", "--facts", yamlFacts}, 1, "no match"},
		{"combined", []string{"-W", "role=web apache", "--facts", yamlFacts, "--classes", classes}, 0, "match"},
		{"compound", []string{"-S", "(role=db or apache) and not tags=red", "--facts", yamlFacts, "--classes", classes}, 0, "match"},
		{"fstat present", []string{"-S", "fstat('" + present + "').present=true", "--facts", yamlFacts}, 0, "match"},
		{"fstat absent", []string{"-S", "fstat('" + filepath.Join(dir, "absent") + "')", "--facts", yamlFacts}, 1, "no match"},
		{"fact function", []string{"-S", "fact('os.release.major').value=12", "--facts", yamlFacts}, 0, "match"},
		{"agent function", []string{"-S", "agent('package')", "--agents", "package", "--facts", yamlFacts}, 0, "match"},
		{"empty filter", []string{"--facts", yamlFacts}, 0, "match"},
		{"malformed fact", []string{"-F", "role", "--facts", yamlFacts}, 2, "no comparison operator"},
		{"malformed compound", []string{"-S", "(role=web", "--facts", yamlFacts}, 2, `unclosed "("`},
		{"unknown function", []string{"-S", "nosuch('x')", "--facts", yamlFacts}, 2, "nosuch"},
		{"bad regex", []string{"-I", "/[/", "--facts", yamlFacts}, 2, "invalid regex"},
		{"no facts flag", []string{"-F", "role=web"}, 2, "--facts"},
		{"missing facts file", []string{"-F", "role=web", "--facts", filepath.Join(dir, "absent.yaml")}, 2, "absent.yaml"},
		{"broken facts file", []string{"-F", "role=web", "--facts", broken}, 2, "broken.yaml"},
		{"facts not a map", []string{"-F", "role=web", "--facts", notMap}, 2, "list.json"},
		{"missing classes file", []string{"-C", "x", "--facts", yamlFacts, "--classes", filepath.Join(dir, "absent.txt")}, 2, "absent.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mco(t, "", append([]string{"filter", "test"}, tt.args...)...)
			ok := r.code == tt.wantCode
			if tt.wantCode == 2 {
				ok = ok && strings.Contains(r.stderr, tt.want) && r.stdout == ""
			} else {
				ok = ok && strings.TrimSpace(r.stdout) == tt.want
			}
			if !ok {
				t.Errorf("mco filter test %q: exit %d\nstdout:\n%s\nstderr:\n%s\nwant exit %d and %q", tt.args, r.code, r.stdout, r.stderr, tt.wantCode, tt.want)
			}
		})
	}
}

func TestFilterExplainCommand(t *testing.T) {
	t.Parallel()
	r := mco(t, "", "filter", "explain", "-I", "web1", "-I", "/^db/", "-F", "os.release.major>=11", "-C", "/^role::/", "-A", "package",
		"-W", "env=prod apache", "-S", "fstat('/etc/issue').present=true and (nginx or apache)")
	want := []string{
		"Identity is web1 or matches /^db/",
		"Fact os.release.major >= 11",
		"Fact env == prod",
		"Class matches /^role::/",
		"Class is apache",
		"Agent is package",
		"Compound fstat('/etc/issue').present == true and (nginx or apache)",
	}
	if r.code != 0 {
		t.Fatalf("exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stdout, w+"\n") {
			t.Errorf("mco filter explain lacks %q:\n%s", w, r.stdout)
		}
	}
	if r := mco(t, "", "filter", "explain"); r.code != 0 || !strings.Contains(r.stdout, "every node matches") {
		t.Errorf("empty filter: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
}
