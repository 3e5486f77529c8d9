package store

import (
	"fmt"
	"testing"
	"time"
)

// An incident is found by issue id whatever createdAt the caller has (issue 17: a changed createdAt
// made a known issue look new, and its created event was written twice).
func TestFindIncidentByIDWhateverTheCreatedAt(t *testing.T) {
	s := openTest(t)
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	const n = 5000 // enough to merge the recent hashes into the sorted ones several times
	id := func(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }
	put := func(i int) {
		mustUpdate(t, s, func(tx *Tx) error {
			return tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: id(i), CreatedAt: base.Add(time.Duration(i) * time.Second), Status: "OPEN"})
		})
	}
	put(0) // before the id set exists
	mustUpdate(t, s, func(tx *Tx) error {
		_, _, err := tx.FindIncident("default", id(0), base.Add(time.Hour)) // builds the set
		return err
	})
	for i := 1; i < n; i++ {
		put(i)
	}
	check := func(s *Store, write bool) {
		t.Helper()
		fn := func(tx *Tx) error {
			for _, i := range []int{0, 1, 1023, 1024, 2500, n - 1} {
				elsewhere := base.Add(-time.Duration(i+1) * time.Minute)
				rec, ok, err := tx.FindIncident("default", id(i), elsewhere)
				if err != nil || !ok || rec.IssueID != id(i) || !rec.CreatedAt.Equal(base.Add(time.Duration(i)*time.Second)) {
					t.Fatalf("FindIncident(%d): %+v %v %v", i, rec, ok, err)
				}
				if known, err := tx.KnownIssue("default", id(i), elsewhere); !known || err != nil {
					t.Fatalf("KnownIssue(%d): %v %v", i, known, err)
				}
				if known, err := tx.KnownIssue("other", id(i), elsewhere); known || err != nil {
					t.Fatalf("KnownIssue(other instance, %d): %v %v", i, known, err)
				}
			}
			if known, err := tx.KnownIssue("default", id(n), base); known || err != nil {
				t.Fatalf("KnownIssue(unknown): %v %v", known, err)
			}
			return nil
		}
		if write {
			mustUpdate(t, s, fn)
		} else if err := s.View(fn); err != nil {
			t.Fatal(err)
		}
	}
	check(s, true)
	check(s, false)
	s = reopen(t, s) // the set is rebuilt from the index
	check(s, false)  // a read transaction walks (the set is built only by writers)
	check(s, true)
}

// A rolled-back incident or a pruned one leaves a stale hash: the lookup walks and finds nothing.
func TestFindIncidentAfterRollbackAndPrune(t *testing.T) {
	s := openTest(t)
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	mustUpdate(t, s, func(tx *Tx) error { _, err := tx.KnownIssue("default", "x", at); return err })
	_ = s.Update(func(tx *Tx) error {
		if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "gone", CreatedAt: at, Status: "OPEN"}); err != nil {
			t.Fatal(err)
		}
		return fmt.Errorf("roll back")
	})
	closed := at
	mustUpdate(t, s, func(tx *Tx) error {
		return tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "pruned", CreatedAt: at, Status: "RESOLVED", ClosedAt: &closed})
	})
	mustUpdate(t, s, func(tx *Tx) error {
		_, err := tx.PruneClosedIncidents(at.Add(time.Hour))
		return err
	})
	mustUpdate(t, s, func(tx *Tx) error {
		for _, id := range []string{"gone", "pruned"} {
			if known, err := tx.KnownIssue("default", id, at.Add(time.Minute)); known || err != nil {
				t.Fatalf("KnownIssue(%s): %v %v", id, known, err)
			}
		}
		return nil
	})
}

// New issues are answered by the id set without a walk of the heads (each walk reads every head of
// the instance: a set that said "maybe" too often would make a backfill quadratic), and a moved
// incident costs one walk per process.
func TestNewIssuesCostNoWalk(t *testing.T) {
	s := openTest(t)
	base := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	id := func(i int) string { return fmt.Sprintf("00000000-0000-4000-8000-%012d", i) }
	const stored, fresh = 3000, 2000
	for i := range stored {
		mustUpdate(t, s, func(tx *Tx) error {
			return tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: id(i), CreatedAt: base.Add(time.Duration(i) * time.Second), Status: "OPEN"})
		})
	}
	walks := func() int64 { return s.ids.walks.Load() }
	mustUpdate(t, s, func(tx *Tx) error {
		for i := stored; i < stored+fresh; i++ {
			known, err := tx.KnownIssue("default", id(i), base.Add(time.Duration(i)*time.Second))
			if known || err != nil {
				t.Fatalf("KnownIssue(new %d): %v %v", i, known, err)
			}
			// and the page stores it, as the created feed would
			if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: id(i), CreatedAt: base.Add(time.Duration(i) * time.Second), Status: "OPEN"}); err != nil {
				return err
			}
		}
		return nil
	})
	if n := walks(); n != 0 {
		t.Fatalf("%d walks for %d new issues; want none", n, fresh)
	}
	moved := base.Add(-time.Hour)
	for range 3 {
		mustUpdate(t, s, func(tx *Tx) error {
			known, err := tx.KnownIssue("default", id(42), moved)
			if !known || err != nil {
				t.Fatalf("KnownIssue(moved): %v %v", known, err)
			}
			return nil
		})
	}
	if n := walks(); n != 1 {
		t.Fatalf("%d walks for one moved issue looked up three times; want 1", n)
	}
}
