package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/wizfetch/wizfetch/pkg/bench"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

func newBenchCommand(env *Env) *cobra.Command {
	var o bench.Options
	var keep string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure the pipeline against a bare client on a simulated tenant",
		Long: `Measure wizfetch's throughput. Starts the simulator (no rate limit) in a child process, pulls
every issue with a bare client that decodes only the page envelope (the baseline), then runs the real
pipeline (run --until-idle: classify, map, bbolt commit with fsync, JSONL sink, from an empty store) in
another child process. Each runs --runs times and counts its best run. It prints both rates in
issues/s, their ratio, the pipeline's peak RSS, CPU and allocations per issue. The last line is:

  bench: ratio=R pipeline=X/s baseline=Y/s peak_rss_mib=M

The pipeline requests at most 200 issues a page (fetch.max_per_fetch); a larger --page-size applies to
the baseline only.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if o.Issues < 1 || o.PageSize < 1 {
				return usageError(fmt.Errorf("--issues and --page-size must be at least 1 (got %d and %d)", o.Issues, o.PageSize))
			}
			exe, err := os.Executable()
			if err != nil {
				return failure(fmt.Errorf("find the wizfetch executable: %w", err))
			}
			o.WizfetchBinary, o.SimBinary, o.Dir = exe, exe, keep
			o.Logger = slog.New(slog.NewTextHandler(env.Stderr, nil))
			if _, err := bench.Run(cmd.Context(), o, cmd.OutOrStdout()); err != nil {
				if errors.Is(err, bench.ErrInvalidOptions) {
					return usageError(err)
				}
				return failure(fmt.Errorf("bench: %w", err))
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&o.Issues, "issues", bench.DefaultIssues, "issues in the simulated tenant")
	cmd.Flags().IntVar(&o.PageSize, "page-size", bench.DefaultPageSize, "issues per page (1..500; the pipeline is capped at 200)")
	cmd.Flags().Int64Var(&o.Seed, "seed", bench.DefaultSeed, "simulator data seed")
	cmd.Flags().StringVar(&o.SimURL, "sim-url", "", "use this running simulator (e.g. http://127.0.0.1:18556 from `wizsim --listen 127.0.0.1:18556 --issues 50000`) instead of starting one")
	cmd.Flags().IntVar(&o.Runs, "runs", bench.DefaultRuns, fmt.Sprintf("runs of the baseline and of the pipeline; each counts its best (1..%d)", bench.MaxRuns))
	cmd.Flags().StringVar(&keep, "keep", "", "keep the pipeline's config, store, JSONL file and logs in this (new or empty) directory")
	cmd.Flags().StringVar(&o.CPUProfile, "cpuprofile", "", "write a CPU profile of the pipeline process to this file")
	cmd.Flags().StringVar(&o.MemProfile, "memprofile", "", "write an allocation profile (pprof allocs: alloc_space and inuse_space at exit) of the pipeline process to this file")
	return cmd
}

// newBenchSimCommand is the hidden simulator server `wizfetch bench` starts in a child process, so a
// fresh clone needs no second binary. It behaves like cmd/wizsim (same output line) and stops on
// SIGTERM/SIGINT or when its stdin closes (the parent exited).
func newBenchSimCommand(env *Env) *cobra.Command {
	var (
		listen string
		o      wizsim.Options
		reveal bool
	)
	cmd := &cobra.Command{
		Use:    "bench-sim",
		Short:  "Serve the Wiz simulator for wizfetch bench",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Logger = slog.New(slog.NewTextHandler(env.Stderr, nil))
			// With --reveal the data is generated as of now and then the clock stops 10 minutes later
			// (past the largest ingestion lag): every issue is visible and nothing changes, so the
			// baseline and the pipeline see the same set.
			var now atomic.Int64
			if reveal {
				now.Store(time.Now().UnixNano())
				o.Now = func() time.Time { return time.Unix(0, now.Load()) }
			}
			sim, err := wizsim.New(o)
			if err != nil {
				return usageError(err)
			}
			now.Add(int64(10 * time.Minute))
			if err := sim.Start(listen); err != nil {
				return failure(err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wizsim listening on %s\n", sim.URL())
			ctx, cancel := context.WithCancel(cmd.Context())
			defer cancel()
			// Stdin closing means the parent is gone. A blocked read cannot be interrupted, so this
			// goroutine ends with the process (the command's last act is to return to exit).
			go func() {
				_, _ = io.Copy(io.Discard, cmd.InOrStdin())
				cancel()
			}()
			<-ctx.Done()
			if err := sim.Close(); err != nil {
				return failure(err)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:0", "address to listen on")
	cmd.Flags().IntVar(&o.Issues, "issues", 1000, "number of generated issues")
	cmd.Flags().Int64Var(&o.Seed, "seed", 1, "data RNG seed")
	cmd.Flags().IntVar(&o.Days, "days", 7, "days of generated history")
	cmd.Flags().Float64Var(&o.Rate, "rate", 0, "requests per second per token before 429 (0 = unlimited)")
	cmd.Flags().BoolVar(&reveal, "reveal", false, "freeze the clock 10 minutes ahead so every issue is visible and the data is static")
	return cmd
}
