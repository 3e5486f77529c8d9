// Package bench is wizfetch's performance harness (`wizfetch bench`, DESIGN.md §4). It starts the
// simulator in a child process, measures a bare client pulling the issues query as fast as it can
// (the baseline), then runs the real pipeline (`wizfetch run --until-idle`: classify, map, bbolt
// commit with fsync, JSONL sink) in another child process, so the pipeline's peak RSS, CPU time and
// allocations are its own. It prints a small table and one summary line:
//
//	bench: ratio=0.83 pipeline=41234/s baseline=49876/s peak_rss_mib=63.2
//
// # At the API's pace
//
// With an APIModel (`--rate R --latency D --latency-per-issue P`) the simulator answers 429 above R
// requests per second per token and delays every answer by D + P × its issue nodes, as Wiz takes
// seconds per page; the pipeline's config says `wiz.requests_per_second: R` and the baseline paces
// itself the same way (a limiter of burst 1), so neither is ever throttled. The report then also
// prints the API bound of the run and the pipeline's wall time over it:
//
//	api_bound_s=800.0 pipeline_wall_s=812.3 over_bound=1.02
//
// The bound is max(pages ÷ R, Σ page latencies), where pages = ⌈issues ÷ page size⌉ at the pipeline's
// page size and a page's latency is D + P × its issues (so Σ = pages × D + issues × P).
//
// What it means: the pages of a window are a cursor chain (each request sends the previous page's
// endCursor), so the pipeline's one feed has one request in flight at a time. While catching up the
// feed prefetches (pkg/feed/stream.go: the next request starts as soon as a page arrives, and up to
// three pages wait ahead of the page being committed), which overlaps a request's latency with the
// mapping and committing of earlier pages, never with another request's latency. For such
// sequential requests Σ page latencies is a hard floor of the wall time. The rate term is a floor up
// to one request interval: the pacer lets the first request go at once, so n requests whose
// latencies are L₁…Lₙ take at least Σᵢ₍ᵢ<ₙ₎ max(1/R, Lᵢ) + Lₙ, which the bound exceeds by at most
// 1/R − Lₙ (and not at all when every page takes 1/R or longer). over_bound is then how close the
// pipeline comes to the fastest any sequential client could be: what it has above 1.00 is its process
// start, token, the gaps between requests, the last page's commit and delivery. A client that
// requested pages in parallel (several windows at once) could go below Σ page latencies, and the
// bound would no longer be a floor. Without a model the bench prints no bound and runs as fast as
// the simulator answers.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ErrInvalidOptions marks a bad Options value (a usage error).
var ErrInvalidOptions = errors.New("invalid bench options")

// PipelineMaxPageSize is the largest page the pipeline may request: fetch.max_per_fetch is 1..200
// (DESIGN.md §2.4), and feeds request first = max_per_fetch.
const PipelineMaxPageSize = 200

// MaxPageSize is the largest `first` Wiz accepts for issues (WIZ_API.md §2); the baseline may use it.
const MaxPageSize = 500

// Defaults for zero Options fields.
const (
	DefaultIssues   = 100000
	DefaultPageSize = 200
	DefaultSeed     = 1
	DefaultRuns     = 2
	MaxRuns         = 10
)

// Options configure one bench run. Zero values take the defaults above.
type Options struct {
	// Issues is the size of the simulated tenant.
	Issues int
	// PageSize is `first` of every page: the baseline uses it as is; the pipeline caps it at
	// PipelineMaxPageSize.
	PageSize int
	// Seed seeds the simulator's data.
	Seed int64
	// Runs is how many times the baseline and the pipeline run (alternately); each reports its best
	// run (the shared 2-core VM's noise only ever slows a run down). Every pipeline run starts from
	// an empty store against the same simulator.
	Runs int
	// SimBinary is a wizfetch executable run as `SimBinary bench-sim ...` to serve the simulator;
	// empty uses WizfetchBinary.
	SimBinary string
	// SimURL, when set, is a simulator already running (e.g. `wizsim --listen 127.0.0.1:18556
	// --issues 50000`, with its default credentials) that both the baseline and the pipeline use
	// instead of one the bench starts; Issues and Seed are then the simulator's business.
	SimURL string
	// WizfetchBinary is the wizfetch executable run as `run --until-idle` (required).
	WizfetchBinary string
	// Dir receives the pipeline's config, store, JSONL file, logs and stats (run1/, run2/, …).
	// Empty: a temporary directory removed afterwards. Set: created if missing, must be empty, kept.
	Dir string
	// CPUProfile, when set, makes the first pipeline run write a CPU profile to this path.
	CPUProfile string
	// MemProfile, when set, makes the first pipeline run write an allocation profile to this path.
	MemProfile string
	// API is the simulated Wiz's pace (rate limit and latency), which the bench's simulator applies
	// and both clients pace themselves to. With SimURL it must describe that simulator: the bench
	// cannot set it there, but paces its clients and computes the API bound from it.
	API APIModel
	// Logger reports progress; nil discards it.
	Logger *slog.Logger
}

// Result holds the measured figures.
type Result struct {
	// BaselinePerSec is the bare client's issues per second (best of Runs).
	BaselinePerSec float64
	// PipelinePerSec is events written per second of the pipeline child's wall time (best of Runs;
	// the CPU, allocation and event figures are that run's).
	PipelinePerSec float64
	// Ratio is PipelinePerSec / BaselinePerSec.
	Ratio float64
	// PeakRSSMiB is the largest peak resident set size of the pipeline runs.
	PeakRSSMiB float64
	// AllocsPerIssue is the pipeline child's heap allocations (runtime.MemStats.Mallocs) per event.
	AllocsPerIssue float64
	// CPUPerIssueMs is the pipeline child's user+sys CPU time per event, in milliseconds.
	CPUPerIssueMs float64
	// Events is the number of events (JSONL lines) the pipeline wrote.
	Events int
	// BaselineIssues is the number of issues the baseline pulled (best run).
	BaselineIssues int
	// PageSize and PipelinePageSize are the page sizes of the baseline and the pipeline.
	PageSize, PipelinePageSize int
	// BaselineWall and PipelineWall are the wall times measured.
	BaselineWall, PipelineWall time.Duration
	// CPU is the pipeline child's user+sys CPU time.
	CPU time.Duration
	// TotalAllocMiB is the pipeline child's cumulative heap allocation.
	TotalAllocMiB float64
	// APIBound is the API bound of the pipeline's pull (APIModel.Bound of the issues the baseline
	// pulled at the pipeline's page size); 0 without an API model.
	APIBound time.Duration
}

// withDefaults fills zero fields and validates the rest.
func (o Options) withDefaults() (Options, error) {
	if o.Issues == 0 {
		o.Issues = DefaultIssues
	}
	if o.PageSize == 0 {
		o.PageSize = DefaultPageSize
	}
	if o.Seed == 0 {
		o.Seed = DefaultSeed
	}
	if o.Runs == 0 {
		o.Runs = DefaultRuns
	}
	if o.SimBinary == "" {
		o.SimBinary = o.WizfetchBinary
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var errs []error
	if o.Issues < 1 {
		errs = append(errs, fmt.Errorf("--issues: %d is below the minimum of 1", o.Issues))
	}
	if o.PageSize < 1 || o.PageSize > MaxPageSize {
		errs = append(errs, fmt.Errorf("--page-size: %d is not between 1 and %d", o.PageSize, MaxPageSize))
	}
	if o.SimURL != "" {
		u, err := url.Parse(o.SimURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("--sim-url: %q is not an http(s) URL of a running simulator", o.SimURL))
		} else {
			o.SimURL = strings.TrimSuffix(strings.TrimSuffix(u.String(), "/"), "/graphql")
		}
	}
	if o.Runs < 1 || o.Runs > MaxRuns {
		errs = append(errs, fmt.Errorf("--runs: %d is not between 1 and %d", o.Runs, MaxRuns))
	}
	errs = append(errs, o.API.validate()...)
	if o.WizfetchBinary == "" {
		errs = append(errs, errors.New("the wizfetch executable is not set"))
	}
	if len(errs) > 0 {
		return o, fmt.Errorf("%w: %w", ErrInvalidOptions, errors.Join(errs...))
	}
	return o, nil
}

// Run measures the baseline and the pipeline and writes the report to out.
func Run(ctx context.Context, o Options, out io.Writer) (Result, error) {
	o, err := o.withDefaults()
	if err != nil {
		return Result{}, err
	}
	dir, cleanup, err := workDir(o.Dir)
	if err != nil {
		return Result{}, err
	}
	defer cleanup()
	log := o.Logger.With("component", "bench")

	res := Result{PageSize: o.PageSize, PipelinePageSize: min(o.PageSize, PipelineMaxPageSize)}
	if o.PageSize > PipelineMaxPageSize {
		fmt.Fprintf(out, "note: the pipeline is capped at page size %d by the contract (fetch.max_per_fetch is 1..%d); the baseline uses %d\n",
			PipelineMaxPageSize, PipelineMaxPageSize, o.PageSize)
	}

	var sim *simProcess
	if o.SimURL != "" {
		sim = &simProcess{url: o.SimURL}
		log.Info("using a running simulator", "url", sim.url)
	} else {
		log.Info("starting the simulator", "issues", o.Issues, "seed", o.Seed, "rate", o.API.Rate,
			"latency", o.API.Latency, "latency_per_issue", o.API.LatencyPerIssue)
		spec := simSpec{issues: o.Issues, seed: o.Seed, api: o.API}
		if sim, err = startSim(ctx, o.SimBinary, spec, filepath.Join(dir, "sim.log")); err != nil {
			return Result{}, err
		}
		log.Info("simulator ready", "url", sim.url)
	}
	simStopped := false
	defer func() {
		if !simStopped {
			_ = sim.stop()
		}
	}()

	// The lookback start is pinned once: the pipeline uses lookback 8d from its own start, and
	// the simulator's history spans 7 days, so both cover every generated issue.
	after := time.Now().Add(-lookback)
	// One pull first, not counted, warms the simulator (its heap and garbage collector settle over
	// the first pulls) and the connection. Then baseline and pipeline runs alternate, so that both
	// see the machine in the same state (on a shared VM its speed drifts over minutes); each side
	// counts its best run. At the API's pace the API, not the machine, sets the speed, and a warm-up
	// would take as long as a run: there is none.
	if !o.API.active() {
		n, wall, err := baseline(ctx, sim.url, after, o.PageSize, 0)
		if err != nil {
			return Result{}, fmt.Errorf("warm-up pull: %w", err)
		}
		log.Info("warm-up pull (not counted)", "issues", n, "wall", wall)
	}
	var best pipelineResult
	var peakRSS int64
	for i := range o.Runs {
		n, wall, err := baseline(ctx, sim.url, after, o.PageSize, o.API.Rate)
		if err != nil {
			return Result{}, fmt.Errorf("baseline run %d: %w", i+1, err)
		}
		log.Info("baseline run", "run", i+1, "issues", n, "wall", wall)
		if res.BaselineWall == 0 || wall < res.BaselineWall {
			res.BaselineIssues, res.BaselineWall = n, wall
		}

		runDir := filepath.Join(dir, fmt.Sprintf("run%d", i+1))
		if err := os.Mkdir(runDir, 0o755); err != nil {
			return Result{}, fmt.Errorf("create %s: %w", runDir, err)
		}
		log.Info("running the pipeline", "run", i+1, "dir", runDir)
		spec := pipelineSpec{binary: o.WizfetchBinary, dir: runDir, simURL: sim.url, pageSize: res.PipelinePageSize, rate: o.API.Rate}
		if i == 0 {
			spec.cpuProfile, spec.memProfile = o.CPUProfile, o.MemProfile
		}
		pr, err := runPipeline(ctx, spec)
		if err != nil {
			return Result{}, fmt.Errorf("pipeline run %d: %w", i+1, err)
		}
		log.Info("pipeline run", "run", i+1, "events", pr.events, "wall", pr.wall)
		peakRSS = max(peakRSS, pr.maxRSSBytes)
		if i == 0 || float64(pr.events)/pr.wall.Seconds() > float64(best.events)/best.wall.Seconds() {
			best = pr
		}
	}
	simStopped = true
	if err := sim.stop(); err != nil {
		return Result{}, err
	}

	res.Events = best.events
	res.PipelineWall = best.wall
	res.CPU = best.cpu
	res.PeakRSSMiB = float64(peakRSS) / (1 << 20)
	res.TotalAllocMiB = float64(best.stats.TotalAlloc) / (1 << 20)
	if res.Events == 0 || res.BaselineIssues == 0 {
		return res, fmt.Errorf("nothing measured: the baseline pulled %d issues and the pipeline wrote %d events",
			res.BaselineIssues, res.Events)
	}
	res.BaselinePerSec = float64(res.BaselineIssues) / res.BaselineWall.Seconds()
	res.PipelinePerSec = float64(res.Events) / res.PipelineWall.Seconds()
	res.Ratio = res.PipelinePerSec / res.BaselinePerSec
	res.AllocsPerIssue = float64(best.stats.Mallocs) / float64(res.Events)
	res.CPUPerIssueMs = float64(res.CPU) / float64(time.Millisecond) / float64(res.Events)
	if o.API.active() {
		res.APIBound = o.API.Bound(res.BaselineIssues, res.PipelinePageSize)
	}

	if err := report(out, o, res); err != nil {
		return res, fmt.Errorf("write report: %w", err)
	}
	return res, nil
}

// lookback is the pipeline's fetch.lookback and the baseline's createdAt.after distance from now.
const lookback = 8 * 24 * time.Hour

// workDir returns the directory to work in and how to clean it up.
func workDir(dir string) (string, func(), error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "wizfetch-bench-")
		if err != nil {
			return "", nil, fmt.Errorf("create a temporary directory: %w", err)
		}
		return d, func() { _ = os.RemoveAll(d) }, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("create %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", nil, fmt.Errorf("read %s: %w", dir, err)
	}
	if len(entries) > 0 {
		// A store left by an earlier run would resume from its checkpoint and emit nothing.
		return "", nil, fmt.Errorf("%w: --keep directory %s is not empty", ErrInvalidOptions, dir)
	}
	return dir, func() {}, nil
}

// report writes the human table, the detail line and the summary line.
func report(out io.Writer, o Options, r Result) error {
	if o.SimURL != "" {
		fmt.Fprintf(out, "wizfetch bench: the simulator at %s, page size %d (pipeline %d)\n", o.SimURL, r.PageSize, r.PipelinePageSize)
	} else {
		fmt.Fprintf(out, "wizfetch bench: %d issues (seed %d), page size %d (pipeline %d)\n",
			o.Issues, o.Seed, r.PageSize, r.PipelinePageSize)
	}
	row := "%-40s %8v %10v %10v\n"
	fmt.Fprintf(out, row, "", "issues", "wall", "issues/s")
	fmt.Fprintf(out, row, fmt.Sprintf("baseline (bare client, best of %d)", o.Runs), r.BaselineIssues, r.BaselineWall.Round(time.Millisecond), int64(math.Round(r.BaselinePerSec)))
	fmt.Fprintf(out, row, fmt.Sprintf("pipeline (run --until-idle, best of %d)", o.Runs), r.Events, r.PipelineWall.Round(time.Millisecond), int64(math.Round(r.PipelinePerSec)))
	fmt.Fprintf(out, "pipeline process (best run): cpu %s (user+sys), %.1f MiB allocated; peak RSS of all runs %.1f MiB\n",
		r.CPU.Round(time.Millisecond), r.TotalAllocMiB, r.PeakRSSMiB)
	if r.BaselineIssues != r.Events {
		fmt.Fprintf(out, "note: the baseline pulled %d issues and the pipeline wrote %d events\n", r.BaselineIssues, r.Events)
	}
	if o.API.active() {
		fmt.Fprintf(out, "api: %g requests/s (0 = unlimited), latency %s + %s per issue; bound = max(pages ÷ rate, Σ page latencies) over %d pages of %d\n",
			o.API.Rate, o.API.Latency, o.API.LatencyPerIssue, pages(r.BaselineIssues, r.PipelinePageSize), r.PipelinePageSize)
		fmt.Fprintln(out, BoundLine(r))
	}
	fmt.Fprintf(out, "cpu_ms_per_issue=%.4f allocs_per_issue=%.0f\n", r.CPUPerIssueMs, r.AllocsPerIssue)
	_, err := fmt.Fprintln(out, SummaryLine(r))
	return err
}

// SummaryLine is the final line of the report, e.g.
// "bench: ratio=0.83 pipeline=41234/s baseline=49876/s peak_rss_mib=63.2".
func SummaryLine(r Result) string {
	return fmt.Sprintf("bench: ratio=%.2f pipeline=%.0f/s baseline=%.0f/s peak_rss_mib=%.1f",
		r.Ratio, r.PipelinePerSec, r.BaselinePerSec, r.PeakRSSMiB)
}
