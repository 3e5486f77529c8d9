package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wizfetch/wizfetch/pkg/classify"
	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/ha"
	"github.com/wizfetch/wizfetch/pkg/incident"
	"github.com/wizfetch/wizfetch/pkg/schedule"
	"github.com/wizfetch/wizfetch/pkg/sink"
	"github.com/wizfetch/wizfetch/pkg/store"
	"github.com/wizfetch/wizfetch/pkg/wiz"
	"golang.org/x/time/rate"
)

// engine is everything built from one config: per-instance clients and feeds, the push receiver and
// its worker (pkg/push), the sinks and their dispatcher, and the retention pruner.
type engine struct {
	cfg       *config.Config
	instances map[string]*instanceRuntime
	push      http.Handler // the Wiz push receiver of this config
	actions   http.Handler // the write-back API of this config
	mcp       http.Handler // the MCP server of this config (nil: none configured)
	cancel    context.CancelFunc
	done      chan struct{} // closed when the engine stopped by itself or was stopped
	err       error
	stopOnce  sync.Once
}

// instanceRuntime is one tenant's client and the decider of its pushes (see push.Worker).
type instanceRuntime struct {
	name      string
	client    *wiz.Client
	refetcher *feed.Refetcher
	// contextLimit is the budget of GET /v1/issues/{id}/context, in Wiz requests (app/mcp.go).
	contextLimit *rate.Limiter
}

// engineRef lets long-lived handlers (push, write-back) see the engine of the moment.
type engineRef struct{ p atomic.Pointer[engine] }

func (e *engine) stop() { e.stopOnce.Do(e.cancel) }

// wait blocks until the engine stopped and returns why.
func (e *engine) wait() error {
	<-e.done
	return e.err
}

// startEngine builds and starts everything of cfg. It returns once all parts run; the engine stops by
// itself when ctx ends or the run mode's end condition holds.
func (d *shared) startEngine(ctx context.Context, cfg *config.Config) (*engine, error) {
	log := d.opt.Logger
	st := d.store
	sinkNames := make([]string, 0, len(cfg.Sinks))
	for _, s := range cfg.Sinks {
		sinkNames = append(sinkNames, s.Name)
	}
	// Replicas may run different configs for a while (a rollout, a ConfigMap reloaded on some pods
	// only): on etcd a leader that lacks a sink another one added must not delete its events.
	if err := staleOutboxes(st, sinkNames, !d.replicated, log); err != nil {
		return nil, err
	}
	d.tracker.Reset()
	d.metrics.WatchStore(st, sinkNames)
	targets, err := openSinks(cfg.Sinks, st, d.replicated, log)
	if err != nil {
		return nil, err
	}
	closeSinks := func() {
		for _, t := range targets {
			if err := t.Sink.Close(); err != nil {
				log.Error("close sink", "sink", t.Sink.Name(), "err", err)
			}
		}
	}
	for _, s := range cfg.Sinks {
		d.tracker.AddSink(s.Name, s.Type, s.MaxPending)
	}

	eng := &engine{cfg: cfg, instances: map[string]*instanceRuntime{}, done: make(chan struct{})}
	maxFailures := 0
	if d.opt.Mode != schedule.Daemon {
		maxFailures = schedule.MaxConsecutiveFailures
	}
	disp := sink.NewDispatcher(st, targets, sink.DispatcherOptions{
		Logger:      log,
		MaxFailures: maxFailures,
		PollEvery:   d.opt.PollEvery,
		BaseBackoff: d.opt.RetryBackoff,
		Observe: func(name string, n int, err error) {
			d.tracker.Delivery(name, n, err)
			d.metrics.Delivery(name, n, err)
		},
		DeadLettered: func(name, _ string) { d.metrics.DeadLettered(name) },
	})

	feeds, err := d.buildInstances(ctx, cfg, eng, sinkNames, disp.Notify)
	if err != nil {
		closeSinks()
		return nil, err
	}
	all := make([]*feed.Feed, len(feeds))
	for i, f := range feeds {
		all[i] = f.feed
	}
	if err := feed.PinFirstStarts(d.store, all); err != nil {
		// Not fatal: each feed pins its own on its first fetch, and reports there what failed.
		d.opt.Logger.Warn("could not pin the feeds' first-run starts at once; each feed pins its own", "err", err)
	}
	gate := schedule.NewBackpressure(d.store, cfg, d.opt.Logger, d.tracker.SetPaused)
	pushes := d.newPushWorker(eng, disp.Notify)
	eng.push = d.newPushHandler(cfg, pushes.Queue())
	eng.actions = d.newActionsHandler(cfg, eng)
	if eng.mcp, err = d.newMCPHandler(cfg, eng); err != nil {
		for _, f := range feeds {
			f.feed.Close()
		}
		closeSinks()
		return nil, err
	}

	runCtx, cancel := context.WithCancel(ctx)
	eng.cancel = cancel
	waitMirrors := d.startMirrors(runCtx, targets, eng)
	// The dispatcher and the refetch worker outlive the feeds, so that --once and --until-idle can
	// drain the outboxes and the refetch queue; they stop when runCtx ends.
	dispCtx, stopDispatcher := context.WithCancel(context.Background())
	if lost := ha.LeaseLost(ctx); lost != nil {
		// A leader whose lease ended stops delivering at once: another replica may lead and
		// deliver the same batch meanwhile, while this one's feeds may take tens of seconds to
		// return (their store calls time out against an unreachable etcd). Acknowledgements are
		// fenced anyway; this keeps the duplicates to the batch in flight.
		go func() {
			select {
			case <-lost:
				d.opt.Logger.Warn("lease lost: stopping delivery")
				stopDispatcher()
			case <-dispCtx.Done():
			}
		}()
	}
	dispErr := make(chan error, 1)
	go func() { dispErr <- disp.Run(dispCtx) }()
	refetchDone := make(chan struct{})
	go func() {
		defer close(refetchDone)
		pushes.Run(dispCtx)
	}()
	pruneDone := make(chan struct{})
	go func() {
		defer close(pruneDone)
		d.pruneLoop(runCtx, cfg.Store.Retention.D())
	}()

	var wg sync.WaitGroup
	feedErrs := make(chan error, len(feeds))
	for _, f := range feeds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer f.feed.Close()
			if err := schedule.Run(runCtx, f.feed, schedule.Options{
				Interval:    f.interval,
				CatchUp:     f.catchUp,
				Mode:        d.opt.Mode,
				Gate:        func(ctx context.Context) error { return gate.Wait(ctx, f.feed.Instance()) },
				Observe:     f.observe,
				BaseBackoff: d.opt.RetryBackoff,
				Align:       schedule.DefaultAlign,
			}); err != nil {
				feedErrs <- fmt.Errorf("feed %s/%s: %w", f.feed.Instance(), f.feed.Name(), err)
				cancel()
			}
		}()
	}
	d.current.p.Store(eng)

	go func() {
		defer close(eng.done)
		defer closeSinks()
		feedsDone := make(chan struct{})
		go func() { wg.Wait(); close(feedsDone) }()
		var errs []error
		dispatcherDone := false
		if d.opt.Mode == schedule.Daemon {
			// A daemon runs until stopped; its feeds end only with runCtx.
			select {
			case <-runCtx.Done():
			case err := <-dispErr:
				dispatcherDone = true
				if err != nil {
					errs = append(errs, fmt.Errorf("deliver: %w", err))
				}
				cancel()
			}
			<-feedsDone
		} else {
			select {
			case <-feedsDone:
			case err := <-dispErr:
				dispatcherDone = true
				if err != nil {
					errs = append(errs, fmt.Errorf("deliver: %w", err))
				}
				cancel()
				<-feedsDone
			}
		}
		close(feedErrs)
		for err := range feedErrs {
			errs = append(errs, err)
		}
		if !dispatcherDone && len(errs) == 0 && d.opt.Mode != schedule.Daemon && runCtx.Err() == nil {
			stopped, err := d.drain(runCtx, sinkNames, disp, dispErr)
			if stopped {
				dispatcherDone = true
			}
			if err != nil {
				errs = append(errs, err)
			}
		}
		stopDispatcher()
		if !dispatcherDone {
			if err := <-dispErr; err != nil {
				errs = append(errs, fmt.Errorf("deliver: %w", err))
			}
		}
		cancel()
		<-refetchDone
		<-pruneDone
		waitMirrors()
		eng.err = errors.Join(errs...)
	}()
	return eng, nil
}

// drain waits until every outbox and the refetch queue are empty (dead letters excluded) or the
// dispatcher stops; it reports whether the dispatcher stopped.
func (d *shared) drain(ctx context.Context, sinks []string, disp *sink.Dispatcher, dispErr <-chan error) (bool, error) {
	// Depths are O(1) counter reads: polling often costs nothing and lets --once and --until-idle exit
	// as soon as the last batch is acknowledged (a 20 ms tick added up to 20 ms to every run).
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		pending, err := d.store.RefetchDepth()
		if err != nil {
			return false, fmt.Errorf("refetch queue depth: %w", err)
		}
		for _, s := range sinks {
			n, err := d.store.OutboxDepth(s)
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
			if err != nil {
				return true, fmt.Errorf("deliver: %w", err)
			}
			return true, nil
		case <-tick.C:
		}
	}
}

// scheduledFeed is a feed with its schedule settings and observer.
type scheduledFeed struct {
	feed     *feed.Feed
	interval time.Duration
	catchUp  bool
	observe  func(feed.Result, error)
}

// buildInstances creates, per instance, a Wiz client (with the tenant's one rate limiter, shared by
// feeds, pushes and write-back), a classifier, a mapper, the push pipeline and the created (and, if
// enabled, updates) feed.
func (d *shared) buildInstances(ctx context.Context, cfg *config.Config, eng *engine, sinks []string, notify func()) ([]scheduledFeed, error) {
	var out []scheduledFeed
	for _, inst := range cfg.Instances {
		opts := wiz.OptionsFromConfig(inst.Wiz, d.opt.Version)
		opts.Logger = d.opt.Logger.With("instance", inst.Name)
		opts.Metrics = d.metrics.WizObserver(inst.Name)
		opts.Transports = d.transports
		if d.opt.WizRetryFor > 0 {
			opts.RetryFor = d.opt.WizRetryFor
		}
		client, err := wiz.New(ctx, opts)
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
		eng.instances[inst.Name] = &instanceRuntime{
			name:         inst.Name,
			client:       client,
			contextLimit: rate.NewLimiter(contextRate, contextBurst),
			refetcher: feed.NewRefetcher(feed.RefetcherOptions{
				Instance: inst.Name, Fetch: inst.Fetch, Sinks: sinks, Source: client, Store: d.store,
				Classifier: cls, Mapper: mapper, Now: d.opt.Now, Logger: d.opt.Logger,
			}),
		}
		if !inst.Fetch.Enabled {
			continue // push-only ("Do not fetch")
		}
		names := []string{feed.Created}
		if inst.Fetch.Updates {
			names = append(names, feed.Updates)
		}
		for _, name := range names {
			f, err := feed.New(feed.Options{
				Instance: inst.Name, Name: name, Fetch: inst.Fetch, Sinks: sinks,
				Source: client, Store: d.store, Classifier: cls, Mapper: mapper,
				Now: d.opt.Now, Logger: d.opt.Logger,
				Prefetch:  inst.Fetch.CatchUp || d.opt.Mode == schedule.UntilIdle,
				PageSlots: d.pageSlots,
			})
			if err != nil {
				return nil, err
			}
			d.tracker.AddFeed(inst.Name, name)
			out = append(out, scheduledFeed{
				feed:     f,
				interval: inst.Fetch.Interval.D(),
				catchUp:  inst.Fetch.CatchUp,
				observe:  d.fetchObserver(inst.Name, name, notify),
			})
		}
	}
	return out, nil
}

// fetchObserver logs one line per fetch, feeds status and metrics, and wakes the dispatcher when events
// were committed.
func (d *shared) fetchObserver(instance, name string, notify func()) func(feed.Result, error) {
	log := d.opt.Logger.With("component", "feed", "instance", instance, "feed", name)
	return func(res feed.Result, err error) {
		if res.Emitted() > 0 {
			notify()
		}
		d.tracker.FetchDone(instance, name, res, err)
		d.metrics.FetchDone(instance, name, res, err)
		if d.opt.OnFetch != nil {
			d.opt.OnFetch(instance, name, res, err)
		}
		attrs := []any{
			"pages", res.Pages, "fetched", res.Fetched, "created", res.Created, "updated", res.Updated,
			"ignored", sum(res.Ignored), "rejected", sum(res.Rejected), "backlog", res.Backlog, "duration_ms", res.Duration.Milliseconds(),
			"watermark", formatTime(res.Watermark),
		}
		if err != nil {
			log.Error("fetch failed", append(attrs, "err", err)...)
			return
		}
		log.Info("fetch", attrs...)
	}
}

// pruneLoop removes incidents closed longer than retention, at start and then hourly (DESIGN.md §2.6).
func (d *shared) pruneLoop(ctx context.Context, retention time.Duration) {
	if retention <= 0 {
		return
	}
	for {
		var n int
		err := d.store.Update(func(tx *store.Tx) error {
			var err error
			n, err = tx.PruneClosedIncidents(d.opt.Now().Add(-retention))
			return err
		})
		if err != nil {
			d.opt.Logger.Error("retention pruning failed", "err", err)
		} else if n > 0 {
			d.opt.Logger.Info("pruned incidents closed longer than store.retention", "incidents", n, "retention", config.FormatDuration(retention))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Hour):
		}
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

// staleOutboxes deals with the outboxes of sinks the config no longer has: it drops them (the sink
// left the config) or, with drop false, keeps them and says so in the log (etcd backend).
func staleOutboxes(st *store.Store, sinks []string, drop bool, log *slog.Logger) error {
	return st.Update(func(tx *store.Tx) error {
		have, err := tx.OutboxSinks()
		if err != nil {
			return err
		}
		for _, name := range have {
			if slices.Contains(sinks, name) {
				continue
			}
			if !drop {
				n, err := tx.OutboxDepth(name)
				if err != nil {
					return err
				}
				log.Warn("kept the outbox of a sink this replica's config lacks (another replica may still have it)", "sink", name, "events", n)
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
