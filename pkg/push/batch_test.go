package push

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/feed"
	"github.com/wizfetch/wizfetch/pkg/store"
)

// batchRecorder is a BatchRefetcher that records each call; fail decides, per call number and
// id, whether the whole call fails (a batch error) or only that id (its result's Err).
type batchRecorder struct {
	mu    sync.Mutex
	calls [][]string
	fail  func(call int, id string) (batchErr, itemErr error)
}

func (b *batchRecorder) Process(context.Context, string) (string, error) {
	return "", errors.New("the worker must use ProcessBatch")
}

func (b *batchRecorder) ProcessBatch(_ context.Context, ids []string) ([]feed.PushResult, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	call := len(b.calls)
	b.calls = append(b.calls, append([]string(nil), ids...))
	out := make([]feed.PushResult, len(ids))
	for i, id := range ids {
		out[i] = feed.PushResult{IssueID: id, Outcome: feed.PushCreated}
		if b.fail == nil {
			continue
		}
		batchErr, itemErr := b.fail(call, id)
		if batchErr != nil {
			return nil, batchErr
		}
		if itemErr != nil {
			out[i] = feed.PushResult{IssueID: id, Err: itemErr}
		}
	}
	return out, nil
}

func (b *batchRecorder) snapshot() [][]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([][]string(nil), b.calls...)
}

// testClock is a settable clock.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "wizfetch.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// runWorker runs w until the test ends.
func runWorker(t *testing.T, w *Worker) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitUntil polls cond for up to 10 s.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func depth(t *testing.T, st *store.Store) int {
	t.Helper()
	n, err := st.RefetchDepth()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Queued pushes are re-fetched in batches of at most a hundred issues of one instance: 250 pushes
// of one instance and 30 of another, interleaved, take ⌈250/100⌉ + ⌈30/100⌉ calls, no call mixes
// instances, every push is decided exactly once, and repeated pushes of one issue are one entry.
func TestWorkerBatchesPerInstance(t *testing.T) {
	st := openStore(t)
	clock := &testClock{t: fixedNow}
	a, b := &batchRecorder{}, &batchRecorder{}
	var mu sync.Mutex
	observed := map[string]int{}
	committed := 0
	w := NewWorker(WorkerOptions{
		Queue: st, Refetchers: map[string]Refetcher{"a": a, "b": b}, Now: clock.now, PollEvery: time.Hour,
		Observe:   func(inst, outcome string) { mu.Lock(); observed[inst+":"+outcome]++; mu.Unlock() },
		Committed: func() { mu.Lock(); committed++; mu.Unlock() },
	})
	enqueue := func(inst string, i int) {
		t.Helper()
		if err := st.EnqueueRefetch(store.RefetchItem{Instance: inst, IssueID: fmt.Sprintf("%s-%04d", inst, i), ReceivedAt: clock.now()}); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 250; i++ {
		enqueue("a", i)
		enqueue("a", i) // a repeated push coalesces in the queue
		if i < 30 {
			enqueue("b", i)
		}
	}
	runWorker(t, w)
	waitUntil(t, "the queue to drain", func() bool { return depth(t, st) == 0 })

	for _, tc := range []struct {
		inst  string
		rec   *batchRecorder
		n     int
		calls int
	}{{"a", a, 250, 3}, {"b", b, 30, 1}} {
		calls := tc.rec.snapshot()
		if len(calls) != tc.calls {
			t.Errorf("instance %s: %d calls, want %d", tc.inst, len(calls), tc.calls)
		}
		seen := map[string]int{}
		for _, call := range calls {
			if len(call) > maxBatch {
				t.Errorf("instance %s: a call with %d ids", tc.inst, len(call))
			}
			for _, id := range call {
				seen[id]++
			}
		}
		for i := 0; i < tc.n; i++ {
			if id := fmt.Sprintf("%s-%04d", tc.inst, i); seen[id] != 1 {
				t.Errorf("instance %s: issue %s decided %d times", tc.inst, id, seen[id])
			}
		}
		if len(seen) != tc.n {
			t.Errorf("instance %s: %d issues decided, want %d (another instance's among them?)", tc.inst, len(seen), tc.n)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if observed["a:"+feed.PushCreated] != 250 || observed["b:"+feed.PushCreated] != 30 {
		t.Errorf("observed %v", observed)
	}
	if committed != 4 {
		t.Errorf("dispatcher woken %d times, want once per batch (4)", committed)
	}
}

// A batch whose read fails is retried whole, every item with backoff; an issue that alone fails
// stays queued while the rest of its batch completes.
func TestWorkerRetriesFailedBatches(t *testing.T) {
	st := openStore(t)
	clock := &testClock{t: fixedNow}
	r := &batchRecorder{fail: func(call int, id string) (error, error) {
		switch {
		case call == 0:
			return errors.New("wiz is down"), nil
		case call == 1 && id == "i-2":
			return nil, errors.New("commit failed")
		}
		return nil, nil
	}}
	w := NewWorker(WorkerOptions{Queue: st, Refetchers: map[string]Refetcher{"a": r}, Now: clock.now, BaseBackoff: time.Minute, PollEvery: 5 * time.Millisecond})
	for i := 0; i < 5; i++ {
		if err := st.EnqueueRefetch(store.RefetchItem{Instance: "a", IssueID: fmt.Sprintf("i-%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	runWorker(t, w)
	waitUntil(t, "the failed batch", func() bool { return len(r.snapshot()) == 1 })
	waitUntil(t, "the failed batch to be requeued", func() bool {
		items, err := st.RefetchBatch(clock.now(), 0)
		return err == nil && len(items) == 0
	})
	items, err := st.RefetchBatch(clock.now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 5 {
		t.Fatalf("%d items queued after a failed batch, want all 5", len(items))
	}
	for _, it := range items {
		if it.Attempts != 1 || !it.NextAttempt.After(clock.now()) {
			t.Fatalf("item %+v: want attempt 1, due later", it)
		}
	}

	clock.add(time.Hour)
	// The worker completes the decided pushes, then requeues the failed one, in two commits: wait
	// for both.
	waitUntil(t, "the rest of the batch to complete and i-2 to be requeued", func() bool {
		items, err := st.RefetchBatch(clock.now().Add(time.Hour), 0)
		return err == nil && len(items) == 1 && items[0].Attempts == 2
	})
	items, err = st.RefetchBatch(clock.now().Add(time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 1 || items[0].IssueID != "i-2" || items[0].Attempts != 2 {
		t.Fatalf("queued %+v, want only i-2 at attempt 2", items)
	}
	if calls := r.snapshot(); len(calls) != 2 || len(calls[1]) != 5 {
		t.Fatalf("calls %v, want the whole batch twice", calls)
	}
}
