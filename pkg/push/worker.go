package push

import (
	"context"
	"log/slog"
	"time"

	"github.com/wizfetch/wizfetch/pkg/backoff"
	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// Outcomes the Worker reports besides the decider's own (feed.PushCreated, feed.PushUpdated,
// feed.PushUnchanged, feed.PushNotMatching, feed.PushNotFound, feed.PushRejected).
const (
	OutcomeError           = "error"            // the re-fetch or its commit failed; retried with backoff
	OutcomeUnknownInstance = "unknown_instance" // the push is for an instance no longer configured; dropped
)

// maxRetryDelay caps the backoff between two attempts at one queued push.
const maxRetryDelay = 10 * time.Minute

// A push whose issue Wiz does not show yet (feed.PushResult.Lagging) is read again after
// lagRetryDelay, doubling, while the item has had fewer than maxLagRetries attempts (failed reads
// count too) and its first push is younger than maxPushLag: the ingestion lag WIZ_API.md §3
// describes is minutes.
const (
	lagRetryDelay = 30 * time.Second
	maxLagRetries = 3
	maxPushLag    = 10 * time.Minute
)

// readLimit is how many due pushes the worker reads from the queue at once; they are grouped by
// instance into batches of at most maxBatch.
const readLimit = 500

// maxBatch is the most pushes of one instance re-fetched with one request (BatchRefetcher).
const maxBatch = 100

// Refetcher takes the decision for one pushed issue of one instance: it re-fetches the issue by id
// and commits what it means, in one store transaction, with the feeds' dedup (feed.Refetcher).
// It returns a feed.Push* outcome; an error means "try again later".
type Refetcher interface {
	Process(ctx context.Context, issueID string) (string, error)
}

// BatchRefetcher is a Refetcher that also decides many pushed issues of its instance at once, with
// one Wiz request and one store transaction (feed.Refetcher.ProcessBatch): the results follow
// issueIDs; an error means the whole batch is tried again later, a result's Err that issue alone.
type BatchRefetcher interface {
	Refetcher
	ProcessBatch(ctx context.Context, issueIDs []string) ([]feed.PushResult, error)
}

// WorkQueue is the durable refetch queue the worker drains and the receiver fills; *store.Store
// satisfies it.
type WorkQueue interface {
	EnqueueRefetchBounded(item store.RefetchItem, max int) error
	RefetchBatch(now time.Time, limit int) ([]store.RefetchItem, error)
	CompleteRefetch(instance, issueID string) error
	RetryRefetch(item store.RefetchItem) error
}

// BatchWorkQueue is a WorkQueue that also completes and retries many items in one transaction;
// *store.Store satisfies it. The worker uses it when its queue has it, so that a batch of a hundred
// pushes costs one queue commit rather than a hundred.
type BatchWorkQueue interface {
	WorkQueue
	CompleteRefetches(items []store.RefetchItem) error
	RetryRefetches(items []store.RefetchItem) error
}

// WorkerOptions are the worker's dependencies.
type WorkerOptions struct {
	// Queue is the durable refetch queue.
	Queue WorkQueue
	// Refetchers holds the decider of each configured instance.
	Refetchers map[string]Refetcher
	// Now stamps retries; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per processed push; nil discards.
	Logger *slog.Logger
	// BaseBackoff is the first delay after a failed re-fetch (doubling up to ten minutes); 0 means
	// one second.
	BaseBackoff time.Duration
	// PollEvery is how often the queue is read when nothing wakes the worker; 0 means one second.
	PollEvery time.Duration
	// Observe, when set, is called once per processed push with its instance and outcome (a
	// feed.Push* value, OutcomeError or OutcomeUnknownInstance), for metrics.
	Observe func(instance, outcome string)
	// Committed, when set, is called after a push committed an event (to wake the dispatcher).
	Committed func()
	// LagRetries makes the worker read again, a few times over minutes, a pushed issue Wiz does
	// not show yet (feed.PushResult.Lagging). A daemon sets it; --once and --until-idle,
	// which drain the queue and stop, do not wait minutes for Wiz.
	LagRetries bool
}

// Worker drains the refetch queue: queued pushes are grouped by instance into batches of up to
// maxBatch, each re-fetched with one Wiz request and decided by its instance's Refetcher, then
// removed from the queue; a failure stays queued and is retried with backoff (the queue is in the
// store, so a restart resumes it). Repeated pushes of one issue are one queue entry.
type Worker struct {
	o    WorkerOptions
	log  *slog.Logger
	wake chan struct{}
}

// NewWorker returns a worker; Run starts it.
func NewWorker(o WorkerOptions) *Worker {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.BaseBackoff <= 0 {
		o.BaseBackoff = time.Second
	}
	if o.PollEvery <= 0 {
		o.PollEvery = time.Second
	}
	if o.Observe == nil {
		o.Observe = func(string, string) {}
	}
	if o.Committed == nil {
		o.Committed = func() {}
	}
	return &Worker{o: o, log: o.Logger.With("component", "refetch"), wake: make(chan struct{}, 1)}
}

// Queue is the receiver's end of the worker's queue (Options.Queue): a push is stored durably,
// bounded per instance (MaxQueuedPerInstance), and the worker is woken at once.
func (w *Worker) Queue() Queue { return wakingQueue{w} }

type wakingQueue struct{ w *Worker }

// EnqueueRefetch implements Queue.
func (q wakingQueue) EnqueueRefetch(item store.RefetchItem) error {
	if err := q.w.o.Queue.EnqueueRefetchBounded(item, MaxQueuedPerInstance); err != nil {
		return err
	}
	select {
	case q.w.wake <- struct{}{}:
	default:
	}
	return nil
}

// Run works the queue until ctx ends.
func (w *Worker) Run(ctx context.Context) {
	for {
		items, err := w.o.Queue.RefetchBatch(w.o.Now(), readLimit)
		if err != nil {
			w.log.Error("read refetch queue", "err", err)
		}
		for _, batch := range batches(items, maxBatch) {
			if ctx.Err() != nil {
				return
			}
			if !w.processBatch(ctx, batch) {
				return
			}
		}
		if len(items) > 0 {
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
		case <-time.After(w.o.PollEvery):
		}
	}
}

// batches groups items by instance, in the order each instance first appears and FIFO within it,
// into batches of at most size items: a batch never mixes instances (each has its own tenant,
// credentials and rate limit).
func batches(items []store.RefetchItem, size int) [][]store.RefetchItem {
	var order []string
	byInstance := map[string][]store.RefetchItem{}
	for _, it := range items {
		if _, ok := byInstance[it.Instance]; !ok {
			order = append(order, it.Instance)
		}
		byInstance[it.Instance] = append(byInstance[it.Instance], it)
	}
	var out [][]store.RefetchItem
	for _, inst := range order {
		list := byInstance[inst]
		for len(list) > 0 {
			n := min(size, len(list))
			out = append(out, list[:n:n])
			list = list[n:]
		}
	}
	return out
}

// processBatch handles queued pushes of one instance; it reports false when ctx ended during it.
// With a BatchRefetcher the batch is decided at once, else push by push.
func (w *Worker) processBatch(ctx context.Context, batch []store.RefetchItem) bool {
	inst := batch[0].Instance
	r := w.o.Refetchers[inst]
	if r == nil {
		for _, it := range batch {
			w.log.Warn("dropping a push for an instance no longer configured", "instance", it.Instance, "issue_id", it.IssueID)
			w.o.Observe(it.Instance, OutcomeUnknownInstance)
		}
		w.complete(batch)
		return true
	}
	br, ok := r.(BatchRefetcher)
	if !ok { // (a batch of one goes through ProcessBatch too: its result says whether it lags)
		for _, it := range batch {
			if ctx.Err() != nil {
				return false
			}
			outcome, err := r.Process(ctx, it.IssueID)
			if err != nil && ctx.Err() != nil {
				return false
			}
			w.settle([]store.RefetchItem{it}, []feed.PushResult{{IssueID: it.IssueID, Outcome: outcome, Err: err}})
		}
		return true
	}
	ids := make([]string, len(batch))
	for i, it := range batch {
		ids[i] = it.IssueID
	}
	results, err := br.ProcessBatch(ctx, ids)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		results = make([]feed.PushResult, len(batch))
		for i := range results {
			results[i] = feed.PushResult{IssueID: batch[i].IssueID, Err: err}
		}
	}
	w.settle(batch, results)
	return true
}

// settle records the results of a batch (results[i] is batch[i]'s): a decided push leaves the
// queue, a failed one stays queued with backoff; one queue commit for each, and the dispatcher is
// woken once if anything committed an event.
func (w *Worker) settle(batch []store.RefetchItem, results []feed.PushResult) {
	var done, retry []store.RefetchItem
	committed := false
	for i, it := range batch {
		res := results[i]
		if res.Err != nil {
			it.Attempts++
			it.NextAttempt = w.o.Now().Add(backoff.Delay(w.o.BaseBackoff, maxRetryDelay, it.Attempts))
			w.log.Warn("refetch failed; will retry", "instance", it.Instance, "issue_id", it.IssueID, "attempt", it.Attempts, "err", res.Err)
			w.o.Observe(it.Instance, OutcomeError)
			retry = append(retry, it)
			continue
		}
		if w.o.LagRetries && res.Lagging && it.Attempts < maxLagRetries && w.o.Now().Sub(it.ReceivedAt) < maxPushLag {
			// Wiz may not show the pushed issue yet (WIZ_API.md §3: issues become visible
			// minutes later): read it again soon rather than let the push go.
			it.Attempts++
			it.NextAttempt = w.o.Now().Add(lagRetryDelay << (it.Attempts - 1))
			w.log.Info("pushed issue not visible yet; will read it again", "instance", it.Instance,
				"issue_id", it.IssueID, "outcome", res.Outcome, "attempt", it.Attempts)
			retry = append(retry, it)
			continue
		}
		done = append(done, it)
		w.o.Observe(it.Instance, res.Outcome)
		w.log.Info("push processed", "instance", it.Instance, "issue_id", it.IssueID, "outcome", res.Outcome)
		if res.Outcome == feed.PushCreated || res.Outcome == feed.PushUpdated {
			committed = true
		}
	}
	w.complete(done)
	w.retry(retry)
	if committed {
		w.o.Committed()
	}
}

// complete removes decided pushes from the queue.
func (w *Worker) complete(items []store.RefetchItem) {
	if len(items) == 0 {
		return
	}
	if q, ok := w.o.Queue.(BatchWorkQueue); ok {
		// Even for one item: the items carry the pushes counted when they were read, so that one
		// pushed again meanwhile stays queued (store.CompleteRefetches).
		if err := q.CompleteRefetches(items); err != nil {
			w.log.Error("complete refetch", "err", err)
		}
		return
	}
	for _, it := range items {
		if err := w.o.Queue.CompleteRefetch(it.Instance, it.IssueID); err != nil {
			w.log.Error("complete refetch", "err", err)
		}
	}
}

// retry keeps failed pushes queued until their NextAttempt.
func (w *Worker) retry(items []store.RefetchItem) {
	if len(items) == 0 {
		return
	}
	if q, ok := w.o.Queue.(BatchWorkQueue); ok && len(items) > 1 {
		if err := q.RetryRefetches(items); err != nil {
			w.log.Error("requeue refetch", "err", err)
		}
		return
	}
	for _, it := range items {
		if err := w.o.Queue.RetryRefetch(it); err != nil {
			w.log.Error("requeue refetch", "err", err)
		}
	}
}
