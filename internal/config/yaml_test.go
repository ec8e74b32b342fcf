package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLoadServerYAML(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "server.yaml")
	body := `# the same keys as server.conf, nested
broker: [tls://a:4222, tls://b:4222]
tls:
  ca: pki/ca.crt
  cert: pki/node.crt
  key: pki/node.key
collectives: [production, development]
policy:
  dir: policies
  agent_default:
    rpcutil: allow
request:
  skew: 2s
plugin:
  puppet:
    command: puppet agent --onetime
`
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := LoadServer(file)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Brokers) != 2 || s.Brokers[1] != "tls://b:4222" || s.CA != filepath.Join(dir, "pki/ca.crt") ||
		s.Collectives[1] != "development" || s.PolicyDir != filepath.Join(dir, "policies") ||
		s.AgentPolicyDefault["rpcutil"] != "allow" || s.Skew != 2*time.Second ||
		s.PluginConfig["puppet"]["command"] != "puppet agent --onetime" {
		t.Fatalf("loaded %+v", s)
	}
}

func TestLoadYAMLErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"tls:\n  ca: a\n  nope: b\n", `:3: unknown key "tls.nope"`},
		{"- a\n- b\n", "top level must be a map"},
		{"broker: [[a]]\n", "list items must be plain values"},
		{"tls: {ca: a\n", "yaml"},
		{"request:\n  skew: soon\n", `:2: request.skew`},
	} {
		file := filepath.Join(t.TempDir(), "server.yml")
		if err := os.WriteFile(file, []byte(tc.body), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := LoadServer(file)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), file) {
			t.Errorf("%q: err = %v, want one naming %s and %q", tc.body, err, file, tc.want)
		}
	}
}

// TestClientTTLAtLeastOneSecond: the wire ttl is whole seconds; a shorter
// one would reach nodes as 0 and be refused by all of them.
func TestClientTTLAtLeastOneSecond(t *testing.T) {
	file := filepath.Join(t.TempDir(), "client.conf")
	body := "tls.ca = ca\ntls.cert = c\ntls.key = k\nttl = 500ms\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadClient(file); err == nil || !strings.Contains(err.Error(), "at least 1s") {
		t.Fatalf("ttl = 500ms: err = %v", err)
	}
}
