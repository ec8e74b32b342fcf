package cli

import (
	"github.com/spf13/cobra"
)

func newChefCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "chef status|summary|enable|disable|runonce|wake",
		Short: "Manage Chef Infra Client across the fleet",
		Long: `Report on and control chef-client on the nodes selected by the filters,
through their chef agent (active where chef-client is installed; it reads
the report handler's JSON and a lock file: docs/configuration-management.md).

Examples:
  mco chef status
  mco chef summary
  mco chef disable -m "db migration" -W role=db
  mco chef runonce -I web1.example.net
  mco chef wake -W role=web`,
	}
	pass := func(use, action, short string) *cobra.Command {
		f := &clientFlags{}
		var message string
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				var kv []string
				if message != "" {
					kv = append(kv, "message="+message)
				}
				call, err := prepareCall(cmd, app, "chef", action, kv)
				if err != nil {
					return &ExitError{Code: 1, Err: err}
				}
				return runCall(cmd, app, f, call, false, nil)
			},
		}
		f.register(c, true)
		if action == "disable" {
			c.Flags().StringVarP(&message, "message", "m", "", "why chef-client is disabled")
		}
		return c
	}
	cmd.AddCommand(
		pass("status", "status", "Show chef-client's state on every node"),
		pass("summary", "last_run_summary", "Show the last chef-client run's report on every node"),
		pass("enable", "enable", "Enable chef-client runs (removes the lock)"),
		pass("disable [-m MESSAGE]", "disable", "Disable chef-client runs with a reason"),
		pass("runonce", "runonce", "Start one chef-client run, detached (collect it with mco job results)"),
		pass("wake", "wake_daemon", "Wake the chef-client daemon to run now (SIGUSR1)"),
	)
	return cmd
}
