package ddl

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
)

// kind is the JSON type of a node.
type kind int

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindArray
	kindObject
)

func (k kind) String() string {
	return [...]string{"null", "boolean", "number", "string", "array", "object"}[k]
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack; real DDLs
// nest about six levels deep.
const maxDepth = 200

// node is a decoded JSON value that, unlike map[string]any, remembers the
// order of object keys: DDL inputs and outputs are shown in file order.
type node struct {
	kind  kind
	b     bool
	num   json.Number
	str   string
	items []*node          // array elements
	keys  []string         // object keys in file order
	vals  map[string]*node // object members
}

// field returns an object member, or nil when it is absent or null: a null
// field means "not set" throughout the DDL format.
func (n *node) field(key string) *node {
	if n == nil || n.kind != kindObject {
		return nil
	}
	v := n.vals[key]
	if v == nil || v.kind == kindNull {
		return nil
	}
	return v
}

// value converts the node to the Go value encoding/json would produce
// (numbers become float64).
func (n *node) value() any {
	switch n.kind {
	case kindBool:
		return n.b
	case kindNumber:
		f, err := strconv.ParseFloat(string(n.num), 64)
		if err != nil {
			// Out-of-range literals: ParseFloat returns ±Inf, which JSON
			// cannot encode again; keep the literal instead.
			return n.num
		}
		return f
	case kindString:
		return n.str
	case kindArray:
		out := make([]any, len(n.items))
		for i, it := range n.items {
			out[i] = it.value()
		}
		return out
	case kindObject:
		out := make(map[string]any, len(n.keys))
		for _, k := range n.keys {
			out[k] = n.vals[k].value()
		}
		return out
	}
	return nil
}

// decodeTree parses a complete JSON document. Errors carry the line and
// column of the problem.
func decodeTree(data []byte) (*node, *ParseError) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	n, err := readNode(dec, 0)
	if err == nil {
		if _, terr := dec.Token(); terr != io.EOF {
			err = errors.New("unexpected data after the top-level value")
			if terr != nil && !errors.Is(terr, io.ErrUnexpectedEOF) {
				err = terr
			}
		}
	}
	if err != nil {
		return nil, syntaxError(data, dec, err)
	}
	return n, nil
}

// syntaxError locates err in data.
func syntaxError(data []byte, dec *json.Decoder, err error) *ParseError {
	offset := dec.InputOffset()
	reason := err.Error()
	var se *json.SyntaxError
	switch {
	case errors.As(err, &se):
		offset = se.Offset
		reason = se.Error()
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		offset = int64(len(data))
		reason = "unexpected end of JSON input"
	}
	line, col := position(data, offset)
	return &ParseError{Line: line, Column: col, Reason: "invalid JSON: " + reason}
}

// position turns a byte offset into a 1-based line and column.
func position(data []byte, offset int64) (line, col int) {
	if offset > int64(len(data)) {
		offset = int64(len(data))
	}
	if offset < 0 {
		offset = 0
	}
	before := data[:offset]
	line = 1 + bytes.Count(before, []byte{'\n'})
	col = len(before) - bytes.LastIndexByte(before, '\n')
	return line, col
}

func readNode(dec *json.Decoder, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nesting deeper than %d levels", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case nil:
		return &node{kind: kindNull}, nil
	case bool:
		return &node{kind: kindBool, b: t}, nil
	case json.Number:
		return &node{kind: kindNumber, num: t}, nil
	case string:
		return &node{kind: kindString, str: t}, nil
	case json.Delim:
		switch t {
		case '[':
			n := &node{kind: kindArray}
			for dec.More() {
				it, err := readNode(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.items = append(n.items, it)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return nil, err
			}
			return n, nil
		case '{':
			n := &node{kind: kindObject, vals: map[string]*node{}}
			for dec.More() {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := kt.(string)
				if !ok {
					return nil, fmt.Errorf("object key is not a string")
				}
				if _, dup := n.vals[key]; dup {
					return nil, fmt.Errorf("duplicate key %q", key)
				}
				v, err := readNode(dec, depth+1)
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, key)
				n.vals[key] = v
			}
			if _, err := dec.Token(); err != nil { // '}'
				return nil, err
			}
			return n, nil
		}
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}
