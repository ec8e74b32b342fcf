package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"
)

// ErrTornLine is wrapped by Open's error when the log ends in a partial line
// (a write torn by a crash or a full disk): Repair makes it usable again.
var ErrTornLine = errors.New("last line has no newline (truncated mid-line or torn write)")

// KindRepair marks the record Repair appends.
const KindRepair Kind = "repair"

// RepairRecord is appended to a log by Repair: the chain itself says that,
// and what, was cut.
type RepairRecord struct {
	Kind          Kind      `json:"kind"` // always KindRepair
	Time          time.Time `json:"time"`
	RemovedBytes  int       `json:"removed_bytes"`  // the torn partial line
	RemovedSHA256 string    `json:"removed_sha256"` // of those bytes
	Node          string    `json:"node,omitempty"`
}

// Repair truncates a torn last line of the log at path and appends a
// RepairRecord for it to the chain. It returns the bytes removed; 0 means
// the log did not end in a torn line and nothing was changed. Only a torn
// tail is repaired: a log whose complete lines do not chain, or that ends
// before its head file, is tampering evidence and is left for audit verify.
func Repair(path, node string, opts Options) (int, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return 0, fmt.Errorf("audit repair: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return 0, fmt.Errorf("audit repair: %w", err)
	}
	tail, torn, err := lastLine(f, st.Size())
	if err != nil || !torn {
		f.Close()
		if err != nil {
			return 0, fmt.Errorf("audit repair %s: %w", path, err)
		}
		return 0, nil
	}
	sum := sha256.Sum256(tail)
	err = errors.Join(f.Truncate(st.Size()-int64(len(tail))), f.Sync(), f.Close())
	if err != nil {
		return 0, fmt.Errorf("audit repair %s: %w", path, err)
	}
	l, err := Open(path, opts)
	if err != nil {
		return 0, fmt.Errorf("audit repair: %w", err)
	}
	rec := &RepairRecord{Kind: KindRepair, Time: time.Now().UTC(), RemovedBytes: len(tail), RemovedSHA256: hex.EncodeToString(sum[:]), Node: node}
	if err := errors.Join(l.Append(rec), l.Close()); err != nil {
		return 0, fmt.Errorf("audit repair: %w", err)
	}
	return len(tail), nil
}
