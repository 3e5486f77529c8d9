package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

// buildWizfetch compiles the wizfetch binary (with this package's hooks) into a temp dir.
func buildWizfetch(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "wizfetch")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/wizfetch/wizfetch/cmd/wizfetch")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

var (
	summaryRE = regexp.MustCompile(`^bench: ratio=\d+\.\d{2} pipeline=\d+/s baseline=\d+/s peak_rss_mib=\d+\.\d$`)
	detailRE  = regexp.MustCompile(`^cpu_ms_per_issue=\d+\.\d{4} allocs_per_issue=\d+$`)
)

// TestRunEndToEnd runs the whole harness against the built binary: the simulator and the pipeline
// are real child processes.
func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wizfetch binary")
	}
	bin := buildWizfetch(t)
	tests := []struct {
		name             string
		issues, pageSize int
		runs             int
		wantRuns         int
		wantPipelinePage int
		wantNote         bool
	}{
		{name: "page 200", issues: 3000, pageSize: 200, wantRuns: DefaultRuns, wantPipelinePage: 200},
		{name: "page 500 caps the pipeline", issues: 1000, pageSize: 500, runs: 1, wantRuns: 1, wantPipelinePage: 200, wantNote: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keep")
			profile := filepath.Join(t.TempDir(), "cpu.pprof")
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			var out bytes.Buffer
			res, err := Run(ctx, Options{
				Issues: tc.issues, PageSize: tc.pageSize, Seed: 7, Runs: tc.runs, WizfetchBinary: bin, Dir: dir, CPUProfile: profile,
			}, &out)
			if err != nil {
				t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
			}
			t.Logf("output:\n%s", out.String())

			lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
			if len(lines) < 3 {
				t.Fatalf("want at least 3 lines, got %q", lines)
			}
			last, detail := lines[len(lines)-1], lines[len(lines)-2]
			if !summaryRE.MatchString(last) {
				t.Errorf("last line %q does not match %s", last, summaryRE)
			}
			if last != SummaryLine(res) {
				t.Errorf("last line %q differs from SummaryLine(result) %q", last, SummaryLine(res))
			}
			if !detailRE.MatchString(detail) {
				t.Errorf("line before last %q does not match %s", detail, detailRE)
			}
			if got := strings.Contains(out.String(), "capped at page size 200"); got != tc.wantNote {
				t.Errorf("cap note printed = %v, want %v", got, tc.wantNote)
			}

			if res.BaselineIssues != tc.issues || res.Events != tc.issues {
				t.Errorf("baseline pulled %d issues and the pipeline wrote %d events, want %d each",
					res.BaselineIssues, res.Events, tc.issues)
			}
			if res.PipelinePageSize != tc.wantPipelinePage || res.PageSize != tc.pageSize {
				t.Errorf("page sizes: baseline %d pipeline %d, want %d and %d", res.PageSize, res.PipelinePageSize, tc.pageSize, tc.wantPipelinePage)
			}
			for name, v := range map[string]float64{
				"BaselinePerSec": res.BaselinePerSec, "PipelinePerSec": res.PipelinePerSec, "Ratio": res.Ratio,
				"PeakRSSMiB": res.PeakRSSMiB, "AllocsPerIssue": res.AllocsPerIssue, "CPUPerIssueMs": res.CPUPerIssueMs,
			} {
				if !(v > 0) {
					t.Errorf("%s = %v, want > 0", name, v)
				}
			}
			if want := fmt.Sprintf("best of %d", tc.wantRuns); strings.Count(out.String(), want) != 2 {
				t.Errorf("the table does not say %q for both rows", want)
			}
			// --keep: every run's files stay, each run starts from an empty store, and its JSONL holds
			// one line per event.
			for i := 1; i <= tc.wantRuns; i++ {
				path := filepath.Join(dir, fmt.Sprintf("run%d", i), "incidents.jsonl")
				if n, err := countLines(path); err != nil || n != res.Events {
					t.Errorf("kept %s has %d lines (%v), want %d", path, n, err, res.Events)
				}
			}
			if _, err := os.Stat(filepath.Join(dir, fmt.Sprintf("run%d", tc.wantRuns+1))); err == nil {
				t.Errorf("more than %d pipeline runs", tc.wantRuns)
			}
			if fi, err := os.Stat(profile); err != nil || fi.Size() == 0 {
				t.Errorf("CPU profile %s missing or empty: %v", profile, err)
			}
		})
	}
}

// With SimURL the bench uses a simulator that is already running (and leaves it running).
func TestRunAgainstARunningSimulator(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wizfetch binary")
	}
	bin := buildWizfetch(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sim, err := startSim(ctx, bin, simSpec{issues: 1500, seed: 3}, filepath.Join(t.TempDir(), "sim.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer sim.stop()
	var out bytes.Buffer
	res, err := Run(ctx, Options{SimURL: sim.url + "/graphql", Runs: 1, WizfetchBinary: bin}, &out)
	if err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	if res.BaselineIssues != 1500 || res.Events != 1500 {
		t.Errorf("baseline pulled %d issues and the pipeline wrote %d events, want 1500 each", res.BaselineIssues, res.Events)
	}
	if !strings.Contains(out.String(), "the simulator at "+sim.url+",") {
		t.Errorf("the report does not name the simulator:\n%s", out.String())
	}
	select {
	case err := <-sim.done:
		t.Fatalf("the bench stopped a simulator it did not start: %v", err)
	default:
	}
}

func TestOptionsValidation(t *testing.T) {
	tests := []struct {
		name    string
		o       Options
		wantErr string // "" = valid
	}{
		{name: "defaults", o: Options{WizfetchBinary: "x"}},
		{name: "page 500", o: Options{PageSize: 500, WizfetchBinary: "x"}},
		{name: "negative issues", o: Options{Issues: -1, WizfetchBinary: "x"}, wantErr: "--issues: -1 is below the minimum of 1"},
		{name: "page too big", o: Options{PageSize: 501, WizfetchBinary: "x"}, wantErr: "--page-size: 501 is not between 1 and 500"},
		{name: "negative page", o: Options{PageSize: -5, WizfetchBinary: "x"}, wantErr: "--page-size: -5"},
		{name: "no binary", o: Options{}, wantErr: "executable is not set"},
		{name: "no runs", o: Options{Runs: -1, WizfetchBinary: "x"}, wantErr: "--runs: -1 is not between 1 and 10"},
		{name: "too many runs", o: Options{Runs: 11, WizfetchBinary: "x"}, wantErr: "--runs: 11"},
		{name: "sim url without scheme", o: Options{SimURL: "127.0.0.1:18556", WizfetchBinary: "x"}, wantErr: "--sim-url"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tc.o.withDefaults()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				if got.Issues != DefaultIssues || got.Seed != DefaultSeed || got.Runs != DefaultRuns || got.SimBinary != "x" || got.Logger == nil {
					t.Errorf("defaults not applied: %+v", got)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want ErrInvalidOptions containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestWorkDir(t *testing.T) {
	t.Run("temporary, removed", func(t *testing.T) {
		d, cleanup, err := workDir("")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("temp dir missing: %v", err)
		}
		cleanup()
		if _, err := os.Stat(d); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("temp dir %s not removed: %v", d, err)
		}
	})
	t.Run("kept, created", func(t *testing.T) {
		want := filepath.Join(t.TempDir(), "a", "b")
		d, cleanup, err := workDir(want)
		if err != nil || d != want {
			t.Fatalf("workDir = %q, %v", d, err)
		}
		cleanup()
		if _, err := os.Stat(d); err != nil {
			t.Fatalf("kept dir removed: %v", err)
		}
	})
	t.Run("kept, not empty", func(t *testing.T) {
		d := t.TempDir()
		if err := os.WriteFile(filepath.Join(d, "wizfetch.db"), nil, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, _, err := workDir(d); !errors.Is(err, ErrInvalidOptions) {
			t.Fatalf("error %v, want ErrInvalidOptions", err)
		}
	})
}

func TestSummaryLine(t *testing.T) {
	tests := []struct {
		r    Result
		want string
	}{
		{Result{Ratio: 0.8349, PipelinePerSec: 41234.4, BaselinePerSec: 49875.6, PeakRSSMiB: 63.24},
			"bench: ratio=0.83 pipeline=41234/s baseline=49876/s peak_rss_mib=63.2"},
		{Result{Ratio: 1.005, PipelinePerSec: 10, BaselinePerSec: 9.95, PeakRSSMiB: 100},
			"bench: ratio=1.00 pipeline=10/s baseline=10/s peak_rss_mib=100.0"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := SummaryLine(tc.r); got != tc.want {
				t.Errorf("SummaryLine = %q, want %q", got, tc.want)
			}
			if !summaryRE.MatchString(tc.want) {
				t.Errorf("%q does not match the summary format", tc.want)
			}
		})
	}
}

func TestLineWatcher(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		want   string // "" = not found
	}{
		{name: "one write", writes: []string{"wizsim listening on http://127.0.0.1:1\n"}, want: "http://127.0.0.1:1"},
		{name: "split", writes: []string{"noise\nwizsim liste", "ning on http://h:2", "\nmore\n"}, want: "http://h:2"},
		{name: "no newline yet", writes: []string{"wizsim listening on http://h:3"}},
		{name: "other lines", writes: []string{"a\nb\n"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &lineWatcher{prefix: SimListeningPrefix, found: make(chan string, 1)}
			for _, s := range tc.writes {
				if n, err := w.Write([]byte(s)); n != len(s) || err != nil {
					t.Fatalf("Write = %d, %v", n, err)
				}
			}
			var got string
			select {
			case got = <-w.found:
			default:
			}
			if got != tc.want {
				t.Errorf("found %q, want %q", got, tc.want)
			}
		})
	}
}

// TestPipelineConfigIsValid loads the rendered child config with the real loader, so a change of the
// config contract breaks this test rather than the bench.
func TestPipelineConfigIsValid(t *testing.T) {
	dir := t.TempDir()
	cfg, _, err := config.LoadBytes([]byte(pipelineConfig(dir, "http://127.0.0.1:9", 150, 0)))
	if err != nil {
		t.Fatalf("config does not load: %v", err)
	}
	f := cfg.Instances[0].Fetch
	if f.MaxPerFetch != 150 || f.Updates || len(f.Status) != 4 || f.Lookback.D() != lookback {
		t.Errorf("fetch = %+v, want max_per_fetch 150, no updates, 4 statuses, lookback %s", f, lookback)
	}
	if cfg.Store.Path != filepath.Join(dir, "wizfetch.db") || cfg.Server.Listen != "127.0.0.1:0" {
		t.Errorf("store %q listen %q", cfg.Store.Path, cfg.Server.Listen)
	}
	if got := cfg.Instances[0].Wiz.RequestsPerSecond; got != unthrottledRPS {
		t.Errorf("requests_per_second = %v without a rate, want %d", got, unthrottledRPS)
	}
	cfg, _, err = config.LoadBytes([]byte(pipelineConfig(dir, "http://127.0.0.1:9", 150, 2.5)))
	if err != nil {
		t.Fatalf("config with a rate does not load: %v", err)
	}
	if got := cfg.Instances[0].Wiz.RequestsPerSecond; got != 2.5 {
		t.Errorf("requests_per_second = %v, want the API rate 2.5", got)
	}
}

// TestBaselineCountsEveryIssue runs the bare client against an in-process simulator whose clock is
// frozen after every issue became visible.
func TestBaselineCountsEveryIssue(t *testing.T) {
	genAt := time.Now()
	frozen := genAt
	sim, err := wizsim.New(wizsim.Options{Issues: 1234, Seed: 3, Now: func() time.Time { return frozen }})
	if err != nil {
		t.Fatal(err)
	}
	frozen = genAt.Add(10 * time.Minute) // before Start: no goroutine reads it yet
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	for _, pageSize := range []int{1, 200, 500} {
		t.Run(fmt.Sprint("page ", pageSize), func(t *testing.T) {
			n, wall, err := baseline(context.Background(), sim.URL(), genAt.Add(-lookback), pageSize, 0)
			if err != nil {
				t.Fatal(err)
			}
			if n != 1234 || wall <= 0 {
				t.Errorf("baseline = %d issues in %s, want 1234 in > 0", n, wall)
			}
		})
	}
	t.Run("bad page size is an error", func(t *testing.T) {
		if _, _, err := baseline(context.Background(), sim.URL(), genAt.Add(-lookback), 501, 0); err == nil {
			t.Fatal("want an error for first = 501")
		}
	})
}

func TestStartChildHooks(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{
		StatsEnv:      filepath.Join(dir, "stats.json"),
		CPUProfileEnv: filepath.Join(dir, "cpu.pprof"),
		MemProfileEnv: filepath.Join(dir, "mem.pprof"),
	}
	stop, err := StartChildHooks(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	sink := make([][]byte, 0, 100)
	for i := range 100 {
		sink = append(sink, make([]byte, 100+i))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(env[StatsEnv])
	if err != nil {
		t.Fatal(err)
	}
	var st ChildStats
	if err := json.Unmarshal(b, &st); err != nil || st.Mallocs < uint64(len(sink)) || st.TotalAlloc == 0 {
		t.Errorf("stats %s = %+v (%v), want mallocs >= %d", b, st, err, len(sink))
	}
	for _, k := range []string{CPUProfileEnv, MemProfileEnv} {
		if fi, err := os.Stat(env[k]); err != nil || fi.Size() == 0 {
			t.Errorf("%s: profile missing or empty: %v", k, err)
		}
	}

	t.Run("nothing set does nothing", func(t *testing.T) {
		stop, err := StartChildHooks(func(string) string { return "" })
		if err != nil {
			t.Fatal(err)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("unwritable allocation profile path", func(t *testing.T) {
		stop, err := StartChildHooks(func(k string) string {
			if k == MemProfileEnv {
				return filepath.Join(dir, "missing", "mem.pprof")
			}
			return ""
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := stop(); err == nil || !strings.Contains(err.Error(), MemProfileEnv) {
			t.Fatalf("error %v, want one naming %s", err, MemProfileEnv)
		}
	})
	t.Run("unwritable profile path", func(t *testing.T) {
		_, err := StartChildHooks(func(k string) string {
			if k == CPUProfileEnv {
				return filepath.Join(dir, "missing", "cpu.pprof")
			}
			return ""
		})
		if err == nil || !strings.Contains(err.Error(), CPUProfileEnv) {
			t.Fatalf("error %v, want one naming %s", err, CPUProfileEnv)
		}
	})
}
