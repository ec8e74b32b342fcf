// Package auditagent is the built-in "audit" agent: it reads the node's local
// audit log so that a central collector (`mco audit collect`) can fetch the
// lines it missed, over the same signed, authorized and audited RPC as every
// other request. It never writes.
package auditagent

import (
	"bufio"
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"fmt"
	"os"
	"strings"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/security"
	"github.com/marionette/mco/protocol"
)

//go:embed audit.json
var ddlJSON []byte

// DDL returns the agent's DDL, freshly parsed.
func DDL() (*ddl.Agent, error) {
	d, err := ddl.Parse("auditagent/audit.json", ddlJSON)
	if err != nil {
		return nil, fmt.Errorf("audit agent DDL: %w", err)
	}
	return d, nil
}

// MaxReplyBytes caps the JSON-encoded line bytes of one reply, so that the
// signed reply (base64 in its envelope) stays under the broker's default
// 1 MiB message limit. A longer range is paged with "next".
const MaxReplyBytes = 512 << 10

// maxLine matches the audit log's own bound on one line.
const maxLine = 16 << 20

// New returns the audit agent reading the audit log at path. Only callers
// whose certname readers matches may read it, whatever ActionPolicy says: the
// log holds every caller's arguments, so reading it is reserved to the
// collectors named in the node's own configuration (audit.readers).
func New(path string, readers *security.Matcher) (*agent.Agent, error) {
	d, err := DDL()
	if err != nil {
		return nil, err
	}
	a := agent.New(d)
	a.Register("lines", func(ctx context.Context, req *agent.Request, rep *agent.Reply) {
		if caller := strings.TrimPrefix(req.CallerID, "cert="); !readers.Match(caller) {
			rep.Fail("%q may not read this node's audit log: it is not in audit.readers", caller)
			return
		}
		from, ok := intInput(req.Data, "from")
		if !ok || from < 1 {
			rep.FailWith(protocol.InvalidData, "input \"from\" must be an integer of 1 or more")
			return
		}
		to, given := intInput(req.Data, "to")
		switch {
		case !given:
			to = 0
		case to < from:
			rep.FailWith(protocol.InvalidData, "input \"to\" (%d) must not be less than \"from\" (%d)", to, from)
			return
		}
		res, err := Read(ctx, path, uint64(from), uint64(to), MaxReplyBytes)
		if err != nil {
			rep.Fail("%v", err)
			return
		}
		if rep.Data == nil {
			rep.Data = map[string]any{}
		}
		rep.Data["lines"] = res.Lines
		rep.Data["next"] = res.Next
		rep.Data["head"] = res.Head
	})
	return a, nil
}

// intInput returns an integer input as the DDL validation left it (int64),
// or as a JSON number when a caller bypassed it.
func intInput(data map[string]any, name string) (int64, bool) {
	switch v := data[name].(type) {
	case int64:
		return v, true
	case float64:
		return int64(v), v == float64(int64(v))
	}
	return 0, false
}

// Result is one page of audit lines.
type Result struct {
	Lines []string // raw lines without newline, in log order
	Next  uint64   // seq to ask for next when capped; 0 when the range is complete
	Head  uint64   // seq of the log's last line
}

// Read returns the lines of the audit log at path whose seq is in [from, to]
// (to 0: up to the end), stopping before the JSON-encoded lines would exceed
// maxBytes (at least one line is always returned). A last line without a
// newline that is not valid JSON is a write in progress and is ignored.
func Read(ctx context.Context, path string, from, to uint64, maxBytes int) (*Result, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine+1)
	res := &Result{Lines: []string{}}
	size := 0
	var bad error // an unparsable line, fatal unless it is the last (partial) one
	for n := 1; sc.Scan(); n++ {
		if bad != nil {
			return nil, bad
		}
		if n%1024 == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		line := sc.Bytes()
		var h struct {
			Seq uint64 `json:"seq"`
		}
		if err := json.Unmarshal(line, &h); err != nil || h.Seq == 0 {
			bad = fmt.Errorf("audit log %s line %d: no seq (run mco audit verify on it)", path, n)
			continue
		}
		res.Head = h.Seq
		if h.Seq < from || (to != 0 && h.Seq > to) || res.Next != 0 {
			continue
		}
		enc := jsonSize(line)
		if len(res.Lines) > 0 && size+enc > maxBytes {
			res.Next = h.Seq // keep scanning for the head
			continue
		}
		size += enc
		res.Lines = append(res.Lines, string(line))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("audit log %s: %w", path, err)
	}
	return res, nil
}

// jsonSize is how many bytes line takes as a JSON string.
func jsonSize(line []byte) int {
	var buf bytes.Buffer
	_ = json.NewEncoder(&buf).Encode(string(line))
	return buf.Len()
}
