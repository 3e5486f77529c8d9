package sink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/wizfetch/wizfetch/pkg/backoff"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// Target is one sink with its delivery settings.
type Target struct {
	Sink     Sink
	Batch    int           // events per Deliver call (default 500)
	RetryFor time.Duration // how long one event is retried before the dead letter (default 24h)
}

// DispatcherOptions tune delivery.
type DispatcherOptions struct {
	Logger      *slog.Logger
	BaseBackoff time.Duration // default 1s
	MaxBackoff  time.Duration // default 1m
	PollEvery   time.Duration // idle re-check of the outbox without a Notify (default 1s)
	// MaxFailures > 0 makes Run return an error after that many consecutive failed deliveries of one
	// sink (for --once and --until-idle); 0 retries until RetryFor ends.
	MaxFailures int
	// Observe sees each delivery attempt (metrics): delivered events and the error, if any.
	Observe func(sink string, delivered int, err error)
	// DeadLettered sees each event moved to the dead letter.
	DeadLettered func(sink string, reason string)
	Now          func() time.Time
}

// Dispatcher runs one worker per sink, delivering its outbox a batch at a time. A batch is dealt
// round-robin across the instances with events (store.Store.NextBatch), so a fresh event of one
// tenant does not wait behind another tenant's backlog; each instance's events, and so each issue's,
// keep their order.
type Dispatcher struct {
	store   *store.Store
	targets []Target
	opt     DispatcherOptions
	wake    map[string]chan struct{}
}

// NewDispatcher prepares workers for targets; Run starts them.
func NewDispatcher(st *store.Store, targets []Target, opt DispatcherOptions) *Dispatcher {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.BaseBackoff <= 0 {
		opt.BaseBackoff = time.Second
	}
	if opt.MaxBackoff <= 0 {
		opt.MaxBackoff = time.Minute
	}
	if opt.PollEvery <= 0 {
		opt.PollEvery = time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	d := &Dispatcher{store: st, opt: opt, wake: map[string]chan struct{}{}}
	for _, t := range targets {
		if t.Batch <= 0 {
			t.Batch = 500
		}
		if t.RetryFor <= 0 {
			t.RetryFor = 24 * time.Hour
		}
		d.targets = append(d.targets, t)
		d.wake[t.Sink.Name()] = make(chan struct{}, 1)
	}
	return d
}

// Notify wakes every worker: new events were committed.
func (d *Dispatcher) Notify() {
	for _, ch := range d.wake {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// Run delivers until ctx ends (returning nil) or, with MaxFailures set, a sink keeps failing.
func (d *Dispatcher) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(d.targets))
	for _, t := range d.targets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := d.work(ctx, t); err != nil {
				errs <- err
				cancel()
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

func (d *Dispatcher) work(ctx context.Context, t Target) error {
	name := t.Sink.Name()
	log := d.opt.Logger.With("component", "dispatcher", "sink", name)
	wake := d.wake[name]
	failures := 0
	var failingSince time.Time
	for {
		if ctx.Err() != nil {
			return nil
		}
		items, err := d.store.NextBatch(name, t.Batch)
		if err != nil {
			return fmt.Errorf("read outbox of sink %s: %w", name, err)
		}
		if len(items) == 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-wake:
			case <-time.After(d.opt.PollEvery):
			}
			continue
		}
		n, derr := t.Sink.Deliver(ctx, items)
		if n > 0 {
			if err := d.store.Ack(name, items[:n]...); err != nil {
				return fmt.Errorf("acknowledge %d events of sink %s: %w", n, name, err)
			}
		}
		if d.opt.Observe != nil {
			d.opt.Observe(name, n, derr)
		}
		if derr == nil {
			failures, failingSince = 0, time.Time{}
			continue
		}
		if ctx.Err() != nil {
			return nil
		}
		failures++
		now := d.opt.Now()
		if failingSince.IsZero() || n > 0 {
			failingSince = now
		}
		head := items[n]
		if errors.Is(derr, ErrPermanent) || now.Sub(failingSince) >= t.RetryFor {
			reason := derr.Error()
			log.Error("moving event to the dead letter", "instance", head.Instance, "seq", head.Seq, "attempts", failures, "err", derr)
			if err := d.store.MoveToDeadLetter(name, head, reason, failures); err != nil {
				return fmt.Errorf("dead-letter event %d of sink %s: %w", head.Seq, name, err)
			}
			if d.opt.DeadLettered != nil {
				d.opt.DeadLettered(name, reason)
			}
			failures, failingSince = 0, time.Time{}
			continue
		}
		if d.opt.MaxFailures > 0 && failures >= d.opt.MaxFailures {
			return fmt.Errorf("sink %s: %d deliveries failed in a row: %w", name, failures, derr)
		}
		wait := backoff.Delay(d.opt.BaseBackoff, d.opt.MaxBackoff, failures)
		if ra, ok := RetryAfter(derr); ok && ra > wait {
			wait = min(ra, d.opt.MaxBackoff) // the receiver asked for a pause (429/503 Retry-After)
		}
		log.Warn("delivery failed; retrying", "attempt", failures, "retry_in", wait.Round(time.Millisecond), "err", derr)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}
