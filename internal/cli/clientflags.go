package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/data"
)

// clientFlags are the selection and output flags shared by client commands.
type clientFlags struct {
	identity, fact, class, agent, with, compound []string
	collective                                   string
	dm, nodes                                    string
	timeout, discoveryTimeout, ttl               time.Duration
	json, jsonl, noProgress, verbose             bool
	display                                      string
	replyTo                                      string       // rpc --reply-to
	rollout                                      rolloutFlags // --batch, --limit ... (rpc, package, service)
	confPath                                     string       // the client.conf connect loaded (--dm inventory reads registration.dir)
}

func (f *clientFlags) register(cmd *cobra.Command, output bool) {
	fs := cmd.Flags()
	fs.StringArrayVarP(&f.identity, "identity", "I", nil, "match node identity (exact or /regex/); repeat to OR")
	fs.StringArrayVarP(&f.fact, "fact", "F", nil, "match a fact: fact=value, fact>value, fact=~/re/ ...; repeat to AND")
	fs.StringArrayVarP(&f.class, "class", "C", nil, "match a configuration class (exact or /regex/)")
	fs.StringArrayVarP(&f.agent, "agent", "A", nil, "match nodes hosting an agent (exact or /regex/)")
	fs.StringArrayVarP(&f.with, "with", "W", nil, "combined filter: space separated facts (with an operator) and classes")
	fs.StringArrayVarP(&f.compound, "select", "S", nil, "compound filter: and/or/not, parentheses, facts, classes, data functions")
	fs.StringVarP(&f.collective, "target", "T", "", "collective to address (default: the configured main collective)")
	fs.StringVar(&f.dm, "dm", "", "discovery method: broadcast, flatfile, stdin, inventory or external (default broadcast; stdin when input is piped)")
	fs.StringVar(&f.nodes, "nodes", "", "file of node identities (text one per line, JSON list, or mco --json output); implies --dm flatfile")
	fs.DurationVarP(&f.timeout, "timeout", "t", 0, "how long to wait for replies (default: the action's DDL timeout)")
	fs.DurationVar(&f.discoveryTimeout, "discovery-timeout", 0, "longest broadcast discovery (it ends earlier, once replies stop)")
	fs.DurationVar(&f.ttl, "ttl", 0, "how long the request stays valid on the nodes (default: the configured ttl, 60s)")
	fs.BoolVarP(&f.verbose, "verbose", "v", false, "more detail")
	if output {
		fs.BoolVar(&f.json, "json", false, "print one JSON document (replies, stats, no-response list)")
		fs.BoolVar(&f.jsonl, "jsonl", false, "print one JSON reply per line, then a summary line")
		fs.BoolVar(&f.noProgress, "no-progress", false, "no progress bar")
		fs.StringVar(&f.display, "display", "", "which replies to show: ok, failed or all (default: the DDL's rule)")
		f.rollout.register(cmd)
	}
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

// directTargets returns the identities when the selection is only exact -I
// values: then discovery is skipped and the request goes straight to them.
func (f *clientFlags) directTargets() []string {
	if len(f.identity) == 0 || len(f.fact)+len(f.class)+len(f.agent)+len(f.with)+len(f.compound) > 0 {
		return nil
	}
	for _, id := range f.identity {
		if strings.HasPrefix(id, "/") {
			return nil
		}
	}
	return dedupe(f.identity)
}

func (f *clientFlags) connect(cmd *cobra.Command) (*client.Client, error) {
	path, err := config.FindClient(configFlag(cmd))
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
	if f.timeout == 0 {
		f.timeout = cfg.Timeout
	}
	return client.Connect(cfg)
}

// method is the discovery method: --dm, else flatfile with --nodes, direct
// for exact -I values only, stdin when something is piped in, else broadcast.
func (f *clientFlags) method(app *App) string {
	switch {
	case f.dm != "":
		return f.dm
	case f.nodes != "":
		return "flatfile"
	case f.directTargets() != nil:
		return "direct"
	case !app.StdinTTY && stdinHasData(app.Stdin):
		return "stdin"
	}
	return "broadcast"
}

// discovery is the outcome of finding the nodes to address.
type discovery struct {
	nodes    []string
	method   string
	duration time.Duration
}

// discover finds the target nodes by the chosen method.
func (f *clientFlags) discover(ctx context.Context, app *App, cl *client.Client, flt *filter.Filter) (*discovery, error) {
	start := time.Now()
	d := &discovery{method: f.method(app)}
	var piped []byte
	if d.method == "stdin" {
		wait := time.Duration(0) // --dm stdin: the operator asked for it, wait
		if f.dm == "" {
			wait = stdinWait
		}
		var err error
		if piped, err = readPiped(app.Stdin, wait); err != nil {
			return nil, fmt.Errorf("reading node list from standard input: %w", err)
		}
		if len(bytes.TrimSpace(piped)) == 0 && f.dm == "" {
			// Chosen only because stdin is a pipe, and nothing came through
			// it (a script, a CI job, a parent holding it open): discover
			// as usual.
			d.method = "broadcast"
		}
	}
	// A node list names the nodes; only -I can narrow it. Other filters
	// would make the nodes that do not match look like nodes that never
	// answered (MCollective's flatfile discovery refuses them too).
	if lists := d.method == "flatfile" || d.method == "file" || d.method == "stdin" || d.method == "external"; lists &&
		len(f.fact)+len(f.class)+len(f.agent)+len(f.with)+len(f.compound) > 0 {
		return nil, &ExitError{Code: 1, Err: fmt.Errorf("%s discovery takes a list of nodes: narrow it with -I only (-F, -C, -A, -W and -S need broadcast or inventory discovery)", d.method)}
	}
	var err error
	switch d.method {
	case "direct":
		d.nodes = f.directTargets()
	case "broadcast", "mc":
		d.nodes, err = cl.Discover(ctx, client.DiscoverRequest{Filter: flt})
	case "flatfile", "file":
		if f.nodes == "" {
			return nil, fmt.Errorf("--dm flatfile needs --nodes FILE")
		}
		var data []byte
		if data, err = os.ReadFile(f.nodes); err == nil {
			d.nodes, err = parseNodeList(f.nodes, data)
		}
	case "stdin":
		d.nodes, err = parseNodeList("standard input", piped)
	case "inventory":
		d.nodes, err = f.inventoryNodes(app, cl.Collective(), flt)
	case "external":
		if f.nodes == "" {
			return nil, fmt.Errorf("--dm external needs --nodes PROGRAM (a program that prints identities)")
		}
		var out []byte
		if out, err = exec.CommandContext(ctx, f.nodes).Output(); err == nil {
			d.nodes, err = parseNodeList(f.nodes, out)
		} else {
			err = fmt.Errorf("discovery program %s: %w", f.nodes, err)
		}
	default:
		return nil, fmt.Errorf("unknown discovery method %q (broadcast, flatfile, stdin, inventory or external)", d.method)
	}
	if err != nil {
		return nil, err
	}
	// Identity filters still apply to lists from files: -I narrows them.
	if d.method != "broadcast" && d.method != "direct" && len(f.identity) > 0 {
		sel := &filter.Filter{Identity: f.identity}
		var kept []string
		for _, n := range d.nodes {
			if sel.Match(identityOnly(n)) {
				kept = append(kept, n)
			}
		}
		d.nodes = kept
	}
	d.duration = time.Since(start)
	return d, nil
}

// parseNodeList reads identities: a JSON list of names, the JSON document
// printed by `mco rpc --json` / `mco find --json`, or text with one identity
// per line and # comments.
func parseNodeList(name string, data []byte) ([]string, error) {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "[") {
		var list []string
		if err := json.Unmarshal([]byte(trimmed), &list); err == nil {
			return dedupe(list), nil
		}
		var replies []struct {
			Sender string `json:"sender"`
		}
		if err := json.Unmarshal([]byte(trimmed), &replies); err != nil {
			return nil, fmt.Errorf("%s: not a JSON list of identities or replies: %w", name, err)
		}
		var out []string
		for _, r := range replies {
			out = append(out, r.Sender)
		}
		return dedupe(out), nil
	}
	if strings.HasPrefix(trimmed, "{") {
		var doc struct {
			Replies []struct {
				Sender string `json:"sender"`
			} `json:"replies"`
			Nodes []string `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(trimmed), &doc); err != nil {
			return nil, fmt.Errorf("%s: not mco JSON output: %w", name, err)
		}
		out := doc.Nodes
		for _, r := range doc.Replies {
			out = append(out, r.Sender)
		}
		return dedupe(out), nil
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(trimmed))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("%s:%d: %q is not a node identity", name, n, line)
		}
		out = append(out, line)
	}
	return dedupe(out), nil
}

// stdinWait is how long an automatically chosen stdin discovery waits for
// the first byte: long enough for `mco find ... |` upstream to discover, short
// enough that a parent holding an empty pipe open does not hang mco.
const stdinWait = 10 * time.Second

// readPiped reads r to EOF. With wait > 0 it gives up, returning nothing,
// when not a single byte (nor EOF) arrived within wait; once data flows it
// reads to the end. The abandoned read ends with the process.
func readPiped(r io.Reader, wait time.Duration) ([]byte, error) {
	if wait <= 0 {
		return io.ReadAll(r)
	}
	type chunk struct {
		data []byte
		err  error
	}
	chunks := make(chan chunk, 16)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				chunks <- chunk{data: bytes.Clone(buf[:n])}
			}
			if err != nil {
				if err != io.EOF {
					chunks <- chunk{err: err}
				}
				return
			}
		}
	}()
	var out []byte
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for first := true; ; first = false {
		var c chunk
		var ok bool
		if first {
			select {
			case c, ok = <-chunks:
			case <-timer.C:
				return nil, nil
			}
		} else {
			c, ok = <-chunks
		}
		switch {
		case !ok:
			return out, nil
		case c.err != nil:
			return out, c.err
		}
		out = append(out, c.data...)
	}
}

// stdinHasData reports whether stdin is a pipe or file with content waiting;
// an interactive or closed stdin means "nothing piped".
func stdinHasData(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil {
		return false
	}
	return st.Mode()&os.ModeNamedPipe != 0 || (st.Mode().IsRegular() && st.Size() > 0)
}

type identityOnly string

func (i identityOnly) Identity() string                          { return string(i) }
func (identityOnly) Fact(string) (any, bool)                     { return nil, false }
func (identityOnly) Classes() []string                           { return nil }
func (identityOnly) Agents() []string                            { return nil }
func (identityOnly) Data(string, string) (map[string]any, error) { return nil, fmt.Errorf("no data") }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if s != "" && !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}
