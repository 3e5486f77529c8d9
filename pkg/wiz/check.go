package wiz

import (
	"context"
	"fmt"
	"time"
)

// Names of the steps Check reports.
const (
	CheckStepToken = "token"
	CheckStepQuery = "issues query (first: 1)"
)

// CheckStep is the outcome of one step of Check. Detail never holds a secret.
type CheckStep struct {
	Name     string
	OK       bool
	Detail   string
	Duration time.Duration
}

// Check is XSOAR's "Test" button for one instance: it obtains a token, then runs the issues query
// with first: 1, and reports each step. A step after a failed one is reported as failed and
// skipped. The caller validates the config first.
func Check(ctx context.Context, opts Options) []CheckStep {
	steps := []CheckStep{{Name: CheckStepToken}, {Name: CheckStepQuery}}
	skip := func(from int, why string) []CheckStep {
		for i := from; i < len(steps); i++ {
			steps[i].Detail = "skipped: " + why
		}
		return steps
	}

	start := time.Now()
	c, err := New(ctx, opts)
	if err != nil {
		steps[0].Detail = err.Error()
		steps[0].Duration = time.Since(start)
		return skip(1, "no token")
	}
	err = c.Token(ctx)
	steps[0].Duration = time.Since(start)
	if err != nil {
		steps[0].Detail = err.Error()
		return skip(1, "no token")
	}
	steps[0].OK = true
	steps[0].Detail = fmt.Sprintf("token obtained from %s (audience %s), valid for %s",
		c.AuthURL(), c.Audience(), time.Until(c.tokens.ExpiresAt()).Round(time.Second))

	start = time.Now()
	page, err := c.Issues(ctx, IssueFilter{}, nil, 1, "")
	steps[1].Duration = time.Since(start)
	if err != nil {
		steps[1].Detail = err.Error()
		return steps
	}
	steps[1].OK = true
	steps[1].Detail = fmt.Sprintf("%s answered in %s with %d issue(s)", c.APIURL(),
		steps[1].Duration.Round(time.Millisecond), len(page.Issues))
	return steps
}
