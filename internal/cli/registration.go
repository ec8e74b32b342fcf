package cli

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/config"
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
	path, err := config.FindClient(confFlag)
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
	recs, problems, err := registration.Store{Dir: dir}.List()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, &ExitError{Code: 1, Err: fmt.Errorf("registration store %s does not exist (is mco registration collect --dir %s running?)", dir, dir)}
	}
	if err != nil {
		return nil, err
	}
	for _, p := range problems {
		fmt.Fprintf(app.Stderr, "warning: skipping %v\n", p)
	}
	return recs, nil
}

// inventoryNodes is the inventory discovery method: the filter is evaluated
// locally against the stored announcements of the collective's nodes. Nodes
// that stopped announcing are still returned, so a call reports them under
// "No response from".
func (f *clientFlags) inventoryNodes(app *App, collective string, flt *filter.Filter) ([]string, error) {
	dir, err := registrationDir(f.nodes, f.confPath, "--dm inventory (--nodes DIR)")
	if err != nil {
		return nil, err
	}
	recs, err := loadInventory(app, dir)
	if err != nil {
		return nil, err
	}
	var funcs []string
	for _, e := range flt.Compound {
		funcs = append(funcs, e.Functions()...)
	}
	if len(funcs) > 0 {
		fmt.Fprintf(app.Stderr, "warning: data functions (%s) cannot be evaluated from the registration store: a filter that needs them selects no node\n", strings.Join(dedupe(funcs), ", "))
	}
	var out []string
	for _, r := range recs {
		if r.InCollective(collective) && flt.Match(r.Node()) {
			out = append(out, r.Identity)
		}
	}
	return out, nil
}

func newNodesCmd(app *App) *cobra.Command {
	var (
		dir    string
		maxAge time.Duration
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "nodes [--inventory DIR] [--max-age DURATION]",
		Short: "List the nodes in the registration store, marking silent ones",
		Long: `Print every node 'mco registration collect' has stored: when it was last
seen, how many agents it hosts and its version. A node not heard of for
longer than --max-age is marked SILENT; by default that is three of the
node's own registration intervals, or 10m for nodes that announce only at
start and on change.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			confPath := configFlag(cmd)
			if dir == "" {
				// Only the store's location is needed: a missing client
				// configuration is fine when --inventory is given.
				if p, err := config.FindClient(confPath); err == nil {
					confPath = p
				}
			}
			d, err := registrationDir(dir, confPath, "mco nodes (--inventory DIR)")
			if err != nil {
				return err
			}
			recs, err := loadInventory(app, d)
			if err != nil {
				return err
			}
			return printNodes(app, recs, maxAge, asJSON, time.Now())
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&dir, "inventory", "", "registration store (default: registration.dir of the client configuration)")
	fs.DurationVar(&maxAge, "max-age", 0, "silence after which a node is marked SILENT (default: 3 × its interval, or 10m)")
	fs.BoolVar(&asJSON, "json", false, "print a JSON list")
	return cmd
}

func printNodes(app *App, recs []*registration.Record, maxAge time.Duration, asJSON bool, now time.Time) error {
	type row struct {
		Identity    string    `json:"identity"`
		LastSeen    time.Time `json:"last_seen"`
		Agents      int       `json:"agents"`
		Version     string    `json:"version"`
		Collectives []string  `json:"collectives"`
		Silent      bool      `json:"silent"`
	}
	rows := []row{}
	silent := 0
	for _, r := range recs {
		age := maxAge
		if age <= 0 {
			age = r.MaxAge(registration.DefaultMaxAge)
		}
		s := r.Silent(now, age)
		if s {
			silent++
		}
		rows = append(rows, row{r.Identity, r.LastSeen, len(r.Agents), r.Version, r.Collectives, s})
	}
	if asJSON {
		return writeJSON(app, rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(app.Stdout, "No nodes in the registration store.")
		return nil
	}
	tw := tabwriter.NewWriter(app.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "IDENTITY\tLAST SEEN\tAGO\tAGENTS\tVERSION\tSTATUS")
	for _, r := range rows {
		status := "ok"
		if r.Silent {
			status = "SILENT"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%s\n", r.Identity, r.LastSeen.Local().Format(time.DateTime),
			now.Sub(r.LastSeen).Round(time.Second), r.Agents, r.Version, status)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(app.Stdout, "\n%d nodes, %d silent\n", len(rows), silent)
	return nil
}
