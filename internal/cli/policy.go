package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newPolicyCmd(app *App) *cobra.Command {
	return &cobra.Command{Use: "policy", Short: "Check and lint ActionPolicy files", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented yet") }}
}
