package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// openShared opens a store with OpenKV on a posterDB, as a replica of a shared engine does, and
// returns the engine too (to fence it: a replica that does not lead).
func openShared(t *testing.T) (*Store, *posterDB) {
	t.Helper()
	s := openPosterAt(t, filepath.Join(t.TempDir(), "shared.db"), Options{})
	return s, s.db.(*posterDB)
}

func inboxKeys(t *testing.T, s *Store) int {
	t.Helper()
	n := 0
	mustView(t, s, func(tx *Tx) error {
		n = tx.ktx.Bucket(bucketInbox).KeyN()
		return nil
	})
	return n
}

// On a shared engine a push is posted, not written in a transaction: a replica that does not lead
// takes it. The leader's RefetchBatch moves posted pushes into the queue, coalescing them as a
// direct enqueue does; the depth counts them from the moment they are posted.
func TestInboxTakesPushesOnAStandby(t *testing.T) {
	s, db := openShared(t)
	db.fenced.Store(true) // a standby: every write transaction is refused
	for i, id := range []string{"a", "b", "a", "c"} {
		if err := s.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: id, ReceivedAt: t0.Add(time.Duration(i) * time.Second)}); err != nil {
			t.Fatalf("push %s on a standby: %v", id, err)
		}
	}
	if got := db.posts.Load(); got != 4 {
		t.Errorf("%d posts, want 4", got)
	}
	if d, err := s.RefetchDepth(); err != nil || d != 3 {
		t.Errorf("RefetchDepth = %d, %v; want 3 (a posted twice is one issue)", d, err)
	}
	if st, err := s.Stats(); err != nil || st.Refetch != 3 {
		t.Errorf("Stats.Refetch = %d, %v; want 3", st.Refetch, err)
	}
	// Only the leader moves the inbox; a standby's attempt fails and loses nothing.
	if _, err := s.RefetchBatch(t0, 10); !errors.Is(err, kv.ErrFenced) {
		t.Errorf("RefetchBatch on a standby: %v, want ErrFenced", err)
	}
	if n := inboxKeys(t, s); n != 4 {
		t.Fatalf("inbox holds %d after a fenced move, want 4", n)
	}

	db.fenced.Store(false) // leads now
	batch, err := s.RefetchBatch(t0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(batch); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("RefetchBatch = %v, want FIFO a b c", got)
	}
	if !batch[0].ReceivedAt.Equal(t0) {
		t.Errorf("a.ReceivedAt = %v, want the earliest push %v", batch[0].ReceivedAt, t0)
	}
	if n := inboxKeys(t, s); n != 0 {
		t.Errorf("inbox holds %d after the move", n)
	}
	if d, err := s.RefetchDepth(); err != nil || d != 3 {
		t.Errorf("RefetchDepth after the move = %d, %v; want 3", d, err)
	}
	// A push of a queued issue is posted too: moved, it counts as a push again, so that a refetch
	// already under way does not complete the item (TestPushDuringARefetchKeepsTheItem).
	posts := db.posts.Load()
	if err := s.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: "b"}); err != nil {
		t.Fatal(err)
	}
	if db.posts.Load() != posts+1 {
		t.Error("a push of a queued issue was not posted")
	}
	if d, err := s.RefetchDepth(); err != nil || d != 3 {
		t.Errorf("RefetchDepth after a push of a queued issue = %d, %v; want 3", d, err)
	}
}

// The bound holds for posted pushes as well as it can: a full instance is refused at once, and what
// was posted beyond the bound meanwhile is dropped when it moves.
func TestInboxBound(t *testing.T) {
	s, db := openShared(t)
	push := func(id string) error {
		return s.EnqueueRefetchBounded(RefetchItem{Instance: "a", IssueID: id}, 2)
	}
	if err := push("x1"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.RefetchBatch(t0, 0); err != nil { // x1 queued
		t.Fatal(err)
	}
	db.fenced.Store(true)
	for _, id := range []string{"x2", "x3", "x4"} { // 1 of 2 queued: each passes the check
		if err := push(id); err != nil {
			t.Fatalf("push %s: %v", id, err)
		}
	}
	db.fenced.Store(false)
	batch, err := s.RefetchBatch(t0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(batch); !reflect.DeepEqual(got, []string{"x1", "x2"}) {
		t.Fatalf("queue = %v, want x1 x2 (bound 2)", got)
	}
	if n := inboxKeys(t, s); n != 0 {
		t.Errorf("inbox holds %d: dropped pushes must leave it", n)
	}
	posts := db.posts.Load()
	if err := push("x5"); !errors.Is(err, ErrQueueFull) {
		t.Errorf("push to a full instance: %v, want ErrQueueFull", err)
	}
	if db.posts.Load() != posts {
		t.Error("a refused push was posted")
	}
	if err := push("x2"); err != nil { // queued already: posted, and it takes no room
		t.Errorf("push of a queued issue to a full instance: %v", err)
	}
	if db.posts.Load() != posts+1 {
		t.Error("a push of a queued issue was not posted")
	}
	if batch, err := s.RefetchBatch(t0, 0); err != nil || !reflect.DeepEqual(ids(batch), []string{"x1", "x2"}) {
		t.Errorf("queue after a push of a queued issue = %v, %v; want x1 x2", ids(batch), err)
	}
}

// One move takes at most maxInboxMove posted pushes; the next RefetchBatch takes the rest.
func TestInboxMovesInBoundedSteps(t *testing.T) {
	s, db := openShared(t)
	db.fenced.Store(true)
	n := maxInboxMove + 5
	for i := 0; i < n; i++ {
		if err := s.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: fmt.Sprintf("i-%05d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	if d, err := s.RefetchDepth(); err != nil || d != n {
		t.Fatalf("RefetchDepth = %d, %v; want %d", d, err, n)
	}
	db.fenced.Store(false)
	if batch, err := s.RefetchBatch(t0, 0); err != nil || len(batch) != maxInboxMove {
		t.Fatalf("first batch: %d items, %v; want %d", len(batch), err, maxInboxMove)
	}
	if got := inboxKeys(t, s); got != 5 {
		t.Fatalf("inbox holds %d after one move, want 5", got)
	}
	if batch, err := s.RefetchBatch(t0, 0); err != nil || len(batch) != n {
		t.Fatalf("second batch: %d items, %v; want %d", len(batch), err, n)
	}
}

// The leader's other writes of the queue move posted pushes first, so that they act on the queue a
// direct enqueue would have made.
func TestInboxMovesBeforeCompleteAndRetry(t *testing.T) {
	s, _ := openShared(t)
	for _, id := range []string{"a", "b"} {
		if err := s.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: id}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CompleteRefetch("default", "a"); err != nil {
		t.Fatal(err)
	}
	if err := s.RetryRefetch(RefetchItem{Instance: "default", IssueID: "b", NextAttempt: t0.Add(time.Hour)}); err != nil {
		t.Fatalf("retry of a posted push: %v", err)
	}
	if d, err := s.RefetchDepth(); err != nil || d != 1 {
		t.Errorf("RefetchDepth = %d, %v; want 1", d, err)
	}
	batch, err := s.RefetchBatch(t0.Add(time.Hour), 0)
	if err != nil || len(batch) != 1 || batch[0].IssueID != "b" || batch[0].Attempts != 1 {
		t.Errorf("queue = %+v, %v; want b retried once", batch, err)
	}
}

// Two replicas on one engine: the id set of one must not answer "no incident" for an incident the
// other stored while it led (identity.go).
func TestSharedEngineIdentitySet(t *testing.T) {
	s, db := openShared(t)
	other, err := OpenKV(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	mustUpdate(t, s, func(tx *Tx) error { // s leads and builds its set, empty
		_, ok, err := tx.FindIncident("default", "i1", created)
		if ok {
			t.Error("found an incident in an empty store")
		}
		return err
	})
	mustUpdate(t, other, func(tx *Tx) error { // the other replica leads and stores i1
		return tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "i1", CreatedAt: created, Status: "OPEN"})
	})
	mustView(t, s, func(tx *Tx) error {
		if ok, err := tx.KnownIssue("default", "i1", created.Add(time.Hour)); err != nil || !ok {
			t.Errorf("KnownIssue in a read transaction = %v, %v; want the other replica's incident", ok, err)
		}
		return nil
	})
	mustUpdate(t, s, func(tx *Tx) error { // s leads again: a node with another createdAt
		rec, ok, err := tx.FindIncident("default", "i1", created.Add(time.Hour))
		if err != nil || !ok || !rec.CreatedAt.Equal(created) {
			t.Errorf("FindIncident = %+v, %v, %v; want the other replica's incident", rec, ok, err)
		}
		return err
	})
}

// On a standby, a fenced write is no failure of the store, and a failed post is: WriteHealth
// follows the posts, and its probe, fenced, finds the engine answering again.
func TestWriteHealthOnAStandby(t *testing.T) {
	now := t0
	s := openPosterAt(t, filepath.Join(t.TempDir(), "shared.db"), Options{Now: func() time.Time { return now }})
	db := s.db.(*posterDB)
	db.fenced.Store(true)
	if err := s.Update(func(tx *Tx) error { return tx.PutCheckpoint("default", "created", Checkpoint{}) }); !errors.Is(err, kv.ErrFenced) {
		t.Fatalf("Update on a standby: %v, want ErrFenced", err)
	}
	if err := s.WriteHealth(); err != nil {
		t.Fatalf("a fenced write made the standby unhealthy: %v", err)
	}
	db.failPosts.Store(true)
	if err := s.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: "i1"}); err == nil {
		t.Fatal("a failed post was accepted")
	}
	if err := s.WriteHealth(); err == nil {
		t.Fatal("WriteHealth = nil after a failed post")
	}
	db.failPosts.Store(false)
	now = now.Add(probeAfter)
	if err := s.WriteHealth(); err != nil {
		t.Fatalf("the probe, fenced, did not clear the failure: %v", err)
	}
	if err := s.WriteHealth(); err != nil {
		t.Fatalf("unhealthy again after the probe: %v", err)
	}
}
