package e2e

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/marionette/mco/internal/pki"
)

// TestWireClientWithoutCertificate: the broker refuses a TLS connection that
// presents no certificate, and the binary says clearly that the configured
// certificate is missing.
func TestWireClientWithoutCertificate(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	caCert, err := pki.ReadCert(c.store.CACertPath())
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(caCert)
	nc, err := nats.Connect(c.broker.URL(), nats.Secure(&tls.Config{MinVersion: tls.VersionTLS13, RootCAs: roots}),
		nats.MaxReconnects(0), nats.Timeout(5*time.Second))
	if err == nil {
		nc.Close()
		t.Fatal("a connection without a client certificate was accepted")
	}

	missing := filepath.Join(c.dir, "nobody.crt")
	conf := filepath.Join(c.dir, "nocert.conf")
	body := fmt.Sprintf("broker = %s\ntls.ca = %s\ntls.cert = %s\ntls.key = %s\n",
		c.broker.URL(), c.store.CACertPath(), missing, c.store.KeyPath("alice.mcollective"))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	r := mco(t, "", "-c", conf, "ping", "-t", "2s")
	if r.code != 1 || !strings.Contains(r.stderr, missing) || strings.Contains(r.stderr, "goroutine ") {
		t.Fatalf("mco ping without a certificate: exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
}

// TestWireExitCodes checks MCollective's exit codes through the binary
// against a real daemon.
func TestWireExitCodes(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	c.startDaemon("node1.e2e")
	conf := c.clientConf()
	ghostList := filepath.Join(c.dir, "ghost.txt")
	if err := os.WriteFile(ghostList, []byte("ghost.e2e\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string // expected in stdout or stderr
	}{
		{"all ok", []string{"rpc", "rpcutil", "ping"}, 0, "node1.e2e"},
		{"ping all ok", []string{"ping"}, 0, "1 replies"},
		{"no nodes discovered", []string{"rpc", "rpcutil", "ping", "-F", "nonexistent=true"}, 1, "did not discover any nodes"},
		{"some failed", []string{"rpc", "rpcutil", "get_config_item", "item=nonexistent"}, 2, "nonexistent"},
		// Exact -I identities are addressed without discovery (issue 8:
		// this was 3): no discovery and no responses.
		{"exact -I and no responses", []string{"rpc", "rpcutil", "ping", "-I", "ghost.e2e", "-t", "2s"}, 4, "ghost.e2e"},
		{"exact -I and no responses, --json", []string{"rpc", "rpcutil", "ping", "-I", "ghost.e2e", "-t", "2s", "--json"}, 4, `"exit_code": 4`},
		{"discovered but no responses", []string{"rpc", "rpcutil", "ping", "--nodes", ghostList, "-t", "2s"}, 3, "ghost.e2e"},
		{"discovered but no responses, --json", []string{"rpc", "rpcutil", "ping", "--nodes", ghostList, "-t", "2s", "--json"}, 3, `"exit_code": 3`},
		{"no nodes discovered, --json", []string{"rpc", "rpcutil", "ping", "-F", "nonexistent=true", "--json"}, 1, `"exit_code": 1`},
		{"find without a match", []string{"find", "-F", "nonexistent=true"}, 1, ""},
		{"find --json without a match", []string{"find", "-F", "nonexistent=true", "--json"}, 1, `"nodes": []`},
		{"some failed, --json", []string{"rpc", "rpcutil", "get_config_item", "item=nonexistent", "--json"}, 2, `"exit_code": 2`},
		{"no discovery and no responses", []string{"ping", "-F", "nonexistent=true", "-t", "2s"}, 4, "No responses"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := mco(t, "", append([]string{"-c", conf}, tt.args...)...)
			if r.code != tt.code || !strings.Contains(r.stdout+r.stderr, tt.out) {
				t.Fatalf("mco %s: exit %d, want %d and %q\nstdout:\n%s\nstderr:\n%s", strings.Join(tt.args, " "), r.code, tt.code, tt.out, r.stdout, r.stderr)
			}
		})
	}
}

// wireJSON is the part of `mco rpc --json` the tests read.
type wireJSON struct {
	Replies []struct {
		Sender     string         `json:"sender"`
		StatusCode int            `json:"statuscode"`
		StatusMsg  string         `json:"statusmsg"`
		Data       map[string]any `json:"data"`
	} `json:"replies"`
	Stats struct {
		Discovered int      `json:"discovered"`
		Responses  int      `json:"responses"`
		OK         int      `json:"ok"`
		Failed     int      `json:"failed"`
		NoResponse []string `json:"no_response"`
		ExitCode   int      `json:"exit_code"`
	} `json:"stats"`
	NoResponse *[]string `json:"no_response"`
}

// wireDecode parses stdout as exactly one JSON document.
func wireDecode(t *testing.T, stdout string) wireJSON {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(stdout))
	var doc wireJSON
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		t.Fatalf("stdout is not JSON: %v\n%s", err, stdout)
	}
	if dec.More() {
		t.Fatalf("stdout holds more than one JSON document:\n%s", stdout)
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatalf("unexpected JSON shape: %v\n%s", err, stdout)
	}
	return doc
}

func TestWireJSONOutput(t *testing.T) {
	t.Parallel()
	c := newCollective(t, collectiveOptions{})
	c.startDaemon("node1.e2e")
	conf := c.clientConf()

	t.Run("rpc with a silent node", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "rpcutil", "ping", "-I", "node1.e2e", "-I", "ghost.e2e", "-t", "2s", "--json")
		doc := wireDecode(t, r.stdout)
		if r.code != 2 || doc.Stats.ExitCode != 2 {
			t.Fatalf("exit %d (json says %d), want 2\nstderr:\n%s", r.code, doc.Stats.ExitCode, r.stderr)
		}
		if len(doc.Replies) != 1 || doc.Replies[0].Sender != "node1.e2e" || doc.Replies[0].StatusCode != 0 || doc.Replies[0].Data["pong"] == nil {
			t.Errorf("replies: %+v", doc.Replies)
		}
		if doc.NoResponse == nil || strings.Join(*doc.NoResponse, ",") != "ghost.e2e" || strings.Join(doc.Stats.NoResponse, ",") != "ghost.e2e" {
			t.Errorf("no_response: %v / stats %v", doc.NoResponse, doc.Stats.NoResponse)
		}
		if doc.Stats.Discovered != 2 || doc.Stats.Responses != 1 || doc.Stats.OK != 1 {
			t.Errorf("stats: %+v", doc.Stats)
		}
	})

	t.Run("rpc with a failure", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "rpc", "rpcutil", "get_config_item", "item=nonexistent", "--json")
		doc := wireDecode(t, r.stdout)
		if r.code != 2 || doc.Stats.Failed != 1 || len(doc.Replies) != 1 || doc.Replies[0].StatusCode != 1 ||
			!strings.Contains(doc.Replies[0].StatusMsg, "nonexistent") {
			t.Fatalf("exit %d, doc %+v\nstderr:\n%s", r.code, doc, r.stderr)
		}
		if doc.NoResponse == nil || len(*doc.NoResponse) != 0 {
			t.Errorf("no_response should be an empty list, got %v", doc.NoResponse)
		}
	})

	t.Run("ping", func(t *testing.T) {
		r := mco(t, "", "-c", conf, "ping", "--json")
		var doc struct {
			Replies []map[string]any `json:"replies"`
			Stats   map[string]any   `json:"stats"`
		}
		dec := json.NewDecoder(strings.NewReader(r.stdout))
		if err := dec.Decode(&doc); err != nil || dec.More() {
			t.Fatalf("ping --json is not one JSON document (%v):\n%s", err, r.stdout)
		}
		if r.code != 0 || len(doc.Replies) != 1 || doc.Stats == nil {
			t.Fatalf("exit %d, doc %+v", r.code, doc)
		}
	})
}
