package sink

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
)

// instanceLine is an event line of instance; its event_id is instance-n.
func instanceLine(instance string, n int) []byte {
	return []byte(fmt.Sprintf(`{"event_id":"%s-%05d","kind":"created","instance":%q,"incident":{"name":"n%d"}}`,
		instance, n, instance, n))
}

func enqueueInstance(t *testing.T, st *store.Store, sink, instance string, from, to int) {
	t.Helper()
	if err := commitInstance(st, sink, instance, from, to); err != nil {
		t.Fatal(err)
	}
}

// commitInstance commits events from..to-1 of instance in one transaction.
func commitInstance(st *store.Store, sink, instance string, from, to int) error {
	return st.Update(func(tx *store.Tx) error {
		for n := from; n < to; n++ {
			if _, err := tx.Enqueue(sink, instance, instanceLine(instance, n)); err != nil {
				return err
			}
		}
		return nil
	})
}

// recordingSink accepts everything, remembers each batch, and runs onBatch (if set) before
// accepting the n-th batch (counting from 0).
type recordingSink struct {
	name    string
	mu      sync.Mutex
	batches [][]string // event lines per Deliver call
	onBatch func(n int)
	total   int
	done    chan struct{} // closed once total events are delivered
}

func (s *recordingSink) Name() string { return s.name }
func (s *recordingSink) Close() error { return nil }
func (s *recordingSink) Deliver(_ context.Context, items []store.OutboxItem) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.onBatch != nil {
		s.onBatch(len(s.batches))
	}
	batch := make([]string, len(items))
	delivered := 0
	for i, it := range items {
		batch[i] = string(it.Data)
	}
	s.batches = append(s.batches, batch)
	for _, b := range s.batches {
		delivered += len(b)
	}
	if delivered >= s.total {
		select {
		case <-s.done:
		default:
			close(s.done)
		}
	}
	return len(items), nil
}

func runUntil(t *testing.T, d *Dispatcher, done <-chan struct{}) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- d.Run(ctx) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Error("the outbox was not delivered within 30s")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// While instance "backfill" has 5,000 events waiting, an event of instance "fresh" committed during
// the third batch is delivered in the next batch, near its front, not after the backlog; every
// event is delivered once and each instance's in commit order.
func TestDispatcherDeliversAFreshInstanceAheadOfAnotherBacklog(t *testing.T) {
	st := openStore(t)
	const backlog, batch = 5000, 100
	enqueueInstance(t, st, "s", "backfill", 0, backlog)
	rs := &recordingSink{name: "s", total: backlog + 1, done: make(chan struct{})}
	rs.onBatch = func(n int) {
		if n == 2 {
			// Committed while batch 2 is in flight (this runs on the dispatcher's goroutine).
			if err := commitInstance(st, "s", "fresh", 0, 1); err != nil {
				t.Error(err)
			}
		}
	}
	d := NewDispatcher(st, []Target{{Sink: rs, Batch: batch}}, DispatcherOptions{PollEvery: 5 * time.Millisecond})
	d.Notify()
	runUntil(t, d, rs.done)

	rs.mu.Lock()
	defer rs.mu.Unlock()
	position, seen, next := -1, map[string]bool{}, map[string]int{}
	delivered := 0
	for bi, b := range rs.batches {
		if len(b) > batch {
			t.Fatalf("batch %d has %d events, limit %d", bi, len(b), batch)
		}
		for pi, line := range b {
			if seen[line] {
				t.Fatalf("%s delivered twice", line)
			}
			seen[line] = true
			inst := "backfill"
			if strings.Contains(line, `"instance":"fresh"`) {
				inst = "fresh"
				position = delivered
				if bi != 3 || pi > 1 {
					t.Errorf("fresh event delivered at position %d of batch %d; want among the first two of batch 3", pi, bi)
				}
			}
			if want := string(instanceLine(inst, next[inst])); line != want {
				t.Fatalf("batch %d: %.40s out of its instance's order", bi, line)
			}
			next[inst]++
			delivered++
		}
	}
	if delivered != backlog+1 || position < 0 {
		t.Fatalf("%d events delivered (fresh at %d), want %d", delivered, position, backlog+1)
	}
	t.Logf("the fresh event was delivered %d-th of %d", position+1, delivered)
}

// The JSONL sink stays exactly-once with fair batches: after a crash between its write and the
// acknowledgement, the dispatcher hands it the same batch first, though an instance whose events
// would now be dealt first committed some in between, so the file holds every event once.
func TestJSONLExactlyOnceAcrossInstancesAfterACrash(t *testing.T) {
	dir := t.TempDir()
	dbPath, path := filepath.Join(dir, "state.db"), filepath.Join(dir, "incidents.jsonl")
	st, err := store.Open(dbPath, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	enqueueInstance(t, st, "file", "m", 0, 30)
	enqueueInstance(t, st, "file", "z", 0, 30)

	// The batch reaches the file but is never acknowledged: the "crash".
	j, err := OpenJSONL("file", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	items, err := st.NextBatch("file", 20)
	if err != nil || len(items) != 20 {
		t.Fatalf("NextBatch = %d items, %v", len(items), err)
	}
	if n, err := j.Deliver(context.Background(), items); err != nil || n != 20 {
		t.Fatalf("deliver: %d %v", n, err)
	}
	j.Close()
	enqueueInstance(t, st, "file", "a", 0, 10) // "a" sorts first: a new deal would start with it
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st, err = store.Open(dbPath, store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	j, err = OpenJSONL("file", path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	d := NewDispatcher(st, []Target{{Sink: j, Batch: 20}}, DispatcherOptions{PollEvery: 5 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			if depth, err := st.OutboxDepth("file"); err != nil || depth == 0 {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	runUntil(t, d, done)

	ids := fileIDs(t, path)
	if len(ids) != 70 {
		t.Fatalf("file has %d lines, want 70", len(ids))
	}
	seen, next := map[string]bool{}, map[string]int{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("%s written twice", id)
		}
		seen[id] = true
		inst, _, _ := strings.Cut(id, "-")
		if want := fmt.Sprintf("%s-%05d", inst, next[inst]); id != want {
			t.Fatalf("%s out of its instance's order (want %s)", id, want)
		}
		next[inst]++
	}
}
