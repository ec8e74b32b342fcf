package cli

import "github.com/spf13/cobra"

// Command returns mco's root command with every subcommand, for tools that
// render the command tree: the packaging build generates the man pages and
// the shell completion scripts from it.
func Command(app *App) *cobra.Command { return newRoot(app) }
