package authz

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// Groups maps group names to their member caller ids, as read from the
// groups file ("name caller caller ..." per line). The zero value has no
// groups. It is immutable after ParseGroups and safe for concurrent use.
type Groups struct {
	members map[string]map[string]struct{}
}

// Has reports whether the group is defined (possibly with no members).
func (g Groups) Has(name string) bool {
	_, ok := g.members[name]
	return ok
}

// Contains reports whether caller is a member of the group.
func (g Groups) Contains(group, caller string) bool {
	_, ok := g.members[group][caller]
	return ok
}

// ParseGroups parses a groups file: one group per line, its name followed by
// caller ids separated by blanks; comments and blank lines as in policy files.
// Groups do not nest, so every member must be a caller id (containing "=").
// The error joins one *LineError per bad line; on error the returned Groups
// holds only the lines that parsed, and callers should not use it to allow.
func ParseGroups(name string, r io.Reader) (Groups, error) {
	g := Groups{members: map[string]map[string]struct{}{}}
	data, err := io.ReadAll(r)
	if err != nil {
		return g, &LineError{File: name, Msg: "read failed", Err: err}
	}
	firstLine := map[string]int{}
	var errs []error
	for i, raw := range strings.Split(string(data), "\n") {
		n := i + 1
		words := strings.Fields(raw) // Fields also drops the \r of CRLF files
		if len(words) == 0 || strings.HasPrefix(words[0], "#") {
			continue
		}
		bad := func(msg string) { errs = append(errs, &LineError{File: name, Line: n, Msg: msg}) }
		gname := words[0]
		switch {
		case gname == "*" || strings.Contains(gname, "="):
			bad(fmt.Sprintf("invalid group name %q: must not be \"*\" or contain \"=\"", gname))
			continue
		case firstLine[gname] != 0:
			bad(fmt.Sprintf("duplicate group %q (first at line %d)", gname, firstLine[gname]))
			continue
		}
		set := map[string]struct{}{}
		ok := true
		for _, m := range words[1:] {
			if strings.HasPrefix(m, "#") {
				bad("'#' after content: comments must be on their own line")
				ok = false
				break
			}
			if k, v, found := strings.Cut(m, "="); !found || k == "" || v == "" {
				bad(fmt.Sprintf("member %q of group %q is not a caller id like cert=NAME (groups do not nest)", m, gname))
				ok = false
				break
			}
			set[m] = struct{}{}
		}
		if ok {
			firstLine[gname] = n
			g.members[gname] = set
		}
	}
	return g, errors.Join(errs...)
}
