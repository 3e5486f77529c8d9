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

// batchSize is how many queued pushes the worker reads at once.
const batchSize = 50

// Refetcher takes the decision for one pushed issue of one instance: it re-fetches the issue by id
// and commits what it means, in one store transaction, with the feeds' dedup (feed.Refetcher).
// It returns a feed.Push* outcome; an error means "try again later".
type Refetcher interface {
	Process(ctx context.Context, issueID string) (string, error)
}

// WorkQueue is the durable refetch queue the worker drains and the receiver fills; *store.Store
// satisfies it.
type WorkQueue interface {
	EnqueueRefetchBounded(item store.RefetchItem, max int) error
	RefetchBatch(now time.Time, limit int) ([]store.RefetchItem, error)
	CompleteRefetch(instance, issueID string) error
	RetryRefetch(item store.RefetchItem) error
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
}

// Worker drains the refetch queue: every queued push is re-fetched and decided by its instance's
// Refetcher, then removed from the queue; a failure stays queued and is retried with backoff (the
// queue is in the store, so a restart resumes it).
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
		items, err := w.o.Queue.RefetchBatch(w.o.Now(), batchSize)
		if err != nil {
			w.log.Error("read refetch queue", "err", err)
		}
		for _, it := range items {
			if ctx.Err() != nil {
				return
			}
			if !w.process(ctx, it) {
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

// process handles one queued push; it reports false when ctx ended during it.
func (w *Worker) process(ctx context.Context, it store.RefetchItem) bool {
	r := w.o.Refetchers[it.Instance]
	if r == nil {
		w.log.Warn("dropping a push for an instance no longer configured", "instance", it.Instance, "issue_id", it.IssueID)
		w.o.Observe(it.Instance, OutcomeUnknownInstance)
		if err := w.o.Queue.CompleteRefetch(it.Instance, it.IssueID); err != nil {
			w.log.Error("complete refetch", "err", err)
		}
		return true
	}
	outcome, err := r.Process(ctx, it.IssueID)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		it.Attempts++
		it.NextAttempt = w.o.Now().Add(backoff.Delay(w.o.BaseBackoff, maxRetryDelay, it.Attempts))
		w.log.Warn("refetch failed; will retry", "instance", it.Instance, "issue_id", it.IssueID, "attempt", it.Attempts, "err", err)
		w.o.Observe(it.Instance, OutcomeError)
		if err := w.o.Queue.RetryRefetch(it); err != nil {
			w.log.Error("requeue refetch", "err", err)
		}
		return true
	}
	if err := w.o.Queue.CompleteRefetch(it.Instance, it.IssueID); err != nil {
		w.log.Error("complete refetch", "err", err)
	}
	w.o.Observe(it.Instance, outcome)
	w.log.Info("push processed", "instance", it.Instance, "issue_id", it.IssueID, "outcome", outcome)
	if outcome == feed.PushCreated || outcome == feed.PushUpdated {
		w.o.Committed()
	}
	return true
}
