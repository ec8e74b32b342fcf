package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newFilterCmd(app *App) *cobra.Command {
	return &cobra.Command{Use: "filter", Short: "Explain or test filters", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented yet") }}
}
