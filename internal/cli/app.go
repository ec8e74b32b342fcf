// Package cli implements the mco command line. Every command gets the process
// streams and environment through an App value; there is no package-level
// state, so commands can be run (and tested) side by side in one process.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/marionette/mco/internal/buildinfo"
	"github.com/marionette/mco/internal/config"
)

// App is the environment a command runs in.
type App struct {
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string
	// StdoutTTY and StdinTTY say whether the streams are terminals: progress
	// bars and prompts appear only on terminals.
	StdoutTTY bool
	StdinTTY  bool
}

// OSApp is the App of the running process.
func OSApp() *App {
	return &App{
		Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv,
		StdoutTTY: term.IsTerminal(int(os.Stdout.Fd())),
		StdinTTY:  term.IsTerminal(int(os.Stdin.Fd())),
	}
}

// ExitError carries a specific exit code (MCollective's, for client commands).
type ExitError struct {
	Code int
	Err  error // nil: nothing more to print
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// exit returns an error that makes mco exit with code, printing nothing more.
func exit(code int) error {
	if code == 0 {
		return nil
	}
	return &ExitError{Code: code}
}

// Run executes mco with args (without the program name) and returns the exit code.
func Run(app *App, args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx = context.WithValue(ctx, appKey{}, app)
	root := newRoot(app)
	if ext, ok := extension(root, args); ok {
		return runExtension(ctx, app, ext, args[1:])
	}
	root.SetArgs(args)
	root.SetIn(app.Stdin)
	root.SetOut(app.Stdout)
	root.SetErr(app.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		if ee.Err != nil {
			fmt.Fprintln(app.Stderr, "mco:", ee.Err)
		}
		return ee.Code
	}
	fmt.Fprintln(app.Stderr, "mco:", err)
	return 1
}

func newRoot(app *App) *cobra.Command {
	root := &cobra.Command{
		Use:   "mco",
		Short: "Marionette: parallel, secure remote procedure calls for server fleets",
		Long: `mco runs actions of agents on many nodes at once.

Roles:
  mco broker run     the message broker (embedded NATS)
  mco server run     the daemon on every managed node
  mco ping|rpc|...   client commands

New here? 'mco demo' runs a complete collective in one process and shows it off.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       buildinfo.Read().String(),
	}
	root.SetVersionTemplate("mco {{.Version}}\n")
	root.PersistentFlags().StringP("config", "c", "", "configuration file (client: default $MCO_CONFIG or ~/.config/marionette/client.conf)")
	root.AddCommand(
		newPingCmd(app), newRPCCmd(app), newFindCmd(app), newFactsCmd(app), newInventoryCmd(app),
		newAuditCmd(app), newRegistrationCmd(app), newNodesCmd(app), newFilterCmd(app), newPolicyCmd(app), newPluginCmd(app),
		newPackageCmd(app), newServiceCmd(app), newPuppetCmd(app), newChefCmd(app), newJobCmd(app),
		newPKICmd(app), newBrokerCmd(app), newServerCmd(app),
		newDemoCmd(app), newDevCmd(app),
		newCompletionCmd(app), newVersionCmd(app),
	)
	addDynamicCompletion(root)
	return root
}

// appKey is the context key of the App a command line runs in: helpers that
// see only the cobra command (completion, config lookup) find it there.
type appKey struct{}

// appOf returns the App that runs cmd (the process's, outside Run).
func appOf(cmd *cobra.Command) *App {
	if app, ok := cmd.Context().Value(appKey{}).(*App); ok && app != nil {
		return app
	}
	return &App{Getenv: os.Getenv}
}

// findClient is the client configuration for cmd: -c, else what
// config.FindClient finds through the App's environment.
func findClient(cmd *cobra.Command) (string, error) {
	return config.FindClient(configFlag(cmd), appOf(cmd).Getenv)
}

// configFlag returns the -c value of the command line.
func configFlag(cmd *cobra.Command) string {
	v, _ := cmd.Flags().GetString("config")
	return v
}

func newCompletionCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:       "completion bash|zsh|fish",
		Short:     "Print a shell completion script",
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"bash", "zsh", "fish"},
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(app.Stdout, true)
			case "zsh":
				return root.GenZshCompletion(app.Stdout)
			case "fish":
				return root.GenFishCompletion(app.Stdout, true)
			}
			return &ExitError{Code: 1, Err: fmt.Errorf("unknown shell %q (bash, zsh or fish)", args[0])}
		},
	}
}

// extension finds a git-style extension command: `mco NAME ...` runs the
// executable mco-NAME from PATH when NAME is not a built-in command.
func extension(root *cobra.Command, args []string) (string, bool) {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		return "", false
	}
	if cmd, _, err := root.Find(args); err == nil && cmd != root {
		return "", false
	}
	if args[0] == "help" || args[0] == "completion" || strings.ContainsRune(args[0], os.PathSeparator) {
		return "", false
	}
	path, err := exec.LookPath("mco-" + args[0])
	return path, err == nil
}

// runExtension runs an extension command with mco's streams and returns its
// exit code.
func runExtension(ctx context.Context, app *App, path string, args []string) int {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = app.Stdin, app.Stdout, app.Stderr
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		return ee.ExitCode()
	}
	fmt.Fprintf(app.Stderr, "mco: running %s: %v\n", path, err)
	return 1
}
