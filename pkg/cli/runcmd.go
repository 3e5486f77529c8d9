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
			extraProc(env)
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

// extraProc gives the daemon one more P than Go's default (the CPUs it may use, cgroup limits
// included), unless GOMAXPROCS is set. A page commit spends about a third of its time in fdatasync,
// and when the call returns the committing goroutine needs a P again: with as many Ps as CPUs both
// are usually busy mapping and delivering later pages, and the commit — the pipeline's critical
// path — waits for one to come free. With one more, it runs at once and the kernel shares the CPUs.
// Measured on 2 CPUs (BENCHMARKS.md): run --until-idle of 50k issues, median wall -4 to -6 %;
// two more Ps did no better than the default. An explicit GOMAXPROCS also stops Go from updating
// the default when the cgroup limit changes; set GOMAXPROCS in the environment to keep that.
func extraProc(env *Env) {
	if env.MaxProcs == nil || env.Getenv("GOMAXPROCS") != "" {
		return
	}
	env.MaxProcs(env.MaxProcs(0) + 1)
}
