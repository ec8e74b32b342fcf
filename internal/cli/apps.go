package cli

import (
	"errors"

	"github.com/spf13/cobra"
)

func newPackageCmd(app *App) *cobra.Command {
	return &cobra.Command{Use: "package", Short: "Manage packages", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented yet") }}
}

func newServiceCmd(app *App) *cobra.Command {
	return &cobra.Command{Use: "service", Short: "Manage services", RunE: func(*cobra.Command, []string) error { return errors.New("not implemented yet") }}
}
