// Command build writes Marionette's .deb and .rpm packages with nfpm. It is
// a module of its own (packaging/build/go.mod) so that the packaging library
// stays out of the mco binary and out of the main module's dependencies;
// it does not import the main module either (it builds mco and runs
// packaging/gendocs with the go command), so the two modules' dependencies
// never need to agree. Run it through the launcher: go run ./packaging.
package main

import (
	"debug/buildinfo"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
)

// assets are the units, default configurations, logrotate file and
// maintainer scripts shipped as they are.
//
//go:embed files
var assets embed.FS

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout io.Writer) error {
	fl := flag.NewFlagSet("packaging", flag.ContinueOnError)
	root := fl.String("root", "", "repository root (the launcher sets it)")
	out := fl.String("out", "dist", "output directory, relative to the root")
	arch := fl.String("arch", "amd64", "target architecture: amd64 or arm64")
	formats := fl.String("formats", "deb,rpm", "package formats to write")
	if err := fl.Parse(args); err != nil {
		return err
	}
	if *root == "" {
		return errors.New("-root is required: run go run ./packaging from the repository root")
	}
	if *arch != "amd64" && *arch != "arm64" {
		return fmt.Errorf("-arch %q: amd64 or arm64", *arch)
	}
	outDir := *out
	if !filepath.IsAbs(outDir) {
		outDir = filepath.Join(*root, outDir)
	}
	stage, err := os.MkdirTemp("", "marionette-packaging-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(stage)

	bin := filepath.Join(stage, "mco")
	if err := buildBinary(*root, *arch, bin); err != nil {
		return err
	}
	version, err := packageVersion(bin)
	if err != nil {
		return err
	}
	generated, err := generate(*root, stage)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return err
	}
	for _, format := range strings.Split(*formats, ",") {
		path, err := writePackage(format, *arch, version, bin, generated, outDir)
		if err != nil {
			return fmt.Errorf("%s: %w", format, err)
		}
		fmt.Fprintln(stdout, path)
	}
	return nil
}

// buildBinary compiles a static mco for linux/arch. -buildvcs=auto overrides
// a GOFLAGS=-buildvcs=false so the binary records the revision it is built
// from, which is where its version comes from.
func buildBinary(root, arch, out string) error {
	cmd := exec.Command("go", "build", "-trimpath", "-buildvcs=auto", "-ldflags=-s -w", "-o", out, "./cmd/mco")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "GOOS=linux", "GOARCH="+arch, "CGO_ENABLED=0")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("building mco: %w", err)
	}
	return nil
}

// packageVersion derives the package version from the binary's build
// information, so the package and `mco version` always agree: a tag
// v1.2.3 gives 1.2.3, a pseudo-version v0.0.0-20261202011634-8b7fddac6da1
// gives 0.0.0~20261202011634.8b7fddac6da1 (sorting before any release), and a
// build without VCS information 0.0.0~devel.
func packageVersion(bin string) (string, error) {
	bi, err := buildinfo.ReadFile(bin)
	if err != nil {
		return "", fmt.Errorf("reading the build info of %s: %w", bin, err)
	}
	return debVersion(bi.Main.Version), nil
}

func debVersion(modVersion string) string {
	v := strings.TrimPrefix(modVersion, "v")
	if v == "" || strings.HasPrefix(v, "(") {
		return "0.0.0~devel"
	}
	v = strings.TrimSuffix(v, "+incompatible")
	v = strings.ReplaceAll(v, "+dirty", "~dirty")
	if base, pre, ok := strings.Cut(v, "-"); ok {
		// Go puts the timestamp and revision of a pseudo-version after
		// dashes; package versions keep dashes for the release number.
		return base + "~" + strings.ReplaceAll(pre, "-", ".")
	}
	return v
}

// generated are the files produced from the command tree.
type generated struct {
	manEntries []string // man1/*.1.gz
	bash, zsh  string
	fish       string
}

// generate renders the man pages and completion scripts with the main
// module's packaging/gendocs, which knows the commands of this checkout.
func generate(root, stage string) (*generated, error) {
	out := filepath.Join(stage, "gen")
	cmd := exec.Command("go", "run", "./packaging/gendocs", "-out", out)
	cmd.Dir = root
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("generating man pages and completion: %w", err)
	}
	pages, err := filepath.Glob(filepath.Join(out, "man1", "*.1.gz"))
	if err != nil {
		return nil, err
	}
	if len(pages) == 0 {
		return nil, errors.New("gendocs wrote no man page")
	}
	sort.Strings(pages)
	return &generated{
		manEntries: pages,
		bash:       filepath.Join(out, "mco.bash"),
		zsh:        filepath.Join(out, "_mco"),
		fish:       filepath.Join(out, "mco.fish"),
	}, nil
}

// asset copies an embedded file to the stage directory: nfpm reads sources
// from disk.
func asset(stage, name string) (string, error) {
	data, err := fs.ReadFile(assets, "files/"+name)
	if err != nil {
		return "", err
	}
	dst := filepath.Join(stage, "files", name)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	return dst, os.WriteFile(dst, data, 0o644)
}

// contents lists every file of the package.
func contents(stage, bin string, g *generated) (files.Contents, error) {
	type entry struct {
		src, dst, typ, packager string
		mode                    os.FileMode
	}
	es := []entry{
		{src: bin, dst: "/usr/bin/mco", mode: 0o755},
		{src: "@mco-server.service", dst: "/usr/lib/systemd/system/mco-server.service", mode: 0o644},
		{src: "@mco-broker.service", dst: "/usr/lib/systemd/system/mco-broker.service", mode: 0o644},
		{src: "@server.conf", dst: "/etc/marionette/server.conf", typ: files.TypeConfigNoReplace, mode: 0o640},
		{src: "@broker.conf", dst: "/etc/marionette/broker.conf", typ: files.TypeConfigNoReplace, mode: 0o644},
		{src: "@client.conf", dst: "/etc/marionette/client.conf", typ: files.TypeConfigNoReplace, mode: 0o644},
		{src: "@facts.yaml", dst: "/etc/marionette/facts.yaml", typ: files.TypeConfigNoReplace, mode: 0o644},
		{src: "@logrotate", dst: "/etc/logrotate.d/marionette", typ: files.TypeConfigNoReplace, mode: 0o644},
		{dst: "/etc/marionette/ssl", typ: files.TypeDir, mode: 0o750},
		{dst: "/etc/marionette/policy", typ: files.TypeDir, mode: 0o755},
		{dst: "/var/lib/marionette", typ: files.TypeDir, mode: 0o755},
		{dst: "/var/log/marionette", typ: files.TypeDir, mode: 0o755},
		{src: g.bash, dst: "/usr/share/bash-completion/completions/mco", mode: 0o644},
		// Debian's zsh reads vendor-completions; Fedora's site-functions.
		{src: g.zsh, dst: "/usr/share/zsh/vendor-completions/_mco", packager: "deb", mode: 0o644},
		{src: g.zsh, dst: "/usr/share/zsh/site-functions/_mco", packager: "rpm", mode: 0o644},
		{src: g.fish, dst: "/usr/share/fish/vendor_completions.d/mco.fish", mode: 0o644},
	}
	for _, page := range g.manEntries {
		es = append(es, entry{src: page, dst: "/usr/share/man/man1/" + filepath.Base(page), mode: 0o644})
	}
	var out files.Contents
	for _, e := range es {
		src := e.src
		if name, ok := strings.CutPrefix(src, "@"); ok {
			var err error
			if src, err = asset(stage, name); err != nil {
				return nil, err
			}
		}
		out = append(out, &files.Content{
			Source: src, Destination: e.dst, Type: e.typ, Packager: e.packager,
			FileInfo: &files.ContentFileInfo{Mode: e.mode, Owner: "root", Group: "root"},
		})
	}
	return out, nil
}

func writePackage(format, arch, version, bin string, g *generated, outDir string) (string, error) {
	pkgr, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	stage := filepath.Dir(bin)
	cs, err := contents(stage, bin, g)
	if err != nil {
		return "", err
	}
	postinst, err := asset(stage, "postinstall.sh")
	if err != nil {
		return "", err
	}
	prerm, err := asset(stage, "preremove.sh")
	if err != nil {
		return "", err
	}
	info := &nfpm.Info{
		Name:          "marionette",
		Arch:          arch,
		Platform:      "linux",
		Version:       version,
		VersionSchema: "none", // the version is already in package form
		Release:       "1",
		Section:       "admin",
		Priority:      "optional",
		Maintainer:    "Marionette developers <marionette@example.org>",
		Vendor:        "Marionette",
		Homepage:      "https://github.com/marionette/mco",
		License:       "Apache-2.0",
		Description: "Parallel, secure remote procedure calls for server fleets\n" +
			"Marionette (mco) is an MCollective-compatible orchestration tool: one\n" +
			"binary holds the message broker, the node daemon and the client.",
		MTime: time.Unix(0, 0).UTC(),
		Overridables: nfpm.Overridables{
			Contents: cs,
			Depends:  []string{},
			Scripts:  nfpm.Scripts{PostInstall: postinst, PreRemove: prerm},
			RPM:      nfpm.RPM{Group: "Applications/System", Summary: "Parallel, secure remote procedure calls for server fleets"},
		},
	}
	info = nfpm.WithDefaults(info)
	if err := nfpm.PrepareForPackager(info, format); err != nil {
		return "", err
	}
	// marionette_<version>_<arch>.<format>: one name scheme for both, so
	// scripts and docs need not know each format's convention.
	path := filepath.Join(outDir, fmt.Sprintf("marionette_%s_%s.%s", version, arch, format))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := pkgr.Package(info, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	return path, f.Close()
}
