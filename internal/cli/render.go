package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
)

// format is how a command prints: text for people, one JSON document
// (--json) or JSON lines (--jsonl).
type format int

const (
	textFormat  format = iota
	jsonFormat         // one indented JSON document
	jsonlFormat        // one JSON record per line: each reply as it arrives, then a summary line
)

// renderer is the one place commands encode their output. It is chosen once
// from the command's flags (newRenderer, clientFlags.renderer); a command
// then prints its result set, its records or its table through it, so that
// --json, --jsonl and text keep the same shapes in every command.
type renderer struct {
	app    *App
	format format
}

// newRenderer chooses the format from a command's --json and --jsonl flags
// (validateOutput refuses both at once).
func newRenderer(app *App, asJSON, asJSONL bool) renderer {
	switch {
	case asJSON:
		return renderer{app, jsonFormat}
	case asJSONL:
		return renderer{app, jsonlFormat}
	}
	return renderer{app, textFormat}
}

// renderer is the output of a client command's --json/--jsonl flags.
func (f *clientFlags) renderer(app *App) renderer { return newRenderer(app, f.json, f.jsonl) }

// text reports that the command prints text (neither --json nor --jsonl).
func (r renderer) text() bool { return r.format == textFormat }

// json reports --json: the command's output is one document.
func (r renderer) json() bool { return r.format == jsonFormat }

// jsonl reports --jsonl: the command's output is a stream of records.
func (r renderer) jsonl() bool { return r.format == jsonlFormat }

// result prints the command's result set v: one indented document under
// --json, one line under --jsonl (the stream's last record). It prints
// nothing for text, which each command lays out itself.
func (r renderer) result(v any) error {
	switch r.format {
	case jsonFormat:
		enc := json.NewEncoder(r.app.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	case jsonlFormat:
		r.record(v)
	}
	return nil
}

// record prints v as one line of JSON on stdout (a record of a --jsonl
// stream). A value that cannot be encoded is reported on stderr, and the
// stream goes on.
func (r renderer) record(v any) {
	b, err := json.Marshal(v)
	if err != nil {
		fmt.Fprintln(r.app.Stderr, "warning: encoding JSON:", err)
		return
	}
	fmt.Fprintln(r.app.Stdout, string(b))
}

// table returns a writer for a text table of tab-separated cells on
// stdout, every table laid out alike (two spaces between columns); Flush
// prints it.
func (r renderer) table() *tabwriter.Writer {
	return tabwriter.NewWriter(r.app.Stdout, 0, 4, 2, ' ', 0)
}
