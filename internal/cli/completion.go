package cli

import (
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/registration"
)

// Completion that knows the collective: agent, action and input names come
// from the DDLs this client has (built in and in its libdirs), fact names
// from the registration store (registration.dir) when there is one. The
// shell scripts of `mco completion` ask `mco __complete` for them.

// addDynamicCompletion wires the completion functions into the command tree.
func addDynamicCompletion(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		switch c.CommandPath() {
		case "mco rpc":
			c.ValidArgsFunction = completeRPC
		case "mco facts":
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return factNames(cmd), cobra.ShellCompDirectiveNoFileComp
			}
		case "mco plugin doc":
			c.ValidArgsFunction = func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
				if len(args) > 0 {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return knownAgents(completionLibdirs(cmd)), cobra.ShellCompDirectiveNoFileComp
			}
		}
		if c.Flags().Lookup("fact") != nil {
			_ = c.RegisterFlagCompletionFunc("fact", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
				// fact=value: complete the name and let the user type the rest.
				return suffixed(factNames(cmd), "="), cobra.ShellCompDirectiveNoSpace | cobra.ShellCompDirectiveNoFileComp
			})
		}
		if c.Flags().Lookup("with-agent") != nil {
			_ = c.RegisterFlagCompletionFunc("with-agent", func(cmd *cobra.Command, _ []string, _ string) ([]string, cobra.ShellCompDirective) {
				return knownAgents(completionLibdirs(cmd)), cobra.ShellCompDirectiveNoFileComp
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// completeRPC completes mco rpc AGENT ACTION key=value...
func completeRPC(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	none := cobra.ShellCompDirectiveNoFileComp
	libdirs := completionLibdirs(cmd)
	if len(args) == 0 {
		return knownAgents(libdirs), none
	}
	d, err := findDDL(args[0], libdirs)
	if err != nil {
		return nil, cobra.ShellCompDirectiveError
	}
	if len(args) == 1 {
		return d.ActionNames(), none
	}
	act := d.Action(args[1])
	if act == nil {
		return nil, cobra.ShellCompDirectiveError
	}
	if name, _, typing := strings.Cut(toComplete, "="); typing {
		// A list input's value: its choices.
		if in := act.Input[name]; in != nil && len(in.List) > 0 {
			return prefixed(in.List, name+"="), none
		}
		return nil, none
	}
	given := map[string]bool{}
	for _, a := range args[2:] {
		if k, _, ok := strings.Cut(a, "="); ok {
			given[k] = true
		}
	}
	var out []string
	for _, name := range act.InputNames() {
		if !given[name] {
			out = append(out, name+"=")
		}
	}
	return out, cobra.ShellCompDirectiveNoSpace | none
}

// completionLibdirs is clientLibdirs without its warning: completion output
// must stay quiet.
func completionLibdirs(cmd *cobra.Command) []string {
	path, err := findClient(cmd)
	if err != nil {
		return nil
	}
	c, err := config.LoadClient(path)
	if err != nil {
		return nil
	}
	return c.Libdirs
}

// factNames lists the fact names (dotted for nested facts) the nodes in
// the registration store report; none without a store.
func factNames(cmd *cobra.Command) []string {
	path, err := findClient(cmd)
	if err != nil {
		return nil
	}
	c, err := config.LoadClient(path)
	if err != nil || c.RegistrationDir == "" {
		return nil
	}
	recs, _, err := registration.Store{Dir: c.RegistrationDir}.List()
	if err != nil {
		return nil
	}
	seen := map[string]bool{}
	for _, r := range recs {
		addFactNames(seen, "", r.Facts, 0)
	}
	out := make([]string, 0, len(seen))
	for n := range seen {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// addFactNames adds the names of facts and of their nested keys
// (os.family), a few levels deep.
func addFactNames(seen map[string]bool, prefix string, facts map[string]any, depth int) {
	for k, v := range facts {
		name := prefix + k
		seen[name] = true
		if m, ok := v.(map[string]any); ok && depth < 3 {
			addFactNames(seen, name+".", m, depth+1)
		}
	}
}

func suffixed(list []string, s string) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = v + s
	}
	return out
}

func prefixed(list []string, p string) []string {
	out := make([]string, len(list))
	for i, v := range list {
		out[i] = p + v
	}
	return out
}
