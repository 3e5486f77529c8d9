package feed

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
)

// backfill runs the created feed over 1,000 issues (with 50 already known, so one page stops
// mid-way) and returns the issue ids of its events and the requests it made.
func backfill(t *testing.T, prefetch bool) ([]string, []request) {
	t.Helper()
	fx := newFixture(t, 100)
	fx.prefetch = prefetch
	base := fx.now.Add(-48 * time.Hour)
	for n := 0; n < 1000; n++ {
		fx.src.put(issue(n, ts(base, n), "OPEN"))
	}
	err := fx.store.Update(func(tx *store.Tx) error {
		for n := 500; n < 550; n++ {
			if err := tx.PutIncident(&store.IncidentRecord{Instance: "default", IssueID: issue(n, base, "").ID, CreatedAt: ts(base, n), Status: "OPEN"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fx.run(Created)
	var ids []string
	for _, ev := range fx.events() {
		ids = append(ids, ev.IssueID)
	}
	fx.src.mu.Lock()
	defer fx.src.mu.Unlock()
	return ids, slices.Clone(fx.src.requests)
}

// A prefetching feed emits exactly what a plain one does, and asks Wiz for exactly the same pages:
// no prefetched page is wasted, even around a page that stops mid-way.
func TestPrefetchChangesNothingButTiming(t *testing.T) {
	plainIDs, plainReqs := backfill(t, false)
	ids, reqs := backfill(t, true)
	if len(plainIDs) != 950 {
		t.Fatalf("plain feed emitted %d events, want 950", len(plainIDs))
	}
	if !slices.Equal(ids, plainIDs) {
		t.Fatalf("prefetching feed emitted %d events, plain %d, or in another order", len(ids), len(plainIDs))
	}
	if !slices.EqualFunc(reqs, plainReqs, func(a, b request) bool { return a.after == b.after && a.first == b.first }) {
		t.Fatalf("prefetching feed made %d requests, plain %d:\n%v\n%v", len(reqs), len(plainReqs), reqs, plainReqs)
	}
}

// A prefetched page is used only by a fetch that asks for its cursor: after the checkpoint moves
// (here, an operator's reset), the next fetch asks for what the checkpoint says.
func TestPrefetchIsDroppedWhenTheCursorMoves(t *testing.T) {
	fx := newFixture(t, 100)
	fx.prefetch = true
	base := fx.now.Add(-48 * time.Hour)
	for n := 0; n < 300; n++ {
		fx.src.put(issue(n, ts(base, n), "OPEN"))
	}
	f := fx.feed(Created)
	if res, err := f.Fetch(context.Background()); err != nil || res.Created != 100 || !res.Backlog {
		t.Fatalf("first fetch = %+v, %v", res, err)
	}
	if f.ahead == nil {
		t.Fatal("no prefetch after a full page with more to come")
	}
	<-f.ahead.mapped
	fx.src.mu.Lock()
	before := len(fx.src.requests)
	fx.src.mu.Unlock()
	// Reset: forget the window and the watermark.
	err := fx.store.Update(func(tx *store.Tx) error {
		cp, _, err := tx.Checkpoint("default", Created)
		if err != nil {
			return err
		}
		cp.Watermark, cp.WindowAfter, cp.Cursor = time.Time{}, time.Time{}, ""
		return tx.PutCheckpoint("default", Created, cp)
	})
	if err != nil {
		t.Fatal(err)
	}
	res, err := f.Fetch(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// The re-read first page holds only known issues, so the fetch goes on to page two, which it
	// must request itself (its cursor differs from the prefetched one's window).
	if res.Created != 100 || res.Ignored[ReasonKnown] != 100 {
		t.Fatalf("fetch after the reset = %+v; want 100 known, 100 created", res)
	}
	fx.src.mu.Lock()
	defer fx.src.mu.Unlock()
	if got := fx.src.requests[before].after; got != "" {
		t.Fatalf("the fetch after the reset started at cursor %q, want the window's start", got)
	}
}

// Close cancels a prefetch in flight and the feed still works afterwards.
func TestPrefetchClose(t *testing.T) {
	fx := newFixture(t, 100)
	fx.prefetch = true
	base := fx.now.Add(-48 * time.Hour)
	for n := 0; n < 250; n++ {
		fx.src.put(issue(n, ts(base, n), "OPEN"))
	}
	f := fx.feed(Created)
	if _, err := f.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := f.ahead
	f.Close()
	if f.ahead != nil {
		t.Fatal("Close kept the prefetch")
	}
	select {
	case <-p.mapped:
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled prefetch never finished")
	}
	fx.run(Created)
	if n := len(fx.events()); n != 250 {
		t.Fatalf("%d events after Close and a new run, want 250", n)
	}
}
