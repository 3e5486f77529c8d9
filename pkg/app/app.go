// Package app wires wizfetch together: config, store, Wiz clients, feeds, schedules, sinks and the
// dispatcher, with a LIFO list of cleanups run on stop. It never touches process signals, so tests can
// run the whole daemon in-process.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/wizfetch/wizfetch/pkg/classify"
	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/sink"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// Options are what `wizfetch run` decides before the daemon starts.
type Options struct {
	Config  *config.Config // loaded and validated; secrets are resolved by Run
	Mode    schedule.Mode
	Logger  *slog.Logger
	Version string
	// Now is the clock for first-run pins and event times; nil uses time.Now.
	Now func() time.Time
	// PollEvery is the dispatcher's idle poll (tests shorten it); zero uses the default.
	PollEvery time.Duration
	// RetryBackoff is the first delay after a failed fetch or delivery (tests shorten it); zero uses
	// the defaults (1s, doubling).
	RetryBackoff time.Duration
	// OnFetch, when set, sees every fetch (demo progress, tests).
	OnFetch func(instance, feedName string, res feed.Result, err error)
}

// ErrConfig marks failures caused by the configuration or its secrets (exit code 2).
var ErrConfig = errors.New("configuration problem")

// cleanups is a LIFO stack of shutdown steps.
type cleanups []func() error

func (c *cleanups) push(fn func() error) { *c = append(*c, fn) }

func (c cleanups) run() error {
	var errs []error
	for i := len(c) - 1; i >= 0; i-- {
		if err := c[i](); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Run runs the daemon until ctx ends (Daemon mode) or the mode's end condition holds. It returns nil
// on a clean stop.
func Run(ctx context.Context, opt Options) (err error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	cfg := opt.Config
	log := opt.Logger
	if err := cfg.ResolveSecrets(); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}

	var stack cleanups
	defer func() {
		if cerr := stack.run(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	// The store lock comes first: nothing (not even a sink file repair) happens while another daemon
	// owns this state.
	st, err := store.Open(cfg.Store.Path, store.Options{})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	stack.push(st.Close)

	sinkNames := make([]string, 0, len(cfg.Sinks))
	for _, s := range cfg.Sinks {
		sinkNames = append(sinkNames, s.Name)
	}
	if err := dropStaleOutboxes(st, sinkNames, log); err != nil {
		return err
	}
	targets, closeSinks, err := openSinks(cfg.Sinks, log)
	if err != nil {
		return err
	}
	stack.push(closeSinks)

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()

	maxFailures := 0
	if opt.Mode != schedule.Daemon {
		maxFailures = schedule.MaxConsecutiveFailures
	}
	disp := sink.NewDispatcher(st, targets, sink.DispatcherOptions{
		Logger:      log,
		MaxFailures: maxFailures,
		PollEvery:   opt.PollEvery,
		BaseBackoff: opt.RetryBackoff,
	})

	feeds, err := buildFeeds(ctx, cfg, st, sinkNames, opt, disp.Notify)
	if err != nil {
		return err
	}
	gate := backpressureGate(st, cfg.Sinks, log)

	var wg sync.WaitGroup
	dispErr := make(chan error, 1)
	dispCtx, stopDispatcher := context.WithCancel(context.Background())
	defer stopDispatcher()
	go func() {
		// The dispatcher outlives the feeds so that --once and --until-idle can drain the outboxes.
		dispErr <- disp.Run(dispCtx)
	}()
	go func() {
		<-ctx.Done()
		stopDispatcher()
	}()

	feedErrs := make(chan error, len(feeds))
	for _, f := range feeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := schedule.Run(runCtx, f.feed, schedule.Options{
				Interval:    f.interval,
				CatchUp:     f.catchUp,
				Mode:        opt.Mode,
				Gate:        gate,
				Observe:     f.observe,
				BaseBackoff: opt.RetryBackoff,
			}); err != nil {
				feedErrs <- fmt.Errorf("feed %s/%s: %w", f.feed.Instance(), f.feed.Name(), err)
				cancel()
			}
		}()
	}
	log.Info("wizfetch started", "version", opt.Version, "instances", len(cfg.Instances), "feeds", len(feeds), "sinks", len(targets), "store", cfg.Store.Path)

	feedsDone := make(chan struct{})
	go func() { wg.Wait(); close(feedsDone) }()

	var dispatcherDone bool
	var dispatcherErr error
	select {
	case <-feedsDone:
	case dispatcherErr = <-dispErr:
		dispatcherDone = true
		cancel()
		<-feedsDone
	}
	close(feedErrs)
	errs := collect(feedErrs)
	if !dispatcherDone && len(errs) == 0 && opt.Mode != schedule.Daemon && ctx.Err() == nil {
		var err error
		dispatcherDone, err = drain(ctx, st, sinkNames, disp, dispErr)
		if dispatcherDone {
			dispatcherErr = err
		} else if err != nil {
			errs = append(errs, err)
		}
	}
	if !dispatcherDone {
		stopDispatcher()
		dispatcherErr = <-dispErr
	}
	if dispatcherErr != nil {
		errs = append(errs, fmt.Errorf("deliver: %w", dispatcherErr))
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	log.Info("wizfetch stopped")
	return nil
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

// drain waits until every outbox is empty (dead letters excluded) or the dispatcher stops; it reports
// whether the dispatcher stopped, and with which error.
func drain(ctx context.Context, st *store.Store, sinks []string, disp *sink.Dispatcher, dispErr <-chan error) (bool, error) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		pending := 0
		for _, s := range sinks {
			n, err := st.OutboxDepth(s)
			if err != nil {
				return false, fmt.Errorf("outbox depth of %s: %w", s, err)
			}
			pending += n
		}
		if pending == 0 {
			return false, nil
		}
		disp.Notify()
		select {
		case <-ctx.Done():
			return false, nil
		case err := <-dispErr:
			return true, err
		case <-tick.C:
		}
	}
}

// scheduledFeed is a feed with its schedule settings and logging.
type scheduledFeed struct {
	feed     *feed.Feed
	interval time.Duration
	catchUp  bool
	observe  func(feed.Result, error)
}

// buildFeeds creates, per instance, a Wiz client (with the tenant's one rate limiter), a classifier,
// a mapper and the created (and, if enabled, updates) feed.
func buildFeeds(ctx context.Context, cfg *config.Config, st *store.Store, sinks []string, opt Options, notify func()) ([]scheduledFeed, error) {
	var out []scheduledFeed
	for _, inst := range cfg.Instances {
		if !inst.Fetch.Enabled {
			continue
		}
		client, err := wiz.New(ctx, withLogger(wiz.OptionsFromConfig(inst.Wiz, opt.Version), opt.Logger))
		if err != nil {
			return nil, fmt.Errorf("%w: instance %s: %w", ErrConfig, inst.Name, err)
		}
		cls, err := classify.New(inst.Classify)
		if err != nil {
			return nil, fmt.Errorf("%w: instance %s: %w", ErrConfig, inst.Name, err)
		}
		mapper, err := incident.NewMapper(inst.Mapping, inst.Wiz.APIURL)
		if err != nil {
			return nil, fmt.Errorf("%w: instance %s: %w", ErrConfig, inst.Name, err)
		}
		names := []string{feed.Created}
		if inst.Fetch.Updates {
			names = append(names, feed.Updates)
		}
		for _, name := range names {
			f, err := feed.New(feed.Options{
				Instance: inst.Name, Name: name, Fetch: inst.Fetch, Sinks: sinks,
				Source: client, Store: st, Classifier: cls, Mapper: mapper,
				Now: opt.Now, Logger: opt.Logger,
			})
			if err != nil {
				return nil, err
			}
			out = append(out, scheduledFeed{
				feed:     f,
				interval: inst.Fetch.Interval.D(),
				catchUp:  inst.Fetch.CatchUp,
				observe:  fetchObserver(opt, inst.Name, name, notify),
			})
		}
	}
	return out, nil
}

func withLogger(o wiz.Options, log *slog.Logger) wiz.Options {
	o.Logger = log
	return o
}

// fetchObserver logs one line per fetch and wakes the dispatcher when events were committed.
func fetchObserver(opt Options, instance, name string, notify func()) func(feed.Result, error) {
	log := opt.Logger.With("component", "feed", "instance", instance, "feed", name)
	return func(res feed.Result, err error) {
		if res.Emitted() > 0 {
			notify()
		}
		if opt.OnFetch != nil {
			opt.OnFetch(instance, name, res, err)
		}
		attrs := []any{
			"pages", res.Pages, "fetched", res.Fetched, "created", res.Created, "updated", res.Updated,
			"ignored", sum(res.Ignored), "backlog", res.Backlog, "duration_ms", res.Duration.Milliseconds(),
			"watermark", formatTime(res.Watermark),
		}
		if err != nil {
			log.Error("fetch failed", append(attrs, "err", err)...)
			return
		}
		log.Info("fetch", attrs...)
	}
}

func sum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02T15:04:05.000000Z07:00")
}

// dropStaleOutboxes deletes the outbox of every sink that is no longer configured (DESIGN.md §2.6).
func dropStaleOutboxes(st *store.Store, sinks []string, log *slog.Logger) error {
	return st.Update(func(tx *store.Tx) error {
		have, err := tx.OutboxSinks()
		if err != nil {
			return err
		}
		for _, name := range have {
			if slices.Contains(sinks, name) {
				continue
			}
			n, err := tx.DropOutbox(name)
			if err != nil {
				return fmt.Errorf("drop outbox of removed sink %s: %w", name, err)
			}
			log.Warn("dropped the outbox of a sink no longer configured", "sink", name, "events", n)
		}
		return nil
	})
}

// openSinks opens every configured sink.
func openSinks(cfgs []config.Sink, log *slog.Logger) ([]sink.Target, func() error, error) {
	var targets []sink.Target
	closeAll := func() error {
		var errs []error
		for _, t := range targets {
			errs = append(errs, t.Sink.Close())
		}
		return errors.Join(errs...)
	}
	for i, sc := range cfgs {
		var s sink.Sink
		var err error
		switch sc.Type {
		case "jsonl":
			s, err = sink.OpenJSONL(sc.Name, sc.Path, log)
		default:
			err = fmt.Errorf("%w: sinks[%d].type: %s is not supported by this build yet", ErrConfig, i, sc.Type)
		}
		if err != nil {
			closeAll()
			return nil, nil, err
		}
		targets = append(targets, sink.Target{Sink: s, RetryFor: sc.RetryFor.D()})
	}
	return targets, closeAll, nil
}

// backpressureGate pauses fetching while any sink's outbox holds more than its max_pending events
// (DESIGN.md §2.6), logging when the pause starts and ends.
func backpressureGate(st *store.Store, sinks []config.Sink, log *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		paused := false
		for {
			over := ""
			for _, s := range sinks {
				n, err := st.OutboxDepth(s.Name)
				if err != nil {
					return fmt.Errorf("outbox depth of %s: %w", s.Name, err)
				}
				if n > s.MaxPending {
					over = fmt.Sprintf("%s (%d > %d)", s.Name, n, s.MaxPending)
					break
				}
			}
			if over == "" {
				if paused {
					log.Info("fetching resumed: sinks caught up")
				}
				return nil
			}
			if !paused {
				log.Warn("fetching paused: a sink is behind", "sink", over)
				paused = true
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(500 * time.Millisecond):
			}
		}
	}
}
