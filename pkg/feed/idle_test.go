package feed

import (
	"context"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/store"
)

// fetchIdle runs one fetch that must fetch at least a page, emit nothing and leave no backlog.
func (fx *fixture) fetchIdle(name string) Result {
	fx.t.Helper()
	res, err := fx.feed(name).Fetch(context.Background())
	if err != nil {
		fx.t.Fatalf("fetch of %s: %v", name, err)
	}
	if res.Pages == 0 || res.Emitted() != 0 || res.Backlog {
		fx.t.Fatalf("fetch of %s: %+v; want a page, no event, no backlog", name, res)
	}
	return res
}

// An idle fetch (a caught-up feed over an unchanged simulator) changes nothing durable, so it
// commits nothing: no meta page, no freelist, no fsync (errNothingToCommit).
func TestIdleFetchOverSimulatorDoesNotCommit(t *testing.T) {
	fx := newFixture(t, 10)
	fx.fetch.Status = nil
	sim, client := simSource(t, fx.now, 60)
	fx.source = client
	fx.run(Created)
	fx.run(Updates)
	events := len(fx.events())
	if want := len(sim.Snapshot()); events != want {
		t.Fatalf("caught up with %d events, want %d", events, want)
	}
	cps := map[string]store.Checkpoint{Created: fx.checkpointOf(Created), Updates: fx.checkpointOf(Updates)}
	writes := fx.store.PageWrites()

	for range 3 {
		fx.now = fx.now.Add(time.Minute)
		fx.fetchIdle(Created)
		fx.fetchIdle(Updates)
	}
	if got := fx.store.PageWrites(); got != writes {
		t.Fatalf("idle fetches wrote %d pages, want none", got-writes)
	}
	for name, want := range cps {
		if got := fx.checkpointOf(name); got != want {
			t.Fatalf("%s checkpoint changed by idle fetches: %+v, was %+v", name, got, want)
		}
	}
	if n := len(fx.events()); n != events {
		t.Fatalf("idle fetches added %d events", n-events)
	}
}

// The updates feed's overlap re-reads the changes it has marks for: a fetch that meets only those
// commits nothing either.
func TestIdleUpdatesFetchOverMarkedChangesDoesNotCommit(t *testing.T) {
	fx := newFixture(t, 200)
	for n := range 3 {
		fx.src.put(issue(n, ts(fx.now.Add(-time.Minute), n), "OPEN"))
	}
	fx.run(Created)
	fx.run(Updates) // marks the three changes (status unchanged: no event)
	writes := fx.store.PageWrites()
	cp := fx.checkpointOf(Updates)

	fx.now = fx.now.Add(time.Minute)
	res := fx.fetchIdle(Updates)
	if res.Ignored[ReasonDuplicate] != 3 {
		t.Fatalf("idle updates fetch: %+v; want the 3 marked changes re-read", res)
	}
	if got := fx.store.PageWrites(); got != writes {
		t.Fatalf("idle updates fetch wrote %d pages, want none", got-writes)
	}
	if got := fx.checkpointOf(Updates); got != cp {
		t.Fatalf("checkpoint changed: %+v, was %+v", got, cp)
	}
	if n := len(fx.events()); n != 3 {
		t.Fatalf("%d events, want the 3 created", n)
	}
}

// A fetch that emits nothing but prunes a mark commits (the prune is durable).
func TestFetchThatOnlyPrunesMarksCommits(t *testing.T) {
	fx := newFixture(t, 200)
	fx.src.put(issue(1, fx.now.Add(-time.Minute), "OPEN"))
	fx.run(Created)
	fx.run(Updates)
	if err := fx.store.Update(func(tx *store.Tx) error {
		return tx.PutMark("default", Updates, "old|mark", fx.now.Add(-24*time.Hour))
	}); err != nil {
		t.Fatal(err)
	}
	writes := fx.store.PageWrites()

	fx.now = fx.now.Add(time.Minute)
	fx.fetchIdle(Updates)
	if fx.store.PageWrites() == writes {
		t.Fatal("a fetch that pruned a mark did not commit")
	}
	if err := fx.store.View(func(tx *store.Tx) error {
		seen, err := tx.HasMark("default", Updates, "old|mark")
		if err == nil && seen {
			t.Error("the old mark was not pruned")
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := fx.checkpointOf(Updates).UpdatedAt; !got.Equal(fx.now) {
		t.Fatalf("checkpoint updated_at %v, want %v", got, fx.now)
	}
}

// A fetch that emits nothing but moves the watermark (an issue already known) commits.
func TestFetchThatOnlyMovesTheWindowCommits(t *testing.T) {
	fx := newFixture(t, 200)
	fx.src.put(issue(1, fx.now.Add(-time.Hour), "OPEN"))
	fx.run(Created)
	known := issue(2, fx.now.Add(-time.Minute), "OPEN")
	if err := fx.store.Update(func(tx *store.Tx) error {
		return tx.PutIncident(&store.IncidentRecord{Instance: "default", IssueID: known.ID, CreatedAt: known.CreatedAt, Status: "OPEN"})
	}); err != nil {
		t.Fatal(err)
	}
	fx.src.put(known)
	writes := fx.store.PageWrites()

	fx.now = fx.now.Add(time.Minute)
	res := fx.fetchIdle(Created)
	if res.Ignored[ReasonKnown] != 2 { // the overlap re-reads the first issue too
		t.Fatalf("fetch: %+v; want the known issue ignored", res)
	}
	if fx.store.PageWrites() == writes {
		t.Fatal("a fetch that moved the watermark did not commit")
	}
	cp := fx.checkpointOf(Created)
	if !cp.Watermark.Equal(known.CreatedAt) || !cp.UpdatedAt.Equal(fx.now) {
		t.Fatalf("checkpoint %+v; want watermark %v, updated_at %v", cp, known.CreatedAt, fx.now)
	}
}
