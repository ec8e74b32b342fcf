package discovery

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/marionette/mco/internal/procgroup"
	"github.com/marionette/mco/internal/registration"
)

// readFile is the flatfile method.
func readFile(path string) ([]string, error) {
	if path == "" {
		return nil, errors.New("--dm flatfile needs --nodes FILE")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseNodeList(path, data)
}

// readStdin is the stdin method. Asked for (--nodes - or --dm stdin), it
// reads to the end however long that takes. Chosen automatically, it waits
// at most wait for the first byte: an idle pipe held open by a parent must
// not hang mco. Either way, no identity at all is a refusal, never "every
// node".
func (d *Discoverer) readStdin(r Request, wait time.Duration) ([]string, error) {
	if !r.Auto {
		wait = 0
	}
	data, idle, err := ReadPiped(d.Stdin, wait)
	if err != nil {
		return nil, fmt.Errorf("reading node list from standard input: %w", err)
	}
	if idle {
		return nil, fmt.Errorf("standard input is a pipe but gave nothing within %s; refusing to fall back to every node: use --nodes - to wait for the list, or --dm broadcast to address all", wait)
	}
	nodes, err := ParseNodeList("standard input", data)
	if err != nil {
		return nil, err
	}
	if len(nodes) == 0 {
		return nil, ErrNoStdinNodes
	}
	return nodes, nil
}

// external is the external method: run the program, with the request's
// filter as JSON on its standard input and in MCO_DISCOVERY_FILTER, its
// stderr shown to the operator, killed at the discovery timeout.
func (d *Discoverer) external(ctx context.Context, r Request, timeout time.Duration) ([]string, error) {
	if r.Source == "" {
		return nil, errors.New("--dm external needs --nodes PROGRAM (a program that prints identities)")
	}
	flt, err := json.Marshal(externalInput{Collective: r.Collective, Filter: r.Filter, Identities: r.Identities})
	if err != nil {
		return nil, fmt.Errorf("encoding the filter for %s: %w", r.Source, err)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.Source)
	cmd.Stdin = bytes.NewReader(flt)
	cmd.Env = append(os.Environ(), "MCO_DISCOVERY_FILTER="+string(flt))
	if d.Stderr != nil {
		cmd.Stderr = d.Stderr
	}
	// Kill the whole process group: a shell script's children must not
	// outlive the timeout either.
	procgroup.KillOnCancel(cmd)
	cmd.WaitDelay = time.Second
	out, err := cmd.Output()
	if ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("discovery program %s: killed after the discovery timeout %s", r.Source, timeout)
	}
	if err != nil {
		return nil, fmt.Errorf("discovery program %s: %w", r.Source, err)
	}
	return ParseNodeList(r.Source, out)
}

// externalInput is the document an external discovery program receives.
type externalInput struct {
	Collective string   `json:"collective,omitempty"`
	Filter     any      `json:"filter"`
	Identities []string `json:"identities,omitempty"`
}

// inventory is the inventory method: the filter is evaluated locally against
// the stored announcements of the collective's nodes. Nodes that stopped
// announcing are still returned, so a call reports them under "No response
// from".
func (d *Discoverer) inventory(ctx context.Context, r Request, collective string) (nodes, unknown []string, err error) {
	dir := r.Source
	if dir == "" {
		dir = d.InventoryDir
	}
	if dir == "" {
		return nil, nil, errors.New("--dm inventory needs the registration store: set registration.dir in the client configuration or pass --nodes DIR (see mco registration collect)")
	}
	recs, err := LoadInventory(dir, d.Stderr)
	if err != nil {
		return nil, nil, err
	}
	// Data functions cannot be evaluated from the store: three-valued
	// logic decides what it can ("unknown or role=web" is true for a web
	// node), and a node whose outcome stays unknown is addressed so that it
	// decides itself (the request carries the filter).
	for _, rec := range recs {
		if !rec.InCollective(collective) {
			continue
		}
		if match, known := r.Filter.Decide(ctx, rec.Node()); match {
			nodes = append(nodes, rec.Identity)
			if !known {
				unknown = append(unknown, rec.Identity)
			}
		}
	}
	return nodes, unknown, nil
}

// LoadInventory reads the registration store at dir, warning on w about
// unreadable files.
func LoadInventory(dir string, w io.Writer) ([]*registration.Record, error) {
	recs, problems, err := registration.Store{Dir: dir}.List()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("registration store %s does not exist (is mco registration collect --dir %s running?)", dir, dir)
	}
	if err != nil {
		return nil, err
	}
	if w != nil {
		for _, p := range problems {
			fmt.Fprintf(w, "warning: skipping %v\n", p)
		}
	}
	return recs, nil
}

// ParseNodeList reads identities: a JSON list of names, the JSON document
// printed by `mco rpc --json` / `mco find --json`, or text with one identity
// per line and # comments. name is used in errors.
func ParseNodeList(name string, data []byte) ([]string, error) {
	trimmed := strings.TrimSpace(string(data))
	if strings.HasPrefix(trimmed, "[") {
		var list []string
		if err := json.Unmarshal([]byte(trimmed), &list); err == nil {
			return Dedupe(list), nil
		}
		var replies []struct {
			Sender string `json:"sender"`
		}
		if err := json.Unmarshal([]byte(trimmed), &replies); err != nil {
			return nil, fmt.Errorf("%s: not a JSON list of identities or replies: %w", name, err)
		}
		var out []string
		for _, r := range replies {
			out = append(out, r.Sender)
		}
		return Dedupe(out), nil
	}
	if strings.HasPrefix(trimmed, "{") {
		var doc struct {
			Replies []struct {
				Sender string `json:"sender"`
			} `json:"replies"`
			Nodes []string `json:"nodes"`
		}
		if err := json.Unmarshal([]byte(trimmed), &doc); err != nil {
			return nil, fmt.Errorf("%s: not mco JSON output: %w", name, err)
		}
		out := doc.Nodes
		for _, r := range doc.Replies {
			out = append(out, r.Sender)
		}
		return Dedupe(out), nil
	}
	var out []string
	sc := bufio.NewScanner(strings.NewReader(trimmed))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if line == "" {
			continue
		}
		if strings.ContainsAny(line, " \t") {
			return nil, fmt.Errorf("%s:%d: %q is not a node identity", name, n, line)
		}
		out = append(out, line)
	}
	return Dedupe(out), nil
}

// ReadPiped reads r to EOF. With wait > 0 it gives up, returning idle, when
// not a single byte (nor EOF) arrived within wait; once data flows it reads
// to the end. The abandoned read ends with the process.
func ReadPiped(r io.Reader, wait time.Duration) (data []byte, idle bool, err error) {
	if r == nil {
		return nil, false, nil
	}
	if wait <= 0 {
		data, err = io.ReadAll(r)
		return data, false, err
	}
	type chunk struct {
		data []byte
		err  error
	}
	chunks := make(chan chunk, 16)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Read(buf)
			if n > 0 {
				chunks <- chunk{data: bytes.Clone(buf[:n])}
			}
			if err != nil {
				if err != io.EOF {
					chunks <- chunk{err: err}
				}
				return
			}
		}
	}()
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for first := true; ; first = false {
		var c chunk
		var ok bool
		if first {
			select {
			case c, ok = <-chunks:
			case <-timer.C:
				return nil, true, nil
			}
		} else {
			c, ok = <-chunks
		}
		switch {
		case !ok:
			return data, false, nil
		case c.err != nil:
			return data, false, c.err
		}
		data = append(data, c.data...)
	}
}

// ClassifyStdin says what r is: a pipe (or socket), a regular file, or
// anything else (a terminal, /dev/null, not a file at all).
func ClassifyStdin(r io.Reader) StdinSource {
	f, ok := r.(*os.File)
	if !ok || f == nil {
		return StdinOther
	}
	st, err := f.Stat()
	if err != nil {
		return StdinOther
	}
	switch m := st.Mode(); {
	case m&(os.ModeNamedPipe|os.ModeSocket) != 0:
		return StdinPipe
	case m.IsRegular():
		return StdinFile
	}
	return StdinOther
}
