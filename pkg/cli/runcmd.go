package cli

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/app"
	"github.com/wizfetch/wizfetch/pkg/bench"
	"github.com/wizfetch/wizfetch/pkg/schedule"
)

func newRunCommand(env *Env) *cobra.Command {
	var once, untilIdle bool
	cmd := &cobra.Command{
		Use:   "run",
		Short: "Run the daemon: fetch on schedule and deliver incidents",
		Long: `Run the daemon: fetch on schedule and deliver incidents.

--once        one fetch per feed, deliver everything, exit
--until-idle  fetch until every feed has closed its window below the cap, deliver everything, exit
Exit codes: 0 ok, 1 runtime failure (a non-retryable API error, or 5 failures in a row in --once/--until-idle), 2 invalid config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if once && untilIdle {
				return usageError(errors.New("--once and --until-idle exclude each other"))
			}
			cfg, err := loadConfig(cmd, configPath(cmd, env))
			if err != nil {
				return err
			}
			mode := schedule.Daemon
			switch {
			case once:
				mode = schedule.Once
			case untilIdle:
				mode = schedule.UntilIdle
			}
			stopHooks, err := bench.StartChildHooks(env.Getenv) // WIZFETCH_BENCH_STATS, WIZFETCH_CPUPROFILE
			if err != nil {
				return failure(err)
			}
			err = app.Run(cmd.Context(), app.Options{
				Config:     cfg,
				ConfigPath: configPath(cmd, env),
				Reload:     env.Reload,
				Mode:       mode,
				Logger:     newLogger(env),
				Version:    env.Version,
			})
			if herr := stopHooks(); herr != nil {
				err = errors.Join(err, herr)
			}
			return appError(err)
		},
	}
	cmd.Flags().BoolVar(&once, "once", false, "one fetch per feed, then deliver and exit")
	cmd.Flags().BoolVar(&untilIdle, "until-idle", false, "exit once every feed is caught up and every outbox is empty")
	return cmd
}

// newLogger is the daemon's JSON logger on stderr.
func newLogger(env *Env) *slog.Logger {
	level := slog.LevelInfo
	if env.Getenv("WIZFETCH_LOG_LEVEL") == "debug" {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewJSONHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
}

// appError maps an app error to its exit code.
func appError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, app.ErrConfig):
		return usageError(err)
	default:
		return failure(fmt.Errorf("%w", err))
	}
}
