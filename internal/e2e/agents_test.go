package e2e

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/protocol"
)

// examplesLibdir is the absolute path of the repository's example agents.
func examplesLibdir(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", "..", "examples", "agents"))
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// writeAgent writes an external agent (DDL and sh script) into libdir/agent.
func writeAgent(t *testing.T, libdir, name, ddlJSON, script string) {
	t.Helper()
	dir := filepath.Join(libdir, "agent")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The executable first: the DDL appearing is what makes the loader
	// pick the agent up, and it must find the program already in place.
	if err := os.WriteFile(filepath.Join(dir, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".json"), []byte(ddlJSON), 0o644); err != nil {
		t.Fatal(err)
	}
}

// agentDDL is a minimal DDL with one action without inputs.
func agentDDL(name, action string, timeout int) string {
	return strings.NewReplacer("NAME", name, "ACTION", action, "TIMEOUT", strconv.Itoa(timeout)).Replace(`{
  "metadata": {"name": "NAME", "description": "e2e test agent", "author": "e2e", "license": "Apache-2.0",
               "version": "1.0.0", "url": "https://example.net", "timeout": TIMEOUT},
  "actions": [{"action": "ACTION", "description": "test action", "display": "always", "input": {},
               "output": {"message": {"description": "a message", "display_as": "Message", "type": "string"}}}]
}`)
}

// TestExternalAgentThroughDaemon runs the example greeter agent in a real
// daemon, checks client-side and node-side input validation, hot reload of a
// new agent and the DDL timeout.
func TestExternalAgentThroughDaemon(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	examples := examplesLibdir(t)
	hot := t.TempDir()  // empty until the daemon runs: hot reload
	slow := t.TempDir() // an agent that outlives its timeout
	writeAgent(t, slow, "sleeper", agentDDL("sleeper", "nap", 1), "#!/bin/sh\nexec sleep 30\n")
	libdirs := "libdir = " + strings.Join([]string{examples, hot, slow}, ",")
	audit := filepath.Join(t.TempDir(), "audit.log")
	c.startDaemon("node1.e2e", libdirs, "audit.log = "+audit)
	conf := c.client("alice.mcollective", libdirs)

	t.Run("greeting", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "greeter", "hello", "name=world", "-I", "node1.e2e")
		if r.code != 0 || !strings.Contains(r.stdout, "hello world from ") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("client rejects invalid input", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "greeter", "hello", "name=world;reboot", "-I", "node1.e2e")
		if r.code != 1 || !strings.Contains(r.stderr, "shell safe") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		// The node audits every request it receives: none may mention it.
		log, err := os.ReadFile(audit)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(log), `"greeter"`) {
			t.Fatalf("the audit log does not show the earlier greeting:\n%s", log)
		}
		if strings.Contains(string(log), "reboot") {
			t.Fatalf("the invalid request reached the node:\n%s", log)
		}
	})

	t.Run("node validates too", func(t *testing.T) {
		cl := c.connect(conf)
		tests := []struct {
			name string
			data map[string]any
			want protocol.StatusCode
		}{
			{"invalid value", map[string]any{"name": "world;reboot"}, protocol.InvalidData},
			{"missing input", map[string]any{}, protocol.MissingData},
		}
		for _, tc := range tests {
			var got []client.Result
			_, err := cl.Call(context.Background(), client.Request{
				Agent: "greeter", Action: "hello", Data: tc.data, Targets: []string{"node1.e2e"}, Timeout: 10 * time.Second,
			}, func(r client.Result) { got = append(got, r) })
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if len(got) != 1 || got[0].Status != tc.want {
				t.Errorf("%s: replies %+v, want one with status %d", tc.name, got, tc.want)
			}
		}
	})

	t.Run("hot reload", func(t *testing.T) {
		writeAgent(t, hot, "newagent", agentDDL("newagent", "action", 5),
			"#!/bin/sh\nprintf '{\"message\":\"fresh\"}\\n' >\"$2\"\n")
		var r result
		if !poll.Wait(func() bool {
			r = mco(t, "", "-c", conf, "rpc", "newagent", "action", "-I", "node1.e2e", "-t", "2s")
			return r.code == 0 && strings.Contains(r.stdout, "Message: fresh")
		}) {
			t.Fatalf("newagent never answered; last try: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("timeout", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "sleeper", "nap", "-I", "node1.e2e")
		if r.code != 2 || !strings.Contains(r.stdout, "timeout after 1s") {
			t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
		}
		cl := c.connect(conf)
		var got []client.Result
		if _, err := cl.Call(context.Background(), client.Request{Agent: "sleeper", Action: "nap", Targets: []string{"node1.e2e"}, Timeout: 10 * time.Second},
			func(r client.Result) { got = append(got, r) }); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0].Status != protocol.Aborted || got[0].Message != "timeout after 1s" {
			t.Fatalf("replies %+v, want one with status 1 \"timeout after 1s\"", got)
		}
	})
}

// TestPackageAppThroughDaemon queries this machine's real dpkg database
// through a daemon. Read-only: only status is ever sent.
func TestPackageAppThroughDaemon(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("dpkg-query"); err != nil {
		t.Skip("dpkg-query not installed")
	}
	c := newCollective(t, collectiveOptions{})
	c.startDaemon("node1.e2e")
	r := mco(t, "", "-c", c.clientConf(), "package", "bash", "status", "-I", "node1.e2e")
	if r.code != 0 || !strings.Contains(r.stdout, "Summary of Ensure:") || !strings.Contains(r.stdout, "node1.e2e") {
		t.Fatalf("package bash status: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = mco(t, "", "-c", c.clientConf(), "package", "status", "bash;ls", "-I", "node1.e2e")
	if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, `input "package"`) {
		t.Fatalf("package with a shell metacharacter: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestServiceAppThroughDaemon drives the service agent of a real daemon
// against fake init tools. This machine has no init system (PID 1 is not
// systemd and /run/systemd/system is absent), so the agent picks sysvinit's
// service(8); both `service` and `systemctl` are faked, first on the PATH the
// daemon inherits, so the test also holds where systemd runs.
func TestServiceAppThroughDaemon(t *testing.T) {
	fake := t.TempDir()
	tools := map[string]string{
		"service":   "#!/bin/sh\ncase \"$2\" in status) echo \"$1 is running\";; esac\nexit 0\n",
		"systemctl": "#!/bin/sh\ncase \"$1\" in is-active) echo active;; esac\nexit 0\n",
	}
	for name, script := range tools {
		if err := os.WriteFile(filepath.Join(fake, name), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("PATH", fake+string(os.PathListSeparator)+os.Getenv("PATH"))
	c := newCollective(t, collectiveOptions{})
	c.startDaemon("node1.e2e")

	r := mco(t, "", "-c", c.clientConf(), "service", "nginx", "status", "-I", "node1.e2e")
	if r.code != 0 || !strings.Contains(r.stdout, "Summary of Service Status:") || !strings.Contains(r.stdout, "running") {
		t.Fatalf("service nginx status: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// stdin is not a terminal here: an unfiltered restart must be refused.
	r = mco(t, "", "-c", c.clientConf(), "service", "nginx", "restart")
	if r.code != 1 || !strings.Contains(r.stderr, "refusing to restart nginx on ALL") {
		t.Fatalf("unfiltered restart: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	r = mco(t, "", "-c", c.clientConf(), "service", "restart", "nginx", "--yes")
	if r.code != 0 || !strings.Contains(r.stdout, "running = 1") {
		t.Fatalf("restart --yes: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}
