// Command packaging builds Marionette's Linux packages:
//
//	go run ./packaging [-arch amd64|arm64] [-out dist]
//
// writes dist/marionette_<version>_<arch>.deb and .rpm. The packaging
// library (nfpm) lives in the separate module packaging/build so that
// neither the mco binary nor the main module's dependency graph carries it;
// this launcher only runs that module with the repository root as its
// working directory.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

func main() {
	root, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
	if _, err := os.Stat(filepath.Join(root, "packaging", "build", "go.mod")); err != nil {
		fmt.Fprintln(os.Stderr, "packaging: run it from the repository root: go run ./packaging")
		os.Exit(1)
	}
	args := append([]string{"run", "-C", filepath.Join("packaging", "build"), ".", "-root", root}, os.Args[1:]...)
	cmd := exec.Command("go", args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			os.Exit(ee.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "packaging:", err)
		os.Exit(1)
	}
}
