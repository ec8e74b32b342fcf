package facts

import (
	"bytes"
	"fmt"
	"io"
	"os"
)

// ParseClasses reads a classes file, one class per line (Puppet's
// classes.txt, a Chef handler's list). Surrounding whitespace, including tabs
// and the CR of CRLF line ends, is trimmed; blank lines are skipped; repeats
// are dropped, keeping the first occurrence's position.
func ParseClasses(r io.Reader) ([]string, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read classes: %w", err)
	}
	return parseClasses(data), nil
}

func parseClasses(data []byte) []string {
	seen := make(map[string]bool)
	classes := []string{}
	for line := range bytes.Lines(data) {
		c := string(bytes.TrimSpace(line))
		if c == "" || seen[c] {
			continue
		}
		seen[c] = true
		classes = append(classes, c)
	}
	return classes
}

// loadClasses reads and parses one classes file.
func loadClasses(path string) ([]string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read classes: %w", err)
	}
	return parseClasses(data), nil
}
