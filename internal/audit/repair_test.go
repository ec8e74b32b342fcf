package audit

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// TestRepairTornLine: a log ending in a partial line cannot be opened; Repair
// cuts it, records the repair in the chain, and the log verifies and opens.
func TestRepairTornLine(t *testing.T) {
	path, lines := writeTestLog(t, 3, Options{})
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString(`{"seq":4,"prev":"abc`)
	f.Close()
	if _, err := Open(path, Options{}); !errors.Is(err, ErrTornLine) {
		t.Fatalf("Open of a torn log: %v, want ErrTornLine", err)
	}
	n, err := Repair(path, "node1", Options{})
	if err != nil || n != len(`{"seq":4,"prev":"abc`) {
		t.Fatalf("Repair = %d, %v", n, err)
	}
	got := readLines(t, path)
	if len(got) != len(lines)+1 || !strings.Contains(string(got[3]), `"kind":"repair"`) || !strings.Contains(string(got[3]), `"removed_bytes":20`) {
		t.Fatalf("after repair:\n%s", joinLines(got))
	}
	if n, err := VerifyFile(path); err != nil || n != 4 {
		t.Fatalf("verify after repair: %d, %v", n, err)
	}
	l, err := Open(path, Options{})
	if err != nil {
		t.Fatalf("Open after repair: %v", err)
	}
	l.Close()
	// Nothing torn: nothing changed.
	if n, err := Repair(path, "node1", Options{}); n != 0 || err != nil {
		t.Fatalf("second Repair = %d, %v", n, err)
	}
}
