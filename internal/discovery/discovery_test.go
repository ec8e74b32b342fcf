package discovery

import (
	"io"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestReadPiped(t *testing.T) {
	// Data and EOF: read to the end.
	got, idle, err := ReadPiped(strings.NewReader("web1\nweb2\n"), time.Second)
	if err != nil || idle || string(got) != "web1\nweb2\n" {
		t.Fatalf("ReadPiped = %q, %v, %v", got, idle, err)
	}
	// A pipe held open with nothing in it: give up, say so.
	r, w := io.Pipe()
	defer w.Close()
	got, idle, err = ReadPiped(r, 20*time.Millisecond)
	if err != nil || !idle || len(got) != 0 {
		t.Fatalf("empty open pipe: %q, %v, %v", got, idle, err)
	}
	// Slow but flowing: once the first byte is there, wait for the end.
	r2, w2 := io.Pipe()
	go func() {
		_, _ = w2.Write([]byte("web1\n"))
		time.Sleep(50 * time.Millisecond)
		_, _ = w2.Write([]byte("web2\n"))
		_ = w2.Close()
	}()
	got, idle, err = ReadPiped(r2, 20*time.Millisecond)
	if err != nil || idle || string(got) != "web1\nweb2\n" {
		t.Fatalf("slow pipe: %q, %v, %v", got, idle, err)
	}
}

func TestChoose(t *testing.T) {
	for _, tt := range []struct {
		name string
		c    Choice
		want string
		auto bool
	}{
		{"nothing", Choice{}, Broadcast, false},
		{"pipe, no filter", Choice{Stdin: StdinPipe}, Stdin, true},
		{"pipe with a filter: a shell loop's input stays", Choice{Stdin: StdinPipe, Filtered: true}, Broadcast, false},
		{"pipe with a -I regex", Choice{Stdin: StdinPipe, Identities: []string{"/web/"}}, Broadcast, false},
		{"regular file never", Choice{Stdin: StdinFile}, Broadcast, false},
		{"exact -I", Choice{Identities: []string{"b", "a", "b"}, Stdin: StdinPipe}, Direct, false},
		{"--nodes -", Choice{Source: "-"}, Stdin, false},
		{"--nodes file", Choice{Source: "x.txt", Stdin: StdinPipe}, Flatfile, false},
		{"--dm mc", Choice{Method: "mc", Stdin: StdinPipe}, Broadcast, false},
		{"--dm file --nodes -", Choice{Method: "file", Source: "-"}, Stdin, false},
	} {
		got, auto, err := Choose(tt.c)
		if err != nil || got != tt.want || auto != tt.auto {
			t.Errorf("%s: Choose = %q, %v, %v; want %q, %v", tt.name, got, auto, err, tt.want, tt.auto)
		}
	}
	if _, _, err := Choose(Choice{Method: "carrier-pigeon"}); err == nil || !strings.Contains(err.Error(), "broadcast, flatfile, stdin, inventory, external") {
		t.Errorf("unknown method: %v", err)
	}
}

func TestParseNodeList(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"web2\n# c\nweb1 # x\n\nweb2\n", "web1 web2"},
		{`["b","a"]`, "a b"},
		{`[{"sender":"b"},{"sender":"a"}]`, "a b"},
		{`{"nodes":["n"],"replies":[{"sender":"r"}]}`, "n r"},
		{"", ""},
	} {
		got, err := ParseNodeList("x", []byte(tt.in))
		if err != nil || strings.Join(got, " ") != tt.want {
			t.Errorf("ParseNodeList(%q) = %v, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseNodeList("x", []byte("two words\n")); err == nil || !strings.Contains(err.Error(), "x:1:") {
		t.Errorf("two words: %v", err)
	}
	if got := Dedupe([]string{"b", "", "a", "b"}); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Dedupe = %v", got)
	}
}
