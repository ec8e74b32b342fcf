package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/marionette/mco/internal/pki"
)

// The tests in this file cover registration and the inventory
// discovery method through real processes: a broker with a collectors
// list, daemons announcing themselves, `mco registration collect`, `mco find
// --dm inventory`, `mco rpc --dm inventory` and `mco nodes`.

// TestRegistrationInventory: two daemons announce themselves (web1 every
// second, db1 hourly so its facts change can only arrive by the on-change
// path); the collector stores both; inventory discovery filters them
// locally; a stopped node is reported as not responding and, after three of
// its intervals, as SILENT.
func TestRegistrationInventory(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	c.client("collector.mcollective")
	brokerURL := startBrokerProcess(t, c, "collectors = collector.mcollective")
	inv := filepath.Join(c.dir, "inventory")
	alice := confFor(t, c, "alice.mcollective", brokerURL, "registration.dir = "+inv)
	collector := confFor(t, c, "collector.mcollective", brokerURL)

	// A client that is not a collector is refused, with the reason.
	r := mco(t, "", "-c", alice, "registration", "collect", "--dir", filepath.Join(c.dir, "refused"))
	if r.code == 0 || !strings.Contains(r.stderr, "collectors") {
		t.Fatalf("collect as a non-collector: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	col := startProcess(t, "collector", "", "-c", collector, "registration", "collect", "--dir", inv)
	col.waitStderr(t, "collecting registrations")

	web := startRegisteringDaemon(t, c, brokerURL, "web1.e2e", alice, "role: web\n", "registration.interval = 1s")
	dbFacts := "role: db\n"
	startRegisteringDaemon(t, c, brokerURL, "db1.e2e", alice, dbFacts, "registration.interval = 1h")

	for _, n := range []string{"web1.e2e", "db1.e2e"} {
		rec := waitForRecord(t, inv, n, func(rec storedRecord) bool { return true })
		if !slices.Contains(rec.Agents, "rpcutil") || rec.Version == "" || !slices.Contains(rec.Collectives, "mcollective") || rec.LastSeen.IsZero() {
			t.Errorf("stored announcement of %s is incomplete: %+v", n, rec)
		}
	}

	r = mco(t, "", "-c", alice, "find", "--dm", "inventory", "-F", "role=web")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "web1.e2e" {
		t.Fatalf("find --dm inventory -F role=web: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// Data functions cannot be evaluated from the store: three-valued logic
	// (issue 8). "unknown or true" is true: db1 is selected, known; web1's
	// outcome is unknown, so it is addressed and decides itself (-v says so).
	r = mco(t, "", "-c", alice, "find", "--dm", "inventory", "-S", "role=db or fstat('/etc/hostname').size>0", "-v")
	if r.code != 0 || !strings.Contains(r.stdout, "db1.e2e") || !strings.Contains(r.stdout, "web1.e2e") || !strings.Contains(r.stderr, "could not be decided from the inventory for 1 nodes") {
		t.Fatalf("find --dm inventory with a data function: exit %d, want both nodes, web1 undecided\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// "unknown and false" is false: db1 is not selected.
	r = mco(t, "", "-c", alice, "find", "--dm", "inventory", "-S", "fstat('/etc/hosts').size>0 and role=web")
	if r.code != 0 || strings.TrimSpace(r.stdout) != "web1.e2e" {
		t.Fatalf("find --dm inventory -S 'fstat(...) and role=web': exit %d, want web1.e2e only\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// The issue's example: the live nodes with role=web match, so does the inventory.
	r = mco(t, "", "-c", alice, "rpc", "rpcutil", "ping", "--dm", "inventory", "-S", "fstat('/etc/hosts').size>0 or role=web")
	if !strings.Contains(r.stdout, "web1.e2e") {
		t.Fatalf("rpc --dm inventory -S 'fstat(...) or role=web': exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	r = mco(t, "", "-c", alice, "nodes")
	if r.code != 0 || !strings.Contains(r.stdout, "web1.e2e") || !strings.Contains(r.stdout, "db1.e2e") || strings.Contains(r.stdout, "SILENT") {
		t.Fatalf("mco nodes: exit %d, want both nodes, none silent\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	// A facts change is announced at once (db1's interval is an hour).
	writeFile(t, filepath.Join(c.dir, "nodes", "db1.e2e", "facts.yaml"), dbFacts+"tier: gold\n")
	waitForRecord(t, inv, "db1.e2e", func(rec storedRecord) bool { return rec.Facts["tier"] == "gold" })

	// A stopped node stays in the inventory: calls report it as silent.
	if err := web.cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case <-web.done:
	case <-time.After(20 * time.Second):
		t.Fatal("web1.e2e did not stop")
	}
	r = mco(t, "", "-c", alice, "rpc", "rpcutil", "ping", "--dm", "inventory", "--nodes", inv, "-t", "2s")
	replied, silent, found := strings.Cut(r.stdout, "No response from:")
	if r.code != 2 || !found || !strings.Contains(silent, "web1.e2e") || !strings.Contains(replied, "db1.e2e") {
		t.Fatalf("rpc ping --dm inventory with web1 stopped: exit %d, want 2 with web1.e2e under No response from\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	// Three of web1's one-second intervals later it counts as silent.
	waitUntil(t, "mco nodes to mark web1.e2e SILENT", func() bool {
		r := mco(t, "", "-c", alice, "nodes", "--json")
		var rows []struct {
			Identity string `json:"identity"`
			Silent   bool   `json:"silent"`
		}
		if r.code != 0 || json.Unmarshal([]byte(r.stdout), &rows) != nil {
			t.Fatalf("mco nodes --json: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		for _, row := range rows {
			if row.Identity == "web1.e2e" {
				return row.Silent
			}
		}
		return false
	})
	r = mco(t, "", "-c", alice, "nodes")
	if r.code != 0 || !strings.Contains(r.stdout, "SILENT") {
		t.Fatalf("mco nodes: exit %d, want web1.e2e SILENT\n%s%s", r.code, r.stdout, r.stderr)
	}
}

// storedRecord is what the collector writes to DIR/<identity>.json.
type storedRecord struct {
	Identity    string         `json:"identity"`
	Collectives []string       `json:"collectives"`
	Agents      []string       `json:"agents"`
	Facts       map[string]any `json:"facts"`
	Version     string         `json:"version"`
	LastSeen    time.Time      `json:"last_seen"`
}

// waitForRecord polls DIR/<identity>.json until it satisfies ok.
func waitForRecord(t *testing.T, dir, identity string, ok func(storedRecord) bool) storedRecord {
	t.Helper()
	var rec storedRecord
	waitUntil(t, "the announcement of "+identity+" in "+dir, func() bool {
		data, err := os.ReadFile(filepath.Join(dir, identity+".json"))
		if err != nil {
			return false
		}
		rec = storedRecord{}
		if err := json.Unmarshal(data, &rec); err != nil {
			t.Fatalf("%s.json: %v\n%s", identity, err, data)
		}
		return ok(rec)
	})
	return rec
}

// startRegisteringDaemon runs a daemon with a facts file on brokerURL (like
// runDaemon) and returns its process, so the test can stop it.
func startRegisteringDaemon(t *testing.T, c *collective, brokerURL, name, waitConf, facts string, extra ...string) *process {
	t.Helper()
	if _, err := c.store.Issue(pki.RoleNode, name, nil); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(c.dir, "nodes", name)
	factsFile := filepath.Join(dir, "facts.yaml")
	writeFile(t, factsFile, facts)
	conf := filepath.Join(dir, "server.conf")
	writeFile(t, conf, fmt.Sprintf("broker = %s\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\nfacts = %s\n%s\n",
		brokerURL, c.store.CACertPath(), c.store.CertPath(name), c.store.KeyPath(name), factsFile, strings.Join(nodeDefaults(dir, extra), "\n")))
	p := startProcess(t, "daemon "+name, dir, "server", "run", "-c", conf, "--log-level", "debug")
	cl := c.connect(waitConf)
	waitUntil(t, name+" to answer a ping", func() bool {
		if p.exited() {
			t.Fatalf("daemon %s exited:\n%s", name, p.stderrText())
		}
		return pingOK(cl, name)
	})
	return p
}
