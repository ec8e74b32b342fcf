package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/buildinfo"
	"github.com/marionette/mco/internal/devcluster"
)

// devPolicy is the ActionPolicy of dev and demo collectives: the dev client may
// do anything, the intern only read-only rpcutil actions.
const devPolicy = `# ActionPolicy of the dev collective (see docs/security.md, "ActionPolicy").
policy default deny
allow	cert=dev.mcollective	*	*	*
allow	cert=intern.mcollective	ping inventory get_fact get_facts	*	*
`

// startDev starts a dev collective in dir with policies and audit logs.
func startDev(ctx context.Context, dir string, nodes int, libdirs []string) (*devcluster.Cluster, error) {
	policyDir := filepath.Join(dir, "policies")
	if err := os.MkdirAll(policyDir, 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(policyDir, "default.policy"), []byte(devPolicy), 0o644); err != nil {
		return nil, err
	}
	for i, l := range libdirs {
		abs, err := filepath.Abs(l)
		if err != nil {
			return nil, err
		}
		libdirs[i] = abs
	}
	return devcluster.Start(ctx, devcluster.Options{
		Dir: dir, Nodes: nodes, ExtraClients: []string{"intern.mcollective"},
		PolicyDir: policyDir, AuditDir: filepath.Join(dir, "audit"), Libdirs: libdirs,
		Version: buildinfo.Read().Short(),
	})
}

func newDevCmd(app *App) *cobra.Command {
	var nodes int
	var dir string
	var libdirs []string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Run a throw-away collective (broker and N nodes) until interrupted",
		Long: `Start a complete collective in this process: a fresh CA, a TLS broker on a
random loopback port and N nodes with varied facts (role web/db/cache, hagroup
a/b/c, os Debian/RedHat). Writes DIR/client.conf and prints how to use it.

  mco dev --nodes 50 --libdir ./examples/agents`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if nodes < 1 {
				return fmt.Errorf("--nodes must be at least 1")
			}
			cleanup := func() {}
			if dir == "" {
				tmp, err := os.MkdirTemp("", "mco-dev-")
				if err != nil {
					return err
				}
				dir, cleanup = tmp, func() { os.RemoveAll(tmp) }
			} else if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
				return fmt.Errorf("--dir %s is not empty: use a new directory (a dev collective always gets a fresh CA)", dir)
			}
			defer cleanup()
			start := time.Now()
			c, err := startDev(cmd.Context(), dir, nodes, libdirs)
			if err != nil {
				return err
			}
			defer c.Close()
			conf := c.ClientConfig
			fmt.Fprintf(app.Stdout, `Marionette dev collective is up: %d nodes, broker %s (started in %s)

Client configuration: %s
  (an intern with read-only rights: %s)
Audit logs:           %s
Policies:             %s

Try, in another terminal:
  mco -c %s ping
  export MCO_CONFIG=%s
  mco find -F role=web
  mco rpc rpcutil get_fact fact=os.family -W hagroup=a
  mco facts role

Press Ctrl-C to stop.
`, nodes, c.Broker.URL(), time.Since(start).Round(time.Millisecond), conf,
				filepath.Join(dir, "intern.mcollective.conf"), filepath.Join(dir, "audit"), filepath.Join(dir, "policies"), conf, conf)
			<-cmd.Context().Done()
			fmt.Fprintln(app.Stdout, "\nStopping the dev collective.")
			return nil
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 10, "number of nodes")
	cmd.Flags().StringVar(&dir, "dir", "", "directory for the CA, client.conf, policies and audit logs (default: a temporary directory, removed on exit)")
	cmd.Flags().StringArrayVar(&libdirs, "libdir", nil, "load external agents from DIR/agent into every node (reloaded on change)")
	return cmd
}

func newDemoCmd(app *App) *cobra.Command {
	var nodes int
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start a throw-away collective, run a short guided tour, and exit",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			dir, err := os.MkdirTemp("", "mco-demo-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			w := app.Stdout
			start := time.Now()
			c, err := startDev(cmd.Context(), dir, nodes, nil)
			if err != nil {
				return err
			}
			defer c.Close()
			fmt.Fprintf(w, "Started a collective: a fresh CA, a TLS broker at %s and %d nodes, each with its own certificate (%s).\n",
				c.Broker.URL(), nodes, time.Since(start).Round(time.Millisecond))
			conf := c.ClientConfig
			intern := filepath.Join(dir, "intern.mcollective.conf")
			steps := []struct {
				say  string
				args []string
				want int
			}{
				{"Who is out there? Every node answers a signed ping; the client verifies each signed reply.",
					[]string{"-c", conf, "ping"}, 0},
				{"Discovery with a fact filter: only the web servers.",
					[]string{"-c", conf, "find", "-F", "role=web"}, 0},
				{"An RPC with a DDL-driven summary, on hagroup a only (-W combines facts and classes).",
					[]string{"-c", conf, "rpc", "rpcutil", "get_fact", "fact=os.family", "-W", "hagroup=a", "--display", "failed"}, 0},
				{"A fact report across the collective.",
					[]string{"-c", conf, "facts", "role"}, 0},
				{"Authorization: the intern may ping but not read daemon statistics. Every node decides for itself (default deny).",
					[]string{"-c", intern, "rpc", "rpcutil", "daemon_stats", "-I", "web1.dev"}, 2},
			}
			for _, s := range steps {
				fmt.Fprintf(w, "\n# %s\n$ mco %s\n", s.say, strings.Join(redactConf(s.args, dir), " "))
				code := runSub(app, s.args)
				if code != s.want {
					return &ExitError{Code: 1, Err: fmt.Errorf("demo step 'mco %s' exited %d, expected %d", strings.Join(redactConf(s.args, dir), " "), code, s.want)}
				}
			}
			log := c.AuditLog(0)
			fmt.Fprintf(w, "\n# Every request a node accepted is in its hash-chained audit log, allowed or denied. The last records of web1.dev:\n")
			if err := tailAudit(w, log, 4); err != nil {
				return err
			}
			fmt.Fprintf(w, "\n$ mco audit verify web1.dev.log\n")
			if code := runSub(app, []string{"audit", "verify", log}); code != 0 {
				return &ExitError{Code: 1, Err: errors.New("demo: audit log did not verify")}
			}
			fmt.Fprintf(w, "\nThat was Marionette. Run 'mco dev --nodes 50' to keep a collective up and try your own commands.\n")
			return nil
		},
	}
	cmd.Flags().IntVar(&nodes, "nodes", 12, "number of nodes")
	return cmd
}

// runSub runs an mco command line in-process with the parent's output streams.
func runSub(app *App, args []string) int {
	sub := &App{Stdin: strings.NewReader(""), Stdout: app.Stdout, Stderr: app.Stdout, Getenv: app.Getenv}
	return Run(sub, args)
}

func redactConf(args []string, dir string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		if args[i] == "-c" && i+1 < len(args) && filepath.Base(args[i+1]) == "client.conf" {
			i++
			continue
		}
		out = append(out, strings.ReplaceAll(args[i], dir+string(filepath.Separator), ""))
	}
	return out
}

// tailAudit prints the last n audit records of a log, one readable line each.
func tailAudit(w io.Writer, path string, n int) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	lines := bytes.Split(bytes.TrimSpace(data), []byte("\n"))
	for _, l := range lines[max(0, len(lines)-n):] {
		var r struct {
			Seq        int    `json:"seq"`
			Kind       string `json:"kind"`
			RequestID  string `json:"request_id"`
			Caller     string `json:"caller"`
			Agent      string `json:"agent"`
			Action     string `json:"action"`
			Decision   string `json:"decision"`
			PolicyLine string `json:"policy_line"`
			Status     int    `json:"status"`
			Message    string `json:"status_message"`
		}
		if err := json.Unmarshal(l, &r); err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		id := r.RequestID[:min(8, len(r.RequestID))]
		if r.Kind == "request" {
			fmt.Fprintf(w, "  #%d request  %s %s %s.%s: %s (%s)\n", r.Seq, id, r.Caller, r.Agent, r.Action, r.Decision, r.PolicyLine)
		} else {
			fmt.Fprintf(w, "  #%d complete %s status %d %s\n", r.Seq, id, r.Status, r.Message)
		}
	}
	return nil
}
