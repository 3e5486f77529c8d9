package store

import (
	"fmt"
	"testing"
	"time"
)

// CompleteRefetches and RetryRefetches act on many queued items in one transaction, as
// CompleteRefetch and RetryRefetch do on one: the depth follows, retried items wait for their
// NextAttempt with one more attempt, and items no longer queued are skipped.
func TestRefetchBatchCompleteAndRetry(t *testing.T) {
	s := openTest(t)
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	var items []RefetchItem
	for i := 0; i < 6; i++ {
		it := RefetchItem{Instance: "a", IssueID: fmt.Sprintf("i-%d", i), ReceivedAt: now}
		if err := s.EnqueueRefetchBounded(it, 10); err != nil {
			t.Fatal(err)
		}
		items = append(items, it)
	}
	gone := RefetchItem{Instance: "a", IssueID: "never-queued"}
	if err := s.CompleteRefetches(append(items[:3:3], gone)); err != nil {
		t.Fatal(err)
	}
	later := now.Add(time.Hour)
	retry := append([]RefetchItem(nil), items[3:]...)
	for i := range retry {
		retry[i].NextAttempt = later
	}
	if err := s.RetryRefetches(append(retry, gone)); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RefetchDepth(); err != nil || n != 3 {
		t.Fatalf("depth %d (%v), want 3", n, err)
	}
	if due, err := s.RefetchBatch(now, 0); err != nil || len(due) != 0 {
		t.Fatalf("due now: %+v (%v), want none", due, err)
	}
	due, err := s.RefetchBatch(later, 0)
	if err != nil || len(due) != 3 {
		t.Fatalf("due later: %+v (%v), want the 3 retried", due, err)
	}
	for i, it := range due {
		if it.IssueID != items[3+i].IssueID || it.Attempts != 1 || !it.NextAttempt.Equal(later) {
			t.Fatalf("retried item %+v", it)
		}
	}
	// The per-instance bound counts only what is still queued.
	for i := 6; i < 13; i++ {
		if err := s.EnqueueRefetchBounded(RefetchItem{Instance: "a", IssueID: fmt.Sprintf("i-%d", i)}, 10); err != nil {
			t.Fatalf("enqueue %d with 3 queued of 10: %v", i, err)
		}
	}
}

// A push that arrives while its issue is being refetched is not lost: the refetch that started
// before it may have read the issue before the change the push announces, so completing that
// refetch keeps the item for one more (a push-only instance would otherwise never see the change).
func TestPushDuringARefetchKeepsTheItem(t *testing.T) {
	s := openTestStore(t, Options{})
	now := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	if err := s.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: "a", ReceivedAt: now}); err != nil {
		t.Fatal(err)
	}
	taken, err := s.RefetchBatch(now, 10)
	if err != nil || len(taken) != 1 || taken[0].Pushes != 0 {
		t.Fatalf("batch %+v, %v", taken, err)
	}
	// The same issue is pushed again while the refetch runs.
	if err := s.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: "a", ReceivedAt: now.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteRefetches(taken); err != nil {
		t.Fatal(err)
	}
	again, err := s.RefetchBatch(now, 10)
	if err != nil || len(again) != 1 || again[0].IssueID != "a" || again[0].Attempts != 0 || !again[0].ReceivedAt.Equal(now) {
		t.Fatalf("after completing a refetch the issue was pushed again during: %+v, %v; want it queued, due at once", again, err)
	}
	if err := s.CompleteRefetches(again); err != nil {
		t.Fatal(err)
	}
	if left, err := s.RefetchBatch(now, 10); err != nil || len(left) != 0 {
		t.Fatalf("queue after the second refetch: %+v, %v; want empty", left, err)
	}
	if n, err := s.RefetchDepth(); err != nil || n != 0 {
		t.Fatalf("queue length %d, %v; want 0", n, err)
	}
}
