package match

import (
	"errors"
	"testing"
)

func TestCompile(t *testing.T) {
	for _, tt := range []struct {
		pat  string
		name string
		want bool
	}{
		{"web1", "web1", true},
		{"web1", "web10", false},
		{"/^web/", "web10", true},
		{"/^web$/", "web10", false},
		{"/", "/", true}, // a lone slash is exact text
		{`/\.mcollective$/`, "alice.mcollective", true},
		{"/WEB/i", "web1", true},
		{"/WEB/", "web1", false},
		{"/web/x", "/web/x", true}, // not a flag we know: exact text
	} {
		p, err := Compile(tt.pat)
		if err != nil {
			t.Fatalf("Compile(%q): %v", tt.pat, err)
		}
		if got := p.Match(tt.name); got != tt.want {
			t.Errorf("%q.Match(%q) = %v, want %v", tt.pat, tt.name, got, tt.want)
		}
	}
	if _, err := Compile("//i"); !errors.Is(err, ErrEmptyRegex) {
		t.Errorf("Compile(//i) = %v, want ErrEmptyRegex", err)
	}
	if _, err := Compile("//"); !errors.Is(err, ErrEmptyRegex) {
		t.Errorf("Compile(//) = %v, want ErrEmptyRegex", err)
	}
	if _, err := Compile(""); err == nil {
		t.Error("Compile(\"\") accepted")
	}
	if _, err := Compile("/[/"); err == nil {
		t.Error("Compile(/[/) accepted")
	}
	if (Pattern{}).Match("") {
		t.Error("the zero Pattern matched the empty name")
	}
}

func TestParseList(t *testing.T) {
	l, err := ParseList(`bob, jill ,/\.mcollective$/,`)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{"bob": true, "jill": true, "x.mcollective": true, "eve": false, "": false} {
		if got := l.Match(name); got != want {
			t.Errorf("Match(%q) = %v, want %v", name, got, want)
		}
	}
	for _, bad := range []string{"//", "bob, //", "/[/"} {
		if _, err := ParseList(bad); err == nil {
			t.Errorf("ParseList(%q) accepted", bad)
		}
	}
	var nilList *List
	if nilList.Match("bob") {
		t.Error("a nil list matched")
	}
}
