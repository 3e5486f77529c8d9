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

// A streaming feed emits exactly what a plain one does, and asks Wiz for each page once: where the
// plain feed stops a page mid-way (and asks for it again in the next fetch), the streaming one ends
// the fetch before that page and keeps it for the next.
func TestPrefetchChangesNothingButTiming(t *testing.T) {
	plainIDs, plainReqs := backfill(t, false)
	ids, reqs := backfill(t, true)
	if len(plainIDs) != 950 {
		t.Fatalf("plain feed emitted %d events, want 950", len(plainIDs))
	}
	if !slices.Equal(ids, plainIDs) {
		t.Fatalf("streaming feed emitted %d events, plain %d, or in another order", len(ids), len(plainIDs))
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		if seen[r.after] {
			t.Fatalf("streaming feed asked for cursor %q twice:\n%v", r.after, reqs)
		}
		seen[r.after] = true
		if !slices.ContainsFunc(plainReqs, func(p request) bool { return p.after == r.after && p.first == r.first }) {
			t.Fatalf("streaming feed asked for cursor %q, which the plain feed never did", r.after)
		}
	}
	// 1,000 issues in pages of 100, plus the plain feed's repeats after its mid-page stops.
	if len(reqs) != 10 || len(plainReqs) <= len(reqs) {
		t.Fatalf("streaming feed made %d requests (want 10), plain %d", len(reqs), len(plainReqs))
	}
}

// A streamed page is used only by a fetch that asks for its cursor: after the checkpoint moves
// (here, an operator's reset), the next fetch asks for what the checkpoint says.
func TestPrefetchIsDroppedWhenTheCursorMoves(t *testing.T) {
	fx := streamingFixture(t, 300)
	f := fx.feed(Created)
	if res, err := f.Fetch(context.Background()); err != nil || res.Created != 100 || !res.Backlog {
		t.Fatalf("first fetch = %+v, %v", res, err)
	}
	if f.stream == nil {
		t.Fatal("no stream after a full page with more to come")
	}
	fx.src.mu.Lock()
	before := len(fx.src.requests) // the stream's own requests may follow: none is for the window's start
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
	// The re-read first page holds only known issues, so the fetch goes on to page two.
	if res.Created != 100 || res.Ignored[ReasonKnown] != 100 {
		t.Fatalf("fetch after the reset = %+v; want 100 known, 100 created", res)
	}
	fx.src.mu.Lock()
	defer fx.src.mu.Unlock()
	if !slices.ContainsFunc(fx.src.requests[before:], func(r request) bool { return r.after == "" }) {
		t.Fatalf("the fetch after the reset never asked for the window's start: %v", fx.src.requests[before:])
	}
}

// Close cancels a stream in flight and the feed still works afterwards.
func TestPrefetchClose(t *testing.T) {
	fx := streamingFixture(t, 250)
	f := fx.feed(Created)
	if _, err := f.Fetch(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := f.stream
	if s == nil {
		t.Fatal("no stream after a full page with more to come")
	}
	f.Close()
	if f.stream != nil {
		t.Fatal("Close kept the stream")
	}
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		t.Fatal("the cancelled stream's goroutines never returned")
	}
	fx.run(Created)
	if n := len(fx.events()); n != 250 {
		t.Fatalf("%d events after Close and a new run, want 250", n)
	}
}

// streamingFixture is a prefetching fixture (max_per_fetch 100) with n open issues, a microsecond apart
// from two days ago.
func streamingFixture(t *testing.T, n int) *fixture {
	t.Helper()
	fx := newFixture(t, 100)
	fx.prefetch = true
	base := fx.now.Add(-48 * time.Hour)
	for i := 0; i < n; i++ {
		fx.src.put(issue(i, ts(base, i), "OPEN"))
	}
	return fx
}
