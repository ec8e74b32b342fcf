package ddl

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Summary is one computed aggregate, ready to print.
type Summary struct {
	Title    string `json:"title"`    // "Summary of Ensure": the output's display_as
	Function string `json:"function"` // summary, boolean_summary, average, sum or chart
	Output   string `json:"output"`   // the output aggregated
	// Counts holds value → number of replies for summary, boolean_summary
	// and chart.
	Counts map[string]int `json:"counts,omitempty"`
	// Value is the result of average and sum.
	Value *float64 `json:"value,omitempty"`
	Lines []string `json:"lines"` // rendered body, without indentation
}

// String renders the summary MCollective style: the title, a blank line, then
// the body indented by three spaces, ending with a newline.
func (s Summary) String() string {
	var b strings.Builder
	b.WriteString(s.Title)
	b.WriteString(":\n\n")
	for _, l := range s.Lines {
		b.WriteString("   ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// chartWidth is the length of the longest bar of a chart.
const chartWidth = 40

// Summarize computes the action's aggregates over the data of successful
// replies, in DDL order. Replies lacking the output, or holding a value the
// function cannot use (a non-number for average), are skipped; an aggregate
// with no usable value at all is left out, and so is one that cannot be
// computed (see Skipped).
func (a *Action) Summarize(replies []map[string]any) []Summary {
	var out []Summary
	for i := range a.Aggregate {
		if a.Aggregate[i].Skip != "" {
			continue
		}
		if s, ok := a.summarize(&a.Aggregate[i], replies); ok {
			out = append(out, s)
		}
	}
	return out
}

// Skipped returns one line per aggregate Summarize cannot compute, for the
// note printed under the results, e.g. "summary nagios_states(exitcode)
// skipped: aggregate function nagios_states is not available".
func (a *Action) Skipped() []string {
	var out []string
	for _, g := range a.Aggregate {
		if g.Skip != "" {
			out = append(out, fmt.Sprintf("summary %s(%s) skipped: %s", g.Function, g.Output(), g.Skip))
		}
	}
	return out
}

func (a *Action) summarize(g *Aggregate, replies []map[string]any) (Summary, bool) {
	name := g.Output()
	s := Summary{Title: "Summary of " + a.label(name), Function: g.Function, Output: name}
	switch g.Function {
	case AggregateSummary, AggregateChart:
		s.Counts = countValues(replies, name, func(v any) []string { return summaryKeys(v) })
	case AggregateBooleanSummary:
		s.Counts = countValues(replies, name, func(v any) []string {
			b, ok := asBool(v)
			if !ok {
				return nil
			}
			if l, ok := g.labels[b]; ok {
				return []string{l}
			}
			return []string{strconv.FormatBool(b)}
		})
	case AggregateAverage, AggregateSum:
		sum, n := 0.0, 0
		for _, r := range replies {
			if f, ok := asFloat(r[name]); ok {
				sum += f
				n++
			}
		}
		if n == 0 {
			return s, false
		}
		v := sum
		if g.Function == AggregateAverage {
			v = sum / float64(n)
		}
		s.Value = &v
		s.Lines = []string{numericLine(g, v)}
		return s, true
	default:
		return s, false
	}
	if len(s.Counts) == 0 {
		return s, false
	}
	if g.Function == AggregateChart {
		s.Lines = chartLines(s.Counts)
	} else {
		s.Lines = countLines(g, s.Counts)
	}
	return s, true
}

func numericLine(g *Aggregate, v float64) string {
	if g.format != nil {
		return g.format.render(v)
	}
	if g.Function == AggregateAverage {
		return fmt.Sprintf("Average: %.2f", v)
	}
	return "Sum: " + strconv.FormatFloat(v, 'f', -1, 64)
}

// countValues tallies the keys extracted from each reply's output value.
func countValues(replies []map[string]any, name string, keys func(any) []string) map[string]int {
	counts := map[string]int{}
	for _, r := range replies {
		v, ok := r[name]
		if !ok || v == nil {
			continue
		}
		for _, k := range keys(v) {
			counts[k]++
		}
	}
	return counts
}

// summaryKeys counts each element of a list separately, as MCollective does.
func summaryKeys(v any) []string {
	if list, ok := v.([]any); ok {
		keys := make([]string, 0, len(list))
		for _, e := range list {
			keys = append(keys, displayValue(e))
		}
		return keys
	}
	if list, ok := v.([]string); ok {
		return list
	}
	return []string{displayValue(v)}
}

func asBool(v any) (bool, bool) {
	switch t := v.(type) {
	case bool:
		return t, true
	case string:
		b, err := strconv.ParseBool(t)
		return b, err == nil
	}
	return false, false
}

type count struct {
	key string
	n   int
}

// sortedCounts orders by count, highest first, then by value.
func sortedCounts(counts map[string]int) []count {
	out := make([]count, 0, len(counts))
	for k, n := range counts {
		out = append(out, count{k, n})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].n != out[j].n {
			return out[i].n > out[j].n
		}
		return out[i].key < out[j].key
	})
	return out
}

// countLines renders "value = count" with values right-aligned, or the
// DDL's format applied to (value, count).
func countLines(g *Aggregate, counts map[string]int) []string {
	sorted := sortedCounts(counts)
	width := 0
	for _, c := range sorted {
		width = max(width, utf8.RuneCountInString(c.key))
	}
	lines := make([]string, len(sorted))
	for i, c := range sorted {
		if g.format != nil {
			lines[i] = g.format.render(c.key, c.n)
		} else {
			lines[i] = padLeft(c.key, width) + " = " + strconv.Itoa(c.n)
		}
	}
	return lines
}

// chartLines renders a horizontal bar per value, scaled to chartWidth.
func chartLines(counts map[string]int) []string {
	sorted := sortedCounts(counts)
	width, top := 0, sorted[0].n
	for _, c := range sorted {
		width = max(width, utf8.RuneCountInString(c.key))
	}
	lines := make([]string, len(sorted))
	for i, c := range sorted {
		bar := max(1, (c.n*chartWidth+top/2)/top)
		lines[i] = fmt.Sprintf("%s | %s %d", padLeft(c.key, width), strings.Repeat("#", bar), c.n)
	}
	return lines
}

func padLeft(s string, width int) string {
	return strings.Repeat(" ", max(0, width-utf8.RuneCountInString(s))) + s
}

// displayValue renders any reply value on one line: scalars plainly, hashes
// and arrays as compact JSON.
func displayValue(v any) string {
	switch v.(type) {
	case nil, string, bool:
		return valueString(v)
	}
	if _, ok := asFloat(v); ok {
		return valueString(v)
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // keep <, > and & readable
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
