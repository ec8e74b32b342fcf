package cli

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/audit"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/internal/transport"
	"github.com/marionette/mco/protocol"
)

// missingRotated lists rotated siblings of a group's live log that were not
// given: the likely cause of a break at a file's first line.
func missingRotated(group []string) []string {
	given := map[string]bool{}
	for _, g := range group {
		given[filepath.Clean(g)] = true
	}
	var out []string
	for _, g := range group {
		for _, sib := range audit.RotatedSiblings(g) {
			if !given[sib] {
				given[sib] = true
				out = append(out, sib)
			}
		}
	}
	return out
}

func newAuditCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Verify, collect and search audit logs"}
	var partial bool
	var repairNode, caFile string
	checkpointEvery := audit.DefaultCheckpointEvery
	repair := &cobra.Command{
		Use:   "repair FILE",
		Short: "Cut a torn last line from an audit log and record the repair in its chain",
		Long: `A crash or a full disk can leave an audit log ending in a partial line,
which a node refuses to append to. repair removes that partial line and
appends a "repair" record (the removed bytes' length and SHA-256) to the
chain, so the cut is itself on record; audit verify then passes. Nothing else
is changed: a log whose lines do not chain, or that ends before its head
file, is left for audit verify to report. The node daemon does the same at
start by itself.`,
		Args: cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			n, err := audit.Repair(args[0], repairNode, audit.Options{})
			if err != nil {
				return err
			}
			if n == 0 {
				fmt.Fprintf(app.Stdout, "%s: no torn line, nothing changed\n", args[0])
				return nil
			}
			fmt.Fprintf(app.Stdout, "%s: removed a torn last line of %d bytes; repair recorded in the chain\n", args[0], n)
			return nil
		},
	}
	repair.Flags().StringVar(&repairNode, "node", "", "node identity recorded in the repair record")
	cmd.AddCommand(repair)
	verify := &cobra.Command{
		Use:   "verify FILE...",
		Short: "Check that audit logs are intact (no line edited, removed, reordered or truncated)",
		Long: `Check every line's hash chain and the head file. Rotated files of one log
(audit.log, audit.log.1, audit.log.2.gz ... or logrotate's dateext names) are
checked as one chain, oldest first, whatever order they are given in, and
gzip'ed files are read as they are:

  mco audit verify /var/log/marionette/audit.log*

A break is named by file and line. Exit 0 when every log is intact, 1 when
one is broken, 2 when a file cannot be read.`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			bad, unreadable := 0, 0
			var ca *x509.Certificate
			if caFile != "" {
				var err error
				if ca, err = pki.ReadCert(caFile); err != nil {
					fmt.Fprintf(app.Stderr, "--ca: %v\n", err)
					return exit(2)
				}
			}
			// checkpoints checks a file's signed checkpoints and says how
			// far the node's own signature vouches for it.
			checkpoints := func(f string) bool {
				if strings.HasSuffix(f, ".gz") {
					return true // compressed rotations: chain checked above
				}
				res, err := audit.VerifyCheckpoints(f, ca, checkpointEvery)
				if err != nil {
					fmt.Fprintf(app.Stdout, "%s: SIGNATURES BROKEN: %v\n", f, err)
					return false
				}
				if res.Checkpoints == 0 {
					fmt.Fprintf(app.Stdout, "%s: no signed checkpoint (%d lines): nothing vouched for by a node key\n", f, res.Lines)
					return res.Lines <= checkpointEvery
				}
				fmt.Fprintf(app.Stdout, "%s: signed by %s through seq %d (%d checkpoints); %d lines after the last checkpoint are covered by the chain only\n",
					f, res.Node, res.SignedSeq, res.Checkpoints, res.Unsigned)
				return true
			}
			var readable []string
			for _, f := range args {
				// A wrong path is not tampering: say so, with its own exit code.
				if _, err := os.Stat(f); err != nil {
					unreadable++
					fmt.Fprintf(app.Stderr, "%s: cannot read: %v\n", f, err)
					continue
				}
				// audit.log* also matches the head file, which is checked
				// with its log rather than as a log of its own.
				if strings.HasSuffix(f, ".head") {
					if _, err := os.Stat(strings.TrimSuffix(f, ".head")); err == nil {
						continue
					}
				}
				readable = append(readable, f)
			}
			for _, group := range audit.GroupRotation(readable) {
				if len(group) == 1 && len(audit.RotatedSiblings(group[0])) == 0 && !partial {
					f := group[0]
					n, err := audit.VerifyFile(f)
					if err != nil {
						bad++
						fmt.Fprintf(app.Stdout, "%s: BROKEN after %d intact lines: %v\n", f, n, err)
						continue
					}
					fmt.Fprintf(app.Stdout, "%s: OK, %d records, chain intact\n", f, n)
					if ca != nil && !checkpoints(f) {
						bad++
					}
					continue
				}
				name := strings.Join(group, ", ")
				res, err := audit.VerifySet(group, audit.SetOptions{Partial: partial})
				if err != nil {
					bad++
					fmt.Fprintf(app.Stdout, "%s: BROKEN after %d intact records: %v\n", name, res.Records, err)
					if missing := missingRotated(group); len(missing) > 0 {
						fmt.Fprintf(app.Stdout, "  (rotated files not given: %s)\n", strings.Join(missing, ", "))
					}
					continue
				}
				fmt.Fprintf(app.Stdout, "%s: OK, %d records (seq %d to %d), chain intact across %d files\n", name, res.Records, res.FirstSeq, res.LastSeq, len(group))
				for _, f := range group {
					if ca != nil && !checkpoints(f) {
						bad++
					}
				}
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
	verify.Flags().StringVar(&caFile, "ca", "", "also check the signed checkpoints against this CA certificate (node keys vouch for the chain)")
	verify.Flags().IntVar(&checkpointEvery, "checkpoint-every", audit.DefaultCheckpointEvery, "the nodes' checkpoint interval: a longer run of lines without one is an error")
	verify.Flags().BoolVar(&partial, "partial", false, "accept a set whose oldest file starts after seq 1 (older rotated files were deleted by the rotation policy); every link within the set is still checked")
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

Lines the collector missed (published while it or the broker was down, or
before it started) are fetched from the node's own log with the audit agent
('audit lines'), checked against the chain and stored in order; a gap the node
does not fill after a few tries is stored flagged.

The client certificate of the configuration (-c) must be listed in the
broker's "collectors" setting, or the broker refuses the subscription, and the
nodes' policies must allow it to call 'audit lines'.`,
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
	path, err := config.FindClient(confFlag, app.Getenv)
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
	fetch, err := newAuditFetcher(path, collectives, log)
	if err != nil {
		return err
	}
	defer fetch.close()
	opts := audit.CollectorOptions{Logger: log, Fetch: fetch.fetch}
	if verbose {
		// Called in file order, live and fetched lines alike.
		opts.OnStore = func(node string, line []byte) { fmt.Fprintln(app.Stdout, describeAuditLine(node, line)) }
	}
	col, err := audit.NewCollectorWith(dir, opts)
	if err != nil {
		return err
	}
	// Deferred after fetch.close, so it runs first: repairs in progress end
	// (their waiting lines stored, gap flagged) while the RPC client is up.
	defer col.Close()
	nc, name, err := dialCollector(&cfg.Security, log)
	if err != nil {
		return err
	}
	defer nc.Close()
	for _, c := range collectives {
		prefix := c + ".audit."
		// Like Collector.Subscribe, remembering each node's collective for
		// fetching missed lines. NATS runs one subscription's callbacks in
		// order, which the chain check relies on.
		_, err := nc.Subscribe(prefix+">", func(m *nats.Msg) {
			node := strings.TrimPrefix(m.Subject, prefix)
			fetch.seen(node, c)
			if err := col.Handle(node, m.Data); err != nil {
				log.Warn("audit line rejected", "subject", m.Subject, "err", err)
			}
		})
		if err != nil {
			return fmt.Errorf("subscribing to %s>: %w", prefix, err)
		}
	}
	if err := confirmSubscribed(nc, "audit", name); err != nil {
		return err
	}
	fmt.Fprintf(app.Stderr, "collecting audit lines of %s into %s (interrupt to stop)\n", strings.Join(collectives, ", "), dir)
	<-ctx.Done()
	col.Close() // store the lines still waiting for a repair before counting
	st := col.Stats()
	var records, broken uint64
	for _, n := range st.Nodes {
		records += n.Records
		broken += n.Broken
	}
	fmt.Fprintf(app.Stderr, "stored %d records from %d nodes (%d broken links, %d rejected lines)\n", records, len(st.Nodes), broken, st.Rejected)
	return nil
}

// auditFetcher fetches a node's missed audit lines with the audit agent's
// lines action, over a signed RPC that the node authorizes and audits. The
// RPC client connects on first use and again after it failed, since a
// client connection gives up on a broker that stays away.
type auditFetcher struct {
	cfg client.Config
	log *slog.Logger

	mu         sync.Mutex
	cl         *client.Client
	collective map[string]string // node -> collective its lines came from
}

func newAuditFetcher(confPath string, collectives []string, log *slog.Logger) (*auditFetcher, error) {
	cfg, err := client.ConfigFromFile(confPath)
	if err != nil {
		return nil, err
	}
	cfg.Logger = log
	for _, c := range collectives {
		if c != cfg.Collective && !slices.Contains(cfg.Collectives, c) {
			cfg.Collectives = append(cfg.Collectives, c)
		}
	}
	return &auditFetcher{cfg: cfg, log: log, collective: map[string]string{}}, nil
}

// seen records the collective a node publishes its audit lines in.
func (f *auditFetcher) seen(node, collective string) {
	f.mu.Lock()
	f.collective[node] = collective
	f.mu.Unlock()
}

// client returns the RPC client, connecting if needed, and the node's
// collective.
func (f *auditFetcher) client(node string) (*client.Client, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cl == nil {
		cl, err := client.Connect(f.cfg)
		if err != nil {
			return nil, "", err
		}
		f.cl = cl
	}
	return f.cl, f.collective[node], nil
}

// reset drops a client whose call failed, so the next fetch reconnects.
func (f *auditFetcher) reset(cl *client.Client) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cl == cl {
		f.cl = nil
		cl.Close()
	}
}

func (f *auditFetcher) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cl != nil {
		f.cl.Close()
		f.cl = nil
	}
}

// fetch implements audit.CollectorOptions.Fetch: one call of audit lines;
// the collector asks again for the rest of a capped reply.
func (f *auditFetcher) fetch(ctx context.Context, node string, from, to uint64) ([][]byte, error) {
	cl, collective, err := f.client(node)
	if err != nil {
		return nil, err
	}
	var (
		lines    [][]byte
		replyErr = fmt.Errorf("%s did not answer audit lines", node)
		trusted  bool // a verified reply from the node arrived
	)
	_, err = cl.Call(ctx, client.Request{
		Agent: "audit", Action: "lines", Collective: collective, Targets: []string{node},
		Data: map[string]any{"from": from, "to": to}, Timeout: 30 * time.Second,
	}, func(r client.Result) {
		if r.Sender != node || (trusted && r.Err != nil) {
			return // an untrusted reply never replaces the node's own
		}
		lines, replyErr = auditReplyLines(r)
		trusted = trusted || r.Err == nil
	})
	if err != nil {
		f.reset(cl)
		return nil, err
	}
	return lines, replyErr
}

// auditReplyLines reads the lines out of one audit lines reply.
func auditReplyLines(r client.Result) ([][]byte, error) {
	switch {
	case r.Err != nil:
		return nil, fmt.Errorf("%s: untrusted reply: %w", r.Sender, r.Err)
	case r.Status != protocol.OK:
		return nil, fmt.Errorf("%s: audit lines: %s (status %d): %s", r.Sender, r.Status, int(r.Status), r.Message)
	}
	raw, ok := r.Data["lines"].([]any)
	if !ok {
		return nil, fmt.Errorf("%s: audit lines: reply has no \"lines\" array", r.Sender)
	}
	lines := make([][]byte, 0, len(raw))
	for i, v := range raw {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("%s: audit lines: lines[%d] is not a string", r.Sender, i)
		}
		lines = append(lines, []byte(s))
	}
	return lines, nil
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
	render := newRenderer(app, f.json, false)
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
	if render.json() {
		if recs == nil {
			recs = []audit.Record{}
		}
		return render.result(recs)
	}
	if len(recs) == 0 {
		fmt.Fprintln(app.Stdout, "No matching audit records.")
		return nil
	}
	tw := render.table()
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

// confirmSubscribed makes sure the broker accepted a collector's
// subscriptions: it answers a refused one with an asynchronous error, which
// the flush round trip brings in before the collector says it is ready.
func confirmSubscribed(nc *nats.Conn, what, certname string) error {
	if err := nc.Flush(); err != nil {
		return fmt.Errorf("broker: %w", err)
	}
	if err := nc.LastError(); errors.Is(err, nats.ErrPermissionViolation) {
		return fmt.Errorf("the broker refused the %s subscription for %q (is it in the broker's collectors list?): %w", what, certname, err)
	}
	return nil
}
