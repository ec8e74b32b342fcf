package cli

import (
	"io"
	"strings"
	"testing"
	"time"
)

func TestReadPiped(t *testing.T) {
	// Data and EOF: read to the end.
	got, err := readPiped(strings.NewReader("web1\nweb2\n"), time.Second)
	if err != nil || string(got) != "web1\nweb2\n" {
		t.Fatalf("readPiped = %q, %v", got, err)
	}
	// A pipe held open with nothing in it: give up, return nothing.
	r, w := io.Pipe()
	defer w.Close()
	got, err = readPiped(r, 20*time.Millisecond)
	if err != nil || len(got) != 0 {
		t.Fatalf("empty open pipe: %q, %v", got, err)
	}
	// Slow but flowing: once the first byte is there, wait for the end.
	r2, w2 := io.Pipe()
	go func() {
		_, _ = w2.Write([]byte("web1\n"))
		time.Sleep(50 * time.Millisecond)
		_, _ = w2.Write([]byte("web2\n"))
		_ = w2.Close()
	}()
	got, err = readPiped(r2, 20*time.Millisecond)
	if err != nil || string(got) != "web1\nweb2\n" {
		t.Fatalf("slow pipe: %q, %v", got, err)
	}
}
