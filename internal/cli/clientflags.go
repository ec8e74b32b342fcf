package cli

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/data"
	"github.com/marionette/mco/internal/discovery"
)

// clientFlags are the selection and output flags shared by client commands.
type clientFlags struct {
	identity, fact, class, agent, with, compound []string
	collective                                   string
	dm, nodes                                    string
	discoveryOptions                             []string // --do: the method's source
	timeout, discoveryTimeout, ttl               time.Duration
	discoveryWindow                              time.Duration // --discovery-window: the broadcast quiet window
	json, jsonl, noProgress, verbose, quiet      bool
	display                                      string
	replyTo                                      string        // rpc --reply-to
	rollout                                      rolloutFlags  // --batch, --limit ... (rpc, package, service)
	confPath                                     string        // the client.conf connect loaded (--dm inventory reads registration.dir)
	cfg                                          client.Config // what connect loaded
}

// register declares the flags of a client command. Every command takes
// MCollective 2.12's spellings too (see mcollectiveAlias and
// docs/usage.md); output commands (rpc, package, service) add the output
// and rollout flags, the others only --limit and -1.
func (f *clientFlags) register(cmd *cobra.Command, output bool) {
	f.registerSelection(cmd)
	fs := cmd.Flags()
	fs.StringVarP(&f.collective, "target", "T", "", "collective to address (default: the configured main collective)")
	fs.StringVar(&f.dm, "dm", "", "discovery method: "+strings.Join(discovery.Methods(), ", ")+" (default broadcast; stdin when input is piped and no filter is given) (also --disc-method)")
	fs.StringVar(&f.nodes, "nodes", "", "file of node identities (text one per line, JSON list, or mco --json output), - for standard input; implies --dm flatfile")
	fs.StringArrayVar(&f.discoveryOptions, "discovery-options", nil, "option of the --dm method: the file (flatfile), program (external) or directory (inventory) (also --do)")
	durationVarP(fs, &f.timeout, "timeout", "t", 0, "how long to wait for replies, in seconds or as 1m30s (default: the action's DDL timeout)")
	durationVar(fs, &f.discoveryTimeout, "discovery-timeout", 0, "longest broadcast discovery, in seconds or as 2s (it ends earlier, once replies stop and every expected node answered) (also --dt)")
	durationVar(fs, &f.discoveryWindow, "discovery-window", 0, "quiet window: broadcast discovery ends once no reply came for this long and no expected node is missing, in seconds or as 100ms (default: the configured discovery_quiet, 100ms)")
	durationVar(fs, &f.ttl, "ttl", 0, "how long the request stays valid on the nodes, in seconds or as 5m (default: the configured ttl, 60s)")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "more detail")
	fs.BoolVarP(&f.quiet, "quiet", "q", false, "no progress bar and no verbose detail")
	fs.BoolVar(&f.noProgress, "no-progress", false, "no progress bar (also --np)")
	if output {
		fs.BoolVarP(&f.json, "json", "j", false, "print one JSON document (replies, stats, no-response list)")
		fs.BoolVar(&f.jsonl, "jsonl", false, "print one JSON reply per line, then a summary line")
		fs.StringVar(&f.display, "display", "", "which replies to show: ok, failed or all (default: the DDL's rule)")
		f.rollout.register(cmd)
	} else {
		f.rollout.registerLimit(cmd)
	}
}

// registerSelection declares the filter flags alone (-I -F -C -A -W -S), for
// commands that evaluate a filter without sending anything.
func (f *clientFlags) registerSelection(cmd *cobra.Command) {
	fs := cmd.Flags()
	fs.StringArrayVarP(&f.identity, "identity", "I", nil, "match node identity (exact or /regex/); repeat to OR (also --wi, --with-identity)")
	fs.StringArrayVarP(&f.fact, "fact", "F", nil, "match a fact: fact=value, fact>value, fact=~/re/ ...; repeat to AND (also --wf, --with-fact)")
	fs.StringArrayVarP(&f.class, "class", "C", nil, "match a configuration class (exact or /regex/) (also --wc, --with-class)")
	fs.StringArrayVarP(&f.agent, "with-agent", "A", nil, "match nodes hosting an agent (exact or /regex/) (also --wa; --agent except on rpc)")
	fs.StringArrayVarP(&f.with, "with", "W", nil, "combined filter: space separated facts (with an operator) and classes")
	fs.StringArrayVarP(&f.compound, "select", "S", nil, "compound filter: and/or/not, parentheses, facts, classes, data functions")
	acceptMCollectiveNames(cmd, false)
}

// buildFilter turns the selection flags into a filter. The called agent is
// always implied (an empty agent name adds nothing).
func (f *clientFlags) buildFilter(agent string) (*filter.Filter, error) {
	flt := &filter.Filter{}
	for _, id := range f.identity {
		if err := filter.ValidatePattern(id); err != nil {
			return nil, fmt.Errorf("-I %s: %w", id, err)
		}
		flt.Identity = append(flt.Identity, id)
	}
	for _, s := range f.fact {
		ff, err := filter.ParseFact(s)
		if err != nil {
			return nil, fmt.Errorf("-F: %w", err)
		}
		flt.Fact = append(flt.Fact, ff)
	}
	for _, c := range f.class {
		if err := filter.ValidatePattern(c); err != nil {
			return nil, fmt.Errorf("-C %s: %w", c, err)
		}
		flt.Class = append(flt.Class, c)
	}
	for _, a := range f.agent {
		if err := filter.ValidatePattern(a); err != nil {
			return nil, fmt.Errorf("-A %s: %w", a, err)
		}
		flt.Agent = append(flt.Agent, a)
	}
	if agent != "" && agent != "rpcutil" && !contains(flt.Agent, agent) {
		flt.Agent = append(flt.Agent, agent)
	}
	for _, w := range f.with {
		facts, classes, err := filter.ParseCombined(w)
		if err != nil {
			return nil, fmt.Errorf("-W: %w", err)
		}
		flt.Fact = append(flt.Fact, facts...)
		flt.Class = append(flt.Class, classes...)
	}
	known := data.KnownNames()
	for _, s := range f.compound {
		e, err := filter.ParseCompound(s)
		if err != nil {
			return nil, fmt.Errorf("-S: %w", err)
		}
		if err := e.ValidateFunctions(func(n string) bool { return contains(known, n) }); err != nil {
			return nil, fmt.Errorf("-S: %w", err)
		}
		flt.Compound = append(flt.Compound, e)
	}
	return flt, nil
}

// filtered reports whether any selection flag other than -I was given.
func (f *clientFlags) filtered() bool {
	return len(f.fact)+len(f.class)+len(f.agent)+len(f.with)+len(f.compound) > 0
}

// directTargets returns the identities when the selection is only exact -I
// values: then discovery is skipped and the request goes straight to them.
func (f *clientFlags) directTargets() []string {
	return discovery.DirectTargets(f.identity, f.filtered())
}

func (f *clientFlags) connect(cmd *cobra.Command) (*client.Client, error) {
	if err := f.validateOutput(); err != nil {
		return nil, &ExitError{Code: 1, Err: err}
	}
	path, err := findClient(cmd)
	if err != nil {
		return nil, err
	}
	cfg, err := client.ConfigFromFile(path)
	if err != nil {
		return nil, err
	}
	f.confPath = path
	if f.collective != "" {
		allowed := cfg.Collectives
		if len(allowed) == 0 {
			allowed = []string{cfg.Collective}
		}
		if !contains(allowed, f.collective) {
			return nil, &ExitError{Code: 1, Err: fmt.Errorf("-T %s: collective not in this client's configured collectives (%s); add it to 'collectives' in %s", f.collective, strings.Join(allowed, ", "), path)}
		}
		cfg.Collective = f.collective
	}
	if f.discoveryTimeout > 0 {
		cfg.DiscoveryTimeout = f.discoveryTimeout
	}
	if f.ttl != 0 {
		if f.ttl < time.Second {
			return nil, &ExitError{Code: 1, Err: fmt.Errorf("--ttl %s: requests must stay valid for at least 1s", f.ttl)}
		}
		cfg.TTL = f.ttl
	}
	if f.discoveryWindow < 0 {
		return nil, &ExitError{Code: 1, Err: fmt.Errorf("--discovery-window %s: must not be negative", f.discoveryWindow)}
	}
	if f.discoveryWindow > 0 {
		cfg.DiscoveryQuiet = f.discoveryWindow
	}
	if f.timeout == 0 {
		f.timeout = cfg.Timeout
	}
	if f.quiet {
		f.noProgress, f.verbose = true, false
	}
	f.cfg = cfg
	return client.Connect(cfg)
}

// method chooses the discovery method from the flags and what standard
// input is (see discovery.Choose); auto is true when stdin was taken only
// because it is a pipe.
func (f *clientFlags) method(app *App) (method string, auto bool, err error) {
	if err := f.applyDiscoveryOptions(); err != nil {
		return "", false, &ExitError{Code: 1, Err: err}
	}
	src := discovery.StdinOther
	if !app.StdinTTY {
		src = discovery.ClassifyStdin(app.Stdin)
	}
	method, auto, err = discovery.Choose(discovery.Choice{
		Method: f.dm, Source: f.nodes, Identities: f.identity, Filtered: f.filtered(), Stdin: src,
	})
	if err != nil {
		return "", false, &ExitError{Code: 1, Err: fmt.Errorf("--dm: %w", err)}
	}
	return method, auto, nil
}

// discover finds the target nodes by the chosen method.
func (f *clientFlags) discover(ctx context.Context, app *App, cl *client.Client, flt *filter.Filter) (*discovery.Result, error) {
	method, auto, err := f.method(app)
	if err != nil {
		return nil, err
	}
	d, err := f.discoverer(app, cl, method)
	if err != nil {
		return nil, err
	}
	src := f.nodes
	if method == discovery.Stdin {
		src = "-"
	}
	res, err := d.Discover(ctx, discovery.Request{
		Method: method, Auto: auto, Filter: flt, Identities: f.identity, Filtered: f.filtered(),
		Source: src, Timeout: f.discoveryTimeout,
	})
	if err != nil {
		return nil, &ExitError{Code: 1, Err: err}
	}
	if f.verbose {
		switch {
		case method == discovery.Stdin:
			fmt.Fprintf(app.Stderr, "Took %d node identities from standard input\n", res.FromStdin)
		case res.Broadcast != nil:
			b := res.Broadcast
			fmt.Fprintf(app.Stderr, "Broadcast discovery found %d nodes in %.2f ms, ended by: %s; %d of %d expected nodes missing\n",
				len(res.Nodes), ms(b.Duration), b.Ended, len(b.Missing), b.Expected)
		}
		if len(res.Unknown) > 0 {
			fmt.Fprintf(app.Stderr, "The filter could not be decided from the inventory for %d nodes; they are addressed and decide themselves: %s\n", len(res.Unknown), strings.Join(res.Unknown, " "))
		}
	}
	return res, nil
}

// applyDiscoveryOptions turns MCollective's --do into the source of the
// method --dm names: the same as --nodes, without implying flatfile.
func (f *clientFlags) applyDiscoveryOptions() error {
	switch do := f.discoveryOptions; {
	case len(do) == 0:
		return nil
	case len(do) > 1:
		return fmt.Errorf("--do: the discovery methods take one option, got %d", len(do))
	case f.nodes != "":
		return fmt.Errorf("--do %s: give --nodes or --do, not both", do[0])
	case f.dm == "":
		return fmt.Errorf("--do %s: passes an option to the method --dm names; give --dm too", do[0])
	case f.dm == discovery.Broadcast || f.dm == discovery.Stdin:
		return fmt.Errorf("--do %s: discovery method %s takes no option", do[0], f.dm)
	default:
		f.nodes, f.discoveryOptions = do[0], nil
		return nil
	}
}

// discoverer is the Discoverer for a method: broadcast discovery gets the
// cache of recent answers and the registration store (when configured) to
// know which nodes to wait for.
func (f *clientFlags) discoverer(app *App, cl *client.Client, method string) (*discovery.Discoverer, error) {
	d := &discovery.Discoverer{
		Client: cl, Stdin: app.Stdin, Stderr: app.Stderr,
		Scope: append([]string{cl.Identity()}, f.cfg.Brokers...),
	}
	var err error
	switch {
	case method == discovery.Inventory && f.nodes == "":
		if d.InventoryDir, err = registrationDir("", f.confPath, "--dm inventory (--nodes DIR)"); err != nil {
			return nil, err
		}
	case method == discovery.Broadcast:
		if dir := discovery.UserCacheDir(app.Getenv); dir != "" {
			d.Cache = &discovery.Cache{Dir: dir}
		}
		d.InventoryDir, _ = registrationDir("", f.confPath, "")
	}
	return d, nil
}

// contains reports whether list holds s.
func contains(list []string, s string) bool { return slices.Contains(list, s) }
