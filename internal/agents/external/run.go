package external

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/protocol"
)

const (
	// maxStderr bounds how much of an agent's stderr is kept for the reply
	// message; the rest is read and dropped so the agent never blocks on it.
	maxStderr = 4 << 10
	// waitDelay bounds how long a finished (or killed) agent's leftover
	// children may keep stderr open before the pipe is closed under them.
	waitDelay = time.Second
	// maxReply bounds the reply file so a runaway agent cannot exhaust memory.
	maxReply = 16 << 20
)

// requestFile is the JSON written to the request file. It carries each field
// under Marionette's name and under the name Choria's external agents read
// (requestid, senderid, callerid, msgtime), so agents for either work.
type requestFile struct {
	Protocol   string `json:"protocol"`
	Agent      string `json:"agent"`
	Action     string `json:"action"`
	Sender     string `json:"sender"`
	Caller     string `json:"caller"`
	RequestID  string `json:"request_id"`
	Collective string `json:"collective"`
	TTL        int64  `json:"ttl"`  // seconds
	Time       int64  `json:"time"` // unix seconds

	ChoriaRequestID string `json:"requestid"`
	ChoriaSenderID  string `json:"senderid"`
	ChoriaCallerID  string `json:"callerid"`
	ChoriaMsgTime   int64  `json:"msgtime"`

	Data map[string]any `json:"data"`
}

// runner runs one external agent's executable for each request. It holds only
// what discovery resolved, so nothing is re-read per request.
type runner struct {
	agent string
	exe   string
	opts  Options
}

// handle is the agent.Handler for every action of the agent.
//
// Each request gets a fresh temp dir holding request.json, reply.json and
// facts.json; it is also the working directory (as in Choria, where agents run
// in the temp dir), so scratch files an agent leaves behind are removed with it.
// Agents find their own files through $0.
func (r *runner) handle(ctx context.Context, req *agent.Request, rep *agent.Reply) {
	budget := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	dir, err := os.MkdirTemp("", "mco-agent-"+r.agent+"-")
	if err != nil {
		rep.Fail("external agent %s: creating request directory: %v", r.agent, err)
		return
	}
	defer os.RemoveAll(dir)

	reqPath := filepath.Join(dir, "request.json")
	replyPath := filepath.Join(dir, "reply.json")
	factsPath := filepath.Join(dir, "facts.json")
	if err := r.writeInputs(req, reqPath, replyPath, factsPath); err != nil {
		rep.Fail("external agent %s: %v", r.agent, err)
		return
	}

	var stderr limitedBuffer
	cmd := exec.CommandContext(ctx, r.exe, reqPath, replyPath, Protocol)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + r.opts.Path,
		"MCOLLECTIVE_REQUEST_FILE=" + reqPath,
		"MCOLLECTIVE_REPLY_FILE=" + replyPath,
		"CHORIA_EXTERNAL_REQUEST=" + reqPath,
		"CHORIA_EXTERNAL_REPLY=" + replyPath,
		"CHORIA_EXTERNAL_PROTOCOL=" + Protocol,
		"CHORIA_EXTERNAL_FACTS=" + factsPath,
	}
	cmd.Stderr = &stderr // stdout stays nil: /dev/null, no pipe to hold open
	cmd.WaitDelay = waitDelay
	killProcessGroupOnCancel(cmd)

	err = cmd.Run()
	if errors.Is(err, exec.ErrWaitDelay) {
		// The agent exited 0 but a child it left behind still holds stderr.
		err = nil
	}
	if stderr.Len() > 0 && err == nil {
		r.opts.Logger.Info("external agent wrote to stderr", "agent", r.agent, "action", req.Action, "stderr", stderr.String())
	}
	switch {
	case err != nil && ctx.Err() != nil:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			rep.Fail("timeout after %s", roundBudget(budget))
		} else {
			rep.Fail("cancelled: %v", ctx.Err())
		}
		return
	case err != nil:
		msg := fmt.Sprintf("external agent %s failed: %v", r.agent, err)
		if s := stderr.String(); s != "" {
			msg += ": " + s
		}
		rep.Fail("%s", msg)
		return
	}
	if err := readReply(replyPath, rep); err != nil {
		rep.Fail("invalid reply from agent: %v", err)
	}
}

// writeInputs writes the request and facts files and creates an empty reply
// file, as Choria does, so agents may append to it.
func (r *runner) writeInputs(req *agent.Request, reqPath, replyPath, factsPath string) error {
	data := req.Data
	if data == nil {
		data = map[string]any{}
	}
	ttl := int64(req.TTL / time.Second)
	rf := requestFile{
		Protocol: Protocol, Agent: r.agent, Action: req.Action,
		Sender: req.Sender, Caller: req.CallerID, RequestID: req.ID,
		Collective: req.Collective, TTL: ttl, Time: req.Time.Unix(),
		ChoriaRequestID: req.ID, ChoriaSenderID: req.Sender,
		ChoriaCallerID: req.CallerID, ChoriaMsgTime: req.Time.Unix(),
		Data: data,
	}
	if err := writeJSON(reqPath, rf); err != nil {
		return fmt.Errorf("writing request file: %w", err)
	}
	var facts map[string]any
	if r.opts.Facts != nil {
		facts = r.opts.Facts()
	}
	if facts == nil {
		facts = map[string]any{}
	}
	if err := writeJSON(factsPath, facts); err != nil {
		return fmt.Errorf("writing facts file: %w", err)
	}
	if err := os.WriteFile(replyPath, nil, 0o600); err != nil {
		return fmt.Errorf("creating reply file: %w", err)
	}
	return nil
}

// writeJSON writes v as one line of JSON without HTML escaping, so shell agents
// parsing it with sed see `<`, `>` and `&` as themselves.
func writeJSON(path string, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o600)
}

// readReply merges the reply file's outputs into rep. An empty or absent file
// means success without outputs. `statuscode` and `statusmsg` set the reply
// status and are not outputs.
func readReply(path string, rep *agent.Reply) error {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxReply+1)); err != nil {
		return fmt.Errorf("reading reply file: %w", err)
	}
	if buf.Len() > maxReply {
		return fmt.Errorf("reply file larger than %d bytes", maxReply)
	}
	if len(bytes.TrimSpace(buf.Bytes())) == 0 {
		return nil
	}
	var out map[string]any
	if err := json.Unmarshal(buf.Bytes(), &out); err != nil {
		return fmt.Errorf("reply file is not a JSON object: %w", err)
	}
	status, msg, err := replyStatus(out)
	if err != nil {
		return err
	}
	delete(out, "statuscode")
	delete(out, "statusmsg")
	if rep.Data == nil {
		rep.Data = make(map[string]any, len(out))
	}
	for k, v := range out {
		rep.Data[k] = v
	}
	if status != protocol.OK || msg != "" {
		if msg == "" {
			msg = status.String()
		}
		rep.FailWith(status, "%s", msg)
	}
	return nil
}

// replyStatus reads the optional statuscode (an integer 0-5) and statusmsg (a
// string) of a reply.
func replyStatus(out map[string]any) (protocol.StatusCode, string, error) {
	status := protocol.OK
	if v, ok := out["statuscode"]; ok {
		f, isNum := v.(float64)
		if !isNum || f != math.Trunc(f) || f < float64(protocol.OK) || f > float64(protocol.UnknownError) {
			return 0, "", fmt.Errorf("statuscode %v is not an integer from 0 to 5", v)
		}
		status = protocol.StatusCode(f)
	}
	var msg string
	if v, ok := out["statusmsg"]; ok {
		s, isStr := v.(string)
		if !isStr {
			return 0, "", fmt.Errorf("statusmsg %v is not a string", v)
		}
		msg = s
	}
	return status, msg, nil
}

// roundBudget renders a timeout the way the DDL states it (whole seconds),
// keeping sub-second budgets readable.
func roundBudget(d time.Duration) time.Duration {
	if d >= time.Second {
		return d.Round(time.Second)
	}
	return d.Round(time.Millisecond)
}

// limitedBuffer keeps the first maxStderr bytes written to it and drops the
// rest, always reporting success so the writer is never blocked or failed.
type limitedBuffer struct {
	buf       bytes.Buffer
	truncated bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	room := maxStderr - b.buf.Len()
	if len(p) > room {
		b.truncated = true
		b.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return b.buf.Write(p)
}

// Len is the number of bytes kept.
func (b *limitedBuffer) Len() int { return b.buf.Len() }

// String returns the kept output, trimmed, marked when cut short.
func (b *limitedBuffer) String() string {
	s := strings.TrimSpace(strings.ToValidUTF8(b.buf.String(), "\uFFFD"))
	if b.truncated {
		s += " ...(truncated)"
	}
	return s
}
