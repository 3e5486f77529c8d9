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
		Long: `Measure wizfetch's throughput. Starts the simulator (no rate limit unless --rate) in a child process, pulls
every issue with a bare client that decodes only the page envelope (the baseline), then runs the real
pipeline (run --until-idle: classify, map, bbolt commit with fsync, JSONL sink, from an empty store) in
another child process. Each runs --runs times and counts its best run. It prints both rates in
issues/s, their ratio, the pipeline's peak RSS, CPU and allocations per issue. The last line is:

  bench: ratio=R pipeline=X/s baseline=Y/s peak_rss_mib=M

The pipeline requests at most 200 issues a page (fetch.max_per_fetch); a larger --page-size applies to
the baseline only.

At the API's pace: with --rate R the simulator answers 429 above R requests/s and both clients pace
themselves at R (the pipeline with wiz.requests_per_second: R); with --latency D and
--latency-per-issue P every page takes D + P × its issues to answer. The report then also prints the
API bound, max(pages ÷ R, Σ page latencies) with pages = ⌈issues ÷ page size⌉, and the pipeline's wall
time over it:

  api_bound_s=B pipeline_wall_s=W over_bound=W/B

With --sim-url, --rate and --latency must describe that simulator (the bench cannot set them there).`,
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
	cmd.Flags().StringVar(&o.SimURL, "sim-url", "", "use this running simulator instead of starting one (e.g. http://127.0.0.1:18556, from: wizsim --listen 127.0.0.1:18556 --issues 50000)")
	cmd.Flags().IntVar(&o.Runs, "runs", bench.DefaultRuns, fmt.Sprintf("runs of the baseline and of the pipeline; each counts its best (1..%d)", bench.MaxRuns))
	cmd.Flags().Float64Var(&o.API.Rate, "rate", 0, "requests per second the simulator allows (429 above) and both clients pace themselves to (0 = unlimited)")
	cmd.Flags().DurationVar(&o.API.Latency, "latency", 0, "base time the simulator takes to answer every page (e.g. 800ms; 0 = at once)")
	cmd.Flags().DurationVar(&o.API.LatencyPerIssue, "latency-per-issue", 0, "extra time per issue on a page (e.g. 4ms)")
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
			if o.Latency < 0 || o.LatencyPerIssue < 0 {
				return usageError(errors.New("--latency and --latency-per-issue must not be negative"))
			}
			// With --reveal the data is generated as of now and then the clock jumps 10 minutes ahead
			// (past the largest ingestion lag): every issue is visible and, the simulator not being
			// live, nothing changes, so the baseline and the pipeline see the same set. The clock
			// keeps running from there, as --rate's limiter refills with the time it reads.
			var ahead atomic.Int64
			if reveal {
				o.Now = func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }
			}
			sim, err := wizsim.New(o)
			if err != nil {
				return usageError(err)
			}
			ahead.Store(int64(10 * time.Minute))
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
	cmd.Flags().DurationVar(&o.Latency, "latency", 0, "base time every /graphql answer takes (e.g. 800ms; 0 = at once)")
	cmd.Flags().DurationVar(&o.LatencyPerIssue, "latency-per-issue", 0, "extra time per issue node answered (e.g. 4ms)")
	cmd.Flags().BoolVar(&reveal, "reveal", false, "run the clock 10 minutes ahead of the generation time, so every issue is visible")
	return cmd
}
