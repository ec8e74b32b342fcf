package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/buildinfo"
)

func newVersionCmd(app *App) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, VCS revision and Go version this mco was built from",
		Long: `version prints what the binary was built from, as the Go toolchain recorded it:
the module version (a release tag, a pseudo-version, or (devel) for a local
build), the VCS revision and its time, and the Go version. Nodes report the
same version in 'rpcutil inventory' and in registration.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			render := newRenderer(app, asJSON, false)
			info := buildinfo.Read()
			if render.json() {
				return render.result(info)
			}
			fmt.Fprintf(app.Stdout, "mco %s\n", info.Version)
			if info.Revision != "" {
				mod := ""
				if info.Modified {
					mod = " (uncommitted changes)"
				}
				fmt.Fprintf(app.Stdout, "revision: %s%s\n", info.Revision, mod)
			}
			if info.Time != "" {
				fmt.Fprintf(app.Stdout, "commit time: %s\n", info.Time)
			}
			fmt.Fprintf(app.Stdout, "go: %s\n", info.GoVersion)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON document")
	return cmd
}
