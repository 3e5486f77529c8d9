package schedule

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// scripted returns one prepared outcome per fetch and records the waits between fetches.
type scripted struct {
	outcomes []outcome
	calls    int
}

type outcome struct {
	res feed.Result
	err error
}

func (s *scripted) Fetch(context.Context) (feed.Result, error) {
	if s.calls >= len(s.outcomes) {
		return feed.Result{}, errors.New("script exhausted")
	}
	o := s.outcomes[s.calls]
	s.calls++
	return o.res, o.err
}

// recorder is a fake timer: it fires at once and remembers what was asked.
type recorder struct{ waits []time.Duration }

func (r *recorder) after(d time.Duration) <-chan time.Time {
	r.waits = append(r.waits, d)
	ch := make(chan time.Time, 1)
	ch <- time.Time{}
	return ch
}

var (
	backlog = outcome{res: feed.Result{Backlog: true}}
	closed  = outcome{res: feed.Result{Closed: true}}
	idle    = outcome{res: feed.Result{}}
	flaky   = outcome{err: fmt.Errorf("page: %w", wiz.ErrTransient)}
	denied  = outcome{err: fmt.Errorf("token: %w", wiz.ErrAuth)}
	damaged = outcome{err: fmt.Errorf("commit page: %w", store.ErrCorrupt)}
)

func TestRun(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mode      Mode
		catchUp   bool
		script    []outcome
		wantCalls int
		wantErr   error
		// wantWaits: 0 means "no wait recorded" (catch-up), -1 the interval, n>0 a backoff step n.
		wantWaits []int
	}{
		{name: "until-idle catches up then stops", mode: UntilIdle, script: []outcome{backlog, backlog, closed}, wantCalls: 3},
		{name: "until-idle keeps going while the window has more", mode: UntilIdle, script: []outcome{idle, closed}, wantCalls: 2, wantWaits: []int{-1}},
		{name: "once stops after one fetch", mode: Once, script: []outcome{backlog}, wantCalls: 1},
		{name: "a permanent error ends --once at once", mode: Once, script: []outcome{denied}, wantCalls: 1, wantErr: wiz.ErrAuth},
		{name: "five transient failures end --until-idle", mode: UntilIdle, script: []outcome{flaky, flaky, flaky, flaky, flaky}, wantCalls: 5, wantErr: wiz.ErrTransient, wantWaits: []int{1, 2, 3, 4}},
		{name: "a success resets the failure count", mode: UntilIdle, script: []outcome{flaky, flaky, flaky, flaky, backlog, flaky, closed}, wantCalls: 7, wantWaits: []int{1, 2, 3, 4, 1}},
		{name: "daemon without catch-up waits an interval after a backlog", mode: Daemon, catchUp: false, script: []outcome{backlog, idle}, wantCalls: 2, wantWaits: []int{-1, -1}},
		{name: "a damaged store ends even the daemon at once", mode: Daemon, catchUp: true, script: []outcome{backlog, damaged, backlog}, wantCalls: 2, wantErr: store.ErrCorrupt},
		{name: "daemon with catch-up fetches again at once", mode: Daemon, catchUp: true, script: []outcome{backlog, backlog, idle}, wantCalls: 3, wantWaits: []int{-1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &scripted{outcomes: tc.script}
			rec := &recorder{}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			const interval = time.Hour
			err := Run(ctx, f, Options{
				Interval: interval, CatchUp: tc.catchUp, Mode: tc.mode,
				BaseBackoff: time.Second, MaxBackoff: time.Minute,
				After: rec.after,
				Observe: func(_ feed.Result, err error) {
					// In daemon mode stop once the script is exhausted.
					if err != nil && err.Error() == "script exhausted" {
						cancel()
					}
				},
			})
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err = %v, want %v", err, tc.wantErr)
				}
			} else if err != nil {
				t.Fatalf("err = %v", err)
			}
			if f.calls != tc.wantCalls {
				t.Fatalf("fetches = %d, want %d", f.calls, tc.wantCalls)
			}
			if len(rec.waits) < len(tc.wantWaits) {
				t.Fatalf("waits = %v, want %v", rec.waits, tc.wantWaits)
			}
			for i, w := range tc.wantWaits {
				got := rec.waits[i]
				switch {
				case w == -1 && got != interval:
					t.Fatalf("wait %d = %v, want the interval", i, got)
				case w > 0:
					base := time.Second << (w - 1)
					if got < base*8/10 || got > base*12/10 {
						t.Fatalf("wait %d = %v, want backoff step %d (~%v)", i, got, w, base)
					}
				}
			}
		})
	}
}

func TestGateBlocksFetching(t *testing.T) {
	f := &scripted{outcomes: []outcome{closed}}
	ctx, cancel := context.WithCancel(context.Background())
	gateCalls := 0
	err := Run(ctx, f, Options{Mode: UntilIdle, Gate: func(ctx context.Context) error {
		gateCalls++
		cancel() // paused until shutdown
		<-ctx.Done()
		return ctx.Err()
	}})
	if err != nil || f.calls != 0 || gateCalls != 1 {
		t.Fatalf("err=%v calls=%d gate=%d: a closed gate must keep the feed from fetching", err, f.calls, gateCalls)
	}
}

func TestAlignedWait(t *testing.T) {
	base := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		now      time.Duration // after base
		interval time.Duration
		align    time.Duration
		want     time.Duration
	}{
		{"no alignment", 100 * time.Millisecond, time.Minute, 0, time.Minute},
		{"rounded up to the next slot", 100 * time.Millisecond, time.Minute, 250 * time.Millisecond, time.Minute + 150*time.Millisecond},
		{"on a slot already", 250 * time.Millisecond, time.Minute, 250 * time.Millisecond, time.Minute},
		{"just past a slot", 250*time.Millisecond + time.Nanosecond, time.Minute, 250 * time.Millisecond, time.Minute + 250*time.Millisecond - time.Nanosecond},
		{"slot capped at a sixteenth of the interval", 10 * time.Millisecond, 1600 * time.Millisecond, time.Second, 1690 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := base.Add(tc.now)
			got := alignedWait(now, tc.interval, tc.align)
			if got != tc.want {
				t.Fatalf("alignedWait = %v, want %v", got, tc.want)
			}
			if got < tc.interval {
				t.Fatalf("waited %v, less than the interval %v", got, tc.interval)
			}
			if slot := min(tc.align, tc.interval/16); slot > 0 && now.Add(got).UnixNano()%int64(slot) != 0 {
				t.Fatalf("the wait ends at %v, not on a multiple of %v", now.Add(got), slot)
			}
		})
	}
}

// TestRunAlignsOnlyRegularWaits: the interval wait ends on a slot; a retry's backoff and a
// catch-up are not delayed to one.
func TestRunAlignsOnlyRegularWaits(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 100e6, time.UTC)
	s := &scripted{outcomes: []outcome{idle, flaky, backlog, idle}}
	r := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := Run(ctx, s, Options{
		Interval: time.Minute, CatchUp: true, Align: 250 * time.Millisecond,
		BaseBackoff: time.Second, Now: func() time.Time { return now },
		After: func(d time.Duration) <-chan time.Time {
			if s.calls == len(s.outcomes) {
				cancel()
			}
			return r.after(d)
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	// idle: aligned; flaky: the (jittered) backoff as it is; backlog: no wait at all; idle: aligned.
	aligned := time.Minute + 150*time.Millisecond
	if len(r.waits) != 3 || r.waits[0] != aligned || r.waits[2] != aligned || r.waits[1] >= 2*time.Second {
		t.Fatalf("waits = %v, want [%v, a backoff of about 1s, %v]", r.waits, aligned, aligned)
	}
}
