package main

import (
	"debug/buildinfo"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/cli"
	"github.com/marionette/mco/internal/config"
)

// need returns the path of a tool the test drives. CI installs them all
// (.ci/run), so there a missing tool fails the test instead of skipping it.
func need(t *testing.T, tool string) string {
	t.Helper()
	p, err := exec.LookPath(tool)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed: .ci/run must install it", tool)
		}
		t.Skipf("%s is not installed", tool)
	}
	return p
}

func run(t *testing.T, dir string, env []string, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// manPages lists the page every command of the tree gets: mco.1, mco-rpc.1,
// mco-pki-sign.1 ...
func manPages(c *cobra.Command) []string {
	var out []string
	if c.IsAvailableCommand() || !c.HasParent() {
		out = append(out, strings.ReplaceAll(c.CommandPath(), " ", "-")+".1.gz")
	}
	for _, sub := range c.Commands() {
		if sub.IsAvailableCommand() && !sub.IsAdditionalHelpTopicCommand() {
			out = append(out, manPages(sub)...)
		}
	}
	return out
}

// TestPackages builds the .deb and .rpm with `go run ./packaging` and checks
// what an operator installs: the binary, the units (systemd-analyze verify
// on an extracted tree), conffiles, directories, man pages for every
// command, completion scripts and the logrotate file.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the packages")
	}
	need(t, "dpkg-deb")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	listing := run(t, root, nil, "go", "run", "./packaging", "-out", out)
	debs, _ := filepath.Glob(filepath.Join(out, "marionette_*_amd64.deb"))
	rpms, _ := filepath.Glob(filepath.Join(out, "marionette_*_amd64.rpm"))
	if len(debs) != 1 || len(rpms) != 1 {
		t.Fatalf("go run ./packaging wrote %v %v:\n%s", debs, rpms, listing)
	}
	deb, rpm := debs[0], rpms[0]

	// The binary inside carries the version the package is named after.
	tree := t.TempDir()
	run(t, "", nil, "dpkg-deb", "-x", deb, tree)
	bi, err := buildinfo.ReadFile(filepath.Join(tree, "usr/bin/mco"))
	if err != nil {
		t.Fatal(err)
	}
	version := strings.TrimSuffix(strings.TrimPrefix(filepath.Base(deb), "marionette_"), "_amd64.deb")
	if got := run(t, "", nil, "dpkg-deb", "-f", deb, "Version"); strings.TrimSpace(got) != version+"-1" {
		t.Errorf("deb Version %q, want %s-1 (the file name's)", got, version)
	}
	// A pseudo-version names its revision; the package version must too,
	// or two builds of different commits would look alike.
	if mv := bi.Main.Version; mv != "(devel)" && mv != "" {
		rev := mv[strings.LastIndex(mv, "-")+1:]
		if !strings.Contains(version, strings.TrimSuffix(rev, "+dirty")) {
			t.Errorf("package version %s does not carry the binary's version %s", version, mv)
		}
	} else if version != "0.0.0~devel" {
		t.Errorf("binary without VCS information packaged as %s, want 0.0.0~devel", version)
	}

	want := []string{
		"/usr/bin/mco",
		"/usr/lib/systemd/system/mco-server.service",
		"/usr/lib/systemd/system/mco-broker.service",
		"/etc/marionette/server.conf", "/etc/marionette/broker.conf", "/etc/marionette/client.conf",
		"/etc/marionette/facts.yaml", "/etc/marionette/ssl/", "/etc/marionette/policy/",
		"/etc/logrotate.d/marionette",
		"/var/lib/marionette/", "/var/log/marionette/",
		"/usr/share/bash-completion/completions/mco",
		"/usr/share/zsh/vendor-completions/_mco",
		"/usr/share/fish/vendor_completions.d/mco.fish",
	}
	pages := manPages(cli.Command(&cli.App{}))
	if len(pages) < 20 {
		t.Fatalf("only %d man pages expected: %v", len(pages), pages)
	}
	for _, p := range pages {
		want = append(want, "/usr/share/man/man1/"+p)
	}
	debFiles := map[string]bool{}
	for _, line := range strings.Split(run(t, "", nil, "dpkg-deb", "-c", deb), "\n") {
		if f := strings.Fields(line); len(f) >= 6 {
			debFiles[strings.TrimPrefix(f[5], ".")] = true
		}
	}
	for _, w := range want {
		if !debFiles[w] {
			t.Errorf("deb lacks %s", w)
		}
	}
	conffiles := strings.Fields(run(t, "", nil, "sh", "-c", "dpkg-deb --ctrl-tarfile "+deb+" | tar -xO ./conffiles"))
	sort.Strings(conffiles)
	wantConf := []string{"/etc/logrotate.d/marionette", "/etc/marionette/broker.conf", "/etc/marionette/client.conf", "/etc/marionette/facts.yaml", "/etc/marionette/server.conf"}
	if strings.Join(conffiles, " ") != strings.Join(wantConf, " ") {
		t.Errorf("deb conffiles %v, want %v", conffiles, wantConf)
	}

	// The default configurations load with this mco's own parser.
	if _, err := config.LoadServer(filepath.Join(tree, "etc/marionette/server.conf")); err != nil {
		t.Errorf("packaged server.conf: %v", err)
	}
	if _, err := config.LoadBroker(filepath.Join(tree, "etc/marionette/broker.conf")); err != nil {
		t.Errorf("packaged broker.conf: %v", err)
	}
	if _, err := config.LoadClient(filepath.Join(tree, "etc/marionette/client.conf")); err != nil {
		t.Errorf("packaged client.conf: %v", err)
	}

	t.Run("systemd-analyze", func(t *testing.T) {
		sa := need(t, "systemd-analyze")
		need(t, "man")
		// verify resolves units, ExecStart binaries and the man pages of
		// Documentation= inside --root: give the extracted tree the host's
		// targets and kill(1), and man the tree's pages.
		units := filepath.Join(tree, "usr/lib/systemd/system")
		for _, dir := range []string{"/usr/lib/systemd/system", "/lib/systemd/system"} {
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if _, err := os.Lstat(filepath.Join(units, e.Name())); err == nil || e.IsDir() {
					continue
				}
				data, err := os.ReadFile(filepath.Join(dir, e.Name()))
				if err == nil {
					_ = os.WriteFile(filepath.Join(units, e.Name()), data, 0o644)
				}
			}
		}
		kill, err := exec.LookPath("kill")
		if err != nil {
			t.Fatal("kill(1) not found: the units' ExecReload uses /bin/kill")
		}
		if data, err := os.ReadFile(kill); err == nil {
			_ = os.MkdirAll(filepath.Join(tree, "bin"), 0o755)
			_ = os.WriteFile(filepath.Join(tree, "bin/kill"), data, 0o755)
		}
		// Detached jobs (Puppet runs restarting this service) must survive
		// a stop of the daemon.
		unit, err := os.ReadFile(filepath.Join(tree, "usr/lib/systemd/system/mco-server.service"))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(unit), "\nKillMode=process\n") {
			t.Error("mco-server.service does not set KillMode=process: a stop would kill detached jobs")
		}
		manEnv := []string{"MANPATH=" + filepath.Join(tree, "usr/share/man")}
		run(t, "", manEnv, sa, "verify", "--root="+tree, "mco-server.service", "mco-broker.service")
		// The broker needs no privilege: hold its unit to a low exposure
		// score (systemd-analyze security, 0 safest .. 100).
		run(t, "", nil, sa, "security", "--offline=true", "--threshold=20", "--root="+tree, "mco-broker.service")
	})

	// The packaging module's own tests (version mapping) belong to it.
	run(t, root, nil, "go", "test", "-C", "packaging/build", ".")

	t.Run("rpm", func(t *testing.T) {
		rpmBin := need(t, "rpm")
		files := strings.Fields(run(t, "", nil, rpmBin, "-qlp", rpm))
		have := map[string]bool{}
		for _, f := range files {
			have[f] = true
		}
		for _, w := range want {
			w = strings.TrimSuffix(w, "/")
			if w == "/usr/share/zsh/vendor-completions/_mco" {
				w = "/usr/share/zsh/site-functions/_mco"
			}
			if !have[w] {
				t.Errorf("rpm lacks %s", w)
			}
		}
		conf := strings.Fields(run(t, "", nil, rpmBin, "-qcp", rpm))
		sort.Strings(conf)
		if strings.Join(conf, " ") != strings.Join(wantConf, " ") {
			t.Errorf("rpm config files %v, want %v", conf, wantConf)
		}
		if got := run(t, "", nil, rpmBin, "-qp", "--queryformat", "%{VERSION}", rpm); got != version {
			t.Errorf("rpm version %q, want %q", got, version)
		}
		if scripts := run(t, "", nil, rpmBin, "-qp", "--scripts", rpm); !strings.Contains(scripts, "useradd") || !strings.Contains(scripts, "preuninstall") {
			t.Errorf("rpm scripts lack the user creation or the pre-uninstall stop:\n%s", scripts)
		}
	})
}
