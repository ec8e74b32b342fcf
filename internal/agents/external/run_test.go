//go:build unix

package external

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/protocol"
)

// examplesLibdir is the libdir shipped in examples/agents.
const examplesLibdir = "../../../examples/agents"

func TestGreeterExample(t *testing.T) {
	host, err := exec.Command("uname", "-n").Output()
	if err != nil {
		t.Fatalf("uname -n: %v", err)
	}
	a := loadOne(t, Options{LibDirs: []string{examplesLibdir}}, "greeter")

	tests := []struct {
		name        string
		input       string
		wantStatus  protocol.StatusCode
		wantMessage string // reply message
		wantOutput  any    // the "message" output
	}{
		{name: "plain", input: "world", wantOutput: "hello world from " + strings.TrimSpace(string(host))},
		{name: "spaces and html", input: "Ada <&> Lovelace", wantOutput: "hello Ada <&> Lovelace from " + strings.TrimSpace(string(host))},
		{name: "quote refused", input: `a"b`, wantStatus: protocol.InvalidData, wantMessage: "name must be a non-empty string without quotes or backslashes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep := call(t, t.Context(), a, "hello", map[string]any{"name": tt.input})
			if rep.Status != tt.wantStatus || rep.Message != tt.wantMessage {
				t.Errorf("status %d %q, want %d %q", rep.Status, rep.Message, tt.wantStatus, tt.wantMessage)
			}
			if got := rep.Data["message"]; got != tt.wantOutput {
				t.Errorf("message output = %#v, want %#v", got, tt.wantOutput)
			}
		})
	}
}

func TestPyEchoExample(t *testing.T) {
	if _, err := exec.LookPath("python3"); err != nil {
		t.Skip("python3 not installed")
	}
	opts := Options{LibDirs: []string{examplesLibdir}, Facts: func() map[string]any { return map[string]any{"os": "linux"} }}
	a := loadOne(t, opts, "pyecho")
	rep := call(t, t.Context(), a, "echo", map[string]any{"message": `any "text" \ at all`})
	want := map[string]any{"message": `any "text" \ at all`, "length": float64(19), "os": "linux"}
	if rep.Status != protocol.OK {
		t.Fatalf("status %d %q", rep.Status, rep.Message)
	}
	if diff := cmp.Diff(want, rep.Data); diff != "" {
		t.Errorf("reply data (-want +got):\n%s", diff)
	}
}

func TestReplies(t *testing.T) {
	tests := []struct {
		name        string
		body        string
		wantStatus  protocol.StatusCode
		wantMessage string // substring; "" means the message must be empty
		wantData    map[string]any
	}{
		{
			name:     "outputs",
			body:     `printf '{"message":"hi","count":3,"list":[1,"a"]}' >"$2"`,
			wantData: map[string]any{"message": "hi", "count": float64(3), "list": []any{float64(1), "a"}},
		},
		{
			name:        "statuscode and statusmsg",
			body:        `printf '{"statuscode":4,"statusmsg":"bad name","message":"partial"}' >"$2"`,
			wantStatus:  protocol.InvalidData,
			wantMessage: "bad name",
			wantData:    map[string]any{"message": "partial"},
		},
		{
			name:        "statuscode without statusmsg",
			body:        `printf '{"statuscode":1}' >"$2"`,
			wantStatus:  protocol.Aborted,
			wantMessage: "Aborted",
			wantData:    map[string]any{},
		},
		{
			name:        "statuscode out of range",
			body:        `printf '{"statuscode":9}' >"$2"`,
			wantStatus:  protocol.Aborted,
			wantMessage: "invalid reply from agent: statuscode 9 is not an integer from 0 to 5",
			wantData:    map[string]any{},
		},
		{
			name:        "statusmsg not a string",
			body:        `printf '{"statusmsg":3}' >"$2"`,
			wantStatus:  protocol.Aborted,
			wantMessage: "invalid reply from agent: statusmsg 3 is not a string",
			wantData:    map[string]any{},
		},
		{
			name:     "empty reply file",
			body:     `exit 0`,
			wantData: map[string]any{},
		},
		{
			name:     "reply file removed",
			body:     `rm -f "$2"`,
			wantData: map[string]any{},
		},
		{
			name:        "invalid JSON",
			body:        `echo 'not json' >"$2"`,
			wantStatus:  protocol.Aborted,
			wantMessage: "invalid reply from agent: ",
			wantData:    map[string]any{},
		},
		{
			name:        "JSON but not an object",
			body:        `echo '[1,2]' >"$2"`,
			wantStatus:  protocol.Aborted,
			wantMessage: "invalid reply from agent: ",
			wantData:    map[string]any{},
		},
		{
			name:        "non-zero exit with stderr",
			body:        "printf '{\"message\":\"ignored\"}' >\"$2\"\necho '  disk full  ' >&2\nexit 3",
			wantStatus:  protocol.Aborted,
			wantMessage: "external agent probe failed: exit status 3: disk full",
			wantData:    map[string]any{},
		},
		{
			name:        "huge stderr: only its tail is in the message",
			body:        `yes xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | head -c 1000000 >&2; printf '\nthe last line\n' >&2; exit 1`,
			wantStatus:  protocol.Aborted,
			wantMessage: "exit status 1: ...xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx | xxxxxxxxxxxxxxxx | the last line",
			wantData:    map[string]any{},
		},
		{
			name:        "killed by a signal",
			body:        `kill -9 $$`,
			wantStatus:  protocol.Aborted,
			wantMessage: "signal: killed",
			wantData:    map[string]any{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			libdir := t.TempDir()
			writeAgent(t, libdir, "probe", tt.body)
			a := loadOne(t, Options{LibDirs: []string{libdir}}, "probe")
			rep := call(t, t.Context(), a, "run", nil)
			if rep.Status != tt.wantStatus {
				t.Errorf("status = %d, want %d (message %q)", rep.Status, tt.wantStatus, rep.Message)
			}
			if tt.wantMessage == "" && rep.Message != "" || !strings.Contains(rep.Message, tt.wantMessage) {
				t.Errorf("message = %q, want it to contain %q", rep.Message, tt.wantMessage)
			}
			if len(rep.Message) > 100+tailBytes {
				t.Errorf("message is %d bytes long, want stderr limited to a %d-byte tail", len(rep.Message), tailBytes)
			}
			if diff := cmp.Diff(tt.wantData, rep.Data); diff != "" {
				t.Errorf("data (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRequestFiles has the agent echo its request file, facts file, arguments
// and working directory back, and checks the per-request files are removed.
func TestRequestFiles(t *testing.T) {
	libdir := t.TempDir()
	writeAgent(t, libdir, "mirror", `
case "$(basename "$PWD")" in mco-agent-mirror-*) ;; *) echo "unexpected working dir $PWD" >&2; exit 1;; esac
[ "$1" = "$MCOLLECTIVE_REQUEST_FILE" ] && [ "$1" = "$CHORIA_EXTERNAL_REQUEST" ] || exit 11
[ "$2" = "$MCOLLECTIVE_REPLY_FILE" ] && [ "$2" = "$CHORIA_EXTERNAL_REPLY" ] || exit 12
[ "$3" = "$CHORIA_EXTERNAL_PROTOCOL" ] || exit 13
printf '{"request":%s,"facts":%s,"protocol":"%s","dir":"%s"}' "$(cat "$1")" "$(cat "$CHORIA_EXTERNAL_FACTS")" "$3" "$PWD" >"$2"`)
	facts := map[string]any{"os": "linux", "cpus": float64(2)}
	a := loadOne(t, Options{LibDirs: []string{libdir}, Facts: func() map[string]any { return facts }}, "mirror")

	rep := call(t, t.Context(), a, "run", map[string]any{"name": "x<y"})
	if rep.Status != protocol.OK {
		t.Fatalf("status %d %q", rep.Status, rep.Message)
	}
	wantRequest := map[string]any{
		"$schema":  ProtocolSchema,
		"protocol": Protocol, "agent": "mirror", "action": "run",
		"sender": "node1.example.net", "caller": "cert=alice", "request_id": "req-1",
		"collective": "mcollective", "ttl": float64(60), "time": float64(1767225600),
		"requestid": "req-1", "senderid": "node1.example.net", "callerid": "cert=alice",
		"msgtime": float64(1767225600),
		"data":    map[string]any{"name": "x<y"},
	}
	if diff := cmp.Diff(wantRequest, rep.Data["request"]); diff != "" {
		t.Errorf("request file (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(facts, rep.Data["facts"]); diff != "" {
		t.Errorf("facts file (-want +got):\n%s", diff)
	}
	if rep.Data["protocol"] != Protocol {
		t.Errorf("protocol argument = %v, want %s", rep.Data["protocol"], Protocol)
	}
	dir, _ := rep.Data["dir"].(string)
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("request dir %q still exists after the request (stat: %v)", dir, err)
	}
}

// TestEnvironmentReduced runs the test binary itself as the agent (see
// TestMain) so that no shell adds variables to what it reports.
func TestEnvironmentReduced(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	libdir := t.TempDir()
	writeFile(t, filepath.Join(libdir, "agent", "envdump.json"), testDDL("envdump", "run"), 0o644)
	if err := os.Symlink(self, filepath.Join(libdir, "agent", "envdump")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("MCO_SECRET_TOKEN", "must-not-leak")
	a := loadOne(t, Options{LibDirs: []string{libdir}, Path: "/opt/test/bin:/usr/bin:/bin"}, "envdump")

	rep := call(t, t.Context(), a, "run", nil)
	if rep.Status != protocol.OK {
		t.Fatalf("status %d %q", rep.Status, rep.Message)
	}
	var got []string
	for _, kv := range rep.Data["env"].([]any) {
		name, value, _ := strings.Cut(kv.(string), "=")
		if name == "PATH" && value != "/opt/test/bin:/usr/bin:/bin" {
			t.Errorf("PATH = %q, want the configured one", value)
		}
		got = append(got, name)
	}
	slices.Sort(got)
	want := []string{
		"CHORIA_EXTERNAL_CONFIG", "CHORIA_EXTERNAL_FACTS", "CHORIA_EXTERNAL_PROTOCOL", "CHORIA_EXTERNAL_REPLY",
		"CHORIA_EXTERNAL_REQUEST", "MCOLLECTIVE_REPLY_FILE", "MCOLLECTIVE_REQUEST_FILE", "PATH",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("environment variables (-want +got):\n%s", diff)
	}
}

// expiredCtx is a context whose deadline the test triggers by hand, so the
// timeout test needs no race between the agent starting and a clock.
type expiredCtx struct {
	context.Context
	deadline time.Time
}

func (c expiredCtx) Deadline() (time.Time, bool) { return c.deadline, true }

func (c expiredCtx) Err() error {
	if c.Context.Err() != nil {
		return context.DeadlineExceeded
	}
	return nil
}

func TestTimeoutKillsProcessGroup(t *testing.T) {
	libdir := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	// The backgrounded sleep holds stderr open and would outlive its parent.
	writeAgent(t, libdir, "hang", fmt.Sprintf("sleep 300 &\necho $! >%s.tmp\nmv %[1]s.tmp %[1]s\nwait", pidFile))
	a := loadOne(t, Options{LibDirs: []string{libdir}}, "hang")

	parent, cancel := context.WithCancel(t.Context())
	ctx := expiredCtx{Context: parent, deadline: time.Now().Add(5 * time.Second)}
	done := make(chan string)
	go func() {
		rep := call(t, ctx, a, "run", nil)
		done <- fmt.Sprintf("%d %s", rep.Status, rep.Message)
	}()
	pid := waitForPIDFile(t, pidFile)
	cancel()
	if got, want := <-done, "1 timeout after 5s"; got != want {
		t.Errorf("reply = %q, want %q", got, want)
	}
	waitGone(t, pid)
}

func TestTimeoutRealDeadline(t *testing.T) {
	libdir := t.TempDir()
	writeAgent(t, libdir, "slow", "sleep 300")
	a := loadOne(t, Options{LibDirs: []string{libdir}}, "slow")
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	rep := call(t, ctx, a, "run", nil)
	if rep.Status != protocol.Aborted || !strings.HasPrefix(rep.Message, "timeout after ") {
		t.Errorf("reply = %d %q, want 1 timeout after ...", rep.Status, rep.Message)
	}
}

// TestLingeringChildDoesNotHang checks that an agent which exits 0 but leaves
// a child holding its stderr still gets its reply through.
func TestLingeringChildDoesNotHang(t *testing.T) {
	libdir := t.TempDir()
	pidFile := filepath.Join(t.TempDir(), "child.pid")
	writeAgent(t, libdir, "leaver", fmt.Sprintf(`sleep 300 &
echo $! >%s
printf '{"message":"done"}' >"$2"`, pidFile))
	a := loadOne(t, Options{LibDirs: []string{libdir}}, "leaver")

	rep := call(t, t.Context(), a, "run", nil)
	pid := waitForPIDFile(t, pidFile)
	_ = syscall.Kill(pid, syscall.SIGKILL)
	if rep.Status != protocol.OK || rep.Data["message"] != "done" {
		t.Errorf("reply = %d %q %v, want OK with message done", rep.Status, rep.Message, rep.Data)
	}
}

// waitForPIDFile waits for an agent to record a child's pid.
func waitForPIDFile(t *testing.T, path string) int {
	t.Helper()
	var pid int
	poll.Until(t, "the agent to write "+path, func() bool {
		b, err := os.ReadFile(path)
		var perr error
		pid, perr = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && perr == nil
	})
	return pid
}

// waitGone waits for a process to be gone. A zombie counts as gone: it is
// dead, and reaping it is up to whichever process adopted it (in containers,
// PID 1 may never do so).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	if !poll.Wait(func() bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) || isZombie(pid) }) {
		_ = syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("child process %d survived the agent's timeout", pid)
	}
}

// isZombie reports whether /proc says the process has exited but is unreaped.
func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name, which may hold spaces.
	_, rest, ok := strings.Cut(string(b), ") ")
	return ok && strings.HasPrefix(rest, "Z")
}

func BenchmarkTrivialExternal(b *testing.B) {
	libdir := b.TempDir()
	writeAgent(b, libdir, "trivial", `printf '{"message":"ok"}' >"$2"`)
	a := loadOne(b, Options{LibDirs: []string{libdir}}, "trivial")
	ctx := b.Context()
	for b.Loop() {
		if rep := call(b, ctx, a, "run", nil); rep.Status != protocol.OK {
			b.Fatalf("status %d %q", rep.Status, rep.Message)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
}
