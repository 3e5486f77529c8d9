package store

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestRejectedIssues(t *testing.T) {
	s := openTest(t)
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	put := func(r RejectedIssue, raw string) bool {
		t.Helper()
		var recorded bool
		mustUpdate(t, s, func(tx *Tx) error {
			var err error
			recorded, err = tx.PutRejected(r, []byte(raw))
			return err
		})
		return recorded
	}
	if !put(RejectedIssue{Instance: "a", IssueID: "x", Feed: "created", Reason: "incomplete", Detail: "status is null", LastSeen: at}, `{"id":"x"}`) {
		t.Fatal("first record not recorded")
	}
	// Seen again: the same record, counted.
	put(RejectedIssue{Instance: "a", IssueID: "x", Feed: "updates", Reason: "incomplete", Detail: "severity is null", LastSeen: at.Add(time.Minute)}, `{"id":"x"}`)
	// No usable id: keyed by the node's bytes; a huge node is cut.
	put(RejectedIssue{Instance: "a", Feed: "created", Reason: "incomplete", LastSeen: at}, `{"id":null}`)
	put(RejectedIssue{Instance: "a", IssueID: strings.Repeat("i", 300), Feed: "created", Reason: "incomplete", LastSeen: at}, `"`+strings.Repeat("r", 100<<10)+`"`)
	put(RejectedIssue{Instance: "b", IssueID: "x", Feed: "push", Reason: "too_large", LastSeen: at}, `{}`)

	s = reopen(t, s) // checks the counters against the records
	list, err := s.RejectedIssues("a", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 {
		t.Fatalf("%d records of a, want 3: %+v", len(list), list)
	}
	var x, long RejectedIssue
	for _, r := range list {
		switch {
		case r.IssueID == "x":
			x = r
		case len(r.IssueID) == 256:
			long = r
		}
	}
	if x.Count != 2 || !x.FirstSeen.Equal(at) || !x.LastSeen.Equal(at.Add(time.Minute)) || x.Feed != "updates" || x.Detail != "severity is null" || x.Raw != `{"id":"x"}` {
		t.Fatalf("record x: %+v", x)
	}
	if !long.RawClipped || len(long.Raw) != MaxRejectedRawBytes || long.RawBytes != 100<<10+2 {
		t.Fatalf("long record: clipped %v, %d bytes of %d", long.RawClipped, len(long.Raw), long.RawBytes)
	}
	counts, err := s.RejectedCounts()
	if err != nil || counts["a"] != 3 || counts["b"] != 1 || len(counts) != 2 {
		t.Fatalf("counts %v, %v", counts, err)
	}
	if got, _ := s.RejectedIssues("", 2); len(got) != 2 {
		t.Fatalf("limit 2: %d records", len(got))
	}

	mustUpdate(t, s, func(tx *Tx) error {
		if ok, err := tx.DeleteRejected("a", "x"); !ok || err != nil {
			t.Fatalf("DeleteRejected: %v %v", ok, err)
		}
		if ok, err := tx.DeleteRejected("a", "x"); ok || err != nil {
			t.Fatalf("DeleteRejected again: %v %v", ok, err)
		}
		if n, err := tx.RejectedCount("a"); n != 2 || err != nil {
			t.Fatalf("RejectedCount: %d %v", n, err)
		}
		return nil
	})
}

// An instance keeps at most MaxRejectedPerInstance records; a known one is still updated.
func TestRejectedIssuesAreBounded(t *testing.T) {
	s := openTest(t)
	at := time.Date(2026, 11, 20, 12, 0, 0, 0, time.UTC)
	mustUpdate(t, s, func(tx *Tx) error {
		for i := 0; i < MaxRejectedPerInstance; i++ {
			if ok, err := tx.PutRejected(RejectedIssue{Instance: "a", IssueID: fmt.Sprint(i), Reason: "incomplete", LastSeen: at}, nil); !ok || err != nil {
				t.Fatalf("record %d: %v %v", i, ok, err)
			}
		}
		if ok, err := tx.PutRejected(RejectedIssue{Instance: "a", IssueID: "one more", Reason: "incomplete", LastSeen: at}, nil); ok || err != nil {
			t.Fatalf("record past the bound: %v %v", ok, err)
		}
		if ok, err := tx.PutRejected(RejectedIssue{Instance: "a", IssueID: "7", Reason: "too_large", LastSeen: at}, nil); !ok || err != nil {
			t.Fatalf("update past the bound: %v %v", ok, err)
		}
		return nil
	})
	if n, _ := s.RejectedCounts(); n["a"] != MaxRejectedPerInstance {
		t.Fatalf("count %d", n["a"])
	}
}

// A store without the bucket (an older file, or no rejection yet) reads as empty.
func TestRejectedIssuesOfAStoreWithoutAny(t *testing.T) {
	s := openTest(t)
	if list, err := s.RejectedIssues("", 0); err != nil || len(list) != 0 {
		t.Fatalf("%v %v", list, err)
	}
	mustUpdate(t, s, func(tx *Tx) error {
		if ok, err := tx.DeleteRejected("a", "x"); ok || err != nil {
			t.Fatalf("DeleteRejected: %v %v", ok, err)
		}
		return nil
	})
}
