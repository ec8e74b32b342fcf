package ddl

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// label is how an output is shown: its display_as, else its name.
func (a *Action) label(output string) string {
	if o, ok := a.Output[output]; ok && o.DisplayAs != "" {
		return o.DisplayAs
	}
	return output
}

// FormatOutputs renders a reply's data as "Label: value" lines, MCollective
// style: labels are the outputs' display_as, right-aligned to the longest;
// hashes and arrays are compact JSON; continuation lines of multi-line values
// are aligned under the first. Outputs come in DDL order, then any fields the
// DDL does not declare, sorted by name and labelled by name. Lines carry no
// leading indentation; the caller adds its own.
func (a *Action) FormatOutputs(data map[string]any) []string {
	var keys []string
	for _, name := range a.OutputNames() {
		if _, ok := data[name]; ok {
			keys = append(keys, name)
		}
	}
	var extra []string
	for k := range data {
		if _, ok := a.Output[k]; !ok {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	keys = append(keys, extra...)

	width := 0
	for _, k := range keys {
		width = max(width, utf8.RuneCountInString(a.label(k)))
	}
	indent := strings.Repeat(" ", width+2)
	var lines []string
	for _, k := range keys {
		value := strings.TrimRight(displayValue(data[k]), "\n")
		first, rest, _ := strings.Cut(value, "\n")
		lines = append(lines, strings.TrimRight(padLeft(a.label(k), width)+": "+first, " "))
		if rest != "" {
			for _, l := range strings.Split(rest, "\n") {
				lines = append(lines, strings.TrimRight(indent+l, " "))
			}
		}
	}
	return lines
}

// Doc renders an agent's documentation for `mco plugin doc AGENT`, laid out
// like MCollective's: the metadata, then each action with its inputs,
// outputs and summaries.
func Doc(a *Agent) string {
	var b strings.Builder
	m := a.Metadata
	title := m.Name
	fmt.Fprintf(&b, "%s\n%s\n\n", title, strings.Repeat("=", utf8.RuneCountInString(title)))
	if m.Description != "" {
		fmt.Fprintf(&b, "%s\n\n", m.Description)
	}
	meta := func(label, value string) { fmt.Fprintf(&b, "   %s: %s\n", padLeft(label, 9), value) }
	meta("Author", m.Author)
	meta("Version", m.Version)
	meta("License", m.License)
	meta("Timeout", strconv.Itoa(m.Timeout)+" seconds")
	meta("Home Page", m.URL)
	if m.Provider != "" {
		meta("Provider", m.Provider)
	}
	if m.Service {
		meta("Service", "yes")
	}

	b.WriteString("\nACTIONS:\n========\n")
	for _, l := range wrap(strings.Join(a.ActionNames(), ", "), 76) {
		fmt.Fprintf(&b, "   %s\n", l)
	}
	b.WriteByte('\n')
	field := func(label, value string) {
		fmt.Fprintf(&b, "              %s: %s\n", padLeft(label, 11), value)
	}
	for _, act := range a.Actions {
		docAction(&b, act, field)
	}
	if len(a.Warnings) > 0 {
		b.WriteString("WARNINGS:\n=========\n")
		for _, w := range a.Warnings {
			fmt.Fprintf(&b, "   %s\n", w)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// wrap breaks text at spaces into lines of at most width characters (longer
// words stay whole).
func wrap(text string, width int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(text) {
		if line != "" && utf8.RuneCountInString(line)+1+utf8.RuneCountInString(w) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

// docAction renders one action; every section ends with a blank line.
func docAction(b *strings.Builder, act *Action, field func(label, value string)) {
	head := act.Name + " action:"
	fmt.Fprintf(b, "   %s\n   %s\n", head, strings.Repeat("-", utf8.RuneCountInString(head)))
	if act.Description != "" {
		fmt.Fprintf(b, "       %s\n", act.Description)
	}
	display := act.Display
	if display == "" {
		display = DisplayOK
	}
	fmt.Fprintf(b, "\n       Display: %s\n", display)

	b.WriteString("\n       INPUT:\n")
	names := act.InputNames()
	if len(names) == 0 {
		b.WriteString("           This action does not have any inputs\n")
	}
	for _, name := range names {
		in := act.Input[name]
		fmt.Fprintf(b, "           %s:\n", name)
		if in.Description != "" {
			field("Description", in.Description)
		}
		if in.Prompt != "" {
			field("Prompt", in.Prompt)
		}
		field("Type", in.Type)
		if in.Optional {
			field("Optional", "yes")
		} else {
			field("Required", "yes")
		}
		if in.Default != nil {
			field("Default", docJSON(in.Default))
		}
		switch {
		case in.unchecked:
			field("Validation", in.Validation+" (validator not available: not checked)")
		case in.Validation != "" && in.Type != TypeString:
			field("Validation", in.Validation+" (ignored: not a string input)")
		case in.Validation != "":
			field("Validation", in.Validation)
		}
		if in.Type == TypeString {
			length := "unlimited"
			if in.MaxLength > 0 {
				length = strconv.Itoa(in.MaxLength)
			}
			field("Length", length)
		}
		if len(in.List) > 0 {
			field("Values", strings.Join(in.List, ", "))
		}
		if in.Secret {
			field("Secret", "yes")
		}
		b.WriteByte('\n')
	}
	if len(names) == 0 {
		b.WriteByte('\n')
	}

	b.WriteString("       OUTPUT:\n")
	outs := act.OutputNames()
	if len(outs) == 0 {
		b.WriteString("           This action does not have any outputs\n")
	}
	for _, name := range outs {
		o := act.Output[name]
		fmt.Fprintf(b, "           %s:\n", name)
		if o.Description != "" {
			field("Description", o.Description)
		}
		field("Display As", act.label(name))
		if o.Type != "" {
			field("Type", o.Type)
		}
		if o.Default != nil {
			field("Default", docJSON(o.Default))
		}
		b.WriteByte('\n')
	}

	if len(act.Aggregate) > 0 {
		b.WriteString("       SUMMARY:\n")
		for _, g := range act.Aggregate {
			fmt.Fprintf(b, "           %s(%s)", g.Function, g.Output())
			if g.Skip != "" {
				fmt.Fprintf(b, " (not computed: %s)", g.Skip)
			}
			b.WriteByte('\n')
		}
		b.WriteByte('\n')
	}
}

// docJSON shows a default as JSON so that strings are visibly quoted.
func docJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
