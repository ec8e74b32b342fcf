package cli

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/discovery"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/registration"
	"github.com/marionette/mco/internal/security"
)

func newRegistrationCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{Use: "registration", Short: "Collect node announcements into the inventory"}
	var (
		dir         string
		collectives []string
		verbose     bool
	)
	collect := &cobra.Command{
		Use:   "collect [--dir DIR] [-T COLLECTIVE]",
		Short: "Store the announcements nodes publish, the latest per node, until interrupted",
		Long: `Subscribe to <collective>.registration.> and keep every node's latest
announcement (identity, collectives, agents, facts, classes, version) in
DIR/<identity>.json with the time it was last seen. Each announcement must be
signed by the node certificate of the identity it announces; others are
logged and dropped, as are announcements older than the stored one.

DIR defaults to registration.dir of the client configuration. The client
certificate (-c) must be listed in the broker's "collectors" setting, or the
broker refuses the subscription. '--dm inventory' and 'mco nodes' read DIR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runRegistrationCollect(cmd.Context(), app, configFlag(cmd), dir, collectives, verbose)
		},
	}
	fs := collect.Flags()
	fs.StringVar(&dir, "dir", "", "directory for the announcements (default: registration.dir of the client configuration)")
	fs.StringSliceVarP(&collectives, "target", "T", nil, "collectives to collect from (default: the configuration's main collective)")
	fs.BoolVarP(&verbose, "verbose", "v", false, "print a line for every stored announcement")
	cmd.AddCommand(collect)
	return cmd
}

func runRegistrationCollect(ctx context.Context, app *App, confFlag, dir string, collectives []string, verbose bool) error {
	path, err := config.FindClient(confFlag, app.Getenv)
	if err != nil {
		return err
	}
	cfg, err := config.LoadClient(path)
	if err != nil {
		return err
	}
	if dir == "" {
		if dir = cfg.RegistrationDir; dir == "" {
			return &ExitError{Code: 1, Err: fmt.Errorf("registration collect needs --dir DIR (or registration.dir in %s)", path)}
		}
	}
	if len(collectives) == 0 {
		collectives = []string{cfg.Collective}
	}
	ca, err := pki.ReadCert(cfg.CA)
	if err != nil {
		return fmt.Errorf("CA certificate %s: %w", cfg.CA, err)
	}
	v, err := security.NewVerifier(security.VerifierOptions{CA: ca})
	if err != nil {
		return err
	}
	col, err := registration.NewCollector(dir, v, nil)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(app.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	nc, name, err := dialCollector(&cfg.Security, log) // shared with mco audit collect
	if err != nil {
		return err
	}
	defer nc.Close()
	var outMu sync.Mutex // one subscription per collective: callbacks may run concurrently
	for _, c := range collectives {
		prefix := c + ".registration."
		_, err := nc.Subscribe(prefix+">", func(m *nats.Msg) {
			rec, err := col.Handle(c, strings.TrimPrefix(m.Subject, prefix), m.Data)
			if err != nil {
				log.Warn("announcement rejected", "subject", m.Subject, "err", err)
				return
			}
			if verbose {
				outMu.Lock()
				fmt.Fprintf(app.Stdout, "%s: %d agents, %d facts, version %s\n", rec.Identity, len(rec.Agents), len(rec.Facts), rec.Version)
				outMu.Unlock()
			}
		})
		if err != nil {
			return fmt.Errorf("subscribing to %s>: %w", prefix, err)
		}
	}
	if err := confirmSubscribed(nc, "registration", name); err != nil {
		return err
	}
	fmt.Fprintf(app.Stderr, "collecting registrations of %s into %s (interrupt to stop)\n", strings.Join(collectives, ", "), dir)
	<-ctx.Done()
	st := col.Stats()
	fmt.Fprintf(app.Stderr, "stored %d announcements (%d rejected)\n", st.Stored, st.Rejected)
	return nil
}

// registrationDir is dir if given, else registration.dir of the client
// configuration at confPath.
func registrationDir(dir, confPath, what string) (string, error) {
	if dir != "" {
		return dir, nil
	}
	if confPath != "" {
		cfg, err := config.LoadClient(confPath)
		if err != nil {
			return "", err
		}
		if cfg.RegistrationDir != "" {
			return cfg.RegistrationDir, nil
		}
	}
	return "", &ExitError{Code: 1, Err: fmt.Errorf("%s needs the registration store: set registration.dir in the client configuration or pass its directory (see mco registration collect)", what)}
}

// loadInventory reads the registration store, warning about unreadable files.
func loadInventory(app *App, dir string) ([]*registration.Record, error) {
	recs, err := discovery.LoadInventory(dir, app.Stderr)
	if err != nil {
		return nil, &ExitError{Code: 1, Err: err}
	}
	return recs, nil
}
