package push

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// fakeWorkQueue is an in-memory WorkQueue.
type fakeWorkQueue struct {
	mu       sync.Mutex
	items    []store.RefetchItem
	done     []string
	retried  []store.RefetchItem
	enqueued int
}

func (q *fakeWorkQueue) EnqueueRefetchBounded(item store.RefetchItem, max int) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) >= max {
		return store.ErrQueueFull
	}
	q.items = append(q.items, item)
	q.enqueued++
	return nil
}

func (q *fakeWorkQueue) RefetchBatch(now time.Time, limit int) ([]store.RefetchItem, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	var out []store.RefetchItem
	for _, it := range q.items {
		if !it.NextAttempt.After(now) && len(out) < limit {
			out = append(out, it)
		}
	}
	return out, nil
}

func (q *fakeWorkQueue) remove(instance, id string) {
	for i, it := range q.items {
		if it.Instance == instance && it.IssueID == id {
			q.items = append(q.items[:i], q.items[i+1:]...)
			return
		}
	}
}

func (q *fakeWorkQueue) CompleteRefetch(instance, issueID string) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.remove(instance, issueID)
	q.done = append(q.done, instance+"/"+issueID)
	return nil
}

func (q *fakeWorkQueue) RetryRefetch(item store.RefetchItem) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.remove(item.Instance, item.IssueID)
	q.items = append(q.items, item)
	q.retried = append(q.retried, item)
	return nil
}

// outcomes is a Refetcher answering from a table.
type outcomes map[string]string

func (o outcomes) Process(_ context.Context, id string) (string, error) {
	if out, ok := o[id]; ok {
		return out, nil
	}
	return "", errors.New("wiz is down")
}

// The worker decides every queued push through its instance's refetcher, drops a push for an unknown
// instance, keeps a failed one queued with backoff, and wakes the dispatcher only for an event.
func TestWorkerDrainsTheQueue(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	q := &fakeWorkQueue{}
	var mu sync.Mutex
	observed := map[string]string{}
	committed := 0
	w := NewWorker(WorkerOptions{
		Queue:       q,
		Refetchers:  map[string]Refetcher{"a": outcomes{"new": feed.PushCreated, "same": feed.PushUnchanged}},
		Now:         func() time.Time { return now },
		BaseBackoff: time.Minute,
		PollEvery:   time.Hour, // only Queue's wake-up can start a round
		Observe: func(instance, outcome string) {
			mu.Lock()
			defer mu.Unlock()
			observed[instance] += outcome + " "
		},
		Committed: func() { mu.Lock(); committed++; mu.Unlock() },
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	defer func() { cancel(); <-done }()

	for _, it := range []store.RefetchItem{{Instance: "a", IssueID: "new"}, {Instance: "a", IssueID: "same"},
		{Instance: "gone", IssueID: "x"}, {Instance: "a", IssueID: "down"}} {
		if err := w.Queue().EnqueueRefetch(it); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		q.mu.Lock()
		left, retried := len(q.items), len(q.retried)
		q.mu.Unlock()
		if left == 1 && retried > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("queue not drained: %d left, %d retried", left, retried)
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	<-done

	q.mu.Lock()
	defer q.mu.Unlock()
	mu.Lock()
	defer mu.Unlock()
	if r := q.retried[0]; r.IssueID != "down" || r.Attempts != 1 || !r.NextAttempt.After(now) {
		t.Errorf("retried %+v: want the failed push, attempt 1, due after now", r)
	}
	if len(q.done) != 3 {
		t.Errorf("completed %v, want new, same and the unknown instance's push", q.done)
	}
	if got := observed["gone"]; got != OutcomeUnknownInstance+" " {
		t.Errorf("unknown instance observed as %q", got)
	}
	if got := observed["a"]; got != feed.PushCreated+" "+feed.PushUnchanged+" "+OutcomeError+" " {
		t.Errorf("instance a observed as %q", got)
	}
	if committed != 1 {
		t.Errorf("dispatcher woken %d times, want once (one event)", committed)
	}
}

// laggingRefetcher answers a first read of each issue as Wiz does before it shows the pushed change
// (not found, lagging), and later reads with the change.
type laggingRefetcher struct {
	mu    sync.Mutex
	reads map[string]int
}

func (r *laggingRefetcher) Process(ctx context.Context, id string) (string, error) {
	res, err := r.ProcessBatch(ctx, []string{id})
	if err != nil {
		return "", err
	}
	return res[0].Outcome, res[0].Err
}

func (r *laggingRefetcher) ProcessBatch(_ context.Context, ids []string) ([]feed.PushResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]feed.PushResult, len(ids))
	for i, id := range ids {
		r.reads[id]++
		out[i] = feed.PushResult{IssueID: id, Outcome: feed.PushCreated}
		if r.reads[id] == 1 {
			out[i] = feed.PushResult{IssueID: id, Outcome: feed.PushNotFound, Lagging: true}
		}
	}
	return out, nil
}

// A push whose issue Wiz does not show yet is read again after a while instead of being dropped
// (a push-only instance would lose it); with LagRetries off (--until-idle) it goes at once.
func TestWorkerReadsALaggingPushAgain(t *testing.T) {
	for _, lag := range []bool{true, false} {
		var clock atomic.Int64
		start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
		clock.Store(start.UnixNano())
		q := &fakeWorkQueue{}
		r := &laggingRefetcher{reads: map[string]int{}}
		var mu sync.Mutex
		var observed []string
		w := NewWorker(WorkerOptions{
			Queue: q, Refetchers: map[string]Refetcher{"a": r}, LagRetries: lag,
			Now:       func() time.Time { return time.Unix(0, clock.Load()).UTC() },
			PollEvery: 5 * time.Millisecond,
			Observe:   func(_, outcome string) { mu.Lock(); observed = append(observed, outcome); mu.Unlock() },
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); w.Run(ctx) }()
		if err := w.Queue().EnqueueRefetch(store.RefetchItem{Instance: "a", IssueID: "i", ReceivedAt: start}); err != nil {
			t.Fatal(err)
		}
		want := []string{feed.PushNotFound}
		if lag {
			waitFor(t, func() bool { q.mu.Lock(); defer q.mu.Unlock(); return len(q.retried) == 1 })
			q.mu.Lock()
			if it := q.retried[0]; it.Attempts != 1 || !it.NextAttempt.Equal(start.Add(lagRetryDelay)) {
				t.Errorf("lagging push requeued as %+v, want attempt 1 due %s later", it, lagRetryDelay)
			}
			q.mu.Unlock()
			clock.Store(start.Add(lagRetryDelay + time.Second).UnixNano())
			want = []string{feed.PushCreated}
		}
		waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(observed) == 1 })
		cancel()
		<-done
		mu.Lock()
		if !slices.Equal(observed, want) {
			t.Errorf("LagRetries %v: outcomes %v, want %v", lag, observed, want)
		}
		mu.Unlock()
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5 s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}
