package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/fatih/color"
	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/ddl"
	"github.com/marionette/mco/internal/discovery"
	"github.com/marionette/mco/protocol"
)

// jsonReply is one reply in --json and --jsonl output.
type jsonReply struct {
	Sender     string              `json:"sender"`
	StatusCode protocol.StatusCode `json:"statuscode"`
	StatusMsg  string              `json:"statusmsg"`
	Data       map[string]any      `json:"data"`
	Error      string              `json:"error,omitempty"` // verification failure
	RTTMillis  float64             `json:"rtt_ms"`
}

func toJSONReply(r client.Result) jsonReply {
	j := jsonReply{Sender: r.Sender, StatusCode: r.Status, StatusMsg: r.Message, Data: r.Data, RTTMillis: ms(r.RTT)}
	if j.Data == nil {
		j.Data = map[string]any{}
	}
	if r.Err != nil {
		j.Error = r.Err.Error()
		if j.StatusCode == protocol.OK {
			j.StatusCode = protocol.UnknownError
		}
	}
	return j
}

// jsonStats is the statistics block of JSON output.
type jsonStats struct {
	RequestID       string   `json:"request_id"`
	Agent           string   `json:"agent"`
	Action          string   `json:"action"`
	DiscoveryMethod string   `json:"discovery_method"`
	Discovered      int      `json:"discovered"`
	Responses       int      `json:"responses"`
	OK              int      `json:"ok"`
	Failed          int      `json:"failed"`
	Invalid         int      `json:"invalid"`
	NoResponse      []string `json:"no_response"`
	DiscoveryMillis float64  `json:"discovery_ms"`
	// How broadcast discovery ended, how many nodes it expected and which
	// of them stayed silent (only for broadcast discovery).
	DiscoveryEnded    string   `json:"discovery_ended,omitempty"`
	DiscoveryExpected *int     `json:"discovery_expected,omitempty"`
	DiscoveryMissing  []string `json:"discovery_missing,omitzero"`
	// FromStdin is how many identities standard input gave (stdin discovery).
	FromStdin     *int    `json:"from_stdin,omitempty"`
	RequestMillis float64 `json:"request_ms"`
	ExitCode      int     `json:"exit_code"`
}

func makeJSONStats(s *client.Stats, d *discovery.Result, code int) jsonStats {
	js := jsonStats{
		RequestID: s.RequestID, Agent: s.Agent, Action: s.Action, Discovered: len(s.Expected),
		Responses: len(s.Responded), OK: s.OK, Failed: s.Failed, Invalid: s.Invalid,
		NoResponse: s.NoResponse, RequestMillis: ms(s.Duration), ExitCode: code,
	}
	if js.NoResponse == nil {
		js.NoResponse = []string{}
	}
	if d != nil {
		js.DiscoveryMethod, js.DiscoveryMillis = d.Method, ms(d.Duration)
		if b := d.Broadcast; b != nil {
			js.DiscoveryEnded, js.DiscoveryExpected, js.DiscoveryMissing = b.Ended, &b.Expected, b.Missing
			if js.DiscoveryMissing == nil {
				js.DiscoveryMissing = []string{}
			}
		}
		if d.Method == discovery.Stdin {
			js.FromStdin = &d.FromStdin
		}
	}
	if s.Broadcast {
		js.DiscoveryMethod = "none (broadcast request)"
		js.Discovered = len(s.Responded)
	}
	return js
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// exitCode applies MCollective's exit codes to a finished call:
// 0 every discovered node replied OK; 1 no nodes discovered; 2 some requests
// failed (or some nodes did not answer); 3 nodes discovered but none
// responded; 4 no discovery and no responses. method is the discovery
// method: exact -I targets (direct) were never discovered, so silence from
// all of them is 4, not 3.
func exitCode(s *client.Stats, method string) int {
	if s.Broadcast {
		switch {
		case len(s.Responded) == 0 && s.Invalid == 0:
			return 4
		case s.Failed > 0 || s.Invalid > 0 || len(s.NoResponse) > 0:
			return 2
		}
		return 0
	}
	switch {
	case len(s.Expected) == 0:
		return 1
	case len(s.Responded) == 0 && s.Invalid == 0 && method == discovery.Direct:
		return 4
	case len(s.Responded) == 0 && s.Invalid == 0:
		return 3
	case s.Failed > 0 || s.Invalid > 0 || len(s.NoResponse) > 0:
		return 2
	}
	return 0
}

// methodOf is d's method, "" without a discovery.
func methodOf(d *discovery.Result) string {
	if d == nil {
		return ""
	}
	return d.Method
}

// validateOutput checks the output flags before anything is sent, naming
// the allowed values.
func (f *clientFlags) validateOutput() error {
	if f.json && f.jsonl {
		return fmt.Errorf("--json and --jsonl exclude each other: --json prints one document, --jsonl one line per reply")
	}
	switch f.display {
	case "", "ok", "failed", "all":
	default:
		return fmt.Errorf("--display %q: allowed values are ok, failed and all", f.display)
	}
	return nil
}

// progress is a progress bar on terminals, nothing elsewhere.
type progress struct {
	p   *mpb.Progress
	bar *mpb.Bar
}

func newProgress(app *App, f *clientFlags, total int) *progress {
	if !app.StdoutTTY || f.noProgress || !f.renderer(app).text() || total <= 1 {
		return &progress{}
	}
	p := mpb.New(mpb.WithOutput(app.Stdout), mpb.WithWidth(60))
	bar := p.AddBar(int64(total),
		mpb.PrependDecorators(decor.CountersNoUnit(" * %d / %d ")),
		mpb.AppendDecorators(decor.Elapsed(decor.ET_STYLE_GO)),
	)
	return &progress{p: p, bar: bar}
}

func (p *progress) inc() {
	if p.bar != nil {
		p.bar.Increment()
	}
}

func (p *progress) done() {
	if p.p != nil {
		p.bar.Abort(false)
		p.p.Wait()
	}
}

// printer renders replies for humans, following the DDL's display rule.
type printer struct {
	w       io.Writer
	action  *ddl.Action // may be nil: unknown agent, show raw data
	display string
	verbose bool
	red     *color.Color
}

func newPrinter(app *App, act *ddl.Action, display string, verbose bool) *printer {
	red := color.New(color.FgRed)
	if !app.StdoutTTY {
		red.DisableColor()
	}
	return &printer{w: app.Stdout, action: act, display: display, verbose: verbose, red: red}
}

func (p *printer) shouldShow(r client.Result) bool {
	if p.verbose {
		return true
	}
	if p.action == nil {
		return !r.OK() || p.display != "failed"
	}
	return p.action.ShouldDisplay(r.OK(), p.display)
}

// reply prints one node's reply.
func (p *printer) reply(r client.Result) {
	if !p.shouldShow(r) {
		return
	}
	switch {
	case r.Err != nil:
		p.red.Fprintf(p.w, "%-40s %s\n", r.Sender, "Untrusted reply")
		fmt.Fprintf(p.w, "    %v\n\n", r.Err)
		return
	case r.Status != protocol.OK:
		p.red.Fprintf(p.w, "%-40s %s\n", r.Sender, r.Status)
		fmt.Fprintf(p.w, "    %s\n", r.Message)
	default:
		fmt.Fprintf(p.w, "%s\n", r.Sender)
	}
	var lines []string
	if p.action != nil {
		lines = p.action.FormatOutputs(r.Data)
	} else {
		lines = rawLines(r.Data)
	}
	for _, l := range lines {
		fmt.Fprintf(p.w, "    %s\n", l)
	}
	fmt.Fprintln(p.w)
}

func rawLines(data map[string]any) []string {
	keys := make([]string, 0, len(data))
	width := 0
	for k := range data {
		keys = append(keys, k)
		width = max(width, len(k))
	}
	sort.Strings(keys)
	var out []string
	for _, k := range keys {
		v := data[k]
		s, ok := v.(string)
		if !ok {
			b, _ := json.Marshal(v)
			s = string(b)
		}
		out = append(out, fmt.Sprintf("%*s: %s", width, k, s))
	}
	return out
}

// summaries prints the DDL aggregate blocks over the successful replies.
func (p *printer) summaries(results []client.Result) {
	if p.action == nil {
		return
	}
	var data []map[string]any
	for _, r := range results {
		if r.OK() {
			data = append(data, r.Data)
		}
	}
	for _, s := range p.action.Summarize(data) {
		fmt.Fprintln(p.w, s.String())
		fmt.Fprintln(p.w)
	}
	for _, note := range p.action.Skipped() {
		fmt.Fprintf(p.w, "Note: %s\n\n", note)
	}
}

// footer prints the stats line and the lists of silent and failed nodes.
func (p *printer) footer(s *client.Stats, results []client.Result) {
	total := len(s.Expected)
	if s.Broadcast {
		total = len(s.Responded)
	}
	fmt.Fprintf(p.w, "Finished processing %d / %d hosts in %.2f ms\n", len(s.Responded), total, ms(s.Duration))
	var failed []string
	for _, r := range results {
		if !r.OK() {
			failed = append(failed, r.Sender)
		}
	}
	if len(failed) > 0 {
		sort.Strings(failed)
		fmt.Fprintf(p.w, "\nFailed on %d hosts:\n\n", len(failed))
		p.columns(failed)
	}
	if len(s.NoResponse) > 0 {
		fmt.Fprintf(p.w, "\nNo response from:\n\n")
		p.columns(s.NoResponse)
	}
}

// columns prints names in columns, MCollective style.
func (p *printer) columns(names []string) {
	width := 0
	for _, n := range names {
		width = max(width, len(n))
	}
	perLine := max(1, 80/(width+3))
	for i := 0; i < len(names); i += perLine {
		row := names[i:min(i+perLine, len(names))]
		var b strings.Builder
		for _, n := range row {
			fmt.Fprintf(&b, "   %-*s", width, n)
		}
		fmt.Fprintln(p.w, strings.TrimRight(b.String(), " "))
	}
}

// emptyCallJSON is the --json document of a call that sent nothing because
// discovery found no node: the same shape as a call's, so a script reads
// one document in every case.
func emptyCallJSON(d *discovery.Result) any {
	st := jsonStats{NoResponse: []string{}, ExitCode: 1}
	if d != nil {
		st.DiscoveryMethod, st.DiscoveryMillis = d.Method, ms(d.Duration)
	}
	return emptyCall{Replies: []jsonReply{}, Stats: st, NoResponse: []string{}, Message: "No request sent, we did not discover any nodes."}
}

type emptyCall struct {
	Replies    []jsonReply `json:"replies"`
	Stats      jsonStats   `json:"stats"`
	NoResponse []string    `json:"no_response"`
	Message    string      `json:"message"`
}

// sentJSON is the --json document of a request sent without waiting for
// replies (--no-results, --reply-to): which requests went to which nodes.
type sentJSON struct {
	Sent       []sentRequest `json:"sent"`
	ReplyTo    string        `json:"reply_to,omitempty"`
	NoReplies  bool          `json:"no_replies"`
	Discovered int           `json:"discovered"`
	Method     string        `json:"discovery_method"`
}

type sentRequest struct {
	RequestID string   `json:"request_id"`
	Nodes     []string `json:"nodes"`
}
