package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parseYAML reads a YAML configuration into the same entries as the
// key = value format: nested maps become dotted keys, lists of scalars
// comma-separated values, and every entry keeps its line for error messages.
func parseYAML(name string, data []byte) ([]entry, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if doc.Kind == 0 { // empty file
		return nil, nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: the top level must be a map of keys", name)
	}
	var out []entry
	err := flatten(name, "", doc.Content[0], &out)
	return out, err
}

func flatten(name, prefix string, m *yaml.Node, out *[]entry) error {
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return fmt.Errorf("%s:%d: keys must be plain words", name, k.Line)
		}
		key := k.Value
		if prefix != "" {
			key = prefix + "." + key
		}
		switch v.Kind {
		case yaml.MappingNode:
			if err := flatten(name, key, v, out); err != nil {
				return err
			}
		case yaml.SequenceNode:
			items := make([]string, 0, len(v.Content))
			for _, it := range v.Content {
				if it.Kind != yaml.ScalarNode {
					return fmt.Errorf("%s:%d: %s: list items must be plain values", name, it.Line, key)
				}
				items = append(items, it.Value)
			}
			*out = append(*out, entry{key, strings.Join(items, ", "), k.Line})
		case yaml.ScalarNode:
			*out = append(*out, entry{key, v.Value, k.Line})
		default:
			return fmt.Errorf("%s:%d: %s: unsupported value (anchors and aliases are not allowed)", name, v.Line, key)
		}
	}
	return nil
}
