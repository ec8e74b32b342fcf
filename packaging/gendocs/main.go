// Command gendocs writes mco's man pages (gzip'ed, one per command) and its
// bash, zsh and fish completion scripts from the command tree:
//
//	go run ./packaging/gendocs -out DIR
//
// writes DIR/man1/*.1.gz, DIR/mco.bash, DIR/_mco and DIR/mco.fish. The
// packaging build (go run ./packaging) runs it; it lives in the main module
// so that it renders exactly the commands of this checkout, while the mco
// binary does not carry the man page renderer.
package main

import (
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/marionette/mco/internal/cli"
)

func main() {
	out := flag.String("out", "", "output directory")
	flag.Parse()
	if *out == "" {
		fmt.Fprintln(os.Stderr, "gendocs: -out is required")
		os.Exit(2)
	}
	if err := generate(*out); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func generate(out string) error {
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }}
	root := cli.Command(app)
	root.DisableAutoGenTag = true // keeps the pages reproducible
	raw, err := os.MkdirTemp("", "mco-man-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(raw)
	man := filepath.Join(out, "man1")
	if err := os.MkdirAll(man, 0o755); err != nil {
		return err
	}
	header := &doc.GenManHeader{Title: "MCO", Section: "1", Source: "Marionette", Manual: "Marionette manual"}
	if err := doc.GenManTree(root, header, raw); err != nil {
		return fmt.Errorf("man pages: %w", err)
	}
	pages, err := filepath.Glob(filepath.Join(raw, "*.1"))
	if err != nil {
		return err
	}
	for _, p := range pages {
		if err := gzipFile(p, filepath.Join(man, filepath.Base(p)+".gz")); err != nil {
			return err
		}
	}
	scripts := map[string]func(*cobra.Command, io.Writer) error{
		"mco.bash": func(c *cobra.Command, w io.Writer) error { return c.GenBashCompletionV2(w, true) },
		"_mco":     func(c *cobra.Command, w io.Writer) error { return c.GenZshCompletion(w) },
		"mco.fish": func(c *cobra.Command, w io.Writer) error { return c.GenFishCompletion(w, true) },
	}
	for name, gen := range scripts {
		var b bytes.Buffer
		if err := gen(root, &b); err != nil {
			return fmt.Errorf("completion %s: %w", name, err)
		}
		if err := os.WriteFile(filepath.Join(out, name), b.Bytes(), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// gzipFile compresses src to dst with no name or time in the header, so
// that two builds of one revision give the same bytes.
func gzipFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	zw, err := gzip.NewWriterLevel(&b, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, b.Bytes(), 0o644)
}
