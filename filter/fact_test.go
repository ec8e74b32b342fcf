package filter

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
)

func TestParseFact(t *testing.T) {
	tests := []struct {
		in      string
		want    FactFilter
		wantErr string // substring of the error; "" means success
	}{
		{in: "os=Debian", want: FactFilter{"os", "==", "Debian"}},
		{in: "os==Debian", want: FactFilter{"os", "==", "Debian"}},
		{in: "os != Debian", want: FactFilter{"os", "!=", "Debian"}},
		{in: "cpus<4", want: FactFilter{"cpus", "<", "4"}},
		{in: "cpus>4", want: FactFilter{"cpus", ">", "4"}},
		{in: "cpus<=4", want: FactFilter{"cpus", "<=", "4"}},
		{in: "cpus>=4", want: FactFilter{"cpus", ">=", "4"}},
		{in: "cpus=>4", want: FactFilter{"cpus", ">=", "4"}},
		{in: "cpus=<4", want: FactFilter{"cpus", "<=", "4"}},
		{in: "kernel=~^Lin", want: FactFilter{"kernel", "=~", "^Lin"}},
		{in: "kernel=~/^Lin/", want: FactFilter{"kernel", "=~", "^Lin"}},
		{in: "kernel=/^Lin/", want: FactFilter{"kernel", "=~", "^Lin"}},
		{in: "kernel==/^Lin/", want: FactFilter{"kernel", "=~", "^Lin"}},
		{in: "path!=/usr/", want: FactFilter{"path", "!=", "/usr/"}}, // only = and =~ make regexes
		{in: "os.release.major = 12", want: FactFilter{"os.release.major", "==", "12"}},
		{in: "name=Red Hat", want: FactFilter{"name", "==", "Red Hat"}},
		{in: "x==a=b", want: FactFilter{"x", "==", "a=b"}},
		{in: "Debian", wantErr: "no comparison operator"},
		{in: "", wantErr: "no comparison operator"},
		{in: "=Debian", wantErr: "empty fact name"},
		{in: "  ==x", wantErr: "empty fact name"},
		{in: "os=", wantErr: "missing value"},
		{in: "os family=x", wantErr: "contains a space"},
		{in: "os!Debian", wantErr: `"!" is not an operator`},
		{in: "os=//", wantErr: "empty regex"},
		{in: "os=~", wantErr: "missing value"},
		{in: "os=/[/", wantErr: "invalid regex"},
		{in: "os=~(", wantErr: "invalid regex"},
		{in: "os=\xff", wantErr: "invalid UTF-8"},
	}
	for _, tt := range tests {
		got, err := ParseFact(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), strconv.Quote(tt.in)) {
				t.Errorf("ParseFact(%q) error = %v, want one naming the input and %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseFact(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
		}
	}
}

func TestFactMatch(t *testing.T) {
	n := newTestNode()
	tests := []struct {
		filter string
		want   bool
	}{
		// equality, string and numeric
		{"kernel=Linux", true},
		{"kernel==Linux", true},
		{"kernel=linux", false}, // case-sensitive
		{"kernel!=Linux", false},
		{"kernel!=BSD", true},
		{"cpus=4", true},
		{"cpus=4.0", true}, // numeric equality
		{"cpus!=4", false},
		{"memory_gb=15.5", true},
		// ordering, numeric when both sides are numbers
		{"cpus>3", true},
		{"cpus>4", false},
		{"cpus>=4", true},
		{"cpus=>4", true},
		{"cpus<5", true},
		{"cpus<4", false},
		{"cpus<=4", true},
		{"cpus=<4", true},
		{"cpus<10", true}, // numeric, though "4" > "10" as strings
		{"os.release.full>9.1", true},
		{"os.release.major>=12", true},
		{"kernelrelease>6.0", true}, // not a number: string comparison "6.1.0-..." > "6.0"
		{"kernel<M", true},          // string comparison
		{"kernel>M", false},
		{"serial=1234567890123456788", false}, // exact int64s, no float rounding
		{"serial=1234567890123456789", true},
		// regex
		{"kernel=~^Lin", true},
		{"kernel=/^Lin/", true},
		{"kernel=/^lin/", false},
		{"cpus=~^4$", true},
		// nested paths and lists
		{"os.family=Debian", true},
		{"os.release.major=12", true},
		{"networking.interfaces.0.ip=10.0.0.5", true},
		{"networking.interfaces.1.ip=10.0.0.5", false},
		{"flat.key=flat", true},
		{"roles=web", true},
		{"roles=cache", true},
		{"roles=db", false},
		{"roles=/^ca/", true},
		{"ports>442", true},
		{"ports=443", true},
		// booleans compare by string form
		{"virtual=false", true},
		{"virtual=true", false},
		// missing facts never match, not even !=
		{"nonexistent=true", false},
		{"nonexistent!=true", false},
		{"nonexistent<1", false},
		{"nothing!=x", false}, // null fact
		{"os!=x", false},      // maps have no scalar value
		{"os.release.major.minor=1", false},
	}
	for _, tt := range tests {
		ff, err := ParseFact(tt.filter)
		if err != nil {
			t.Fatalf("ParseFact(%q): %v", tt.filter, err)
		}
		if got := ff.Match(n); got != tt.want {
			t.Errorf("%q on node = %v, want %v", tt.filter, got, tt.want)
		}
		f := &Filter{Fact: []FactFilter{ff}}
		if got := f.Match(t.Context(), n); got != tt.want {
			t.Errorf("Filter{Fact: %q}.Match = %v, want %v", tt.filter, got, tt.want)
		}
	}
}

func TestFactMatchValueTypes(t *testing.T) {
	tests := []struct {
		name string
		fact any
		ff   FactFilter
		want bool
	}{
		{"json number", json.Number("42"), FactFilter{"x", ">", "41"}, true},
		{"int64", int64(42), FactFilter{"x", "==", "42"}, true},
		{"uint8", uint8(7), FactFilter{"x", "<", "8"}, true},
		{"float string form", 42.0, FactFilter{"x", "=~", "^42$"}, true},
		{"bool regex", true, FactFilter{"x", "=~", "^true$"}, true},
		{"string list", []string{"a", "b"}, FactFilter{"x", "==", "b"}, true},
		{"list any element differs", []any{"web", "db"}, FactFilter{"x", "!=", "web"}, true},
		{"nested list", []any{[]any{"deep"}}, FactFilter{"x", "==", "deep"}, true},
		{"map never matches", map[string]any{"a": 1}, FactFilter{"x", "!=", "z"}, false},
		{"nan is not a number", "nan", FactFilter{"x", "==", "nan"}, true},
		{"inf stays a string", "inf", FactFilter{"x", ">", "1"}, true},
		{"unknown operator", "a", FactFilter{"x", "~", "a"}, false},
		{"bad regex", "a", FactFilter{"x", "=~", "["}, false},
		{"empty regex", "a", FactFilter{"x", "=~", ""}, false},
		{"empty fact name", "a", FactFilter{"", "==", "a"}, false},
	}
	for _, tt := range tests {
		n := &StaticNode{FactValues: map[string]any{"x": tt.fact, "": "a"}}
		if got := tt.ff.Match(n); got != tt.want {
			t.Errorf("%s: %+v.Match(%#v) = %v, want %v", tt.name, tt.ff, tt.fact, got, tt.want)
		}
		f := &Filter{Fact: []FactFilter{tt.ff}}
		if got := f.Match(t.Context(), n); got != tt.want {
			t.Errorf("%s: Filter.Match = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestLookup(t *testing.T) {
	facts := map[string]any{
		"os":       map[string]any{"release": map[string]any{"major": "12"}},
		"os.name":  "flat wins",
		"list":     []any{"a", map[string]any{"b": "c"}},
		"strs":     []string{"x", "y"},
		"yaml":     map[any]any{1: "one", "k": "v"},
		"strmap":   map[string]string{"a.b": "c"},
		"dot.ted":  map[string]any{"in.ner": "deep"},
		"nullfact": nil,
	}
	tests := []struct {
		path   string
		want   any
		wantOK bool
	}{
		{"os.release.major", "12", true},
		{"os.name", "flat wins", true},
		{"list.0", "a", true},
		{"list.1.b", "c", true},
		{"list.2", nil, false},
		{"list.-1", nil, false},
		{"list.x", nil, false},
		{"strs.1", "y", true},
		{"yaml.1", "one", true},
		{"yaml.k", "v", true},
		{"strmap.a.b", "c", true},
		{"dot.ted.in.ner", "deep", true},
		{"nullfact", nil, true},
		{"os.release.minor", nil, false},
		{"os.release.major.x", nil, false},
		{"", nil, false},
		{".", nil, false},
		{"missing", nil, false},
	}
	for _, tt := range tests {
		got, ok := Lookup(facts, tt.path)
		if ok != tt.wantOK || got != tt.want {
			t.Errorf("Lookup(%q) = %v, %v; want %v, %v", tt.path, got, ok, tt.want, tt.wantOK)
		}
	}
}
