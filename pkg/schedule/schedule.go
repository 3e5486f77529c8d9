// Package schedule runs one feed on its schedule: every interval, at once again while a backlog remains
// (catch_up), with capped exponential backoff after failures, one fetch at a time, until the context
// ends, and not while the sinks are behind on its instance's events (Backpressure). It also
// implements the --once and --until-idle modes of `wizfetch run`.
package schedule

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/wizfetch/wizfetch/pkg/backoff"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// Fetcher is one feed.
type Fetcher interface {
	Fetch(ctx context.Context) (feed.Result, error)
}

// Mode says when Run returns.
type Mode int

// Modes of `wizfetch run`.
const (
	Daemon    Mode = iota // until the context ends
	Once                  // after one fetch
	UntilIdle             // once a fetch that started after launch closed its window below the cap
)

// MaxConsecutiveFailures is how many failed fetches in a row end --once/--until-idle runs.
const MaxConsecutiveFailures = 5

// Options tune a schedule.
type Options struct {
	Interval    time.Duration
	CatchUp     bool
	Mode        Mode
	BaseBackoff time.Duration // first retry delay after a failure (default 1s)
	MaxBackoff  time.Duration // cap (default 5m)
	// Gate blocks while fetching must pause (sink back-pressure); nil never pauses.
	Gate func(ctx context.Context) error
	// Observe sees every fetch's result (logging, metrics); nil ignores them.
	Observe func(res feed.Result, err error)
	// After is the timer (tests may speed it up); nil uses time.After.
	After func(time.Duration) <-chan time.Time
	// Align, when positive, moves each regular wait (Interval after a fetch; not a retry nor a
	// catch-up) to end on the next multiple of Align of the clock: at most Align later than
	// Interval alone, and at most Interval/16, so short intervals stay short. Feeds whose fetches
	// are due in the same slot then wake together: with many tenants, waking the process once per
	// fetch kept the Go runtime's scheduler busier than the fetches (BENCHMARKS.md, issue 19).
	// The app uses DefaultAlign.
	Align time.Duration
	// Now is the clock Align reads; nil uses time.Now.
	Now func() time.Time
}

// DefaultAlign is the slot the daemon aligns its feeds' regular fetches to: at most a quarter of a
// second late, and four wake-ups a second however many feeds are due.
const DefaultAlign = 250 * time.Millisecond

// alignedWait returns how long to wait from now so that at least interval passes and the wait ends
// on a multiple of align (since the Unix epoch), align being capped at interval/16; align <= 0
// returns interval.
func alignedWait(now time.Time, interval, align time.Duration) time.Duration {
	align = min(align, interval/16)
	if align <= 0 {
		return interval
	}
	due := now.Add(interval)
	slot := due.Truncate(align)
	if slot.Before(due) {
		slot = slot.Add(align)
	}
	return slot.Sub(now)
}

// Permanent reports whether err will not go away by retrying (bad credentials, missing scope, a query
// Wiz rejects): --once and --until-idle stop at once on such errors.
func Permanent(err error) bool {
	return errors.Is(err, wiz.ErrAuth) || errors.Is(err, wiz.ErrPermission) || errors.Is(err, wiz.ErrBadRequest)
}

// Run fetches f on schedule until ctx ends (Daemon, returning nil) or the mode's end condition holds.
func Run(ctx context.Context, f Fetcher, o Options) error {
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Minute
	}
	if o.After == nil {
		o.After = time.After
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	failures := 0
	for {
		if o.Gate != nil {
			if err := o.Gate(ctx); err != nil {
				return ignoreCancel(err)
			}
		}
		if ctx.Err() != nil {
			return nil
		}
		res, err := f.Fetch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if o.Observe != nil {
			o.Observe(res, err)
		}
		var wait time.Duration
		switch {
		case errors.Is(err, store.ErrCorrupt):
			// A damaged store does not heal by retrying: stop, in every mode, with the advice.
			return err
		case err != nil:
			failures++
			if o.Mode != Daemon && (Permanent(err) || failures >= MaxConsecutiveFailures) {
				return fmt.Errorf("after %d failed fetches: %w", failures, err)
			}
			wait = backoff.Delay(o.BaseBackoff, o.MaxBackoff, failures)
		default:
			failures = 0
			switch {
			case o.Mode == Once:
				return nil
			case o.Mode == UntilIdle && res.Closed && !res.Backlog:
				return nil
			case res.Backlog && (o.CatchUp || o.Mode == UntilIdle):
				wait = 0
			default:
				wait = alignedWait(o.Now(), o.Interval, o.Align)
			}
		}
		if wait > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-o.After(wait):
			}
		}
	}
}

func ignoreCancel(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}
