package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/internal/poll"
)

// Chef Infra Client cannot be installed here (Debian does not package it),
// so this test puts a stand-in chef-client script first on the daemon's
// PATH. With --once it behaves as chef-client with the documented
// Marionette handlers: it refuses while the lock exists and writes the
// report handler's JSON.
const chefStandIn = `#!/bin/sh
[ "$1" = "--once" ] || { echo "stand-in chef-client: only --once" >&2; exit 2; }
if [ -e "$DIR/disabled.lock" ]; then echo "disabled: $(cat "$DIR/disabled.lock")" >&2; exit 3; fi
echo "Chef Infra Client (stand-in) converging"
printf '{"status":"success","start_time":"%s","end_time":"%s","elapsed_time":0.5,"updated_resources":3,"total_resources":9,"run_list":["role[web]","recipe[apache2::mod_ssl@1.0.0]","role[bad name]"],"exception":null}' "$(date -u +%Y-%m-%dT%H:%M:%SZ)" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" > "$DIR/report.json.tmp"
echo '{"chef_converged": "yes"}' > "$DIR/facts.json"
mv "$DIR/report.json.tmp" "$DIR/report.json"
`

func TestChefAgentThroughDaemon(t *testing.T) {
	c := newCollective(t, collectiveOptions{})
	conf := c.clientConf()
	dir, bin := filepath.Join(c.dir, "chef"), filepath.Join(c.dir, "chef-bin")
	for _, d := range []string{dir, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(bin, "chef-client"), []byte(strings.ReplaceAll(chefStandIn, "$DIR", dir)), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	// The fact command reports what the run changed; its interval is an
	// hour, so only the end of the run can bring the new fact in.
	factCmd := filepath.Join(dir, "facts.sh")
	if err := os.WriteFile(factCmd, []byte("#!/bin/sh\ncat "+filepath.Join(dir, "facts.json")+" 2>/dev/null || echo '{}'\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	d := c.startDaemon("chef.e2e", "facts.command = "+factCmd, "facts.interval = 1h",
		"chef.report = "+filepath.Join(dir, "report.json"), "chef.lock = "+filepath.Join(dir, "disabled.lock"),
		"chef.run_lock = "+filepath.Join(dir, "running.pid"), "chef.pidfile = "+filepath.Join(dir, "client.pid"),
		"jobs.dir = "+filepath.Join(dir, "jobs"))

	r := mco(t, "", "chef", "disable", "-m", "db migration", "-I", "chef.e2e", "-c", conf)
	if r.code != 0 {
		t.Fatalf("disable: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = mco(t, "", "chef", "runonce", "-I", "chef.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; len(reps) != 1 || reps[0].Statuscode == 0 || !strings.Contains(reps[0].Statusmsg, "db migration") {
		t.Fatalf("runonce while disabled: %s", r.stdout)
	}
	if r = mco(t, "", "chef", "enable", "-I", "chef.e2e", "-c", conf); r.code != 0 {
		t.Fatalf("enable: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = mco(t, "", "chef", "runonce", "-I", "chef.e2e", "-c", conf, "--json")
	reps := decodeCall(t, r).Replies
	if len(reps) != 1 || reps[0].Statuscode != 0 {
		t.Fatalf("runonce: %s\n%s", r.stdout, r.stderr)
	}
	id := strings.Fields(strings.TrimPrefix(reps[0].Data["summary"].(string), "Started a chef-client run as job "))[0]
	r = mco(t, "", "job", "results", id, "--wait", "--interval", "200ms", "-c", conf, "--json")
	var res struct {
		Replies []struct {
			Data map[string]any `json:"data"`
		} `json:"replies"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || len(res.Replies) != 1 || !strings.Contains(res.Replies[0].Data["stdout"].(string), "converging") {
		t.Fatalf("job results: %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	r = mco(t, "", "chef", "summary", "-I", "chef.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; len(reps) != 1 || reps[0].Data["status"] != "success" || reps[0].Data["updated_resources"] != float64(3) {
		t.Fatalf("summary: %s", r.stdout)
	}
	r = mco(t, "", "chef", "status", "-I", "chef.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; len(reps) != 1 || reps[0].Data["last_run_status"] != "success" || reps[0].Data["enabled"] != true {
		t.Fatalf("status: %s", r.stdout)
	}
	// The run list became classes (role.NAME, recipe.NAME, version pin
	// dropped) and the run's fact is in, without waiting for the interval.
	find := func(args ...string) string {
		r := mco(t, "", append([]string{"find", "-c", conf}, args...)...)
		return strings.TrimSpace(r.stdout)
	}
	// Past poll.Deadline: should the change event be missed, the daemon's
	// 30 s safety poll (internal/filewatch) is what reloads it.
	if !poll.Within(time.Minute, func() bool {
		return find("-C", "role.web", "-C", "recipe.apache2::mod_ssl", "-F", "chef_converged=yes") == "chef.e2e"
	}) {
		r := mco(t, "", "rpc", "rpcutil", "inventory", "-I", "chef.e2e", "-c", conf, "--json")
		t.Fatalf("classes or facts not updated after the chef run:\n%s", r.stdout)
	}
	// The bad entry is skipped, and the daemon's log names it.
	if got := find("-C", "/bad/"); got != "" {
		t.Fatalf("-C /bad/ matched %q", got)
	}
	if log := d.stop(t); !strings.Contains(log, `entry="role[bad name]"`) {
		t.Fatalf("skipped run list entry not logged by name:\n%s", log)
	}
}
