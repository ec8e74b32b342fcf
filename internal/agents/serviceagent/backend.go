package serviceagent

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/marionette/mco/internal/agents/command"
)

// Service states as the agent reports them.
const (
	Running = "running"
	Stopped = "stopped"
)

// InitSystem selects how services are managed.
type InitSystem string

// The init systems the agent drives.
const (
	Detect   InitSystem = ""         // systemd when /run/systemd/system exists, else sysvinit
	Systemd  InitSystem = "systemd"  // systemctl is-active|start|stop|restart
	SysVinit InitSystem = "sysvinit" // service NAME status|start|stop|restart
)

// systemdMarker exists exactly when systemd is the running init (this is
// what sd_booted(3) checks).
const systemdMarker = "/run/systemd/system"

// ErrNoBackend means the tool of the chosen init system is not installed:
// the agent cannot work on this node and should be left inactive.
var ErrNoBackend = errors.New("no service manager found (need systemctl or service)")

// backend is one init system's view of services.
type backend interface {
	status(ctx context.Context, name string) (string, error) // Running or Stopped
	change(ctx context.Context, verb, name string) error     // verb: start, stop or restart
}

// systemd manages units with systemctl.
type systemd struct{ run command.Runner }

// status is Running when systemctl is-active exits 0, which systemd
// documents as "the unit is active"; any other state counts as stopped.
func (s systemd) status(ctx context.Context, name string) (string, error) {
	res, err := s.run.Run(ctx, nil, "systemctl", "is-active", "--", name)
	if err != nil {
		return "", err
	}
	if res.ExitCode == 0 {
		return Running, nil
	}
	return Stopped, nil
}

func (s systemd) change(ctx context.Context, verb, name string) error {
	res, err := s.run.Run(ctx, nil, "systemctl", verb, "--", name)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("systemctl %s %s exited with %d: %s", verb, name, res.ExitCode, lastLine(strings.TrimSpace(res.Output)))
	}
	return nil
}

// sysvinit manages services with service(8) and the LSB init script exit
// codes: status exits 0 when running, 1 to 3 when not, 4 when unknown.
type sysvinit struct{ run command.Runner }

func (s sysvinit) status(ctx context.Context, name string) (string, error) {
	res, err := s.run.Run(ctx, nil, "service", name, "status")
	if err != nil {
		return "", err
	}
	switch {
	case strings.Contains(strings.TrimSpace(res.Output), "unrecognized service"):
		// service(8) exits 1 for this too, which LSB would read as stopped.
		return "", fmt.Errorf("%s: unrecognized service", name)
	case res.ExitCode == 0:
		return Running, nil
	case res.ExitCode >= 1 && res.ExitCode <= 3:
		return Stopped, nil
	}
	return "", fmt.Errorf("service %s status exited with %d: %s", name, res.ExitCode, lastLine(strings.TrimSpace(res.Output)))
}

func (s sysvinit) change(ctx context.Context, verb, name string) error {
	res, err := s.run.Run(ctx, nil, "service", name, verb)
	if err != nil {
		return err
	}
	if res.ExitCode != 0 {
		return fmt.Errorf("service %s %s exited with %d: %s", name, verb, res.ExitCode, lastLine(strings.TrimSpace(res.Output)))
	}
	return nil
}
