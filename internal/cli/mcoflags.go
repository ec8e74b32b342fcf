package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// seconds is a duration flag that also takes a bare number of seconds, as
// MCollective's options did (-t 10, --dt 2, --batch-sleep 0.5), besides Go
// durations (10s, 1m30s).
type seconds struct{ d *time.Duration }

// Set parses "10", "2.5" (seconds) or a Go duration.
func (s seconds) Set(v string) error {
	v = strings.TrimSpace(v)
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f < 0 || f > float64(1<<62)/float64(time.Second) {
			return fmt.Errorf("%q is not a duration in range", v)
		}
		*s.d = time.Duration(f * float64(time.Second))
		return nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return fmt.Errorf("%q is neither a number of seconds nor a duration such as 10s or 1m30s", v)
	}
	*s.d = d
	return nil
}

// String renders the current value.
func (s seconds) String() string {
	if s.d == nil || *s.d == 0 {
		return "0" // what pflag takes for "no default" in help
	}
	return s.d.String()
}

// Type names the value in help output.
func (s seconds) Type() string { return "seconds" }

// durationVarP declares a duration flag taking bare seconds or a duration.
func durationVarP(fs *pflag.FlagSet, p *time.Duration, name, short string, def time.Duration, usage string) {
	*p = def
	fs.VarP(seconds{p}, name, short, usage)
}

// durationVar is durationVarP without a shorthand.
func durationVar(fs *pflag.FlagSet, p *time.Duration, name string, def time.Duration, usage string) {
	durationVarP(fs, p, name, "", def, usage)
}

// mcollectiveAlias maps MCollective 2.12's long option names to ours; names
// that are ours already come back unchanged. rpc passes agentIsTarget: there
// --agent names the agent to call (mco rpc --agent A --action B), as in
// MCollective, rather than the agent filter (-A, --with-agent).
func mcollectiveAlias(name string, agentIsTarget bool) string {
	switch name {
	case "wf", "with-fact":
		return "fact"
	case "wc", "with-class":
		return "class"
	case "wi", "with-identity":
		return "identity"
	case "wa":
		return "with-agent"
	case "agent":
		if !agentIsTarget {
			return "with-agent" // our spelling before MCollective's rpc --agent
		}
	case "dt":
		return "discovery-timeout"
	case "np":
		return "no-progress"
	case "nr":
		return "no-results"
	case "ln", "limit-nodes":
		return "limit"
	case "disc-method":
		return "dm"
	case "do":
		return "discovery-options"
	case "argument":
		return "arg"
	}
	return name
}

// acceptMCollectiveNames makes cmd accept MCollective's option spellings.
func acceptMCollectiveNames(cmd *cobra.Command, agentIsTarget bool) {
	cmd.Flags().SetNormalizeFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		return pflag.NormalizedName(mcollectiveAlias(name, agentIsTarget))
	})
}
