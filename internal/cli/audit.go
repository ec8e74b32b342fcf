package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/audit"
)

func newAuditCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify, collect and search audit logs"}
	verify := &cobra.Command{
		Use:   "verify FILE...",
		Short: "Check that audit logs are intact (no line edited, removed, reordered or truncated)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			bad := 0
			for _, f := range args {
				n, err := audit.VerifyFile(f)
				if err != nil {
					bad++
					fmt.Fprintf(app.Stdout, "%s: BROKEN after %d intact lines: %v\n", f, n, err)
					continue
				}
				fmt.Fprintf(app.Stdout, "%s: OK, %d records, chain intact\n", f, n)
			}
			if bad > 0 {
				return exit(1)
			}
			return nil
		},
	}
	cmd.AddCommand(verify)
	return cmd
}
