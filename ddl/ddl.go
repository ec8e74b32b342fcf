// Package ddl loads and applies agent DDLs: JSON descriptions of an agent's
// actions, their inputs and outputs, in the Choria agent DDL format, so existing
// DDL files load unchanged. Clients use a DDL to convert and validate arguments
// and to render replies; nodes use it to validate again and to fill defaults.
//
// Parse checks a DDL thoroughly and compiles its validators once. The parsed
// Agent is read-only: callers must not modify it, and then it is safe for
// concurrent use. An Agent built by hand rather than by Parse has no compiled
// validators, so its inputs with a validation reject every value.
//
// # Validation
//
// A string input's validation is a named validator when it looks like a
// lower-case identifier, otherwise a regular expression (Go RE2 syntax,
// unanchored as in MCollective: write ^...$ to match the whole value). A
// validator name this package does not ship (validator plugins such as
// nettest_fqdn came with their agent for Ruby MCollective) loads as Choria
// loads it, with a warning in Agent.Warnings: the input is then checked by
// its type and maxlength only. maxlength 0 means unlimited; the validation
// still runs. Type names are case-insensitive (Choria's schema writes Hash,
// Array, String) and stored lower-case. Named validators:
//
//   - shellsafe: rejects ` $ ; | && > < as MCollective does, plus newline,
//     carriage return and NUL.
//   - ipv4address, ipv6address, ipaddress: an IP address of that family
//     (ipaddress: either), without zone or prefix length.
//   - service_name: ^[a-zA-Z0-9._:@-]+$, the service agent's rule (systemd
//     units like getty@tty1, SysV names).
//   - package_name: ^[a-zA-Z0-9._+:-]+$, the package agent's rule widened to
//     allow '+' (g++, libstdc++6) and ':' (Debian arch qualifiers).
//   - puppet_variable: ^[a-zA-Z0-9_]+$ (environment names).
//   - puppet_tags: comma-separated tags, each puppet_variable parts joined by
//     "::".
//   - puppet_server_address: host or host:port; host a DNS name or IPv4
//     address, port up to five digits.
//
// The pattern-based named validators admit no shell metacharacter, so, as in
// MCollective, they imply shellsafe.
package ddl

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
)

// Agent is a parsed agent DDL.
type Agent struct {
	Schema   string    `json:"$schema,omitempty"`
	Metadata Metadata  `json:"metadata"`
	Actions  []*Action `json:"actions"`
	// Warnings are what Parse accepted without being able to apply it, each
	// "file: json.path: reason" (see Parse). Loaders log them once.
	Warnings []string `json:"-"`
}

// Metadata describes the agent as a whole.
type Metadata struct {
	Name        string `json:"name"`
	Description string `json:"description"`
	Author      string `json:"author"`
	License     string `json:"license"`
	Version     string `json:"version"`
	URL         string `json:"url"`
	Timeout     int    `json:"timeout"` // seconds an action may run
	Provider    string `json:"provider,omitempty"`
	Service     bool   `json:"service,omitempty"`
}

// Action describes one action of an agent.
type Action struct {
	Name        string             `json:"action"`
	Description string             `json:"description"`
	Display     string             `json:"display,omitempty"` // ok, failed or always
	Input       map[string]*Input  `json:"input"`
	Output      map[string]*Output `json:"output"`
	Aggregate   []Aggregate        `json:"aggregate,omitempty"`
	// Extra, when set, accepts inputs the DDL does not declare instead of
	// refusing them: ValidateInputs passes each such input's name and
	// value to it and keeps the value it returns, or refuses the request
	// with its error. Only a program hosting the action sets it (a DDL file
	// cannot), for actions that pass arguments through as MCollective's
	// did: the puppet agent's resource action takes a resource's
	// properties this way. Extra must validate strictly.
	Extra func(name string, value any) (any, error) `json:"-"`

	inputOrder  []string // input names in file order
	outputOrder []string // output names in file order
}

// Input types.
const (
	TypeString  = "string"
	TypeList    = "list"
	TypeBoolean = "boolean"
	TypeInteger = "integer"
	TypeFloat   = "float"
	TypeNumber  = "number" // integer or float
	TypeHash    = "hash"
	TypeArray   = "array"
)

// Display rules of an action.
const (
	DisplayOK     = "ok"
	DisplayFailed = "failed"
	DisplayAlways = "always"
)

// Input describes one argument of an action.
type Input struct {
	Prompt      string `json:"prompt"`
	Description string `json:"description"`
	Type        string `json:"type"`
	Optional    bool   `json:"optional"`
	// Default is applied when an optional input is absent. Parse gives it the
	// input's Go type: int64 for integer, float64 for float, int64 or float64
	// for number, map[string]any for hash, []any for array, else string/bool.
	Default    any    `json:"default,omitempty"`
	Validation string `json:"validation,omitempty"`
	MaxLength  int    `json:"maxlength,omitempty"` // characters; 0 is unlimited
	// Secret masks the input in audit records (a Marionette extension).
	Secret bool     `json:"secret,omitempty"`
	List   []string `json:"list,omitempty"`

	check     checkFunc // compiled Validation
	unchecked bool      // Validation names a validator we do not ship
}

// Output describes one field of an action's reply.
type Output struct {
	Description string `json:"description"`
	DisplayAs   string `json:"display_as"`
	// Default pre-fills replies, decoded as encoding/json would (numbers are
	// float64). Unlike input defaults it is not checked against Type: real
	// DDLs use e.g. "Unknown" as the default of an integer output.
	Default any    `json:"default,omitempty"`
	Type    string `json:"type,omitempty"`
}

// Aggregate is one summary computed over all replies, e.g. summary(ensure).
// Args[0] names an output; an optional object in Args[1] holds a printf-style
// "format" and, for boolean_summary, the "true" and "false" labels. The format
// gets (value, count) for summary and boolean_summary, the number for average
// and sum; chart ignores it.
type Aggregate struct {
	Function string `json:"function"`
	Args     []any  `json:"args"`

	// Skip, when set, says why this aggregate cannot be computed (a function
	// we do not ship, an output the action lacks); Summarize leaves it out.
	Skip string `json:"-"`

	format *formatSpec     // compiled "format" option, nil for the default
	labels map[bool]string // boolean_summary labels
}

// Aggregate functions.
const (
	AggregateSummary        = "summary"
	AggregateBooleanSummary = "boolean_summary"
	AggregateAverage        = "average"
	AggregateSum            = "sum"
	AggregateChart          = "chart"
)

// Output returns the name of the output the aggregate is computed over.
func (g Aggregate) Output() string {
	if len(g.Args) == 0 {
		return ""
	}
	s, _ := g.Args[0].(string)
	return s
}

// Load reads and parses a DDL file.
func Load(path string) (*Agent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading DDL: %w", err)
	}
	return Parse(path, data)
}

// Action returns the named action, or nil.
func (a *Agent) Action(name string) *Action {
	for _, act := range a.Actions {
		if act.Name == name {
			return act
		}
	}
	return nil
}

// ActionNames returns the names of the agent's actions in file order.
func (a *Agent) ActionNames() []string {
	names := make([]string, len(a.Actions))
	for i, act := range a.Actions {
		names[i] = act.Name
	}
	return names
}

// InputNames returns the action's input names in file order.
func (a *Action) InputNames() []string {
	return orderedKeys(a.inputOrder, a.Input)
}

// OutputNames returns the action's output names in file order.
func (a *Action) OutputNames() []string {
	return orderedKeys(a.outputOrder, a.Output)
}

// orderedKeys returns the recorded order when it matches the map, else the
// sorted keys (an Action built by hand has no recorded order).
func orderedKeys[V any](order []string, m map[string]V) []string {
	if len(order) == len(m) {
		return slices.Clone(order)
	}
	return slices.Sorted(maps.Keys(m))
}

// OutputDefaults returns a fresh map of the action's outputs pre-filled with
// their DDL defaults. Hash and array defaults are copied, so the caller may
// modify the map and its contents.
func (a *Action) OutputDefaults() map[string]any {
	out := make(map[string]any, len(a.Output))
	for name, o := range a.Output {
		if o.Default != nil {
			out[name] = deepCopy(o.Default)
		}
	}
	return out
}

// ShouldDisplay reports whether a reply is shown, by the action's display
// rule (ok: successful replies only, failed: failed ones only, always: all;
// empty means ok) or by override, the CLI's --display ok|failed|all. An empty
// or unknown override leaves the DDL rule in force.
func (a *Action) ShouldDisplay(ok bool, override string) bool {
	rule := a.Display
	switch override {
	case "ok", "failed", "always":
		rule = override
	case "all":
		rule = DisplayAlways
	}
	switch rule {
	case DisplayAlways:
		return true
	case DisplayFailed:
		return !ok
	default:
		return ok
	}
}

// deepCopy copies the maps and slices of a decoded JSON value.
func deepCopy(v any) any {
	switch t := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(t))
		for k, e := range t {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(t))
		for i, e := range t {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// AgentDirs returns the directories of a libdir that hold agent DDLs, in the
// order they are searched: Marionette's <libdir>/agent, then the layout of
// Choria and MCollective plugin trees, <libdir>/mcollective/agent, so a
// libdir such as /opt/puppetlabs/mcollective/plugins works unchanged.
func AgentDirs(libdir string) []string {
	return []string{filepath.Join(libdir, "agent"), filepath.Join(libdir, "mcollective", "agent")}
}
