package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newPluginCmd(app *App) *cobra.Command {
	return &cobra.Command{Use: "plugin", Short: "Agent documentation", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented yet") }}
}
