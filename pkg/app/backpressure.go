package app

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// backpressure pauses an instance's fetching while a sink is behind (DESIGN.md §2.6): when a sink's
// outbox holds more than its max_pending events, the instances whose own events there (their lane)
// are at least their share of max_pending (max_pending ÷ the instances configured) wait; the others
// go on fetching until theirs are. With one instance that is the rule as DESIGN.md words it; with
// many, one tenant's backfill into a slow sink pauses that tenant, not the fresh issues of the rest
// (issue 19: fair delivery starts with fair fetching). The outbox stays bounded: besides max_pending
// it holds less than a share per instance that is not paused, plus what fetches already under way
// emit (at most max_per_fetch each), as before.
type backpressure struct {
	store     *store.Store
	sinks     []config.Sink
	instances int
	log       *slog.Logger
	// setPaused reports the pause to the status page ("" when nothing is paused).
	setPaused func(string)
	// poll is how often a paused instance looks again.
	poll time.Duration

	mu     sync.Mutex
	paused map[string]*pause // instance → why, and how many of its feeds wait
}

func newBackpressure(st *store.Store, sinks []config.Sink, instances int, log *slog.Logger, setPaused func(string)) *backpressure {
	return &backpressure{store: st, sinks: sinks, instances: max(instances, 1), log: log, setPaused: setPaused,
		poll: 500 * time.Millisecond, paused: map[string]*pause{}}
}

// overShare reports whether an instance with lane of a sink's total events must pause.
func overShare(total, lane, maxPending, instances int) bool {
	return total > maxPending && lane >= max(maxPending/max(instances, 1), 1)
}

// pause is one instance's pause.
type pause struct {
	why     string
	waiters int
}

// wait returns once instance may fetch (at once unless a sink is behind on its events), or with
// ctx's error.
func (b *backpressure) wait(ctx context.Context, instance string) error {
	paused := false
	defer func() {
		if paused {
			b.leave(instance)
		}
	}()
	for {
		why, err := b.over(instance)
		if err != nil {
			return err
		}
		if why == "" {
			return nil
		}
		if !paused {
			b.enter(instance, why)
			paused = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(b.poll):
		}
	}
}

// over says why instance must pause, "" when it need not.
func (b *backpressure) over(instance string) (string, error) {
	for _, s := range b.sinks {
		total, lane, err := b.store.OutboxLoad(s.Name, instance)
		if err != nil {
			return "", fmt.Errorf("outbox depth of %s: %w", s.Name, err)
		}
		if overShare(total, lane, s.MaxPending, b.instances) {
			return fmt.Sprintf("%s (%d pending > max_pending %d; %d of them this instance's)", s.Name, total, s.MaxPending, lane), nil
		}
	}
	return "", nil
}

// enter records that a feed of instance waits (why), logging and reporting the instance's pause.
func (b *backpressure) enter(instance, why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.paused[instance]
	if p == nil {
		p = &pause{why: why}
		b.paused[instance] = p
		b.log.Warn("fetching paused: a sink is behind on this instance's events", "instance", instance, "sink", why)
		b.report()
	}
	p.waiters++
}

// leave records that a feed of instance no longer waits.
func (b *backpressure) leave(instance string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.paused[instance]
	if p == nil {
		return
	}
	if p.waiters--; p.waiters > 0 {
		return
	}
	delete(b.paused, instance)
	b.log.Info("fetching resumed: the sinks caught up", "instance", instance)
	b.report()
}

// report tells the status page what is paused; b.mu is held.
func (b *backpressure) report() {
	if len(b.paused) == 0 {
		b.setPaused("")
		return
	}
	for inst, p := range b.paused { // any one of them, as the example
		if len(b.paused) == 1 {
			b.setPaused(fmt.Sprintf("instance %s: %s", inst, p.why))
		} else {
			b.setPaused(fmt.Sprintf("%d instances, e.g. %s: %s", len(b.paused), inst, p.why))
		}
		return
	}
}
