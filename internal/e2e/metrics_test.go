package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/marionette/mco/internal/transport"
	"github.com/marionette/mco/protocol"
)

// scrape fetches a Prometheus text page into series -> value.
func scrape(t *testing.T, url string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET %s: %s %s", url, resp.Status, resp.Header.Get("Content-Type"))
	}
	body, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(string(body)))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if i < 0 || err != nil {
			t.Fatalf("%s: not a sample line: %q", url, line)
		}
		out[line[:i]] = v
	}
	return out
}

var metricsURL = regexp.MustCompile(`metrics listening.* url=(\S+)`)

// TestMetricsThroughProcesses runs `mco broker run` and `mco server run`
// with metrics.listen and scrapes both while real requests flow: allowed,
// denied, for an unknown agent, forged (dropped), and a revoked client's
// connection dropped by the broker.
func TestMetricsThroughProcesses(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	conf := filepath.Join(c.dir, "broker-metrics.conf")
	writeFile(t, conf, fmt.Sprintf("listen = 127.0.0.1:0\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\nmetrics.listen = 127.0.0.1:0\nsecurity.revocation_file = %s\n",
		c.store.CACertPath(), c.store.CertPath("broker.e2e"), c.store.KeyPath("broker.e2e"), c.store.RevokedPath()))
	bp := startProcess(t, "broker", "", "broker", "run", "-c", conf)
	blog := bp.waitStderr(t, "broker ready")
	m := metricsURL.FindStringSubmatch(blog)
	u := regexp.MustCompile(`broker ready.* url=(\S+)`).FindStringSubmatch(blog)
	if m == nil || u == nil {
		t.Fatalf("broker log lacks its metrics or client URL:\n%s", blog)
	}
	brokerMetrics, brokerURL := m[1], u[1]

	// External agents: the example greeter, and one that always fails.
	failing := t.TempDir()
	writeAgent(t, failing, "failer", agentDDL("failer", "run", 5), "#!/bin/sh\nexit 3\n")
	libdirs := "libdir = " + examplesLibdir(t) + "," + failing
	alice := confFor(t, c, "alice.mcollective", brokerURL, libdirs)
	dir := filepath.Join(c.dir, "nodes", "node1.e2e")
	for _, allowed := range []string{"rpcutil", "greeter", "failer"} {
		writeFile(t, filepath.Join(dir, "policy", allowed+".policy"), "policy default allow\n")
	}
	writeFile(t, filepath.Join(dir, "policy", "service.policy"), "policy default deny\n")
	// Agents are resolved after ActionPolicy (a denied caller cannot
	// enumerate them): alice must be allowed nosuchagent to be told it is
	// unknown.
	writeFile(t, filepath.Join(dir, "policy", "nosuchagent.policy"), "policy default allow\n")
	nodeLog := filepath.Join(dir, "server.log")
	runDaemon(t, c, brokerURL, "node1.e2e", alice, "metrics.listen = 127.0.0.1:0", "log.file = "+nodeLog,
		"policy.dir = "+filepath.Join(dir, "policy"), libdirs)
	data, _ := os.ReadFile(nodeLog)
	m = metricsURL.FindStringSubmatch(string(data))
	if m == nil {
		t.Fatalf("node log lacks the metrics URL:\n%s", data)
	}
	nodeMetrics := m[1]

	before := scrape(t, nodeMetrics)[`mco_requests_total{agent="rpcutil",action="ping",status="ok"}`]
	for i := 0; i < 2; i++ {
		if r := mco(t, "", "-c", alice, "rpc", "rpcutil", "ping", "-I", "node1.e2e"); r.code != 0 {
			t.Fatalf("rpc ping: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
	}
	mco(t, "", "-c", alice, "rpc", "service", "status", "service=ssh", "-I", "node1.e2e")
	mco(t, "", "-c", alice, "rpc", "nosuchagent", "x", "-I", "node1.e2e", "-t", "5s")
	if r := mco(t, "", "-c", alice, "rpc", "greeter", "hello", "name=metrics", "-I", "node1.e2e"); r.code != 0 {
		t.Fatalf("rpc greeter: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	mco(t, "", "-c", alice, "rpc", "failer", "run", "-I", "node1.e2e")

	// A forged request (mallory signing as bob) through the same broker.
	mallory := rawCallerAt(t, c, "mallory.mcollective", brokerURL)
	mallory.send(t, "node1.e2e", "cert=bob.mcollective")
	waitUntil(t, "the forged request's drop", func() bool {
		return scrape(t, nodeMetrics)[`mco_requests_dropped_total{reason="caller_mismatch"}`] == 1
	})

	node := scrape(t, nodeMetrics)
	for series, want := range map[string]float64{
		`mco_requests_total{agent="rpcutil",action="ping",status="ok"}`:                    before + 2,
		`mco_requests_total{agent="service",action="status",status="aborted"}`:             1,
		`mco_requests_total{agent="(unknown)",action="(unknown)",status="unknown_action"}`: 1,
		`mco_authorization_denied_total`:                                                   1,
		`mco_requests_dropped_total{reason="caller_mismatch"}`:                             1,
		`mco_requests_dropped_total{reason="bad_signature"}`:                               0,
		`mco_audit_write_failures_total`:                                                   0,
		`mco_external_agent_runs_total{agent="greeter"}`:                                   1,
		`mco_external_agent_runs_total{agent="failer"}`:                                    1,
		`mco_external_agent_failures_total{agent="failer"}`:                                1,
	} {
		if got, ok := node[series]; !ok || got != want {
			t.Errorf("node %s = %v (present %v), want %v", series, got, ok, want)
		}
	}
	for _, series := range []string{
		`mco_action_duration_seconds_count{agent="rpcutil",action="ping"}`,
		`mco_audit_writes_total`,
		`mco_messages_received_total`,
	} {
		if node[series] < 2 {
			t.Errorf("node %s = %v, want at least 2", series, node[series])
		}
	}
	if _, ok := node[`mco_fact_reloads_total`]; !ok {
		t.Error("node exposes no mco_fact_reloads_total")
	}
	found := false
	for series := range node {
		found = found || strings.HasPrefix(series, "mco_build_info{version=")
	}
	if !found {
		t.Error("node exposes no mco_build_info")
	}

	// The broker: connections by role, traffic, and a revoked client's
	// connection dropped without a restart.
	carol := rawCallerAt(t, c, "carol.mcollective", brokerURL)
	broker := scrape(t, brokerMetrics)
	if broker[`mco_broker_connections{role="node"}`] < 1 || broker[`mco_broker_connections{role="client"}`] < 2 {
		t.Errorf("broker connections: node %v client %v", broker[`mco_broker_connections{role="node"}`], broker[`mco_broker_connections{role="client"}`])
	}
	for _, series := range []string{"mco_broker_messages_received_total", "mco_broker_messages_sent_total", "mco_broker_bytes_received_total", "mco_broker_bytes_sent_total"} {
		if broker[series] <= 0 {
			t.Errorf("broker %s = %v", series, broker[series])
		}
	}
	if _, ok := broker["mco_broker_slow_consumers_total"]; !ok {
		t.Error("broker exposes no mco_broker_slow_consumers_total")
	}
	if r := mco(t, "", "pki", "revoke", "carol.mcollective", "--dir", c.store.Dir); r.code != 0 {
		t.Fatalf("pki revoke: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	waitUntil(t, "the broker to drop carol's connection", func() bool {
		return scrape(t, brokerMetrics)["mco_broker_revoked_connections_dropped_total"] == 1
	})
	_ = carol
}

// rawCallerAt is newRawCaller on another broker.
func rawCallerAt(t *testing.T, c *collective, name, url string) *rawCaller {
	t.Helper()
	id, roots := c.clientTLS(t, name)
	nc, err := transport.Dial(transport.Options{Brokers: []string{url}, Identity: id, Roots: roots, Name: "e2e raw " + name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync(protocol.ReplyPrefix("mcollective", protocol.CallerHash(name)) + ".>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return &rawCaller{id: id, nc: nc, sub: sub}
}
