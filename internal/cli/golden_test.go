package cli_test

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/internal/agents/packageagent"
	"github.com/marionette/mco/internal/agents/serviceagent"
	"github.com/marionette/mco/internal/cli"
	"github.com/marionette/mco/internal/devcluster"
	"github.com/marionette/mco/internal/node"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output (or set UPDATE_GOLDEN=1)")

// goldenCase is one mco invocation whose output is compared with
// testdata/<name>.golden.
type goldenCase struct {
	name  string
	args  []string
	stdin string
	tty   bool   // stdin is a terminal (prompts are allowed)
	conf  string // client configuration (default: the cluster's, with the examples libdir)
}

// TestGolden runs client commands in-process against a three-node dev
// collective (web1.dev, db1.dev, cache1.dev) whose package and service agents
// drive fakes, so nothing on this machine is touched and every reply is
// deterministic.
func TestGolden(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a dev collective")
	}
	dir := t.TempDir()
	examples, err := filepath.Abs(filepath.Join("..", "..", "examples", "agents"))
	if err != nil {
		t.Fatal(err)
	}
	fakeBin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(fakeBin, 0o755); err != nil {
		t.Fatal(err)
	}
	// A sysvinit service(8) that reports every service as running.
	fakeService := "#!/bin/sh\ncase \"$2\" in status) echo \"$1 is running\";; esac\nexit 0\n"
	if err := os.WriteFile(filepath.Join(fakeBin, "service"), []byte(fakeService), 0o755); err != nil {
		t.Fatal(err)
	}
	c, err := devcluster.Start(context.Background(), devcluster.Options{
		Dir: filepath.Join(dir, "cluster"), Nodes: 3, Libdirs: []string{examples},
		Agents: []node.AgentFunc{func(*node.Node) ([]*agent.Agent, error) {
			pkg, err := packageagent.New(packageagent.Options{Backend: fakePackages{}})
			if err != nil {
				return nil, err
			}
			svc, err := serviceagent.New(serviceagent.Options{Init: serviceagent.SysVinit, Path: fakeBin})
			if err != nil {
				return nil, err
			}
			return []*agent.Agent{pkg, svc}, nil
		}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	// devcluster's client.conf already names the examples libdir.
	conf := c.ClientConfig
	written, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	var base []byte
	for _, line := range bytes.SplitAfter(written, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte("libdir")) {
			base = append(base, line...)
		}
	}

	// A second configuration adds a libdir holding a broken DDL.
	brokenLib := filepath.Join(dir, "brokenlib")
	if err := os.MkdirAll(filepath.Join(brokenLib, "agent"), 0o755); err != nil {
		t.Fatal(err)
	}
	broken, err := os.ReadFile(filepath.Join("testdata", "ddl", "broken.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(brokenLib, "agent", "broken.json"), broken, 0o644); err != nil {
		t.Fatal(err)
	}
	brokenConf := filepath.Join(dir, "broken.conf")
	if err := os.WriteFile(brokenConf, fmt.Appendf(base, "libdir = %s,%s\n", examples, brokenLib), 0o600); err != nil {
		t.Fatal(err)
	}

	host, _ := os.Hostname()
	masks := []struct {
		re   *regexp.Regexp
		with string
	}{
		{regexp.MustCompile(`in [0-9.]+ ms`), "in N ms"},
		{regexp.MustCompile(`"(rtt_ms|discovery_ms|request_ms)": [0-9.e+-]+`), `"$1": 0`},
		{regexp.MustCompile(`"request_id": "[^"]*"`), `"request_id": "ID"`},
		{regexp.MustCompile(`("job_id": "|job )[0-9a-f]{32}\b`), "${1}ID"},
		{regexp.MustCompile(regexp.QuoteMeta(dir)), "TMP"},
	}
	if host != "" {
		masks = append(masks, struct {
			re   *regexp.Regexp
			with string
		}{regexp.MustCompile(`\b` + regexp.QuoteMeta(host) + `\b`), "HOST"})
	}

	cases := []goldenCase{
		{name: "plugin_list", args: []string{"plugin", "doc"}},
		{name: "plugin_list_broken", args: []string{"plugin", "doc"}, conf: brokenConf},
		{name: "plugin_doc_broken_in_libdir", args: []string{"plugin", "doc", "broken"}, conf: brokenConf},
		{name: "plugin_doc_service", args: []string{"plugin", "doc", "service"}},
		{name: "plugin_doc_greeter", args: []string{"plugin", "doc", "agent/greeter"}},
		{name: "plugin_doc_broken", args: []string{"plugin", "doc", "testdata/ddl/broken.json"}},
		{name: "plugin_doc_unknown", args: []string{"plugin", "doc", "nosuchagent"}},
		{name: "rpc_get_fact", args: []string{"rpc", "rpcutil", "get_fact", "fact=role"}},
		{name: "rpc_get_fact_json", args: []string{"rpc", "rpcutil", "get_fact", "fact=role", "--json", "-I", "web1.dev", "-I", "db1.dev"}},
		{name: "rpc_no_response", args: []string{"rpc", "rpcutil", "get_fact", "fact=role", "-I", "web1.dev", "-I", "ghost.dev", "-t", "1s"}},
		{name: "rpc_greeter", args: []string{"rpc", "greeter", "hello", "name=world", "-I", "web1.dev"}},
		{name: "rpc_greeter_invalid", args: []string{"rpc", "greeter", "hello", "name=world;reboot"}},
		{name: "rpc_unknown_action", args: []string{"rpc", "greeter", "goodbye"}},
		// In-process nodes keep no job spool: each says so, none pretends.
		{name: "rpc_async_without_spool", args: []string{"rpc", "greeter", "hello", "name=world", "--async", "-I", "web1.dev", "-I", "db1.dev"}},
		{name: "rpc_async_json", args: []string{"rpc", "greeter", "hello", "name=world", "--async", "-I", "web1.dev", "--json"}},
		{name: "rpc_async_batch_refused", args: []string{"rpc", "greeter", "hello", "name=world", "--async", "--batch", "1"}},
		{name: "package_status", args: []string{"package", "openssl", "status"}},
		{name: "package_status_action_first", args: []string{"package", "status", "openssl", "-W", "role=web"}},
		{name: "package_bad_name", args: []string{"package", "openssl;reboot", "status"}},
		{name: "package_no_action", args: []string{"package", "openssl", "frobnicate"}},
		{name: "service_status", args: []string{"service", "nginx", "status", "-I", "web1.dev"}},
		{name: "service_restart_refused", args: []string{"service", "nginx", "restart"}},
		{name: "service_restart_declined", args: []string{"service", "restart", "nginx"}, stdin: "n\n", tty: true},
		{name: "service_restart_confirmed", args: []string{"service", "nginx", "restart"}, stdin: "y\n", tty: true},
		{name: "service_restart_yes", args: []string{"service", "nginx", "restart", "--yes"}},
		{name: "service_restart_filtered", args: []string{"service", "nginx", "restart", "-F", "role=db"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			app := &cli.App{
				Stdin: strings.NewReader(tc.stdin), Stdout: &stdout, Stderr: &stderr,
				Getenv: func(string) string { return "" }, StdinTTY: tc.tty,
			}
			cf := conf
			if tc.conf != "" {
				cf = tc.conf
			}
			code := cli.Run(app, append([]string{"-c", cf}, tc.args...))
			got := fmt.Sprintf("$ mco %s\n--- stdout\n%s--- stderr\n%s--- exit %d\n", strings.Join(tc.args, " "), stdout.String(), stderr.String(), code)
			for _, m := range masks {
				got = m.re.ReplaceAllString(got, m.with)
			}
			checkGolden(t, filepath.Join("testdata", tc.name+".golden"), got)
		})
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *update || os.Getenv("UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// fakePackages is a package manager where every package is installed at
// 1.2.3-1 on amd64; it changes nothing.
type fakePackages struct{}

func (fakePackages) Provider() string { return "dpkg" }

func (fakePackages) Status(_ context.Context, name string) (packageagent.Package, error) {
	return packageagent.Package{Name: name, Ensure: "1.2.3-1", Version: "1.2.3", Release: "1", Arch: "amd64"}, nil
}

func (fakePackages) List(context.Context) ([]packageagent.Package, error) {
	return []packageagent.Package{{Name: "openssl", Ensure: "1.2.3-1", Version: "1.2.3", Release: "1", Arch: "amd64"}}, nil
}

var errFake = errors.New("the fake package manager changes nothing")

func (fakePackages) Install(context.Context, string, string) (packageagent.Result, error) {
	return packageagent.Result{}, errFake
}

func (fakePackages) Update(context.Context, string) (packageagent.Result, error) {
	return packageagent.Result{}, errFake
}

func (fakePackages) Uninstall(context.Context, string) (packageagent.Result, error) {
	return packageagent.Result{}, errFake
}

func (fakePackages) Purge(context.Context, string) (packageagent.Result, error) {
	return packageagent.Result{}, errFake
}

func (fakePackages) CheckUpdates(context.Context) ([]packageagent.Update, packageagent.Result, error) {
	return nil, packageagent.Result{}, nil
}
