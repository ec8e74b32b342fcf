package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
)

// Bounds on what one audit line holds. A request may carry up to the node's
// max_message_size (1 MiB) of arguments, and a line that large can never be
// published to the central collector (nor fetched back in a page), so it would
// leave a permanent gap in the central chain. Large values are recorded by
// size and SHA-256 instead, which still proves what was sent.
const (
	// MaxArgumentBytes is the largest JSON encoding of one argument value
	// recorded as is.
	MaxArgumentBytes = 4096
	// MaxArgumentsBytes bounds all recorded argument values together; once
	// reached, the remaining (in name order) are summarised.
	MaxArgumentsBytes = 16384
	// MaxMessageBytes bounds a completion's status message.
	MaxMessageBytes = 4096
)

// Summary stands for an argument value too large to record.
type Summary struct {
	Omitted bool   `json:"omitted"` // always true: tells a summary from a value
	Bytes   int    `json:"bytes"`   // length of the value's JSON encoding
	SHA256  string `json:"sha256"`  // of that encoding
}

// BoundArguments returns args with every value whose JSON encoding exceeds
// MaxArgumentBytes, or that would take the total past MaxArgumentsBytes,
// replaced by its Summary. It copies rather than edits in place because the
// map is the one the action runs with.
func BoundArguments(args map[string]any) map[string]any {
	if len(args) == 0 {
		return args
	}
	names := make([]string, 0, len(args))
	for k := range args {
		names = append(names, k)
	}
	sort.Strings(names)
	var out map[string]any
	total := 0
	for _, k := range names {
		enc, err := encodeJSON(args[k])
		if err != nil {
			enc = []byte(fmt.Sprintf("%q", fmt.Sprint(args[k])))
		}
		total += len(k) + len(enc)
		if len(enc) <= MaxArgumentBytes && total <= MaxArgumentsBytes {
			continue
		}
		if out == nil {
			out = make(map[string]any, len(args))
			for kk, v := range args {
				out[kk] = v
			}
		}
		sum := sha256.Sum256(enc)
		out[k] = Summary{Omitted: true, Bytes: len(enc), SHA256: hex.EncodeToString(sum[:])}
		total -= len(enc)
	}
	if out == nil {
		return args
	}
	return out
}

// BoundMessage shortens a status message to MaxMessageBytes, saying so.
func BoundMessage(msg string) string {
	if len(msg) <= MaxMessageBytes {
		return msg
	}
	return fmt.Sprintf("%s... (%d bytes, truncated)", msg[:MaxMessageBytes], len(msg))
}

// encodeJSON is json.Marshal without HTML escaping: audit lines are read by
// people and tools, not embedded in HTML, and escaping turns one '<' into
// six bytes.
func encodeJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte{'\n'}), nil
}
