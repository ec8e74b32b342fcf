package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// fixtureDDLs is the shared collection of published agent DDLs.
const fixtureDDLs = "../../ddl/testdata/fixtures"

// standIn is the executable served behind each published DDL: it implements
// no action, it only answers, so the test checks the daemon serves the DDL.
const standIn = "#!/bin/sh\n[ \"$3\" = io.choria.mcorpc.external.v1.rpc_request ] || exit 0\nprintf '{}' >\"$2\"\n"

// TestChoriaCompatibility serves every published DDL of the fixtures (in
// Choria's <libdir>/mcollective/agent layout, behind stand-in executables),
// a Choria-style Python agent with its plugin settings, an MCollective-style
// flat agent, a failing agent and a refused one through a real daemon.
func TestChoriaCompatibility(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	fixtures, extra := t.TempDir(), t.TempDir()
	files, err := filepath.Glob(filepath.Join(fixtureDDLs, "*.json"))
	if err != nil || len(files) < 11 {
		t.Fatalf("fixture DDLs: %v %v", files, err)
	}
	var published []string
	choriaDir := filepath.Join(fixtures, "mcollective", "agent")
	if err := os.MkdirAll(choriaDir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		published = append(published, name)
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(choriaDir, name), []byte(standIn), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(choriaDir, name+".json"), body, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writeAgent(t, extra, "crasher", agentDDL("crasher", "run", 5),
		"#!/bin/sh\n[ \"$3\" = io.choria.mcorpc.external.v1.rpc_request ] || exit 0\nfor i in 1 2 3 4 5 6; do echo \"crash detail $i\" >&2; done\nexit 3\n")
	writeAgent(t, extra, "lax", agentDDL("lax", "run", 5), "#!/bin/sh\nexit 0\n")
	// Capitalised types and a validator plugin we do not ship.
	choriaStyle, err := os.ReadFile("../../ddl/testdata/choria_style.json")
	if err != nil {
		t.Fatal(err)
	}
	writeAgent(t, extra, "nettest_like", string(choriaStyle), standIn)
	lax := filepath.Join(extra, "agent", "lax")
	if err := os.Chmod(lax, 0o777); err != nil {
		t.Fatal(err)
	}
	libdirs := "libdir = " + strings.Join([]string{examplesLibdir(t), fixtures, extra}, ",")
	d := c.startDaemon("node1.e2e", libdirs, "plugin.pychoria.greeting = ahoy", "plugin.pychoria.enabled = true")
	conf := c.client("alice.mcollective", libdirs)

	t.Run("every published DDL is served", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "rpcutil", "agent_inventory", "-I", "node1.e2e", "--json")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
		}
		var out struct {
			Replies []struct {
				Data struct {
					Agents []struct {
						Agent string `json:"agent"`
					} `json:"agents"`
				} `json:"data"`
			} `json:"replies"`
		}
		if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || len(out.Replies) != 1 {
			t.Fatalf("agent_inventory: %v\n%s", err, r.stdout)
		}
		var served []string
		for _, a := range out.Replies[0].Data.Agents {
			served = append(served, a.Agent)
		}
		for _, want := range append(published, "pychoria", "greeter", "crasher") {
			if !slices.Contains(served, want) {
				t.Errorf("agent %s not served (served: %v)", want, served)
			}
		}
		if slices.Contains(served, "lax") {
			t.Error("the world-writable agent lax is served")
		}
	})

	t.Run("plugin doc renders every published DDL", func(t *testing.T) {
		for _, name := range published {
			r := mco(t, "", "-c", conf, "plugin", "doc", name)
			if r.code != 0 || !strings.HasPrefix(r.stdout, name+"\n") {
				t.Errorf("plugin doc %s: exit %d\n%s\n%s", name, r.code, r.stdout, r.stderr)
			}
		}
		r := mco(t, "", "-c", conf, "plugin", "doc", "nrpe")
		if !strings.Contains(r.stdout, "WARNINGS:") || !strings.Contains(r.stdout, `unknown aggregate function "nagios_states"`) ||
			!strings.Contains(r.stdout, "nagios_states(exitcode) (not computed: aggregate function nagios_states is not available)") {
			t.Errorf("nrpe doc lacks the warning:\n%s", r.stdout)
		}
	})

	t.Run("unknown aggregate: summary skipped with a note", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "nrpe", "runcommand", "command=check_load", "-I", "node1.e2e")
		if r.code != 0 || !strings.Contains(r.stdout, "Note: summary nagios_states(exitcode) skipped: aggregate function nagios_states is not available") {
			t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		if n := strings.Count(r.stderr, "nagios_states"); n != 1 {
			t.Errorf("client warned %d times about nagios_states, want once:\n%s", n, r.stderr)
		}
		r = mco(t, "", "-c", conf, "rpc", "nrpe", "runcommand", "command=check_load", "-I", "node1.e2e", "-j")
		if !strings.Contains(r.stdout, `"skipped_summaries": [`) || !strings.Contains(r.stdout, `"summary nagios_states(exitcode) skipped: aggregate function nagios_states is not available"`) {
			t.Errorf("--json lacks skipped_summaries:\n%s", r.stdout)
		}
	})

	t.Run("unknown validator: checked by type and maxlength only, on both sides", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "nettest_like", "check", "target=host.example.net", "-I", "node1.e2e")
		if r.code != 0 || strings.Count(r.stderr, `unknown validator "nettest_fqdn"`) != 1 {
			t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		r = mco(t, "", "-c", conf, "rpc", "nettest_like", "check", "target="+strings.Repeat("a", 256), "-I", "node1.e2e")
		if r.code != 1 || !strings.Contains(r.stderr, "longer than 255") {
			t.Errorf("maxlength: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		r = mco(t, "", "-c", conf, "plugin", "doc", "nettest_like")
		if r.code != 0 || !strings.Contains(r.stdout, "nettest_fqdn (validator not available: not checked)") || !strings.Contains(r.stdout, "Type: hash") {
			t.Errorf("plugin doc: exit %d\n%s", r.code, r.stdout)
		}
	})

	t.Run("stand-ins answer", func(t *testing.T) {
		for _, call := range [][]string{{"filemgr", "status"}, {"shell", "list"}, {"iptables", "listblocked"}, {"scout", "checks"}, {"executor", "list"}, {"choria_util", "info"}} {
			r := mco(t, "", append([]string{"-c", conf, "rpc"}, append(call, "-I", "node1.e2e", "--json")...)...)
			if r.code != 0 || !strings.Contains(r.stdout, `"statuscode": 0`) {
				t.Errorf("%v: exit %d\n%s\n%s", call, r.code, r.stdout, r.stderr)
			}
		}
	})

	t.Run("Choria envelope agent with plugin settings", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "pychoria", "echo", "message=hi there", "-I", "node1.e2e")
		if r.code != 0 || !matchLine(r.stdout, "Message:", "hi there") || !matchLine(r.stdout, "Greeting:", "ahoy") ||
			!matchLine(r.stdout, "Caller:", "cert=alice.mcollective") {
			t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("MCollective flat agent", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "greeter", "hello", "name=world", "-I", "node1.e2e")
		if r.code != 0 || !strings.Contains(r.stdout, "hello world from ") {
			t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("failing agent: stderr tail in the reply", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "crasher", "run", "-I", "node1.e2e", "--json")
		if !strings.Contains(r.stdout, "external agent crasher failed: exit status 3: ...crash detail 4 | crash detail 5 | crash detail 6") {
			t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})

	// The node log, read once the daemon stopped.
	log := d.stop(t)
	for _, want := range []string{
		`crash detail 1\ncrash detail 2`, // the whole stderr of the failure
		"refusing " + lax + ": writable by group or others",
		`unknown aggregate function \"nagios_states\"`,
		`unknown validator \"nettest_fqdn\"`, // the node warns as the client does
	} {
		if !strings.Contains(log, want) {
			t.Errorf("node log lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("node log:\n%s", log)
	}
}

// stop interrupts the daemon, waits for it and returns its log.
func (d *daemon) stop(t *testing.T) string {
	t.Helper()
	_ = d.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = d.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-done
	}
	return d.stderr.String()
}
