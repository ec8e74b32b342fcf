package external

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/marionette/mco/agent"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/procgroup"
	"github.com/marionette/mco/protocol"
)

const (
	// maxStderr bounds how much of an agent's stderr is kept for the node log:
	// the last maxStderr bytes; earlier output is read and dropped so the
	// agent never blocks on it.
	maxStderr = 4 << 10
	// tailLines and tailBytes bound the part of stderr put in a failed reply's
	// message: the caller sees why, the node log has the rest.
	tailLines = 3
	tailBytes = 300
	// waitDelay bounds how long a finished (or killed) agent's leftover
	// children may keep stderr open before the pipe is closed under them.
	waitDelay = time.Second
	// maxReply bounds the reply file so a runaway agent cannot exhaust memory.
	maxReply = 16 << 20
)

// requestFile is the JSON written to the request file: Choria's rpc_request
// (with "$schema" and Choria's field names, which Choria's agent libraries
// require), plus each field under Marionette's name (sender, caller,
// request_id, time) for agents written against earlier Marionette releases.
type requestFile struct {
	Schema     string `json:"$schema"`
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

// activationFile is Choria's activation_request.
type activationFile struct {
	Schema   string `json:"$schema"`
	Protocol string `json:"protocol"`
	Agent    string `json:"agent"`
}

// runner runs one external agent's executable for each request. It holds only
// what discovery resolved, so nothing is re-read per request.
type runner struct {
	agent  string
	exe    string
	ddl    *ddl.Agent
	config map[string]string // plugin.<agent>.* settings
	opts   Options
}

// result is what one run of the executable left behind.
type result struct {
	reply  []byte // the reply file, at most maxReply bytes
	stderr *tailBuffer
	err    error // start failure, non-zero exit or timeout
}

// exec runs the executable once for protocol with request as the request
// file, in a fresh temp dir that also holds the facts and config files and is
// the working directory (as in Choria), so scratch files an agent leaves
// behind are removed with it. Agents find their own files through $0.
func (r *runner) exec(ctx context.Context, protocol string, request any) (*result, error) {
	dir, err := os.MkdirTemp("", "mco-agent-"+r.agent+"-")
	if err != nil {
		return nil, fmt.Errorf("creating request directory: %w", err)
	}
	defer os.RemoveAll(dir)

	reqPath := filepath.Join(dir, "request.json")
	replyPath := filepath.Join(dir, "reply.json")
	factsPath := filepath.Join(dir, "facts.json")
	configPath := filepath.Join(dir, r.agent+".cfg")
	if err := r.writeInputs(request, reqPath, replyPath, factsPath, configPath); err != nil {
		return nil, err
	}

	res := &result{stderr: &tailBuffer{}}
	cmd := exec.CommandContext(ctx, r.exe, reqPath, replyPath, protocol)
	cmd.Dir = dir
	cmd.Env = []string{
		"PATH=" + r.opts.Path,
		"MCOLLECTIVE_REQUEST_FILE=" + reqPath,
		"MCOLLECTIVE_REPLY_FILE=" + replyPath,
		"CHORIA_EXTERNAL_REQUEST=" + reqPath,
		"CHORIA_EXTERNAL_REPLY=" + replyPath,
		"CHORIA_EXTERNAL_PROTOCOL=" + protocol,
		"CHORIA_EXTERNAL_FACTS=" + factsPath,
		"CHORIA_EXTERNAL_CONFIG=" + configPath,
	}
	cmd.Stderr = res.stderr // stdout stays nil: /dev/null, no pipe to hold open
	cmd.WaitDelay = waitDelay
	procgroup.KillOnCancel(cmd)

	res.err = cmd.Start()
	if res.err == nil {
		if r.opts.Groups != nil {
			r.opts.Groups.Started(cmd.Process.Pid)
			defer r.opts.Groups.Exited(cmd.Process.Pid)
		}
		res.err = cmd.Wait()
	}
	if errors.Is(res.err, exec.ErrWaitDelay) {
		// The agent exited 0 but a child it left behind still holds stderr.
		res.err = nil
	}
	if res.err == nil {
		if res.reply, err = readLimited(replyPath); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// handle is the agent.Handler for every action of the agent.
func (r *runner) handle(ctx context.Context, req *agent.Request, rep *agent.Reply) {
	budget := time.Duration(0)
	if dl, ok := ctx.Deadline(); ok {
		budget = time.Until(dl)
	}
	// The loader checked the files, but the executable may have been
	// replaced or chmod-ed since: check again, it costs one stat.
	if err := checkTrusted(r.exe); err != nil {
		r.opts.Logger.Error("external agent not run", "agent", r.agent, "action", req.Action, "error", err)
		rep.Fail("external agent %s: executable refused, see the node log", r.agent)
		return
	}
	res, err := r.exec(ctx, Protocol, r.request(req))
	if err != nil {
		rep.Fail("external agent %s: %v", r.agent, err)
		return
	}
	if res.stderr.Len() > 0 && res.err == nil {
		r.opts.Logger.Warn("external agent wrote to stderr", "agent", r.agent, "action", req.Action, "stderr", res.stderr.String())
	}
	switch {
	case res.err != nil && ctx.Err() != nil:
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			rep.Fail("timeout after %s", roundBudget(budget))
		} else {
			rep.Fail("cancelled: %v", ctx.Err())
		}
		r.opts.Logger.Error("external agent stopped", "agent", r.agent, "action", req.Action, "request", req.ID,
			"reason", rep.Message, "stderr", res.stderr.String())
		return
	case res.err != nil:
		r.opts.Logger.Error("external agent failed", "agent", r.agent, "action", req.Action, "request", req.ID,
			"error", res.err, "stderr", res.stderr.String())
		msg := fmt.Sprintf("external agent %s failed: %v", r.agent, res.err)
		if tail := res.stderr.Tail(tailLines, tailBytes); tail != "" {
			msg += ": " + tail
		}
		rep.Fail("%s", msg)
		return
	}
	if err := readReply(res.reply, r.ddl.Action(req.Action), rep); err != nil {
		r.opts.Logger.Error("external agent replied badly", "agent", r.agent, "action", req.Action, "request", req.ID, "error", err)
		rep.Fail("invalid reply from agent: %v", err)
	}
}

// request builds the request file's content.
func (r *runner) request(req *agent.Request) requestFile {
	data := req.Data
	if data == nil {
		data = map[string]any{}
	}
	ttl := int64(req.TTL / time.Second)
	return requestFile{
		Schema: ProtocolSchema, Protocol: Protocol, Agent: r.agent, Action: req.Action,
		Sender: req.Sender, Caller: req.CallerID, RequestID: req.ID,
		Collective: req.Collective, TTL: ttl, Time: req.Time.Unix(),
		ChoriaRequestID: req.ID, ChoriaSenderID: req.Sender,
		ChoriaCallerID: req.CallerID, ChoriaMsgTime: req.Time.Unix(),
		Data: data,
	}
}

// activate asks the agent, with Choria's activation request, whether it
// should be offered on this node. Only an explicit {"activate": false}
// declines: an agent that does not implement activation (it fails, times
// out, writes nothing or something else) is active, as every agent was
// before Choria added the check.
func (r *runner) activate() bool {
	ctx, cancel := context.WithTimeout(context.Background(), activationTimeout)
	defer cancel()
	res, err := r.exec(ctx, ActivationProtocol, activationFile{
		Schema: ActivationProtocolSchema, Protocol: ActivationProtocol, Agent: r.agent,
	})
	if err != nil || res.err != nil {
		r.opts.Logger.Debug("external agent did not answer the activation request; active", "agent", r.agent, "error", errors.Join(err, res.errOrNil()))
		return true
	}
	var reply struct {
		Activate *bool `json:"activate"`
	}
	if json.Unmarshal(res.reply, &reply) != nil || reply.Activate == nil || *reply.Activate {
		return true
	}
	r.opts.Logger.Info("external agent declined activation; not offered", "agent", r.agent, "executable", r.exe)
	return false
}

// errOrNil is res.err, or nil for a nil result.
func (res *result) errOrNil() error {
	if res == nil {
		return nil
	}
	return res.err
}

// writeInputs writes the request, facts and config files and creates an
// empty reply file, as Choria does, so agents may append to it.
func (r *runner) writeInputs(request any, reqPath, replyPath, factsPath, configPath string) error {
	if err := writeJSON(reqPath, request); err != nil {
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
	if err := os.WriteFile(configPath, configFile(r.config), 0o600); err != nil {
		return fmt.Errorf("writing config file: %w", err)
	}
	if err := os.WriteFile(replyPath, nil, 0o600); err != nil {
		return fmt.Errorf("creating reply file: %w", err)
	}
	return nil
}

// configFile renders an agent's settings as Choria's plugin config files
// are: `key = value` lines, sorted by key.
func configFile(settings map[string]string) []byte {
	var b bytes.Buffer
	for _, k := range slices.Sorted(maps.Keys(settings)) {
		fmt.Fprintf(&b, "%s = %s\n", k, settings[k])
	}
	return b.Bytes()
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

// readLimited reads the reply file, refusing one over maxReply bytes; an
// absent file reads as empty.
func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading reply file: %w", err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxReply+1)); err != nil {
		return nil, fmt.Errorf("reading reply file: %w", err)
	}
	if buf.Len() > maxReply {
		return nil, fmt.Errorf("reply file larger than %d bytes", maxReply)
	}
	return buf.Bytes(), nil
}

// envelopeKey reports whether k is a member of Choria's rpc_reply;
// disableresponse is written by the Python library for Choria external agents.
func envelopeKey(k string) bool {
	switch k {
	case "statuscode", "statusmsg", "data", "disableresponse":
		return true
	}
	return false
}

// isEnvelope decides whether a reply object is Choria's envelope
// {"statuscode", "statusmsg", "data"} rather than MCollective's flat object
// of outputs: it has a member "data" holding an object (or null), no member
// outside the envelope's, and the action declares no output named "data"
// (then "data" is that output and the reply is flat).
func isEnvelope(out map[string]json.RawMessage, act *ddl.Action) bool {
	raw, ok := out["data"]
	if !ok {
		return false
	}
	if act != nil {
		if _, declared := act.Output["data"]; declared {
			return false
		}
	}
	for k := range out {
		if !envelopeKey(k) {
			return false
		}
	}
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && (t[0] == '{' || bytes.Equal(t, []byte("null")))
}

// readReply merges the reply's outputs into rep. An empty reply means
// success without outputs. The reply is either Choria's envelope, whose
// "data" members are the outputs, or a flat object of outputs (see
// isEnvelope); in both `statuscode` and `statusmsg` set the reply status and
// are not outputs.
func readReply(reply []byte, act *ddl.Action, rep *agent.Reply) error {
	if len(bytes.TrimSpace(reply)) == 0 {
		return nil
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(reply, &top); err != nil {
		return fmt.Errorf("reply file is not a JSON object: %w", err)
	}
	var out map[string]any
	if err := json.Unmarshal(reply, &out); err != nil {
		return fmt.Errorf("reply file is not a JSON object: %w", err)
	}
	status, msg, err := replyStatus(out)
	if err != nil {
		return err
	}
	outputs := out
	if isEnvelope(top, act) {
		outputs, _ = out["data"].(map[string]any) // nil for "data": null
	} else {
		delete(out, "statuscode")
		delete(out, "statusmsg")
	}
	if rep.Data == nil {
		rep.Data = make(map[string]any, len(outputs))
	}
	for k, v := range outputs {
		rep.Data[k] = v
	}
	// Choria's libraries write "statusmsg": "OK" (or "") with status 0.
	if status != protocol.OK || (msg != "" && msg != "OK") {
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

// tailBuffer keeps the last maxStderr bytes written to it, always reporting
// success so the writer is never blocked or failed.
type tailBuffer struct {
	buf       []byte
	truncated bool // earlier output was dropped
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - maxStderr; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.truncated = true
	}
	return len(p), nil
}

// Len is the number of bytes kept.
func (b *tailBuffer) Len() int { return len(b.buf) }

// String returns the kept output, trimmed, marked when its start was cut.
func (b *tailBuffer) String() string {
	s := strings.TrimSpace(strings.ToValidUTF8(string(b.buf), "\uFFFD"))
	if b.truncated && s != "" {
		s = "(truncated)... " + s
	}
	return s
}

// Tail returns at most the last lines non-empty lines and maxBytes bytes of
// the output, joined by " | " for a one-line message, starting with "..."
// when anything was left out.
func (b *tailBuffer) Tail(lines, maxBytes int) string {
	var kept []string
	all := strings.Split(b.String(), "\n")
	for i := len(all) - 1; i >= 0 && len(kept) < lines; i-- {
		if l := strings.TrimSpace(all[i]); l != "" {
			kept = append([]string{l}, kept...)
		}
	}
	s := strings.Join(kept, " | ")
	cut := len(s) > maxBytes
	if cut {
		start := len(s) - maxBytes
		for start < len(s) && !utf8.RuneStart(s[start]) {
			start++
		}
		s = s[start:]
	}
	if s != "" && (cut || strings.Join(kept, "\n") != b.String()) {
		s = "..." + s
	}
	return s
}
