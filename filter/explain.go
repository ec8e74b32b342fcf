package filter

import "strings"

// Explain describes the filter in words, one line per condition, like
// MCollective's describe_filter:
//
//	Identity is web1 or matches /^db/
//	Fact os == Debian
//	Class matches /^role::/
//	Agent is package
//	Compound os == Debian and (apache or nginx)
//
// Invalid parts are flagged, since they make the whole filter match nothing.
func Explain(f *Filter) string {
	if f.Empty() {
		return "No filter: every node matches"
	}
	var lines []string
	if len(f.Identity) > 0 {
		parts := make([]string, len(f.Identity))
		for i, id := range f.Identity {
			parts[i] = describePattern(id)
		}
		lines = append(lines, "Identity "+strings.Join(parts, " or "))
	}
	for _, ff := range f.Fact {
		line := "Fact " + ff.String()
		if _, err := newComparator(ff.Operator, ff.Value); err != nil || ff.Fact == "" {
			line += invalid
		}
		lines = append(lines, line)
	}
	for _, c := range f.Class {
		lines = append(lines, "Class "+describePattern(c))
	}
	for _, a := range f.Agent {
		lines = append(lines, "Agent "+describePattern(a))
	}
	for _, e := range f.Compound {
		line := "Compound " + e.String()
		if e.Validate() != nil {
			line += invalid
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

const invalid = " (invalid: matches no node)"

func describePattern(s string) string {
	d := "is " + s
	if isRegexLiteral(s) {
		d = "matches " + s
	}
	if _, err := compilePattern(s); err != nil {
		d += invalid
	}
	return d
}
