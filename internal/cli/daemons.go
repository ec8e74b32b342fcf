package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/spf13/cobra"

	"github.com/marionette/mco/internal/buildinfo"
	"github.com/marionette/mco/internal/config"
	"github.com/marionette/mco/internal/daemon"
	"github.com/marionette/mco/internal/logging"
	"github.com/marionette/mco/internal/metrics"
	"github.com/marionette/mco/internal/node"
	"github.com/marionette/mco/internal/quiesce"
)

// daemonLogger builds a daemon's logger from its log.* settings; a
// --log-level given on the command line wins over log.level.
func daemonLogger(app *App, cmd *cobra.Command, level string, l config.Observability) (*logging.Logger, error) {
	set := logging.Settings{Level: l.LogLevel, Format: l.LogFormat, File: l.LogFile}
	if cmd.Flags().Changed("log-level") || set.Level == "" {
		set.Level = level
	}
	return logging.New(set, app.Stderr)
}

// serveMetrics serves /metrics on listen until ctx ends.
func serveMetrics(ctx context.Context, listen string, reg *metrics.Registry, log *slog.Logger) error {
	addr, err := metrics.Serve(ctx, listen, reg, log)
	if err != nil {
		return err
	}
	log.Info("metrics listening", "url", "http://"+addr.String()+"/metrics")
	return nil
}

// onHangup calls reopen on every SIGHUP until ctx ends: logrotate moved the
// log files away and the daemon carries on in fresh ones.
func onHangup(ctx context.Context, log *slog.Logger, reopen func() error) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		defer signal.Stop(hup)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				if err := reopen(); err != nil {
					log.Error("reopening log files on SIGHUP", "err", err)
				} else {
					log.Info("log files reopened on SIGHUP")
				}
			}
		}
	}()
}

func newBrokerCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{Use: "broker", Short: "Run the message broker (embedded NATS server)"}
	var level string
	run := &cobra.Command{
		Use:   "run -c broker.conf",
		Short: "Run a broker until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file := roleConfig(cmd, "broker")
			cfg, err := config.LoadBroker(file)
			if err != nil {
				return err
			}
			log, err := daemonLogger(app, cmd, level, cfg.Observability)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			defer log.Close()
			onHangup(cmd.Context(), log.Logger, log.Reopen)
			return runBroker(cmd.Context(), app, file, cfg, log.Logger)
		},
	}
	run.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error (overrides log.level)")
	cmd.AddCommand(run)
	return cmd
}

func newServerCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{Use: "server", Short: "Run the node daemon"}
	var level string
	run := &cobra.Command{
		Use:   "run -c server.conf",
		Short: "Run the node daemon until interrupted",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			file := roleConfig(cmd, "server")
			cfg, err := config.LoadServer(file)
			if err != nil {
				return err
			}
			log, err := daemonLogger(app, cmd, level, cfg.Observability)
			if err != nil {
				return fmt.Errorf("%s: %w", file, err)
			}
			defer log.Close()
			d, err := daemon.New(cfg, file, buildinfo.Read().Short(), log.Logger)
			if err != nil {
				return err
			}
			onHangup(cmd.Context(), log.Logger, func() error { return errors.Join(log.Reopen(), d.ReopenLogs()) })
			if cfg.MetricsListen != "" {
				reg := metrics.New()
				d.RegisterMetrics(reg)
				if err := serveMetrics(cmd.Context(), cfg.MetricsListen, reg, log.Logger); err != nil {
					return fmt.Errorf("%s: %w", file, err)
				}
			}
			// This process never runs the broker: no per-second timers of
			// the broker's or of the runtime while the node is idle.
			quiesce.NonBroker()
			return d.Run(cmd.Context())
		},
	}
	run.Flags().StringVar(&level, "log-level", "info", "debug, info, warn or error (overrides log.level)")
	keys := &cobra.Command{
		Use:   "config-keys server|client|broker",
		Short: "List every configuration key with its default",
		Args:  cobra.ExactArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			switch args[0] {
			case "server":
				fmt.Fprint(app.Stdout, config.ServerKeys())
			case "client":
				fmt.Fprint(app.Stdout, config.ClientKeys())
			case "broker":
				fmt.Fprint(app.Stdout, config.BrokerKeys())
			default:
				return fmt.Errorf("unknown role %q (server, client or broker)", args[0])
			}
			return nil
		},
	}
	cmd.AddCommand(run, keys, newJobRunCmd(app))
	return cmd
}

// newJobRunCmd is the hidden `mco server job-run`: the daemon re-executes
// the binary so to run one detached action (mco rpc --async) in a process
// of its own, outside the daemon's lifetime (daemon.RunJob).
func newJobRunCmd(app *App) *cobra.Command {
	var dir string
	cmd := &cobra.Command{
		Use:    "job-run -c server.conf --job DIR",
		Short:  "Run one detached action (started by the node daemon, not by hand)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return fmt.Errorf("--job DIR is required")
			}
			file := roleConfig(cmd, "server")
			cfg, err := config.LoadServer(file)
			if err != nil {
				return err
			}
			// Its log is the job's stderr, in the job's directory.
			log := slog.New(slog.NewTextHandler(app.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			return daemon.RunJob(cfg, dir, buildinfo.Read().Short(), log)
		},
	}
	cmd.Flags().StringVar(&dir, "job", "", "the job's directory in the spool")
	return cmd
}

// newTable returns a plain table writer on stdout: no box drawing, so the
// output stays easy to grep and to paste.
func newTable(app *App) table.Writer {
	tw := table.NewWriter()
	tw.SetOutputMirror(app.Stdout)
	tw.SetStyle(table.StyleLight)
	tw.Style().Options = table.OptionsNoBordersAndSeparators
	tw.Style().Format.Header = 0 // keep header case as written
	return tw
}

// roleConfig is the -c file, else /etc/marionette/<role>.conf.
func roleConfig(cmd *cobra.Command, role string) string {
	if file := configFlag(cmd); file != "" {
		return file
	}
	return "/etc/marionette/" + role + ".conf"
}

// runBroker runs the broker configured in file until ctx ends.
func runBroker(ctx context.Context, app *App, file string, cfg *config.Broker, log *slog.Logger) error {
	if cfg.Insecure {
		fmt.Fprintln(app.Stderr, "WARNING: insecure = true: no TLS and no authentication. Development only.")
	}
	b, err := node.StartBroker(cfg, file, log)
	if err != nil {
		return err
	}
	if cfg.MetricsListen != "" {
		reg := metrics.New()
		b.RegisterMetrics(reg)
		if err := serveMetrics(ctx, cfg.MetricsListen, reg, log); err != nil {
			b.Shutdown()
			return fmt.Errorf("%s: %w", file, err)
		}
	}
	log.Info("broker ready", "url", b.URL())
	b.Run(ctx)
	return nil
}
