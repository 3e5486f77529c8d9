package schedule

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/config"
	"github.com/wizfetch/wizfetch/pkg/store"
)

func TestOverShare(t *testing.T) {
	for _, tc := range []struct {
		total, lane, maxPending, instances int
		want                               bool
	}{
		{10, 10, 10, 1, false},   // at max_pending: not over
		{11, 11, 10, 1, true},    // one instance: the rule as DESIGN.md words it
		{101, 100, 100, 2, true}, // the instance with the backlog pauses…
		{101, 1, 100, 2, false},  // …the other goes on
		{101, 50, 100, 2, true},  // until it holds its share
		{20000, 9, 10000, 1000, false},
		{20000, 10, 10000, 1000, true},
		{5, 5, 3, 1000, true}, // a share is at least one event
	} {
		if got := overShare(tc.total, tc.lane, tc.maxPending, tc.instances); got != tc.want {
			t.Errorf("overShare(total %d, lane %d, max_pending %d, %d instances) = %v, want %v",
				tc.total, tc.lane, tc.maxPending, tc.instances, got, tc.want)
		}
	}
}

// TestBackpressurePausesOnlyTheInstanceBehind: with a sink's outbox over max_pending because of
// instance a's backlog, a's feeds wait and b's fetch at once; the status names the pause while it
// lasts; a resumes once the sink has caught up.
func TestBackpressurePausesOnlyTheInstanceBehind(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Update(func(tx *store.Tx) error {
		for i := range 12 {
			if _, err := tx.Enqueue("file", "a", []byte(fmt.Sprintf(`{"event_id":"a%d"}`, i))); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reports []string
	cfg := &config.Config{
		Instances: []config.Instance{{Name: "a", Fetch: config.Fetch{Enabled: true}}, {Name: "b", Fetch: config.Fetch{Enabled: true}},
			{Name: "push-only"}}, // fetches nothing: no share of its own
		Sinks: []config.Sink{{Name: "file", MaxPending: 10}},
	}
	bp := NewBackpressure(st, cfg, slog.New(slog.DiscardHandler), func(instance, why string) {
		mu.Lock()
		defer mu.Unlock()
		reports = append(reports, instance+": "+why)
	})
	bp.poll = 10 * time.Millisecond

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := bp.Wait(ctx, "b"); err != nil {
		t.Fatalf("instance b waited: %v", err)
	}
	short, cancelShort := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancelShort()
	if err := bp.Wait(short, "a"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("instance a, 12 events of a sink with max_pending 10: wait returned %v, want it to block", err)
	}

	done := make(chan error, 1)
	go func() { done <- bp.Wait(ctx, "a") }()
	items, err := st.NextBatch("file", 5)
	if err != nil || len(items) != 5 {
		t.Fatalf("next batch: %d items, %v", len(items), err)
	}
	if err := st.Ack("file", items...); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("instance a after the sink caught up: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	// a paused (its share is 10 ÷ 2 fetching instances = 5) twice — the wait that timed out, then
	// the one that lasted until the sink caught up — reported once each however long it waited, and
	// resumed each time; b was never paused.
	paused := "a: file (12 pending > max_pending 10; 12 of them this instance's, its share is 5)"
	want := []string{paused, "a: ", paused, "a: "}
	if fmt.Sprint(reports) != fmt.Sprint(want) {
		t.Fatalf("status reports %q, want %q", reports, want)
	}
}
