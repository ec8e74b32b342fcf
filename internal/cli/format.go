package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// Small helpers for rendering values in text output.

func orDefault(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

func displayString(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func compactMap(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func toStrings(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, fmt.Sprint(x))
	}
	return out
}

func printWrapped(w interface{ Write([]byte) (int, error) }, items []string) {
	if len(items) == 0 {
		fmt.Fprintln(w, "      (none)")
		return
	}
	line := "     "
	for _, it := range items {
		if len(line)+len(it)+1 > 78 {
			fmt.Fprintln(w, line)
			line = "     "
		}
		line += " " + it
	}
	fmt.Fprintln(w, line)
}

// orEmpty is list, or an empty list for nil: JSON output says [] rather
// than null.
func orEmpty(list []string) []string {
	if list == nil {
		return []string{}
	}
	return list
}
