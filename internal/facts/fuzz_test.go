package facts

import (
	"encoding/json"
	"testing"
)

// FuzzLoadFacts feeds arbitrary bytes to the facts parser as YAML, as JSON
// and auto-detected. It must never panic, and whatever it accepts must be a
// JSON-encodable map that lookups can walk.
func FuzzLoadFacts(f *testing.F) {
	f.Add([]byte("a: 1\nb:\n  c: [x, 2]\n"))
	f.Add([]byte(`{"os": {"release": {"major": "12"}}, "ips": ["10.0.0.1"]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, fm := range []format{formatYAML, formatJSON, formatAuto} {
			m, err := parseFacts(data, fm)
			if err != nil {
				continue
			}
			if m == nil {
				t.Fatalf("format %d: nil map without an error", fm)
			}
			if _, err := json.Marshal(m); err != nil {
				t.Fatalf("format %d: result is not JSON-encodable: %v", fm, err)
			}
			for k := range m {
				Lookup(m, k+".0.a")
			}
		}
	})
}
