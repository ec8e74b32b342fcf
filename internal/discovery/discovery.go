// Package discovery finds the nodes a request is meant for. It holds every
// discovery method of mco (broadcast, direct, flatfile, stdin, inventory and
// external), the rules that choose one, and the node-list parsing they share,
// so that the CLI only turns flags into a Request and prints the Result.
//
// Adding a discovery method: add its name below, accept it in Canonical, and
// handle it in (*Discoverer).Discover.
package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/filter"
	"github.com/marionette/mco/internal/registration"
)

// The discovery methods.
const (
	// Broadcast asks the collective: a ping carrying the filter.
	Broadcast = "broadcast"
	// Direct addresses exact -I identities without asking anyone first.
	Direct = "direct"
	// Flatfile reads identities from a file (--nodes FILE).
	Flatfile = "flatfile"
	// Stdin reads identities from standard input (--nodes - or piped input).
	Stdin = "stdin"
	// Inventory evaluates the filter against the registration store.
	Inventory = "inventory"
	// External runs a program that prints identities.
	External = "external"
)

// Methods are the names --dm accepts (Direct is chosen, never named).
var methods = []string{Broadcast, Flatfile, Stdin, Inventory, External}

// Methods returns the method names an operator may choose, in the order
// they are documented.
func Methods() []string { return slices.Clone(methods) }

// Canonical returns the method for a name an operator typed, accepting
// MCollective's aliases ("mc" for broadcast, "file" for flatfile). An unknown
// name is an error naming the allowed ones.
func Canonical(name string) (string, error) {
	switch name {
	case "mc":
		return Broadcast, nil
	case "file":
		return Flatfile, nil
	}
	if slices.Contains(methods, name) {
		return name, nil
	}
	return "", fmt.Errorf("unknown discovery method %q (allowed: %s)", name, strings.Join(methods, ", "))
}

// IsList reports whether a method reads a fixed list of nodes rather than
// asking them: such lists can only be narrowed by identity. (An external
// program receives the whole filter and is trusted to apply it.)
func IsList(method string) bool {
	switch method {
	case Flatfile, Stdin:
		return true
	}
	return false
}

// StdinSource is what is connected to the client's standard input, as far as
// automatic stdin discovery cares.
type StdinSource int

// The kinds of standard input.
const (
	// StdinOther is a terminal, /dev/null or any other device, or nothing:
	// never read automatically.
	StdinOther StdinSource = iota
	// StdinPipe is a pipe or socket: `mco find ... | mco rpc ...`.
	StdinPipe
	// StdinFile is a regular file: `... < file`, typically a shell loop's
	// input, never read automatically.
	StdinFile
)

// Choice is what the operator gave that decides the method.
type Choice struct {
	Method     string   // --dm, "" when not given
	Source     string   // --nodes, "" when not given; "-" is standard input
	Identities []string // -I values
	Filtered   bool     // any of -F, -C, -A, -W, -S given
	Stdin      StdinSource
}

// Choose decides the discovery method, and whether it was chosen
// automatically (auto is true only for stdin taken because of a pipe):
//
//   - --dm wins (an unknown name is an error);
//   - --nodes - is stdin, any other --nodes is flatfile;
//   - only exact -I values: direct;
//   - no selection flag at all and standard input a pipe: stdin (automatic);
//   - otherwise broadcast.
//
// A regular file or /dev/null on stdin, or any selection flag, never makes
// the client read stdin on its own: a shell loop such as
// `while read r; do mco find -F role=$r; done < roles` keeps its input.
func Choose(c Choice) (method string, auto bool, err error) {
	switch {
	case c.Method != "":
		m, err := Canonical(c.Method)
		if err != nil {
			return "", false, err
		}
		if m == Flatfile && c.Source == "-" {
			m = Stdin
		}
		return m, false, nil
	case c.Source == "-":
		return Stdin, false, nil
	case c.Source != "":
		return Flatfile, false, nil
	case DirectTargets(c.Identities, c.Filtered) != nil:
		return Direct, false, nil
	case c.Stdin == StdinPipe && len(c.Identities) == 0 && !c.Filtered:
		return Stdin, true, nil
	}
	return Broadcast, false, nil
}

// DirectTargets returns the identities when the selection is only exact -I
// values: then discovery is skipped and the request goes straight to them.
func DirectTargets(identities []string, filtered bool) []string {
	if len(identities) == 0 || filtered {
		return nil
	}
	for _, id := range identities {
		if strings.HasPrefix(id, "/") {
			return nil
		}
	}
	return Dedupe(identities)
}

// Request is one discovery.
type Request struct {
	Method string // one of the constants; see Choose
	// Auto says stdin was chosen automatically (not by --nodes - or --dm).
	Auto       bool
	Filter     *filter.Filter // what broadcast and inventory discovery match
	Identities []string       // -I: the direct targets, or patterns narrowing a list
	// Filtered says selection flags other than -I were given: a node list
	// cannot honour them and is refused.
	Filtered   bool
	Source     string // --nodes: a file, "-", a program or the inventory directory
	Collective string // "" is the client's main collective
	// Timeout caps broadcast discovery, the external program and the wait
	// for automatic stdin (0: the client's discovery timeout).
	Timeout time.Duration
	// Window is the quiet window ending broadcast discovery (0: the client's).
	Window time.Duration
}

// Result is the outcome of a discovery.
type Result struct {
	Method   string
	Nodes    []string // sorted, unique
	Duration time.Duration
	// FromStdin is how many identities standard input gave (stdin only).
	FromStdin int
	// Unknown are nodes selected because the filter could not be decided
	// for them from the inventory (data functions): the nodes decide.
	Unknown []string
	// Broadcast is how broadcast discovery ended (nil for other methods).
	Broadcast *client.Discovery
}

// ErrNoStdinNodes is returned when standard input gave no identity: never
// fall back to every node.
var ErrNoStdinNodes = errors.New("stdin gave no node identities; refusing to fall back to every node; use --dm broadcast to address all")

// Discoverer runs discoveries for one client.
type Discoverer struct {
	Client *client.Client
	Stdin  io.Reader // standard input, for the stdin method
	// Stderr receives warnings and the external program's stderr.
	Stderr io.Writer
	// InventoryDir is the registration store: the inventory method reads it
	// (when Request.Source is empty), and broadcast discovery expects the
	// matching nodes that announced recently.
	InventoryDir string
	// Cache remembers who answered broadcast discoveries (nil: none).
	Cache *Cache
	// Scope tells apart collectives with the same name in the cache: the
	// brokers and the client certname.
	Scope []string
}

// Discover finds the nodes of a request.
func (d *Discoverer) Discover(ctx context.Context, r Request) (*Result, error) {
	start := time.Now()
	res := &Result{Method: r.Method}
	// A node list names the nodes; only -I can narrow it. Other filters
	// would make the nodes that do not match look like nodes that never
	// answered (MCollective's flatfile discovery refuses them too).
	if IsList(r.Method) && r.Filtered {
		return nil, fmt.Errorf("%s discovery takes a list of nodes: narrow it with -I only (-F, -C, -A, -W and -S need broadcast, inventory or external discovery)", r.Method)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = d.Client.DiscoveryTimeout()
	}
	var err error
	switch r.Method {
	case Direct:
		res.Nodes = DirectTargets(r.Identities, r.Filtered)
	case Broadcast:
		res.Nodes, res.Broadcast, err = d.broadcast(ctx, r)
	case Flatfile:
		res.Nodes, err = readFile(r.Source)
	case Stdin:
		res.Nodes, err = d.readStdin(r, timeout+time.Second)
		res.FromStdin = len(res.Nodes)
	case Inventory:
		collective := r.Collective
		if collective == "" {
			collective = d.Client.Collective()
		}
		res.Nodes, res.Unknown, err = d.inventory(ctx, r, collective)
	case External:
		res.Nodes, err = d.external(ctx, r, timeout)
	default:
		_, err = Canonical(r.Method)
	}
	if err != nil {
		return nil, err
	}
	// Identity filters still apply to lists: -I narrows them.
	if r.Method != Broadcast && r.Method != Direct && len(r.Identities) > 0 {
		sel := &filter.Filter{Identity: r.Identities}
		var kept []string
		for _, n := range res.Nodes {
			if sel.Match(ctx, identityOnly(n)) {
				kept = append(kept, n)
			}
		}
		res.Nodes = kept
	}
	res.Duration = time.Since(start)
	return res, nil
}

// broadcast is the broadcast method: it waits for the nodes it has reason to
// expect (the cache, the registration inventory) up to the timeout, and
// records who answered for next time.
func (d *Discoverer) broadcast(ctx context.Context, r Request) ([]string, *client.Discovery, error) {
	collective := r.Collective
	if collective == "" {
		collective = d.Client.Collective()
	}
	key, expect := d.Expect(ctx, collective, r.Filter)
	disc, err := d.Client.DiscoverNodes(ctx, client.DiscoverRequest{
		Collective: r.Collective, Filter: r.Filter, Timeout: r.Timeout, Quiet: r.Window, Expect: expect,
	})
	if err != nil {
		return nil, nil, err
	}
	d.Answered(key, disc.Nodes)
	return disc.Nodes, disc, nil
}

// Expect returns the nodes a broadcast with this collective and filter has
// reason to expect (recent answers in the cache, recent announcements in the
// registration store), and the cache key to report the answers under.
// mco ping, whose ping is itself the broadcast, uses it directly.
func (d *Discoverer) Expect(ctx context.Context, collective string, flt *filter.Filter) (key string, expect []string) {
	key = CacheKey(d.Scope, collective, flt)
	expect = d.Cache.Expected(key)
	if d.InventoryDir != "" {
		expect = append(expect, d.inventoryExpected(ctx, collective, flt)...)
	}
	return key, Dedupe(expect)
}

// Answered records the nodes that answered a broadcast under key.
func (d *Discoverer) Answered(key string, nodes []string) {
	if err := d.Cache.Record(key, nodes); err != nil && d.Stderr != nil {
		fmt.Fprintf(d.Stderr, "warning: %v\n", err)
	}
}

// inventoryExpected are the nodes of the registration store that announced
// recently and match the filter: broadcast discovery waits for them. A store
// that cannot be read expects nothing (the inventory method reports it).
func (d *Discoverer) inventoryExpected(ctx context.Context, collective string, flt *filter.Filter) []string {
	recs, err := LoadInventory(d.InventoryDir, nil)
	if err != nil {
		return nil
	}
	now := time.Now()
	var out []string
	for _, rec := range recs {
		if rec.InCollective(collective) && !rec.Silent(now, rec.MaxAge(registration.DefaultMaxAge)) && flt.Match(ctx, rec.Node()) {
			out = append(out, rec.Identity)
		}
	}
	return out
}

// Dedupe returns the non-empty strings of in, sorted and unique.
func Dedupe(in []string) []string {
	out := slices.DeleteFunc(slices.Clone(in), func(s string) bool { return s == "" })
	slices.Sort(out)
	return slices.Compact(out)
}

// identityOnly is a node known only by name: enough for -I on a list.
type identityOnly string

func (i identityOnly) Identity() string      { return string(i) }
func (identityOnly) Fact(string) (any, bool) { return nil, false }
func (identityOnly) Classes() []string       { return nil }
func (identityOnly) Agents() []string        { return nil }
func (identityOnly) Data(context.Context, string, string) (map[string]any, error) {
	return nil, errors.New("a node list has no data")
}
