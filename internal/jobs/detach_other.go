//go:build !unix

package jobs

import (
	"errors"
	"os/exec"
)

func detach(*exec.Cmd) error { return errors.New("detached jobs need a Unix system") }

func procStart(int) uint64 { return 0 }

func alive(int, uint64) bool { return false }
