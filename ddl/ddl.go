// Package ddl loads and applies agent DDLs: JSON descriptions of an agent's
// actions, their inputs and outputs, in the Choria agent DDL format, so existing
// DDL files load unchanged. Clients use a DDL to convert and validate arguments
// and to render replies; nodes use it to validate again and to fill defaults.
package ddl

import (
	"encoding/json"
	"fmt"
	"os"
)

// Agent is a parsed agent DDL.
type Agent struct {
	Schema   string    `json:"$schema,omitempty"`
	Metadata Metadata  `json:"metadata"`
	Actions  []*Action `json:"actions"`
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
}

// Input describes one argument of an action.
type Input struct {
	Prompt      string `json:"prompt"`
	Description string `json:"description"`
	Type        string `json:"type"`
	Optional    bool   `json:"optional"`
	Default     any    `json:"default,omitempty"`
	Validation  string `json:"validation,omitempty"`
	MaxLength   int    `json:"maxlength,omitempty"`
	// Secret masks the input in audit records (a Marionette extension).
	Secret bool     `json:"secret,omitempty"`
	List   []string `json:"list,omitempty"`
}

// Output describes one field of an action's reply.
type Output struct {
	Description string `json:"description"`
	DisplayAs   string `json:"display_as"`
	Default     any    `json:"default,omitempty"`
	Type        string `json:"type,omitempty"`
}

// Aggregate is one summary computed over all replies, e.g. summary(ensure).
type Aggregate struct {
	Function string `json:"function"`
	Args     []any  `json:"args"`
}

// Parse decodes a DDL. name is used in error messages (usually the file path).
func Parse(name string, data []byte) (*Agent, error) {
	var a Agent
	if err := json.Unmarshal(data, &a); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return &a, nil
}

// Load reads and parses a DDL file.
func Load(path string) (*Agent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
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

// InputError says why a request's arguments do not fit an action's inputs.
// Missing distinguishes a required input that was not given (status 3) from
// one that was given but is invalid (status 4).
type InputError struct {
	Input   string
	Missing bool
	Reason  string
}

func (e *InputError) Error() string {
	if e.Missing {
		return fmt.Sprintf("missing required input %q", e.Input)
	}
	return fmt.Sprintf("input %q: %s", e.Input, e.Reason)
}

// ValidateInputs checks request data against the action's inputs and returns the
// data with defaults applied. The error, when not nil, is an *InputError.
func (a *Action) ValidateInputs(data map[string]any) (map[string]any, error) {
	// TODO(ddl): types, validators, defaults.
	return data, nil
}

// OutputDefaults returns a fresh map of the action's outputs pre-filled with
// their DDL defaults.
func (a *Action) OutputDefaults() map[string]any {
	out := make(map[string]any, len(a.Output))
	for name, o := range a.Output {
		if o.Default != nil {
			out[name] = o.Default
		}
	}
	return out
}
