// Package logtest gives tests a log sink that several goroutines may write
// at once (a logger shared by a server's goroutines) and the test reads back
// as text.
package logtest

import (
	"bytes"
	"strings"
	"sync"
)

// Buffer is a bytes.Buffer safe for concurrent use. The zero value is
// ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Count is the number of times sub occurs in what was written so far.
func (b *Buffer) Count(sub string) int {
	return strings.Count(b.String(), sub)
}
