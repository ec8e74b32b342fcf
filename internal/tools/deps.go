//go:build tools

// Package tools pins dependencies that several packages are about to use, so that
// parallel work on those packages never races on go.mod. Removed once every
// dependency here has a real importer.
package tools

import (
	_ "github.com/fsnotify/fsnotify"
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/jedib0t/go-pretty/v6/table"
	_ "github.com/nats-io/nats-server/v2/server"
	_ "github.com/nats-io/nats.go"
	_ "github.com/spf13/cobra"
	_ "github.com/vbauerster/mpb/v8"
	_ "go.uber.org/goleak"
	_ "go.yaml.in/yaml/v3"
	_ "golang.org/x/term"
	_ "github.com/rogpeppe/go-internal/testscript"
)
