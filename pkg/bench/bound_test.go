package bench

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wizsim"
)

func TestAPIModelBound(t *testing.T) {
	tests := []struct {
		name             string
		m                APIModel
		issues, pageSize int
		want             time.Duration
	}{
		{name: "no model", m: APIModel{}, issues: 100000, pageSize: 200, want: 0},
		{name: "rate only", m: APIModel{Rate: 3}, issues: 100000, pageSize: 200, want: 166666666667 * time.Nanosecond}, // 500 pages ÷ 3/s
		{name: "rate only, last page partial", m: APIModel{Rate: 2}, issues: 201, pageSize: 100, want: 1500 * time.Millisecond},
		{name: "latency only", m: APIModel{Latency: 800 * time.Millisecond}, issues: 1000, pageSize: 200, want: 4 * time.Second},
		{
			name: "issue 19's target: latencies dominate", m: APIModel{Rate: 3, Latency: 800 * time.Millisecond, LatencyPerIssue: 4 * time.Millisecond},
			issues: 100000, pageSize: 200, want: 800 * time.Second, // 500 × 0.8 s + 100000 × 4 ms
		},
		{
			name: "rate dominates", m: APIModel{Rate: 1, Latency: 100 * time.Millisecond, LatencyPerIssue: time.Millisecond},
			issues: 1000, pageSize: 100, want: 10 * time.Second, // 10 pages ÷ 1/s over 10 × 0.1 s + 1 s
		},
		{
			name: "last page counts only its own issues", m: APIModel{Latency: 50 * time.Millisecond, LatencyPerIssue: time.Millisecond},
			issues: 250, pageSize: 100, want: 400 * time.Millisecond, // (50+100) + (50+100) + (50+50) ms
		},
		{name: "one issue", m: APIModel{Rate: 20, Latency: 50 * time.Millisecond}, issues: 1, pageSize: 200, want: 50 * time.Millisecond},
		{name: "no issues", m: APIModel{Rate: 3, Latency: time.Second}, issues: 0, pageSize: 200, want: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.m.Bound(tc.issues, tc.pageSize); got != tc.want {
				t.Errorf("Bound(%d, %d) = %s, want %s", tc.issues, tc.pageSize, got, tc.want)
			}
		})
	}
}

func TestBoundLine(t *testing.T) {
	tests := []struct {
		r    Result
		want string
	}{
		{Result{APIBound: 800 * time.Second, PipelineWall: 824 * time.Second}, "api_bound_s=800.0 pipeline_wall_s=824.0 over_bound=1.03"},
		{Result{APIBound: 1500 * time.Millisecond, PipelineWall: 1720 * time.Millisecond}, "api_bound_s=1.5 pipeline_wall_s=1.7 over_bound=1.15"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			if got := BoundLine(tc.r); got != tc.want {
				t.Errorf("BoundLine = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestAPIModelValidation(t *testing.T) {
	tests := []struct {
		name    string
		m       APIModel
		wantErr string // "" = valid
	}{
		{name: "zero", m: APIModel{}},
		{name: "target", m: APIModel{Rate: 3, Latency: 800 * time.Millisecond, LatencyPerIssue: 4 * time.Millisecond}},
		{name: "negative rate", m: APIModel{Rate: -1}, wantErr: "--rate: -1 is not a request rate"},
		{name: "negative latency", m: APIModel{Latency: -time.Second}, wantErr: "--latency: -1s is negative"},
		{name: "negative per issue", m: APIModel{LatencyPerIssue: -time.Millisecond}, wantErr: "--latency-per-issue: -1ms is negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Options{WizfetchBinary: "x", API: tc.m}.withDefaults()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("error %v, want ErrInvalidOptions containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestSimSpecArgs(t *testing.T) {
	base := []string{"bench-sim", "--listen", "127.0.0.1:0", "--issues", "300", "--seed", "7", "--reveal"}
	tests := []struct {
		name string
		api  APIModel
		want []string
	}{
		{name: "no model: as before", want: base},
		{
			name: "model", api: APIModel{Rate: 2.5, Latency: 800 * time.Millisecond, LatencyPerIssue: 4 * time.Millisecond},
			want: append(slices.Clone(base), "--rate", "2.5", "--latency", "800ms", "--latency-per-issue", "4ms"),
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := (simSpec{issues: 300, seed: 7, api: tc.api}).args(); !slices.Equal(got, tc.want) {
				t.Errorf("args = %q, want %q", got, tc.want)
			}
		})
	}
}

// TestBaselinePaces pulls 12 pages from a simulator that allows 10 requests/s (a burst of 10): an
// unpaced client runs into a 429, the paced one gets every issue and cannot be faster than its
// pacer (11 intervals of 100 ms after the first request).
func TestBaselinePaces(t *testing.T) {
	genAt := time.Now()
	var ahead atomic.Int64  // the simulator's clock runs (its limiter refills with it), 10 minutes ahead once generated
	var frozen atomic.Int64 // when set (unix ns), the simulator's clock stands still there
	sim, err := wizsim.New(wizsim.Options{Issues: 300, Seed: 3, Rate: 10,
		Now: func() time.Time {
			if f := frozen.Load(); f != 0 {
				return time.Unix(0, f)
			}
			return time.Now().Add(time.Duration(ahead.Load()))
		}})
	if err != nil {
		t.Fatal(err)
	}
	ahead.Store(int64(10 * time.Minute))
	if err := sim.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	ctx := context.Background()

	// With the clock stopped the limiter cannot refill, however slowly the requests go (-race, a
	// loaded machine): the 11th request of the unpaced run is over the burst of 10, always.
	frozen.Store(time.Now().Add(time.Duration(ahead.Load())).UnixNano())
	if _, _, err := baseline(ctx, sim.URL(), genAt.Add(-lookback), 25, 0); err == nil || !strings.Contains(err.Error(), "HTTP 429") {
		t.Fatalf("unpaced baseline: error %v, want an HTTP 429 (else this test shows nothing)", err)
	}
	// The unpaced run spent the service account's budget, which every token shares (as on Wiz):
	// let the clock run again, moved on so that the budget is whole.
	ahead.Add(int64(2 * time.Second))
	frozen.Store(0)
	n, wall, err := baseline(ctx, sim.URL(), genAt.Add(-lookback), 25, 10)
	if err != nil {
		t.Fatalf("paced baseline: %v", err)
	}
	if n != 300 || wall < 1100*time.Millisecond {
		t.Errorf("paced baseline = %d issues in %s, want 300 in at least 1.1 s", n, wall)
	}
}

var boundRE = regexp.MustCompile(`(?m)^api_bound_s=(\d+\.\d) pipeline_wall_s=(\d+\.\d) over_bound=(\d+\.\d{2})$`)

// TestRunAtTheAPIsPace runs the whole harness with an API model: 3 pages of 100 issues at 2
// requests/s, each page taking 400 ms + 100 × 1 ms = 500 ms. Every page taking at least one
// request interval (1/R), the bound of 1.5 s is a floor of any sequential pull (see the package
// documentation), so neither client can be below it; a simulator that ignored the latency would
// let the baseline pull 300 issues in milliseconds, and one whose limiter did not refill would
// answer the third page with a 429.
func TestRunAtTheAPIsPace(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the wizfetch binary")
	}
	bin := buildWizfetch(t)
	dir := filepath.Join(t.TempDir(), "keep")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out bytes.Buffer
	api := APIModel{Rate: 2, Latency: 400 * time.Millisecond, LatencyPerIssue: time.Millisecond}
	res, err := Run(ctx, Options{Issues: 300, PageSize: 100, Seed: 7, Runs: 1, WizfetchBinary: bin, Dir: dir, API: api}, &out)
	if err != nil {
		t.Fatalf("Run: %v\noutput:\n%s", err, out.String())
	}
	t.Logf("output:\n%s", out.String())

	const wantBound = 1500 * time.Millisecond
	if res.APIBound != wantBound {
		t.Errorf("APIBound = %s, want %s", res.APIBound, wantBound)
	}
	m := boundRE.FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no bound line matching %s in the report", boundRE)
	}
	if m[0] != BoundLine(res) || m[1] != "1.5" {
		t.Errorf("bound line %q, want %q with api_bound_s=1.5", m[0], BoundLine(res))
	}
	if res.PipelineWall < res.APIBound {
		t.Errorf("the pipeline took %s, below the API bound %s", res.PipelineWall, res.APIBound)
	}
	if res.BaselineWall < res.APIBound {
		t.Errorf("the baseline took %s, below the API bound %s: the simulator does not apply its latency", res.BaselineWall, res.APIBound)
	}
	if res.BaselineIssues != 300 || res.Events != 300 {
		t.Errorf("baseline pulled %d issues and the pipeline wrote %d events, want 300 each", res.BaselineIssues, res.Events)
	}
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if last := lines[len(lines)-1]; last != SummaryLine(res) {
		t.Errorf("last line %q, want the summary line %q", last, SummaryLine(res))
	}
}

// Without a model the report has no bound line.
func TestReportWithoutModelHasNoBound(t *testing.T) {
	var out bytes.Buffer
	r := Result{BaselineIssues: 10, Events: 10, PageSize: 200, PipelinePageSize: 200, PipelineWall: time.Second, BaselineWall: time.Second}
	if err := report(&out, Options{Issues: 10, Runs: 1}, r); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(out.String(), "api_bound_s") || strings.Contains(out.String(), "api:") {
		t.Errorf("report without an API model mentions a bound:\n%s", out.String())
	}
	out.Reset()
	r.APIBound = 500 * time.Millisecond
	if err := report(&out, Options{Issues: 10, Runs: 1, API: APIModel{Rate: 2}}, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "\napi_bound_s=0.5 pipeline_wall_s=1.0 over_bound=2.00\n") {
		t.Errorf("report with an API model lacks its bound line:\n%s", out.String())
	}
}
