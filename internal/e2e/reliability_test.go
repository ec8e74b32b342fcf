package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/marionette/mco/client"
	"github.com/marionette/mco/internal/broker"
	"github.com/marionette/mco/internal/natstest"
	"github.com/marionette/mco/internal/pki"
	"github.com/marionette/mco/internal/poll"
	"github.com/marionette/mco/internal/security"
)

// The tests in this file cover a cluster of brokers and reliability: failover between clustered brokers, a broker restart under
// a daemon and an audit collector, and a burst of requests.

// TestBrokerClusterFailover runs three `mco broker run` processes joined into
// one NATS cluster. Nodes on broker A answer a client on broker C; when the
// broker that a multi-broker node and a multi-broker client are connected to
// is killed, both move to a surviving broker and every node answers again. A
// node certificate cannot join the cluster as a route.
func TestBrokerClusterFailover(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	names := []string{"a", "b", "c"}
	routePorts, routes := natstest.MeshRoutes(t, names...)
	brokers := map[string]*runningBroker{}
	for _, n := range names {
		brokers[n] = startNamedBroker(t, c, "broker-"+n, 0,
			"cluster.name = e2e",
			fmt.Sprintf("cluster.listen = 127.0.0.1:%d", routePorts[n]),
			"cluster.routes = "+strings.Join(routes[n], ", "))
	}
	a, b, cc := brokers["a"], brokers["b"], brokers["c"]
	for _, br := range brokers {
		waitUntil(t, br.name+" to route to both peers", func() bool { return br.numRoutes(t) == 2 })
	}

	onC := confFor(t, c, "alice.mcollective", cc.url)
	all := confFor(t, c, "alice.mcollective", strings.Join([]string{a.url, b.url, cc.url}, ", "))
	nodes := []string{"one.e2e", "two.e2e", "three.e2e"}
	// one and three know only broker A; two knows B and C.
	runDaemon(t, c, a.url, nodes[0], onC)
	runDaemon(t, c, b.url+", "+cc.url, nodes[1], onC)
	runDaemon(t, c, a.url, nodes[2], onC)
	if r := mco(t, "", "-c", onC, "ping"); r.code != 0 || !containsAll(r.stdout, nodes) {
		t.Fatalf("mco ping through broker C: exit %d, want every node\n%s%s", r.code, r.stdout, r.stderr)
	}

	// The victim is the broker node two is on; a long-lived client that
	// lists every broker is placed there too so its failover is exercised.
	var victim, survivor *runningBroker
	waitUntil(t, "node two on broker B or C", func() bool {
		for _, br := range []*runningBroker{b, cc} {
			if br.connections(t, nodes[1]) == 1 {
				victim = br
			}
		}
		return victim != nil
	})
	survivor = b
	if victim == b {
		survivor = cc
	}
	c.client("steady.mcollective")
	steadyAll := confFor(t, c, "steady.mcollective", strings.Join([]string{a.url, b.url, cc.url}, ", "))
	steady := connectTo(t, steadyAll, "mco client steady.mcollective", victim, []*runningBroker{a, survivor})

	if err := victim.p.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-victim.p.done
	waitUntil(t, "the long-lived client to see every node after "+victim.name+" died", func() bool {
		return containsAll(strings.Join(broadcastPing(steady), " "), nodes)
	})
	waitUntil(t, "mco ping with every broker listed to see every node", func() bool {
		r := mco(t, "", "-c", all, "ping")
		return r.code == 0 && containsAll(r.stdout, nodes)
	})
	// Node two may land on A although its configuration names only B and
	// C: NATS clients also learn cluster members from the brokers' INFO.
	if n := survivor.connections(t, nodes[1]) + a.connections(t, nodes[1]); n != 1 {
		t.Errorf("node two has %d connections on the surviving brokers, want 1", n)
	}

	// A node certificate dialing A's route port is refused by onlyBrokers.
	t.Run("node certificate cannot join as a route", func(t *testing.T) {
		rogue := startRogueRoute(t, c, nodes[0], routePorts["a"])
		a.p.waitStderr(t, "only brokers may join the cluster")
		if rogue.NumRoutes() != 0 {
			t.Errorf("the rogue broker has %d routes", rogue.NumRoutes())
		}
		if n := a.numRoutes(t); n != 1 {
			t.Errorf("broker A has %d routes, want 1 (the surviving peer)", n)
		}
	})
}

// TestBrokerRestartKeepsNodesAndAudit runs one broker process and a daemon
// with a local audit log; the broker stops cleanly on SIGTERM and restarts on
// the same port, the daemon reconnects by itself, requests keep working, and
// the local audit log verifies and holds every answered request.
func TestBrokerRestartKeepsNodesAndAudit(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	port := natstest.FreePort(t)
	br := startNamedBroker(t, c, "broker", port)
	alice := confFor(t, c, "alice.mcollective", br.url)
	node := "restarted.e2e"
	local := filepath.Join(c.dir, "restarted.log")
	runDaemon(t, c, br.url, node, alice, "audit.log = "+local)

	answered := callMany(t, c, alice, node, 5)
	restartBroker(t, c, br, port)
	waitUntil(t, "the daemon to answer mco ping after the restart", func() bool {
		r := mco(t, "", "-c", alice, "ping")
		return r.code == 0 && strings.Contains(r.stdout, node)
	})
	answered = append(answered, callMany(t, c, alice, node, 5)...)

	if r := mco(t, "", "audit", "verify", local); r.code != 0 {
		t.Fatalf("local audit log does not verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	for _, id := range answered {
		waitForAudit(t, local, func(m map[string]any) bool { return m["kind"] == "complete" && m["request_id"] == id })
	}
}

// TestBrokerRestartLosesNoCentralAuditLine checks that a broker restart
// loses no audit line for central collection: `mco audit collect` runs, the
// broker restarts, and the collector happens to reconnect after the node
// (SIGSTOP/SIGCONT makes that ordering deterministic; with the transport's
// 0.5-1.5 s jittered reconnect it happens by itself about half the time).
// Core NATS drops the node's lines published while no collector is
// subscribed; the collector sees the gap and fetches the missing lines from
// the node's log with `audit lines`, which the node's policy allows it. The
// collected file must end up with every line of the node's local log.
func TestBrokerRestartLosesNoCentralAuditLine(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	c.client("collector.mcollective")
	port := natstest.FreePort(t)
	br := startNamedBroker(t, c, "broker", port, "collectors = collector.mcollective")
	alice := confFor(t, c, "alice.mcollective", br.url)
	collectorConf := confFor(t, c, "collector.mcollective", br.url)
	dir := filepath.Join(c.dir, "central")
	col := startProcess(t, "collector", "", "-c", collectorConf, "audit", "collect", "--dir", dir, "-v")
	col.waitStderr(t, "collecting audit lines")
	node := "collected.e2e"
	local := filepath.Join(c.dir, "collected.log")
	runDaemon(t, c, br.url, node, alice, append(collectorPolicy(t, c), "audit.log = "+local)...)
	callMany(t, c, alice, node, 3)

	if err := col.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = col.cmd.Process.Signal(syscall.SIGCONT) })
	restartBroker(t, c, br, port, "collectors = collector.mcollective")
	waitUntil(t, "the daemon to answer after the restart", func() bool { return pingOK(c.connect(alice), node) })
	callMany(t, c, alice, node, 3)
	if err := col.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	col.waitStderr(t, "reconnected to broker")
	callMany(t, c, alice, node, 3)

	collected := filepath.Join(dir, node+".log")
	missing := waitCollected(t, local, collected)
	if len(missing) > 0 {
		t.Errorf("the collected log lacks %d of the node's audit lines after a broker restart; first missing:\n%s",
			len(missing), missing[0])
	}
	if r := mco(t, "", "audit", "verify", collected); r.code != 0 {
		t.Errorf("collected audit log does not verify: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if log := col.stderrText(); !strings.Contains(log, "audit gap filled") {
		t.Errorf("the collector did not report filling the gap:\n%s", log)
	}
}

// TestRequestBurst sends 200 concurrent requests to three daemons through one
// client: every reply arrives, and each daemon's counters agree (every
// dispatched request was answered, nothing dropped).
func TestRequestBurst(t *testing.T) {
	c := newCollective(t, collectiveOptions{})
	nodes := []string{"burst1.e2e", "burst2.e2e", "burst3.e2e"}
	for _, n := range nodes {
		c.startDaemon(n)
	}
	cl := c.connect(c.clientConf())
	before := daemonStats(t, cl, nodes)

	const requests = 200
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		failures []string
	)
	for i := range requests {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ok := 0
			st, err := cl.Call(context.Background(), client.Request{Agent: "rpcutil", Action: "ping", Targets: nodes, Timeout: 30 * time.Second},
				func(r client.Result) {
					if r.OK() {
						ok++
					}
				})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				failures = append(failures, fmt.Sprintf("request %d: %v", i, err))
			case ok != len(nodes) || len(st.NoResponse) > 0:
				failures = append(failures, fmt.Sprintf("request %d: %d OK replies, no response from %v", i, ok, st.NoResponse))
			}
		}()
	}
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests lacked replies; first: %s", len(failures), requests, failures[0])
	}

	after := daemonStats(t, cl, nodes)
	for _, n := range nodes {
		b, a := before[n], after[n]
		// Each snapshot counts its own daemon_stats request as passed but
		// not yet replied; the first snapshot's reply lands in the second.
		want := float64(requests + 1)
		if a["passed"]-b["passed"] != want || a["replies"]-b["replies"] != want || a["replies"] != a["passed"]-1 {
			t.Errorf("%s: passed %v→%v, replies %v→%v; want both to grow by %v and replies = passed-1",
				n, b["passed"], a["passed"], b["replies"], a["replies"], want)
		}
		for _, k := range []string{"dropped", "publish_error", "audit_errors", "unvalidated", "ttlexpired"} {
			if a[k] != 0 {
				t.Errorf("%s: %s = %v after the burst, want 0", n, k, a[k])
			}
		}
	}
}

// restartBroker stops br with SIGTERM, requires a clean exit (status 0,
// within 10 s: shutdown on SIGINT/SIGTERM is clean), and starts it again
// on the same port with the same extra configuration; br then describes the
// new process.
func restartBroker(t *testing.T, c *collective, br *runningBroker, port int, extra ...string) {
	t.Helper()
	if err := br.p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-br.p.done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s still running 10s after SIGTERM:\n%s", br.name, br.p.stderrText())
	}
	if code := br.p.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("%s exit status %d after SIGTERM, want 0:\n%s", br.name, code, br.p.stderrText())
	}
	again := startNamedBroker(t, c, br.name, port, extra...)
	if again.url != br.url {
		t.Fatalf("restarted %s at %s, want %s", br.name, again.url, br.url)
	}
	*br = *again
}

// runningBroker is a `mco broker run` process with its monitoring endpoint.
type runningBroker struct {
	name    string
	url     string
	monitor string // host:port
	p       *process
}

// startNamedBroker runs `mco broker run` with NAME.conf (the collective's
// broker certificate, listen port (0: random), a monitoring port and extra
// lines) and waits for its "broker ready" line.
func startNamedBroker(t *testing.T, c *collective, name string, port int, extra ...string) *runningBroker {
	t.Helper()
	return startBrokerAs(t, c, name, "broker.e2e", port, extra...)
}

// startBrokerAs is startNamedBroker with the broker certificate certname.
func startBrokerAs(t *testing.T, c *collective, name, certname string, port int, extra ...string) *runningBroker {
	t.Helper()
	br := &runningBroker{name: name, monitor: fmt.Sprintf("127.0.0.1:%d", natstest.FreePort(t))}
	conf := filepath.Join(c.dir, name+".conf")
	writeFile(t, conf, fmt.Sprintf("listen = 127.0.0.1:%d\nmonitor = %s\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\n%s\n",
		port, br.monitor, c.store.CACertPath(), c.store.CertPath(certname), c.store.KeyPath(certname), strings.Join(extra, "\n")))
	br.p = startProcess(t, name, "", "broker", "run", "-c", conf)
	log := br.p.waitStderr(t, "broker ready")
	re := regexp.MustCompile(`broker ready.* url=(\S+)`)
	sc := bufio.NewScanner(strings.NewReader(log))
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			br.url = m[1]
			return br
		}
	}
	t.Fatalf("no URL in %s's ready line:\n%s", name, log)
	return nil
}

// monitorGet decodes a NATS monitoring endpoint's JSON.
func (br *runningBroker) monitorGet(t *testing.T, path string, into any) {
	t.Helper()
	resp, err := http.Get("http://" + br.monitor + path)
	if err != nil {
		t.Fatalf("%s monitor %s: %v", br.name, path, err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(into); err != nil {
		t.Fatalf("%s monitor %s: %v", br.name, path, err)
	}
}

// numRoutes is the number of peer brokers the broker has routes to (NATS
// pools several route connections per peer).
func (br *runningBroker) numRoutes(t *testing.T) int {
	t.Helper()
	var rz struct {
		Routes []struct {
			RemoteID string `json:"remote_id"`
		} `json:"routes"`
	}
	br.monitorGet(t, "/routez", &rz)
	peers := map[string]bool{}
	for _, r := range rz.Routes {
		peers[r.RemoteID] = true
	}
	return len(peers)
}

// connections counts the broker's open connections with this name.
func (br *runningBroker) connections(t *testing.T, name string) int {
	t.Helper()
	var cz struct {
		Connections []struct {
			Name string `json:"name"`
		} `json:"connections"`
	}
	br.monitorGet(t, "/connz?limit=1024", &cz)
	n := 0
	for _, conn := range cz.Connections {
		if conn.Name == name {
			n++
		}
	}
	return n
}

// connectTo connects clients with conf (which lists several brokers; the
// pick is random) until one lands on want, and returns it.
func connectTo(t *testing.T, conf, connName string, want *runningBroker, others []*runningBroker) *client.Client {
	t.Helper()
	cfg, err := client.ConfigFromFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	for range 30 {
		cl, err := client.Connect(cfg)
		if err != nil {
			t.Fatal(err)
		}
		// A closed attempt may linger in a broker's list for a moment:
		// decide only once exactly one broker shows the name.
		var on *runningBroker
		waitUntil(t, "the client's connection to show on one broker", func() bool {
			on = nil
			count := 0
			for _, br := range append([]*runningBroker{want}, others...) {
				if n := br.connections(t, connName); n > 0 {
					on, count = br, count+n
				}
			}
			return count == 1
		})
		if on == want {
			t.Cleanup(cl.Close)
			return cl
		}
		cl.Close()
	}
	t.Fatalf("no client connection landed on %s in 30 tries", want.name)
	return nil
}

// startRogueRoute starts an in-process broker that uses node's certificate
// and routes to 127.0.0.1:routePort.
func startRogueRoute(t *testing.T, c *collective, node string, routePort int) *broker.Broker {
	t.Helper()
	id, err := security.LoadIdentity(c.store.CertPath(node), c.store.KeyPath(node))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.ReadCert(c.store.CACertPath())
	if err != nil {
		t.Fatal(err)
	}
	v, err := security.NewVerifier(security.VerifierOptions{CA: ca})
	if err != nil {
		t.Fatal(err)
	}
	rogue, err := broker.Start(broker.Options{Identity: id, Verifier: v, Listen: "127.0.0.1:0", ClusterName: "e2e",
		ClusterListen: "127.0.0.1:0", Routes: []string{fmt.Sprintf("nats-route://127.0.0.1:%d", routePort)}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(rogue.Shutdown)
	return rogue
}

// containsAll reports whether s mentions every name.
func containsAll(s string, names []string) bool {
	for _, n := range names {
		if !strings.Contains(s, n) {
			return false
		}
	}
	return true
}

// broadcastPing returns the senders of trusted replies to a broadcast ping.
func broadcastPing(cl *client.Client) []string {
	var senders []string
	_, _ = cl.Call(context.Background(), client.Request{Agent: "rpcutil", Action: "ping", Timeout: 2 * time.Second, Quiet: 300 * time.Millisecond},
		func(r client.Result) {
			if r.OK() {
				senders = append(senders, r.Sender)
			}
		})
	return senders
}

// callMany makes n directed pings to node with a fresh client of conf (closed
// when the test ends) and returns the ids of the requests that were answered (all of them, or the
// test fails).
func callMany(t *testing.T, c *collective, conf, node string, n int) []string {
	t.Helper()
	cl := c.connect(conf)
	var ids []string
	for range n {
		ok := false
		st, err := cl.Call(context.Background(), client.Request{Agent: "rpcutil", Action: "ping", Targets: []string{node}, Timeout: 10 * time.Second},
			func(r client.Result) { ok = ok || r.OK() })
		if err != nil || !ok {
			t.Fatalf("ping %s: answered %v, err %v", node, ok, err)
		}
		ids = append(ids, st.RequestID)
	}
	return ids
}

// waitCollected waits until every line of the node's local audit log is in
// the collected log and returns the lines still missing when it gave up.
func waitCollected(t *testing.T, local, collected string) []string {
	t.Helper()
	var missing []string
	poll.Wait(func() bool {
		missing = missingLines(t, local, collected)
		return len(missing) == 0
	})
	return missing
}

// missingLines returns the lines of the local log that the collected file
// lacks.
func missingLines(t *testing.T, local, collected string) []string {
	t.Helper()
	want, err := os.ReadFile(local)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(collected)
	have := strings.Split(string(got), "\n")
	var missing []string
	for _, line := range strings.Split(strings.TrimSuffix(string(want), "\n"), "\n") {
		if !slices.Contains(have, line) {
			missing = append(missing, line)
		}
	}
	return missing
}

// daemonStats asks each node for rpcutil daemon_stats and returns the numeric
// counters; "dropped" is the sum of every drop reason.
func daemonStats(t *testing.T, cl *client.Client, nodes []string) map[string]map[string]float64 {
	t.Helper()
	out := map[string]map[string]float64{}
	_, err := cl.Call(context.Background(), client.Request{Agent: "rpcutil", Action: "daemon_stats", Targets: nodes, Timeout: 10 * time.Second},
		func(r client.Result) {
			if !r.OK() {
				return
			}
			m := map[string]float64{}
			for k, v := range r.Data {
				switch v := v.(type) {
				case float64:
					m[k] = v
				case map[string]any:
					if k == "dropped" {
						for _, d := range v {
							f, _ := d.(float64)
							m[k] += f
						}
					}
				}
			}
			out[r.Sender] = m
		})
	if err != nil || len(out) != len(nodes) {
		t.Fatalf("daemon_stats: %d of %d nodes answered, err %v", len(out), len(nodes), err)
	}
	return out
}
