package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/protocol"
)

// The Puppet tests drive the real Puppet from Debian's puppet-agent package
// (.ci/run installs it). Each node gets its own Puppet confdir, whose
// puppet.conf keeps all of Puppet's state in the node's directory, and a
// run command doing a local `puppet apply` of the node's manifest — the
// documented puppet.run_command setting, for nodes without a Puppet server.

func needPuppet(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("puppet"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("puppet is not installed (CI must install puppet-agent): %v", err)
		}
		t.Skip("puppet is not installed (apt-get install puppet-agent)")
	}
}

// puppetNode is one node's Puppet home.
type puppetNode struct {
	name, dir, confdir, manifest string
}

// newPuppetNode writes a confdir and manifest for name and returns the
// server.conf lines that point the node's puppet agent at them.
func newPuppetNode(t *testing.T, c *collective, name, manifest string) (*puppetNode, []string) {
	t.Helper()
	dir := filepath.Join(c.dir, "puppet", name)
	p := &puppetNode{name: name, dir: dir, confdir: filepath.Join(dir, "conf"), manifest: filepath.Join(dir, "site.pp")}
	if err := os.MkdirAll(p.confdir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := "[main]\n"
	for k, v := range map[string]string{"vardir": "var", "logdir": "var/log", "rundir": "var/run", "publicdir": "var/public", "codedir": "code"} {
		conf += k + " = " + filepath.Join(dir, v) + "\n"
	}
	if err := os.WriteFile(filepath.Join(p.confdir, "puppet.conf"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.manifest, []byte(manifest), 0o644); err != nil {
		t.Fatal(err)
	}
	return p, []string{
		"puppet.confdir = " + p.confdir,
		"puppet.run_command = puppet apply --confdir " + p.confdir + " --write-catalog-summary --color=false " + p.manifest,
		"jobs.dir = " + filepath.Join(dir, "jobs"),
	}
}

// waitPuppetReady polls until n nodes answer puppet status: each node reads
// Puppet's settings (one `puppet config print`, about a second of CPU) on
// its first Puppet request, which on a loaded machine can outlast a
// request; the reply then says so, and a later request is served.
func waitPuppetReady(t *testing.T, conf string, n int) {
	t.Helper()
	var r result
	ok := 0
	if !poll.Within(2*time.Minute, func() bool {
		r = mco(t, "", "rpc", "puppet", "status", "-c", conf, "--json")
		ok = 0
		for _, rep := range decodeCall(t, r).Replies {
			if rep.Statuscode == 0 {
				ok++
			}
		}
		return ok == n
	}) {
		t.Fatalf("only %d of %d nodes report Puppet's status:\n%s", ok, n, r.stdout)
	}
}

func (p *puppetNode) summaryFile() string {
	return filepath.Join(p.dir, "var", "public", "last_run_summary.yaml")
}

// jsonCall is the document of an mco call with --json: its replies.
type jsonCall struct {
	Replies []struct {
		Sender     string         `json:"sender"`
		Statuscode int            `json:"statuscode"`
		Statusmsg  string         `json:"statusmsg"`
		Data       map[string]any `json:"data"`
	} `json:"replies"`
}

func decodeCall(t *testing.T, r result) jsonCall {
	t.Helper()
	var out jsonCall
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("not JSON (%v): %s\n%s", err, r.stdout, r.stderr)
	}
	return out
}

func TestPuppetAgentThroughDaemon(t *testing.T) {
	needPuppet(t)
	c := newCollective(t, collectiveOptions{})
	conf := c.clientConf()
	nodes := map[string]*puppetNode{}
	// p2's fact command counts its runs: facts are collected at start and
	// again when a Puppet run ends, not on the (long) interval.
	counter := filepath.Join(c.dir, "fact-runs")
	script := filepath.Join(c.dir, "count-facts.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho x >> "+counter+"\nprintf '{\"fact_runs\": %d}' $(wc -l < "+counter+")\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"p1.e2e", "p2.e2e"} {
		p, lines := newPuppetNode(t, c, name, "notify { 'hello from "+name+"': }\n")
		nodes[name] = p
		if name == "p2.e2e" {
			lines = append(lines, "facts.command = "+script, "facts.interval = 1h")
		}
		c.startDaemon(name, lines...)
	}
	waitPuppetReady(t, conf, 2)

	r := mco(t, "", "rpc", "puppet", "disable", "message=kernel upgrade", "-I", "p1.e2e", "-c", conf, "--json")
	if r.code != 0 {
		t.Fatalf("disable: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Puppet's own agent refuses to run on p1, quoting the message.
	out, err := exec.Command("puppet", "agent", "--onetime", "--no-daemonize", "--verbose", "--color=false", "--confdir", nodes["p1.e2e"].confdir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "administratively disabled (Reason: 'kernel upgrade')") {
		t.Fatalf("puppet agent ran while disabled (%v):\n%s", err, out)
	}
	// The puppet data plugin selects nodes: MCollective's puppet().enabled.
	r = mco(t, "", "find", "-S", "puppet().enabled=false", "-c", conf)
	if r.code != 0 || strings.TrimSpace(r.stdout) != "p1.e2e" {
		t.Fatalf("find -S puppet().enabled=false: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = mco(t, "", "rpc", "puppet", "status", "-c", conf, "--json")
	for _, rep := range decodeCall(t, r).Replies {
		want := rep.Sender == "p2.e2e"
		if rep.Data["enabled"] != want || (!want && rep.Data["disable_message"] != "kernel upgrade") {
			t.Fatalf("status of %s: %v", rep.Sender, rep.Data)
		}
	}
	r = mco(t, "", "rpc", "puppet", "runonce", "-I", "p1.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; len(reps) != 1 || reps[0].Statuscode == 0 || !strings.Contains(reps[0].Statusmsg, "kernel upgrade") {
		t.Fatalf("runonce while disabled: %s", r.stdout)
	}

	// A real run on p2, collected later through the job agent.
	r = mco(t, "", "rpc", "puppet", "runonce", "-I", "p2.e2e", "-c", conf, "--json")
	reps := decodeCall(t, r).Replies
	if len(reps) != 1 || reps[0].Statuscode != 0 {
		t.Fatalf("runonce: %s\n%s", r.stdout, r.stderr)
	}
	summary, _ := reps[0].Data["summary"].(string)
	id := strings.Fields(strings.TrimPrefix(summary, "Started a Puppet run as job "))[0]
	// A real Puppet run on a loaded machine can outlast poll.Deadline.
	if !poll.Within(2*time.Minute, func() bool {
		r = mco(t, "", "rpc", "job", "results", "id="+id, "-I", "p2.e2e", "-c", conf, "--json")
		reps = decodeCall(t, r).Replies
		return len(reps) == 1 && reps[0].Data["state"] != "running"
	}) {
		t.Fatalf("job %s never finished: %s", id, r.stdout)
	}
	if reps[0].Data["state"] != "finished" || reps[0].Data["exit_code"] != float64(0) || !strings.Contains(reps[0].Data["stdout"].(string), "hello from p2.e2e") {
		t.Fatalf("job results: %v", reps[0].Data)
	}
	if _, err := os.Stat(nodes["p2.e2e"].summaryFile()); err != nil {
		t.Fatalf("no last_run_summary.yaml after the run: %v", err)
	}
	// Past poll.Deadline: should the change event be missed, the daemon's
	// 30 s safety poll (internal/filewatch) is what reloads it.
	if !poll.Within(time.Minute, func() bool {
		r = mco(t, "", "find", "-F", "fact_runs=2", "-c", conf)
		return strings.TrimSpace(r.stdout) == "p2.e2e"
	}) {
		b, _ := os.ReadFile(counter)
		t.Fatalf("facts not refreshed after the run (fact command ran %d times): %s %s", strings.Count(string(b), "x"), r.stdout, r.stderr)
	}
	r = mco(t, "", "rpc", "puppet", "last_run_summary", "-I", "p2.e2e", "-c", conf, "--json")
	reps = decodeCall(t, r).Replies
	if len(reps) != 1 || reps[0].Data["changed_resources"] != float64(1) || reps[0].Data["lastrun"] == float64(0) {
		t.Fatalf("last_run_summary: %s", r.stdout)
	}
}

// jobRecord is what a node's spool says of one job.
type jobRecord struct {
	node              string
	created, finished time.Time
	exit              string
}

// spoolJobs lists the job.json files of a node's spool.
func spoolJobs(t *testing.T, p *puppetNode) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(p.dir, "jobs", "*", "job.json"))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// spoolRecords reads the job spool of a Puppet node directly.
func spoolRecords(t *testing.T, p *puppetNode) []jobRecord {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(p.dir, "jobs", "*", "job.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []jobRecord
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var spec struct {
			Created time.Time `json:"created"`
		}
		if err := json.Unmarshal(b, &spec); err != nil {
			t.Fatal(err)
		}
		exitFile := filepath.Join(filepath.Dir(f), "exit")
		fi, err := os.Stat(exitFile)
		if err != nil {
			t.Fatalf("%s: job not finished: %v", p.name, err)
		}
		code, _ := os.ReadFile(exitFile)
		out = append(out, jobRecord{node: p.name, created: spec.Created, finished: fi.ModTime(), exit: strings.TrimSpace(string(code))})
	}
	return out
}

func TestPuppetRunallAndSummary(t *testing.T) {
	needPuppet(t)
	c := newCollective(t, collectiveOptions{})
	conf := c.clientConf()
	var nodes []*puppetNode
	for i := 1; i <= 6; i++ {
		name := "r" + string(rune('0'+i)) + ".e2e"
		manifest := "notify { 'run on " + name + "': }\n"
		if i == 6 {
			manifest += "exec { 'always fails': command => '/bin/false' }\n"
		}
		p, lines := newPuppetNode(t, c, name, manifest)
		nodes = append(nodes, p)
		c.startDaemon(name, lines...)
	}
	waitPuppetReady(t, conf, 6)

	r := mco(t, "", "puppet", "summary", "-c", conf, "--json")
	var before struct {
		Nodes    int      `json:"nodes"`
		NeverRan []string `json:"never_ran"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &before); err != nil || before.Nodes != 6 || len(before.NeverRan) != 6 {
		t.Fatalf("summary before any run (%v): %s\n%s", err, r.stdout, r.stderr)
	}

	r = mco(t, "", "puppet", "runall", "2", "--interval", "200ms", "-c", conf)
	if r.code != 0 || !strings.Contains(r.stdout, "Ran Puppet on 6 of 6 nodes, at most 2 at once") {
		t.Fatalf("runall: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The nodes' own job records: every node ran once, never more than
	// two at the same time.
	var recs []jobRecord
	for _, p := range nodes {
		got := spoolRecords(t, p)
		if len(got) != 1 {
			t.Fatalf("%s ran %d times, want once", p.name, len(got))
		}
		recs = append(recs, got...)
	}
	for _, a := range recs {
		overlapping := 0
		for _, b := range recs {
			if !b.created.After(a.created) && b.finished.After(a.created) {
				overlapping++ // b was running when a started (a included)
			}
		}
		if overlapping > 2 {
			t.Fatalf("%d runs at once when %s started: %+v", overlapping, a.node, recs)
		}
	}

	r = mco(t, "", "puppet", "summary", "-c", conf, "--json")
	var after struct {
		Nodes       int            `json:"nodes"`
		Applied     int            `json:"applied"`
		NeverRan    []string       `json:"never_ran"`
		WithChanges []string       `json:"changed"`
		Failed      []string       `json:"failed"`
		Stale       []string       `json:"stale"`
		Totals      map[string]int `json:"totals"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &after); err != nil {
		t.Fatalf("summary: %v\n%s", err, r.stdout)
	}
	if after.Nodes != 6 || after.Applied != 6 || len(after.NeverRan) != 0 || len(after.WithChanges) != 6 ||
		len(after.Failed) != 1 || after.Failed[0] != "r6.e2e" || len(after.Stale) != 0 || after.Totals["failed"] != 1 {
		t.Fatalf("summary after runall: %+v", after)
	}
	r = mco(t, "", "puppet", "summary", "-c", conf)
	if r.code != 0 || !strings.Contains(r.stdout, "Nodes with failed resources: 1  (r6.e2e)") {
		t.Fatalf("summary text: %d\n%s", r.code, r.stdout)
	}
	// runonce with run options and rollout flags: two batches of three.
	r = mco(t, "", "puppet", "runonce", "--noop", "--tags", "notify", "--batch", "3", "--batch-sleep", "0", "--yes", "-c", conf)
	if r.code != 0 || !strings.Contains(r.stdout, "Batches: 2 of 2 sent") || strings.Count(r.stdout, "3 nodes, 3 ok, 0 failed") != 2 {
		t.Fatalf("runonce --batch 3: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, p := range nodes {
		jobs := spoolJobs(t, p)
		if len(jobs) != 2 {
			t.Fatalf("%s has %d jobs after runall and runonce, want 2", p.name, len(jobs))
		}
		// Let the runs end before the test removes their directories.
		for _, j := range jobs {
			// Real Puppet runs, six nodes at once: longer than poll.Deadline
			// on a loaded machine.
			if !poll.Within(2*time.Minute, func() bool {
				_, err := os.Stat(filepath.Join(filepath.Dir(j), "exit"))
				return err == nil
			}) {
				t.Fatalf("%s: run %s never ended", p.name, j)
			}
		}
	}
	r = mco(t, "", "puppet", "count", "-c", conf)
	if r.code != 0 || !strings.Contains(r.stdout, "Total Puppet nodes: 6") || !strings.Contains(r.stdout, "Nodes currently enabled: 6") {
		t.Fatalf("count: %d\n%s", r.code, r.stdout)
	}
}

func TestDetachedRunSurvivesDaemonRestart(t *testing.T) {
	needPuppet(t)
	c := newCollective(t, collectiveOptions{})
	conf := c.clientConf()
	gate := filepath.Join(c.dir, "gate")
	p, lines := newPuppetNode(t, c, "restart.e2e", `exec { 'wait for the gate':
  command => "/bin/sh -c 'while [ ! -e `+gate+` ]; do sleep 0.05; done; echo through the gate'",
  logoutput => true,
  timeout => 300,
}
`)
	d := c.startDaemon("restart.e2e", lines...)
	waitPuppetReady(t, conf, 1)

	r := mco(t, "", "puppet", "runonce", "-I", "restart.e2e", "-c", conf, "--json")
	reps := decodeCall(t, r).Replies
	if len(reps) != 1 || reps[0].Statuscode != 0 {
		t.Fatalf("runonce: %s\n%s", r.stdout, r.stderr)
	}
	id := strings.Fields(strings.TrimPrefix(reps[0].Data["summary"].(string), "Started a Puppet run as job "))[0]

	// A second run while the first applies gets a clear refusal.
	r = mco(t, "", "puppet", "runonce", "-I", "restart.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; len(reps) != 1 || reps[0].Statuscode == 0 || !strings.Contains(reps[0].Statusmsg, "already applying since") {
		t.Fatalf("second runonce: %s", r.stdout)
	}

	// The daemon stops (as when Puppet restarts it) while the run goes on.
	_ = d.cmd.Process.Signal(os.Interrupt)
	_ = d.cmd.Wait()
	if err := os.WriteFile(gate, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	c.startDaemon("restart.e2e", lines...)

	r = mco(t, "", "job", "results", id, "--wait", "--interval", "200ms", "-c", conf, "--json")
	var res struct {
		Replies []struct {
			Sender string         `json:"sender"`
			Data   map[string]any `json:"data"`
		} `json:"replies"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || len(res.Replies) != 1 {
		t.Fatalf("job results: %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	got := res.Replies[0].Data
	if got["state"] != "finished" || got["exit_code"] != float64(0) || !strings.Contains(got["stdout"].(string), "through the gate") {
		t.Fatalf("job results after the restart: %v", got)
	}
	if _, err := os.Stat(p.summaryFile()); err != nil {
		t.Fatalf("the run wrote no last_run_summary.yaml: %v", err)
	}
	r = mco(t, "", "job", "list", "-c", conf)
	if r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "finished") {
		t.Fatalf("job list: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// The puppet data plugin in an ActionPolicy compound rule, as in
// MCollective's documented policy: rpcutil daemon_stats is allowed only
// while Puppet is disabled on the node (ping always, for startDaemon).
func TestPuppetDataInActionPolicy(t *testing.T) {
	needPuppet(t)
	c := newCollective(t, collectiveOptions{})
	conf := c.clientConf()
	policyDir := filepath.Join(c.dir, "policy")
	writeFile(t, filepath.Join(policyDir, "rpcutil.policy"),
		"policy default deny\nallow\tcert=alice.mcollective\tping\t*\t*\nallow\tcert=alice.mcollective\tdaemon_stats\tpuppet().enabled=false or environment=development\n")
	allowAlice(t, policyDir, "puppet")
	_, lines := newPuppetNode(t, c, "pol.e2e", "notify { 'x': }\n")
	lines = append(lines, "policy.dir = "+policyDir, "audit.disabled = true")
	c.startDaemon("pol.e2e", lines...)
	waitPuppetReady(t, conf, 1)

	r := mco(t, "", "rpc", "rpcutil", "daemon_stats", "-I", "pol.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; len(reps) != 1 || reps[0].Statuscode == 0 {
		t.Fatalf("daemon_stats allowed while Puppet is enabled: %s", r.stdout)
	}
	if r = mco(t, "", "puppet", "disable", "-m", "policy test", "-I", "pol.e2e", "-c", conf); r.code != 0 {
		t.Fatalf("disable: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = mco(t, "", "rpc", "rpcutil", "daemon_stats", "-I", "pol.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; len(reps) != 1 || reps[0].Statuscode != 0 {
		t.Fatalf("daemon_stats denied while Puppet is disabled: %s", r.stdout)
	}
}

// Classes come from Puppet's own classes.txt, located through Puppet's
// settings (the classfile setting of the node's confdir), when the node
// sets no classes file; an explicit classes file still wins. Facts and
// classes a run changes are seen in discovery and ActionPolicy as soon as
// the run ends, not on the fact interval (an hour here).
func TestPuppetClassesAndFactsAfterRun(t *testing.T) {
	needPuppet(t)
	c := newCollective(t, collectiveOptions{})
	conf := c.clientConf()
	policyDir := filepath.Join(c.dir, "policy")
	// daemon_stats only where the webserver class is: the class column
	// of an ActionPolicy rule sees Puppet's classes too.
	writeFile(t, filepath.Join(policyDir, "rpcutil.policy"),
		"policy default deny\nallow\tcert=alice.mcollective\tping\t*\t*\nallow\tcert=alice.mcollective\tdaemon_stats\t*\twebserver\n")
	allowAlice(t, policyDir, "puppet", "job")
	manifestFor := func(dir string) string {
		return "class webserver {\n  file { '" + filepath.Join(dir, "deployed.json") + "': content => '{\"deployed\": \"yes\"}' }\n}\ninclude webserver\n"
	}
	// The fact command reports what the run deployed.
	factCmd := func(dir string) string {
		script := filepath.Join(dir, "facts.sh")
		writeFile(t, script, "#!/bin/sh\ncat "+filepath.Join(dir, "deployed.json")+" 2>/dev/null || echo '{}'\n")
		if err := os.Chmod(script, 0o755); err != nil {
			t.Fatal(err)
		}
		return script
	}
	dir1 := filepath.Join(c.dir, "puppet", "pc1.e2e")
	_, lines1 := newPuppetNode(t, c, "pc1.e2e", manifestFor(dir1))
	lines1 = append(lines1, "facts.command = "+factCmd(dir1), "facts.interval = 1h", "policy.dir = "+policyDir, "audit.disabled = true")
	c.startDaemon("pc1.e2e", lines1...)

	// pc2 ran Puppet before and has its own classes file: that one wins.
	dir2 := filepath.Join(c.dir, "puppet", "pc2.e2e")
	p2, lines2 := newPuppetNode(t, c, "pc2.e2e", manifestFor(dir2))
	if out, err := exec.Command("puppet", "apply", "--confdir", p2.confdir, "--write-catalog-summary", "--color=false", p2.manifest).CombinedOutput(); err != nil {
		t.Fatalf("puppet apply on pc2: %v\n%s", err, out)
	}
	if b, err := os.ReadFile(filepath.Join(dir2, "var", "state", "classes.txt")); err != nil || !strings.Contains(string(b), "webserver") {
		t.Fatalf("puppet wrote no classes.txt with webserver where its settings say: %q %v", b, err)
	}
	explicit := filepath.Join(dir2, "explicit-classes.txt")
	writeFile(t, explicit, "hand_made\n")
	lines2 = append(lines2, "classes = "+explicit, "policy.dir = "+policyDir, "audit.disabled = true")
	c.startDaemon("pc2.e2e", lines2...)
	waitPuppetReady(t, conf, 2)

	find := func(args ...string) string {
		t.Helper()
		r := mco(t, "", append([]string{"find", "-c", conf}, args...)...)
		return strings.Join(strings.Fields(r.stdout), " ")
	}
	if got := find("-C", "webserver"); got != "" {
		t.Fatalf("-C webserver before any run matched %q (pc2's explicit classes file must win)", got)
	}
	if got := find("-C", "hand_made"); got != "pc2.e2e" {
		t.Fatalf("-C hand_made: %q", got)
	}
	if got := find("-F", "deployed=yes"); got != "" {
		t.Fatalf("-F deployed=yes before the run: %q", got)
	}
	r := mco(t, "", "rpc", "rpcutil", "daemon_stats", "-I", "pc1.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; len(reps) != 1 || reps[0].Statuscode == 0 {
		t.Fatalf("daemon_stats allowed without the webserver class: %s", r.stdout)
	}

	r = mco(t, "", "puppet", "runonce", "-I", "pc1.e2e", "-c", conf, "--json")
	reps := decodeCall(t, r).Replies
	if len(reps) != 1 || reps[0].Statuscode != 0 {
		t.Fatalf("runonce: %s\n%s", r.stdout, r.stderr)
	}
	id := strings.Fields(strings.TrimPrefix(reps[0].Data["summary"].(string), "Started a Puppet run as job "))[0]
	if r = mco(t, "", "job", "results", id, "--wait", "--interval", "200ms", "-c", conf); r.code != 0 {
		t.Fatalf("job results: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// Past poll.Deadline: should the change event be missed, the daemon's
	// 30 s safety poll (internal/filewatch) is what reloads it.
	if !poll.Within(time.Minute, func() bool {
		return find("-C", "webserver") == "pc1.e2e" && find("-F", "deployed=yes", "-C", "webserver") == "pc1.e2e"
	}) {
		t.Fatalf("after the run: -C webserver %q, -F deployed=yes %q", find("-C", "webserver"), find("-F", "deployed=yes"))
	}
	r = mco(t, "", "rpc", "rpcutil", "daemon_stats", "-I", "pc1.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; len(reps) != 1 || reps[0].Statuscode != 0 {
		t.Fatalf("daemon_stats denied with the webserver class: %s", r.stdout)
	}
	// Puppet's own "settings" class is in classes.txt too, as in MCollective.
	if got := find("-C", "settings"); got != "pc1.e2e" {
		t.Fatalf("-C settings: %q", got)
	}
}

// runJob starts a Puppet run through mco puppet runonce and returns the
// job's results once it ended.
func runJob(t *testing.T, conf, node string, flags ...string) (string, map[string]any) {
	t.Helper()
	r := mco(t, "", append([]string{"puppet", "runonce", "-I", node, "-c", conf, "--json"}, flags...)...)
	reps := decodeCall(t, r).Replies
	if len(reps) != 1 || reps[0].Statuscode != 0 {
		t.Fatalf("runonce %v: %s\n%s", flags, r.stdout, r.stderr)
	}
	id := strings.Fields(strings.TrimPrefix(reps[0].Data["summary"].(string), "Started a Puppet run as job "))[0]
	r = mco(t, "", "job", "results", id, "--wait", "--interval", "200ms", "-c", conf, "--json")
	var res struct {
		Replies []struct {
			Data map[string]any `json:"data"`
		} `json:"replies"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || r.code != 0 || len(res.Replies) != 1 {
		t.Fatalf("job results: %d %v\n%s\n%s", r.code, err, r.stdout, r.stderr)
	}
	return id, res.Replies[0].Data
}

// --ignoreschedules (an input our puppet DDL adds to the published one)
// reaches puppet: a resource whose schedule never matches is applied only
// with it.
func TestPuppetRunonceIgnoreschedules(t *testing.T) {
	needPuppet(t)
	c := newCollective(t, collectiveOptions{})
	conf := c.clientConf()
	p, lines := newPuppetNode(t, c, "sched.e2e", "schedule { 'never': period => never }\nnotify { 'scheduled resource applied': schedule => 'never' }\n")
	c.startDaemon("sched.e2e", lines...)
	waitPuppetReady(t, conf, 1)

	_, got := runJob(t, conf, "sched.e2e")
	if got["exit_code"] != float64(0) || strings.Contains(got["stdout"].(string), "scheduled resource applied") {
		t.Fatalf("run without --ignoreschedules: %v", got)
	}
	id, got := runJob(t, conf, "sched.e2e", "--ignoreschedules")
	if got["exit_code"] != float64(0) || !strings.Contains(got["stdout"].(string), "scheduled resource applied") {
		t.Fatalf("run with --ignoreschedules: %v", got)
	}
	b, err := os.ReadFile(filepath.Join(p.dir, "jobs", id, "job.json"))
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Argv []string `json:"argv"`
	}
	if err := json.Unmarshal(b, &spec); err != nil || !slices.Contains(spec.Argv, "--ignoreschedules") {
		t.Fatalf("job argv %q (%v)", spec.Argv, err)
	}
}

// mco puppet resource TYPE NAME property=value changes a resource through
// the real puppet resource; properties are validated by the client and
// again by the node, and the node's resource type lists are enforced.
func TestPuppetResourceChange(t *testing.T) {
	needPuppet(t)
	c := newCollective(t, collectiveOptions{})
	conf := c.clientConf()
	p, lines := newPuppetNode(t, c, "res.e2e", "notify { 'x': }\n")
	lines = append(lines, "puppet.resource.allow = file, notify", "puppet.resource.deny = exec")
	c.startDaemon("res.e2e", lines...)
	waitPuppetReady(t, conf, 1)

	target := filepath.Join(p.dir, "motd")
	r := mco(t, "", "puppet", "resource", "file", target, "ensure=file", "content=managed from the collective", "-I", "res.e2e", "-c", conf, "--json")
	reps := decodeCall(t, r).Replies
	if r.code != 0 || len(reps) != 1 || reps[0].Statuscode != 0 || reps[0].Data["changed"] != true {
		t.Fatalf("resource change: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(target); err != nil || string(b) != "managed from the collective" {
		t.Fatalf("%s after the change: %q %v", target, b, err)
	}
	r = mco(t, "", "puppet", "resource", "file", target, "ensure=file", "content=managed from the collective", "-I", "res.e2e", "-c", conf)
	if r.code != 0 || !strings.Contains(r.stdout, "No Change") {
		t.Fatalf("resource in sync: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}

	// A denied type is refused by the node, clearly.
	r = mco(t, "", "puppet", "resource", "exec", "/bin/true", "timeout=5", "-I", "res.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; r.code == 0 || len(reps) != 1 || !strings.Contains(reps[0].Statusmsg, "resource type exec is denied on this node (puppet.resource.deny)") {
		t.Fatalf("denied type: %d\n%s", r.code, r.stdout)
	}
	// Bad properties never leave the client...
	for _, bad := range []string{"Ensure=file", "content", "name=x", "path=/etc/motd"} {
		r = mco(t, "", "puppet", "resource", "file", target, bad, "-I", "res.e2e", "-c", conf)
		if r.code != 1 || !strings.Contains(r.stderr, "resource property") {
			t.Fatalf("client accepted %q: %d\n%s\n%s", bad, r.code, r.stdout, r.stderr)
		}
	}
	// ...and a client that skips the checks meets the node's.
	cl := c.connect(conf)
	var got []client.Result
	_, _ = cl.Call(context.Background(), client.Request{
		Agent: "puppet", Action: "resource", Targets: []string{"res.e2e"}, Timeout: 30 * time.Second,
		Data: map[string]any{"type": "file", "name": target, "content": "two\nlines"},
	}, func(r client.Result) { got = append(got, r) })
	if len(got) != 1 || got[0].Status != protocol.InvalidData || !strings.Contains(got[0].Message, "newlines") {
		t.Fatalf("node accepted a newline in a property: %+v", got)
	}
	if b, _ := os.ReadFile(target); string(b) != "managed from the collective" {
		t.Fatalf("%s changed by a refused request: %q", target, b)
	}
	// Undeclared inputs stay refused on every other action.
	got = nil
	_, _ = cl.Call(context.Background(), client.Request{
		Agent: "puppet", Action: "status", Targets: []string{"res.e2e"}, Timeout: 30 * time.Second,
		Data: map[string]any{"ensure": "file"},
	}, func(r client.Result) { got = append(got, r) })
	if len(got) != 1 || got[0].Status != protocol.InvalidData || !strings.Contains(got[0].Message, "unknown input") {
		t.Fatalf("status accepted an undeclared input: %+v", got)
	}

	// A resource the catalog manages under another title (resources.txt
	// says file[motd-entry]) is refused by its path once the node's watcher
	// saw the run's resources.txt and cached catalog; the catalog is cached
	// the way puppet agent caches it (puppet apply would otherwise not).
	managed := filepath.Join(p.dir, "managed-motd")
	if err := os.WriteFile(p.manifest, []byte("file { 'motd-entry': path => '"+managed+"', content => 'from the catalog' }\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("puppet", "apply", "--confdir", p.confdir, "--write-catalog-summary", "--catalog_cache_terminus", "json", "--color=false", p.manifest).CombinedOutput(); err != nil {
		t.Fatalf("puppet apply: %v\n%s", err, out)
	}
	poll.UntilWithin(t, time.Minute, "the managed file refused by path", func() bool {
		// mode=0644 changes nothing while the node has not caught up.
		r = mco(t, "", "puppet", "resource", "file", managed, "mode=0644", "-I", "res.e2e", "-c", conf, "--json")
		reps := decodeCall(t, r).Replies
		return len(reps) == 1 && strings.Contains(reps[0].Statusmsg, "file["+managed+"] is managed by Puppet's catalog")
	})
	r = mco(t, "", "puppet", "resource", "file", managed, "ensure=absent", "-I", "res.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; r.code == 0 || len(reps) != 1 || !strings.Contains(reps[0].Statusmsg, "is managed by Puppet's catalog") {
		t.Fatalf("managed file by path: %d\n%s", r.code, r.stdout)
	}
	if b, err := os.ReadFile(managed); err != nil || string(b) != "from the catalog" {
		t.Fatalf("managed file after a refused change: %q %v", b, err)
	}
	// An unmanaged file beside it is changed.
	beside := filepath.Join(p.dir, "beside")
	r = mco(t, "", "puppet", "resource", "file", beside, "ensure=file", "content=unmanaged", "-I", "res.e2e", "-c", conf, "--json")
	if reps := decodeCall(t, r).Replies; r.code != 0 || len(reps) != 1 || reps[0].Data["changed"] != true {
		t.Fatalf("unmanaged file beside a managed one: %d\n%s", r.code, r.stdout)
	}
}
