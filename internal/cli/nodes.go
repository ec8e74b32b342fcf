package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/registration"
)

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
				if p, err := config.FindClient(confPath, app.Getenv); err == nil {
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
	durationVar(fs, &maxAge, "max-age", 0, "silence after which a node is marked SILENT, in seconds or as 10m (default: 3 × its interval, or 10m)")
	fs.BoolVar(&asJSON, "json", false, "print a JSON list")
	return cmd
}

func printNodes(app *App, recs []*registration.Record, maxAge time.Duration, asJSON bool, now time.Time) error {
	render := newRenderer(app, asJSON, false)
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
	if render.json() {
		return render.result(rows)
	}
	if len(rows) == 0 {
		fmt.Fprintln(app.Stdout, "No nodes in the registration store.")
		return nil
	}
	tw := render.table()
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
