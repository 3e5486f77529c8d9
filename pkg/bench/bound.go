package bench

import (
	"fmt"
	"math"
	"time"
)

// APIModel is how fast the simulated Wiz lets a client go: the simulator answers 429 above Rate
// requests per second per token and delays every /graphql answer by Latency plus LatencyPerIssue
// per issue node (wizsim.Options). Both of the bench's clients pace themselves at Rate, as against
// Wiz. The zero APIModel is the unthrottled, instant simulator.
type APIModel struct {
	// Rate is requests per second (0 = unlimited).
	Rate float64
	// Latency is the base time of every answer.
	Latency time.Duration
	// LatencyPerIssue is the extra time per issue node answered.
	LatencyPerIssue time.Duration
}

// active reports whether the model slows the API down at all.
func (m APIModel) active() bool {
	return m.Rate > 0 || m.Latency > 0 || m.LatencyPerIssue > 0
}

// validate returns one error per bad field.
func (m APIModel) validate() []error {
	var errs []error
	if m.Rate < 0 || math.IsNaN(m.Rate) || math.IsInf(m.Rate, 0) {
		errs = append(errs, fmt.Errorf("--rate: %v is not a request rate (0 = unlimited)", m.Rate))
	}
	if m.Latency < 0 {
		errs = append(errs, fmt.Errorf("--latency: %s is negative", m.Latency))
	}
	if m.LatencyPerIssue < 0 {
		errs = append(errs, fmt.Errorf("--latency-per-issue: %s is negative", m.LatencyPerIssue))
	}
	return errs
}

// Bound is the API bound of pulling issues in pages of pageSize under the model:
//
//	max(pages ÷ Rate, Σ page latencies), pages = ⌈issues ÷ pageSize⌉,
//
// where a page's latency is Latency + LatencyPerIssue × its issues, so the sum is
// pages × Latency + issues × LatencyPerIssue. The rate term is 0 without a rate. See the package
// documentation for what it bounds.
func (m APIModel) Bound(issues, pageSize int) time.Duration {
	n := pages(issues, pageSize)
	latencies := time.Duration(n)*m.Latency + time.Duration(issues)*m.LatencyPerIssue
	var paced time.Duration
	if m.Rate > 0 {
		paced = time.Duration(math.Round(float64(n) / m.Rate * float64(time.Second)))
	}
	return max(paced, latencies)
}

// BoundLine is the report's line on the API bound, e.g.
// "api_bound_s=800.0 pipeline_wall_s=812.3 over_bound=1.02".
func BoundLine(r Result) string {
	over := math.Inf(1)
	if r.APIBound > 0 {
		over = r.PipelineWall.Seconds() / r.APIBound.Seconds()
	}
	return fmt.Sprintf("api_bound_s=%.1f pipeline_wall_s=%.1f over_bound=%.2f",
		r.APIBound.Seconds(), r.PipelineWall.Seconds(), over)
}

// pages is ⌈issues ÷ pageSize⌉, the requests of a pull.
func pages(issues, pageSize int) int {
	if issues <= 0 || pageSize <= 0 {
		return 0
	}
	return (issues + pageSize - 1) / pageSize
}
