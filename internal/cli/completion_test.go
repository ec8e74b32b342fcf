package cli_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/internal/cli"
	"github.com/marionette/mco/internal/registration"
	"github.com/marionette/mco/protocol"
)

// complete runs `mco __complete args...` (what the shell scripts of mco
// completion call) and returns the candidates.
func complete(t *testing.T, env map[string]string, args ...string) []string {
	t.Helper()
	var out, errb bytes.Buffer
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	if code := cli.Run(app, append([]string{"__complete"}, args...)); code != 0 {
		t.Fatalf("__complete %v: exit %d\n%s", args, code, errb.String())
	}
	var got []string
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if line != "" && !strings.HasPrefix(line, ":") {
			got = append(got, line)
		}
	}
	return got
}

func has(list []string, want ...string) bool {
	set := map[string]bool{}
	for _, v := range list {
		set[v] = true
	}
	for _, w := range want {
		if !set[w] {
			return false
		}
	}
	return true
}

// TestCompletionKnowsTheCollective: agents, actions and inputs come from the
// DDLs the client has (built in and its libdir), list inputs complete their
// choices, and fact names come from the registration store.
func TestCompletionKnowsTheCollective(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples", "agents"))
	if err != nil {
		t.Fatal(err)
	}
	regDir := filepath.Join(dir, "registration")
	if err := os.MkdirAll(regDir, 0o755); err != nil {
		t.Fatal(err)
	}
	st := registration.Store{Dir: regDir}
	if err := st.Save(&registration.Record{Registration: protocol.Registration{
		Identity: "web1.example.net", Agents: []string{"rpcutil"},
		Facts: map[string]any{"role": "web", "os": map[string]any{"family": "Debian", "release": map[string]any{"major": "12"}}},
	}, LastSeen: time.Now()}); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "client.conf")
	body := "tls.ca = ca.crt\ntls.cert = c.crt\ntls.key = c.key\nlibdir = " + examples + "\nregistration.dir = " + regDir + "\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}

	if got := complete(t, nil, "-c", conf, "rpc", ""); !has(got, "rpcutil", "package", "service", "greeter") {
		t.Errorf("agents: %v", got)
	}
	if got := complete(t, nil, "-c", conf, "rpc", "greeter", ""); !has(got, "hello") {
		t.Errorf("greeter actions: %v", got)
	}
	if got := complete(t, nil, "-c", conf, "rpc", "service", "status", ""); !has(got, "service=") {
		t.Errorf("service status inputs: %v", got)
	}
	if got := complete(t, nil, "-c", conf, "rpc", "package", "yum_clean", "mode="); !has(got, "mode=all", "mode=expire-cache") {
		t.Errorf("yum_clean mode choices: %v", got)
	}
	if got := complete(t, nil, "-c", conf, "rpc", "rpcutil", "get_fact", "-F", ""); !has(got, "role=", "os=", "os.family=", "os.release.major=") {
		t.Errorf("fact names for -F: %v", got)
	}
	if got := complete(t, nil, "-c", conf, "facts", ""); !has(got, "role", "os.family") {
		t.Errorf("fact names for mco facts: %v", got)
	}
	// Through MCO_CONFIG too, as an operator's shell has it (the App's
	// environment: the test need not change the process's).
	if got := complete(t, map[string]string{"MCO_CONFIG": conf}, "rpc", ""); !has(got, "greeter") {
		t.Errorf("agents with MCO_CONFIG: %v", got)
	}
}
