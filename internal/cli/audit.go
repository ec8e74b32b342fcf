package cli

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/internal/transport"
	"github.com/marionette/mco/protocol"
)

func newAuditCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify, collect and search audit logs"}
	verify := &cobra.Command{
		Use:   "verify FILE...",
		Short: "Check that audit logs are intact (no line edited, removed, reordered or truncated)",
		Long: `Check every line's hash chain and the head file. Exit 0 when every file is
intact, 1 when one is broken (the first broken line is named), 2 when a file
cannot be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			bad, unreadable := 0, 0
			for _, f := range args {
				// A wrong path is not tampering: say so, with its own exit code.
				if _, err := os.Stat(f); err != nil {
					unreadable++
					fmt.Fprintf(app.Stderr, "%s: cannot read: %v\n", f, err)
					continue
				}
				n, err := audit.VerifyFile(f)
				if err != nil {
					bad++
					fmt.Fprintf(app.Stdout, "%s: BROKEN after %d intact lines: %v\n", f, n, err)
					continue
				}
				fmt.Fprintf(app.Stdout, "%s: OK, %d records, chain intact\n", f, n)
			}
			switch {
			case bad > 0:
				return exit(1)
			case unreadable > 0:
				return exit(2)
			}
			return nil
		},
	}
	cmd.AddCommand(verify, newAuditCollectCmd(app), newAuditSearchCmd(app))
	return cmd
}

func newAuditCollectCmd(app *App) *cobra.Command {
	var (
		dir         string
		collectives []string
		verbose     bool
	)
	cmd := &cobra.Command{
		Use:   "collect --dir DIR [-T COLLECTIVE]",
		Short: "Store the audit lines nodes publish, one file per node, until interrupted",
		Long: `Subscribe to <collective>.audit.> and append every node's audit lines to
DIR/<node>.log. Each file is the node's own hash chain, so 'mco audit verify'
works on it; broken links (lost or edited lines) are logged as they arrive.

The client certificate of the configuration (-c) must be listed in the
broker's "collectors" setting, or the broker refuses the subscription.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return &ExitError{Code: 1, Err: errors.New("audit collect needs --dir DIR")}
			}
			return runAuditCollect(cmd.Context(), app, configFlag(cmd), dir, collectives, verbose)
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&dir, "dir", "", "directory for the collected logs (created if needed)")
	fs.StringSliceVarP(&collectives, "target", "T", nil, "collectives to collect from (default: the configuration's main collective)")
	fs.BoolVarP(&verbose, "verbose", "v", false, "print a line for every stored record")
	return cmd
}

func runAuditCollect(ctx context.Context, app *App, confFlag, dir string, collectives []string, verbose bool) error {
	path, err := config.FindClient(confFlag)
	if err != nil {
		return err
	}
	cfg, err := config.LoadClient(path)
	if err != nil {
		return err
	}
	if len(collectives) == 0 {
		collectives = []string{cfg.Collective}
	}
	log := slog.New(slog.NewTextHandler(app.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	col, err := audit.NewCollector(dir, log)
	if err != nil {
		return err
	}
	nc, name, err := dialCollector(&cfg.Security, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, c := range collectives {
		prefix := c + ".audit."
		// Like Collector.Subscribe, plus a line per stored record with -v.
		// NATS runs one subscription's callbacks in order, which both the
		// chain check and the writes to Stdout rely on.
		_, err := nc.Subscribe(prefix+">", func(m *nats.Msg) {
			node := strings.TrimPrefix(m.Subject, prefix)
			if err := col.Handle(node, m.Data); err != nil {
				log.Warn("audit line rejected", "subject", m.Subject, "err", err)
				return
			}
			if verbose {
				fmt.Fprintln(app.Stdout, describeAuditLine(node, m.Data))
			}
		})
		if err != nil {
			return fmt.Errorf("subscribing to %s>: %w", prefix, err)
		}
	}
	// The broker answers a refused subscription with an asynchronous error;
	// the flush round trip makes sure it has arrived before we say "ready".
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := nc.LastError(); err != nil && strings.Contains(strings.ToLower(err.Error()), "permission") {
		return fmt.Errorf("the broker refused the audit subscription for %q (is it in the broker's collectors list?): %w", name, err)
	}
	fmt.Fprintf(app.Stderr, "collecting audit lines of %s into %s (interrupt to stop)\n", strings.Join(collectives, ", "), dir)
	<-ctx.Done()
	st := col.Stats()
	var records, broken uint64
	for _, n := range st.Nodes {
		records += n.Records
		broken += n.Broken
	}
	fmt.Fprintf(app.Stderr, "stored %d records from %d nodes (%d broken links, %d rejected lines)\n", records, len(st.Nodes), broken, st.Rejected)
	return nil
}

// dialCollector connects with the client configuration's certificate, the
// way client.Connect does, but reconnecting forever: a collector is a service.
func dialCollector(sec *config.Security, log *slog.Logger) (*nats.Conn, string, error) {
	opts := transport.Options{Brokers: sec.Brokers, Insecure: sec.Insecure, Reconnect: true, Logger: log, Name: "mco audit collect"}
	name := "(insecure)"
	if !sec.Insecure {
		id, err := security.LoadIdentity(sec.Cert, sec.Key)
		if err != nil {
			return nil, "", fmt.Errorf("client certificate: %w", err)
		}
		ca, err := pki.ReadCert(sec.CA)
		if err != nil {
			return nil, "", fmt.Errorf("CA certificate %s: %w", sec.CA, err)
		}
		v, err := security.NewVerifier(security.VerifierOptions{CA: ca})
		if err != nil {
			return nil, "", err
		}
		opts.Identity, opts.Roots, name = id, v.Roots(), id.Name()
		opts.Name += " " + name
	}
	nc, err := transport.Dial(opts)
	return nc, name, err
}

// describeAuditLine summarises one collected line for -v.
func describeAuditLine(node string, line []byte) string {
	var r struct {
		audit.RequestRecord
		Seq    uint64 `json:"seq"`
		Status *int   `json:"status"`
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return fmt.Sprintf("%s: stored an undecodable line", node)
	}
	if r.Kind == audit.KindComplete && r.Status != nil {
		return fmt.Sprintf("%s #%d complete %s status %d", node, r.Seq, r.RequestID, *r.Status)
	}
	return fmt.Sprintf("%s #%d %s %s %s.%s %s", node, r.Seq, r.Kind, r.Caller, r.Agent, r.Action, r.Decision)
}

// auditSearchFlags are the inputs of `mco audit search`.
type auditSearchFlags struct {
	dir, caller, agent, action, node, since, until string
	json                                           bool
}

func newAuditSearchCmd(app *App) *cobra.Command {
	var f auditSearchFlags
	cmd := &cobra.Command{
		Use:   "search --dir DIR [--caller ID] [--agent A] [--action X] [--node N] [--since T]",
		Short: "Find requests in collected audit logs",
		Long: `Search the logs 'mco audit collect' wrote in DIR. Every given condition must
hold; --caller takes a caller id (cert=alice.mcollective) or a bare certname.
--since and --until take an RFC 3339 time (2025-01-31T08:00:00Z) or a
duration meaning that long ago (90m, 1h, 24h).

Records whose line breaks its node's chain (edited, replayed or after lost
lines) are marked BROKEN.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return runAuditSearch(app, f, time.Now()) },
	}
	fs := cmd.Flags()
	fs.StringVar(&f.dir, "dir", "", "directory written by mco audit collect")
	fs.StringVar(&f.caller, "caller", "", "caller id, e.g. cert=alice.mcollective")
	fs.StringVar(&f.agent, "agent", "", "agent name")
	fs.StringVar(&f.action, "action", "", "action name")
	fs.StringVar(&f.node, "node", "", "node identity")
	fs.StringVar(&f.since, "since", "", "only records at or after this time (RFC 3339, or a duration ago like 1h)")
	fs.StringVar(&f.until, "until", "", "only records at or before this time (RFC 3339, or a duration ago)")
	fs.BoolVar(&f.json, "json", false, "print the records as one JSON array")
	return cmd
}

func runAuditSearch(app *App, f auditSearchFlags, now time.Time) error {
	if f.dir == "" {
		return &ExitError{Code: 1, Err: errors.New("audit search needs --dir DIR")}
	}
	q := audit.Query{Caller: f.caller, Agent: f.agent, Action: f.action, Node: f.node}
	if q.Caller != "" && !strings.Contains(q.Caller, "=") {
		q.Caller = security.CallerID(q.Caller)
	}
	var err error
	if q.Since, err = parseSince(f.since, now); err != nil {
		return &ExitError{Code: 1, Err: fmt.Errorf("--since: %w", err)}
	}
	if q.Until, err = parseSince(f.until, now); err != nil {
		return &ExitError{Code: 1, Err: fmt.Errorf("--until: %w", err)}
	}
	if st, err := os.Stat(f.dir); err != nil || !st.IsDir() {
		return &ExitError{Code: 1, Err: fmt.Errorf("--dir %s: not a directory written by mco audit collect", f.dir)}
	}
	recs, err := audit.Search(f.dir, q)
	if err != nil {
		return err
	}
	if f.json {
		if recs == nil {
			recs = []audit.Record{}
		}
		enc := json.NewEncoder(app.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(recs)
	}
	if len(recs) == 0 {
		fmt.Fprintln(app.Stdout, "No matching audit records.")
		return nil
	}
	tw := tabwriter.NewWriter(app.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tNODE\tCALLER\tAGENT\tACTION\tDECISION\tSTATUS\tPOLICY")
	for _, r := range recs {
		status := "-"
		if c := r.Completion; c != nil {
			status = fmt.Sprintf("%d %s", c.Status, protocol.StatusCode(c.Status))
		}
		policy := r.Request.PolicyLine
		if policy == "" {
			policy = "-"
		}
		decision := string(r.Request.Decision)
		if r.Broken != "" {
			decision += " BROKEN(" + r.Broken + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Request.Time.Local().Format(time.DateTime),
			r.Node, r.Request.Caller, r.Request.Agent, r.Request.Action, decision, status, policy)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(app.Stdout, "\n%d records\n", len(recs))
	return nil
}

// parseSince reads an absolute RFC 3339 time or a duration before now; "" is
// the zero time (no bound).
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2025-01-31T08:00:00Z) nor a duration (1h)", s)
	}
	if d < 0 {
		return time.Time{}, fmt.Errorf("%q: a duration means that long ago and must not be negative", s)
	}
	return now.Add(-d), nil
}
