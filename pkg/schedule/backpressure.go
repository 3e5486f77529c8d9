package schedule

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// Backpressure pauses an instance's fetching while a sink is behind on its events (DESIGN.md §2.6,
// refined): when a sink's outbox holds more than its max_pending events, an instance whose own events
// there (its lane) are at least its share of max_pending — max_pending ÷ the instances that fetch —
// waits before its next fetch; the others go on. With one instance that is the rule as DESIGN.md
// words it; with many, one tenant's backfill into a slow sink pauses that tenant, not the fresh issues
// of the rest (issue 19: fair delivery starts with fair fetching).
//
// What it bounds: an instance starts no fetch once its lane holds its share, and a fetch emits at
// most max_per_fetch events per feed, so while the outbox is over max_pending each instance adds at
// most its share plus two fetches' worth (both feeds) before it pauses; the old global pause let
// every feed start one more fetch too.
//
// The sinks' counters are read once per poll interval for every instance (OutboxLoads), not once per
// feed: a thousand paused tenants cost one read a sink every half second.
type Backpressure struct {
	store     *store.Store
	sinks     []config.Sink
	instances int
	log       *slog.Logger
	// setPaused reports an instance's pause to the status page ("" when it resumes).
	setPaused func(instance, why string)
	// poll is how often a paused instance looks again, and how old the loads it reads may be.
	poll time.Duration
	now  func() time.Time

	mu     sync.Mutex
	loads  map[string]sinkLoad // sink → its outbox's load, read at .at
	paused map[string]*pause   // instance → why, and how many of its feeds wait
}

// sinkLoad is one read of a sink's outbox counters.
type sinkLoad struct {
	at    time.Time
	total int
	lanes map[string]int
}

// pause is one instance's pause.
type pause struct {
	why     string
	waiters int
}

// NewBackpressure returns the gate of the instances of cfg that fetch, on st. setPaused sees each
// instance's pause as it begins (why) and ends ("").
func NewBackpressure(st *store.Store, cfg *config.Config, log *slog.Logger, setPaused func(instance, why string)) *Backpressure {
	fetching := 0
	for _, inst := range cfg.Instances {
		if inst.Fetch.Enabled {
			fetching++
		}
	}
	return &Backpressure{store: st, sinks: cfg.Sinks, instances: max(fetching, 1), log: log.With("component", "backpressure"),
		setPaused: setPaused, poll: 500 * time.Millisecond, now: time.Now,
		loads: map[string]sinkLoad{}, paused: map[string]*pause{}}
}

// overShare reports whether an instance with lane of a sink's total events must pause.
func overShare(total, lane, maxPending, instances int) bool {
	return total > maxPending && lane >= max(maxPending/max(instances, 1), 1)
}

// Wait returns once instance may fetch (at once unless a sink is behind on its events), or with
// ctx's error. Each feed calls it before each fetch (Options.Gate).
func (b *Backpressure) Wait(ctx context.Context, instance string) error {
	paused := false
	defer func() {
		if paused {
			b.leave(instance, ctx.Err() == nil)
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
func (b *Backpressure) over(instance string) (string, error) {
	for _, s := range b.sinks {
		load, err := b.load(s.Name)
		if err != nil {
			return "", err
		}
		lane := load.lanes[instance]
		if overShare(load.total, lane, s.MaxPending, b.instances) {
			return fmt.Sprintf("%s (%d pending > max_pending %d; %d of them this instance's, its share is %d)",
				s.Name, load.total, s.MaxPending, lane, max(s.MaxPending/b.instances, 1)), nil
		}
	}
	return "", nil
}

// load returns sink's outbox load, read again when the last read is older than half a poll.
func (b *Backpressure) load(sink string) (sinkLoad, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	if l, ok := b.loads[sink]; ok && now.Sub(l.at) < b.poll/2 {
		return l, nil
	}
	total, lanes, err := b.store.OutboxLoads(sink)
	if err != nil {
		return sinkLoad{}, err
	}
	l := sinkLoad{at: now, total: total, lanes: lanes}
	b.loads[sink] = l
	return l, nil
}

// enter records that a feed of instance waits (why), logging and reporting the instance's pause.
func (b *Backpressure) enter(instance, why string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	p := b.paused[instance]
	if p == nil {
		p = &pause{why: why}
		b.paused[instance] = p
		b.log.Warn("fetching paused: a sink is behind on this instance's events", "instance", instance, "sink", why)
		b.setPaused(instance, why)
	}
	p.waiters++
}

// leave records that a feed of instance no longer waits: resumed says whether it goes on fetching
// (else its context ended: a stop or a reload, which is not worth a log line).
func (b *Backpressure) leave(instance string, resumed bool) {
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
	b.setPaused(instance, "")
	if resumed {
		b.log.Info("fetching resumed: this instance's events in the sinks are below its share", "instance", instance)
	}
}
