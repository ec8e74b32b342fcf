package config

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// tlsLines are the keys every role requires.
const tlsLines = "tls.ca = ca.crt\ntls.cert = me.crt\ntls.key = me.key\n"

func writeConf(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "test.conf")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// loaders runs each role's loader, discarding the result.
var loaders = map[string]func(string) error{
	"server": func(p string) error { _, err := LoadServer(p); return err },
	"client": func(p string) error { _, err := LoadClient(p); return err },
	"broker": func(p string) error { _, err := LoadBroker(p); return err },
}

// TestBadInputEveryRole runs the generic mistakes against every role.
func TestBadInputEveryRole(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string // substrings of the error; "FILE" is the file path
	}{
		{"unknown key", tlsLines + "# comment\nbogus_key = 1\n", []string{"FILE:5:", `unknown key "bogus_key"`}},
		{"duplicate key", tlsLines + "tls.ca = other.crt\n", []string{"FILE:4:", `"tls.ca" already set on line 1`}},
		{"no equals", tlsLines + "insecure\n", []string{"FILE:4:", "expected 'key = value'"}},
		{"bad bool", tlsLines + "insecure = maybe\n", []string{"FILE:4:", "insecure", `"maybe" is not a boolean`}},
		{"missing tls.ca", "tls.cert = a\ntls.key = b\n", []string{"FILE:", "tls.ca, tls.cert and tls.key are required"}},
		{"missing tls.cert", "tls.ca = a\ntls.key = b\n", []string{"tls.ca, tls.cert and tls.key are required"}},
		{"missing tls.key", "tls.ca = a\ntls.cert = b\n", []string{"tls.ca, tls.cert and tls.key are required"}},
		{"empty file", "", []string{"required"}},
		{"bad allowlist key typo", tlsLines + "security.certname_allow_list = x\n", []string{"FILE:4:", "unknown key"}},
	}
	for role, load := range loaders {
		for _, tt := range tests {
			t.Run(role+"/"+tt.name, func(t *testing.T) {
				p := writeConf(t, tt.body)
				err := load(p)
				if err == nil {
					t.Fatal("loaded without error")
				}
				for _, w := range tt.want {
					w = strings.ReplaceAll(w, "FILE", p)
					if !strings.Contains(err.Error(), w) {
						t.Errorf("error %q does not contain %q", err, w)
					}
				}
			})
		}
	}
	if err := loaders["server"](filepath.Join(t.TempDir(), "missing.conf")); err == nil {
		t.Error("loading a missing file succeeded")
	}
}

func TestServerBadValues(t *testing.T) {
	tests := []struct {
		line string
		want string
	}{
		{"request.skew = soon", `request.skew: "soon" is not a duration`},
		{"request.max_ttl = -5s", "must not be negative"},
		{"facts.interval = -1", "must not be negative"},
		{"max_message_size = big", `max_message_size: "big" is not a non-negative integer`},
		{"max_message_size = -1", "not a non-negative integer"},
		{"max_message_size = 1.5", "not a non-negative integer"},
		{"audit.fail_open = sometimes", "not a boolean"},
		{"policy.enable_default = 2", "not a boolean"},
		{"policy.default = maybe", "policy.default must be allow or deny"},
		{"policy.agent_default.package = perhaps", `must be allow or deny, not "perhaps"`},
		{"policy.agent_default. = allow", "unknown key"}, // the dynamic part may not be empty
		{"plugin.puppet = x", "want plugin.<agent>.<key>"},
		{"plugin.puppet. = x", "want plugin.<agent>.<key>"},
		{"collectives = ,", "collectives must name at least one collective"},
		{"broker = ", "broker must name at least one URL"},
		{"policy.dir =", "policy.dir is empty: name a directory, or set policy.disabled = true"},
		{"audit.log =", "audit.log is empty: name a file, or set audit.disabled = true"},
		{"policy.disabled = true\npolicy.dir = p", "policy.disabled = true and policy.dir are both set"},
		{"audit.disabled = true\naudit.log = a.log", "audit.disabled = true and audit.log are both set"},
		{"audit.disabled = true\naudit.readers = c.mcollective", "audit.readers needs the audit log"},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			p := writeConf(t, tlsLines+tt.line+"\n")
			_, err := LoadServer(p)
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Fatalf("LoadServer = %v, want an error naming the file and %q", err, tt.want)
			}
		})
	}
}

func TestClientBadValues(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"timeout = forever", `timeout: "forever" is not a duration`},
		{"ttl = -1s", "must not be negative"},
		{"discovery_timeout = x", "not a duration"},
		{"collective.extra = y", "unknown key"},
	} {
		p := writeConf(t, tlsLines+tt.line+"\n")
		if _, err := LoadClient(p); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p+":4:") {
			t.Errorf("%s: LoadClient = %v, want %s:4: ... %q", tt.line, err, p, tt.want)
		}
	}
}

func TestBrokerBadValues(t *testing.T) {
	for _, tt := range []struct{ line, want string }{
		{"max_payload = lots", "not a non-negative integer"},
		{"broker = tls://x:4222", `unknown key "broker"`}, // brokers do not dial a broker
		{"collectives. = a", "unknown key"},
		{"collectives.alice.mcollective = a\ncollectives.alice.mcollective = b", `"collectives.alice.mcollective" already set on line 4`},
	} {
		p := writeConf(t, tlsLines+tt.line+"\n")
		if _, err := LoadBroker(p); err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p+":") {
			t.Errorf("%s: LoadBroker = %v, want %q", tt.line, err, tt.want)
		}
	}
}

func TestLoadServer(t *testing.T) {
	body := strings.Join([]string{
		"# a server",
		"",
		"   # indented comment",
		"broker = tls://a:4222, tls://b:4222",
		tlsLines,
		"identity = web1",
		"collectives = mcollective, eu",
		"facts = facts.yaml, /etc/abs.json",
		"classes = classes.txt",
		"libdir = lib",
		"policy.dir = policies",
		"policy.default = allow",
		"policy.enable_default = yes",
		"policy.agent_default.package = deny",
		"policy.agent_default.service = allow",
		"plugin.puppet.command = puppet agent --onetime",
		"plugin.puppet.splay.limit = 30",
		"plugin.nrpe.conf_dir = /etc/nagios/nrpe.d",
		"audit.log = audit/audit.log",
		"audit.fail_open = on",
		"max_message_size = 2048",
		"request.skew = 2",
		"request.max_ttl = 10m",
		"facts.interval = 1.5",
		"facts.command = facter -j",
		"security.certname_allowlist = bob, /\\.ops$/",
		"security.privileged_certnames = /a=b/", // only the first '=' separates
	}, "\n")
	p := writeConf(t, body)
	dir := filepath.Dir(p)
	s, err := LoadServer(p)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultServer()
	want.Brokers = []string{"tls://a:4222", "tls://b:4222"}
	want.CA, want.Cert, want.Key = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "me.crt"), filepath.Join(dir, "me.key")
	want.Identity = "web1"
	want.Collectives = []string{"mcollective", "eu"}
	want.FactFiles = []string{filepath.Join(dir, "facts.yaml"), "/etc/abs.json"}
	want.ClassesFile = filepath.Join(dir, "classes.txt")
	want.Libdirs = []string{filepath.Join(dir, "lib")}
	want.PolicyDir = filepath.Join(dir, "policies")
	want.PolicyDefault = "allow"
	want.PolicyEnableDef = true
	want.AgentPolicyDefault = map[string]string{"package": "deny", "service": "allow"}
	want.PluginConfig = map[string]map[string]string{
		"puppet": {"command": "puppet agent --onetime", "splay.limit": "30"},
		"nrpe":   {"conf_dir": "/etc/nagios/nrpe.d"},
	}
	want.AuditLog = filepath.Join(dir, "audit", "audit.log")
	want.AuditFailOpen = true
	want.MaxMessageSize = 2048
	want.Skew = 2 * time.Second
	want.MaxTTL = 10 * time.Minute
	want.FactInterval = 1500 * time.Millisecond
	want.FactCommand = []string{"facter", "-j"}
	want.Allowlist = `bob, /\.ops$/`
	want.Privileged = "/a=b/"
	if !reflect.DeepEqual(s, want) {
		t.Errorf("LoadServer:\n got %+v\nwant %+v", s, want)
	}
}

func TestLoadServerDefaults(t *testing.T) {
	p := writeConf(t, tlsLines)
	s, err := LoadServer(p)
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxMessageSize != 1<<20 || s.Skew != 5*time.Second || s.MaxTTL != time.Hour ||
		!reflect.DeepEqual(s.Collectives, []string{"mcollective"}) || !reflect.DeepEqual(s.Brokers, []string{"tls://127.0.0.1:4222"}) {
		t.Errorf("defaults not applied: %+v", s)
	}
	// Secure by default: ActionPolicy and the audit log are on.
	if s.PolicyDir != DefaultPolicyDir || s.AuditLog != DefaultAuditLog || s.AllowUnconfigured {
		t.Errorf("policy.dir %q, audit.log %q, allow_unconfigured %v: want the packaged defaults, deny unconfigured", s.PolicyDir, s.AuditLog, s.AllowUnconfigured)
	}
	s, err = LoadServer(writeConf(t, tlsLines+"policy.disabled = true\naudit.disabled = yes\n"))
	if err != nil {
		t.Fatal(err)
	}
	if s.PolicyDir != "" || s.AuditLog != "" {
		t.Errorf("opt-outs not applied: policy.dir %q, audit.log %q", s.PolicyDir, s.AuditLog)
	}
}

func TestCRLFLines(t *testing.T) {
	p := writeConf(t, strings.ReplaceAll(tlsLines+"# comment\r\n\r\ncollective = eu\ncollectives = eu, us\nttl = 30\n", "\n", "\r\n"))
	c, err := LoadClient(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if c.Collective != "eu" || !reflect.DeepEqual(c.Collectives, []string{"eu", "us"}) || c.TTL != 30*time.Second || c.Key != filepath.Join(dir, "me.key") {
		t.Errorf("CRLF file misread: %+v", c)
	}
}

func TestLoadClient(t *testing.T) {
	p := writeConf(t, tlsLines+"insecure = true\ntimeout = 1m30s\ndiscovery_timeout = 0.5\nlibdir = /opt/a, rel\nbroker = nats://x:1\n")
	c, err := LoadClient(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	if !c.Insecure || c.Timeout != 90*time.Second || c.DiscoveryTimeout != 500*time.Millisecond ||
		!reflect.DeepEqual(c.Libdirs, []string{"/opt/a", filepath.Join(dir, "rel")}) ||
		!reflect.DeepEqual(c.Brokers, []string{"nats://x:1"}) || c.TTL != 60*time.Second || c.Collective != "mcollective" {
		t.Errorf("LoadClient: %+v", c)
	}
}

func TestLoadBroker(t *testing.T) {
	p := writeConf(t, tlsLines+strings.Join([]string{
		"listen = 0.0.0.0:4222",
		"cluster.listen = 0.0.0.0:6222",
		"cluster.routes = tls://b2:6222, tls://b3:6222",
		"max_payload = 4096",
		"collectives.alice.mcollective = eu, us",
		"collectives.bob.mcollective = eu",
		"collectors = /^collector\\./",
		"monitor = 127.0.0.1:8222",
		"security.revocation_file = revoked.txt",
	}, "\n"))
	b, err := LoadBroker(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	want := map[string][]string{"alice.mcollective": {"eu", "us"}, "bob.mcollective": {"eu"}}
	if b.Listen != "0.0.0.0:4222" || b.ClusterListen != "0.0.0.0:6222" || b.MaxPayload != 4096 ||
		!reflect.DeepEqual(b.Routes, []string{"tls://b2:6222", "tls://b3:6222"}) ||
		!reflect.DeepEqual(b.Collectives, want) || b.Collectors != `/^collector\./` || b.Monitor != "127.0.0.1:8222" ||
		b.RevocationFile != filepath.Join(dir, "revoked.txt") || b.ClusterName != "marionette" {
		t.Errorf("LoadBroker: %+v", b)
	}
}

func TestKeyDocs(t *testing.T) {
	for name, doc := range map[string]string{"server": ServerKeys(), "client": ClientKeys(), "broker": BrokerKeys()} {
		if !strings.Contains(doc, "tls.ca") {
			t.Errorf("%s keys lack tls.ca:\n%s", name, doc)
		}
	}
	if !strings.Contains(ServerKeys(), "policy.agent_default.*") || !strings.Contains(BrokerKeys(), "collectives.*") {
		t.Error("dynamic keys are not documented")
	}
}

func TestFindClient(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	env := map[string]string{"MCO_CONFIG": "/x/env.conf", "HOME": home}
	getenv := func(k string) string { return env[k] }
	if p, err := FindClient("/x/explicit.conf", getenv); err != nil || p != "/x/explicit.conf" {
		t.Errorf("explicit: %q %v", p, err)
	}
	if p, err := FindClient("", getenv); err != nil || p != "/x/env.conf" {
		t.Errorf("env: %q %v", p, err)
	}
	user := filepath.Join(home, ".config", "marionette", "client.conf")
	if err := os.MkdirAll(filepath.Dir(user), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(user, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	delete(env, "MCO_CONFIG")
	if p, err := FindClient("", getenv); err != nil || p != user {
		t.Errorf("home: %q %v, want %s", p, err, user)
	}
}

// FuzzLoadServer: no file content may make LoadServer panic.
func FuzzLoadServer(f *testing.F) {
	f.Add([]byte(tlsLines))
	f.Add([]byte("broker = tls://a:1\r\n" + tlsLines + "policy.agent_default.x = allow\n"))
	f.Add([]byte("= =\n==\nrequest.skew = 1e308\nmax_message_size = 99999999999999999999\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "server.conf")
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := LoadServer(p)
		if err == nil && (s.CA == "" || len(s.Collectives) == 0) {
			t.Fatalf("accepted an incomplete configuration: %+v", s)
		}
	})
}

// TestFactsCommandRelativeToConfig: a relative facts.command program path
// resolves against the configuration file's directory like every other
// path in server.conf; a bare program name is left for PATH.
func TestFactsCommandRelativeToConfig(t *testing.T) {
	for cmd, want := range map[string]string{
		"facter -j":           "facter",
		"bin/facts.sh --json": "bin/facts.sh",
		"./facts.sh":          "facts.sh",
		"/usr/bin/facter -j":  "/usr/bin/facter",
	} {
		p := writeConf(t, "broker = tls://a:4222\ntls.ca = ca.crt\ntls.cert = me.crt\ntls.key = me.key\nfacts.command = "+cmd+"\n")
		s, err := LoadServer(p)
		if err != nil {
			t.Fatal(err)
		}
		if strings.ContainsRune(want, '/') && !filepath.IsAbs(want) || want == "facts.sh" {
			want = filepath.Join(filepath.Dir(p), want)
		}
		if len(s.FactCommand) == 0 || s.FactCommand[0] != want {
			t.Errorf("facts.command = %s: program %v, want %s", cmd, s.FactCommand, want)
		}
	}
}
