package feed

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/wiz"
)

// listSource adds the id-list read to issueByID and counts both kinds of read; listErr, when set,
// is the answer to every id-list read.
type listSource struct {
	issueByID
	mu      sync.Mutex
	lists   [][]string
	singles int
	listErr error
}

func (s *listSource) Issue(ctx context.Context, id string) (*wiz.Issue, json.RawMessage, error) {
	s.mu.Lock()
	s.singles++
	s.mu.Unlock()
	return s.issueByID.Issue(ctx, id)
}

func (s *listSource) IssuesByID(_ context.Context, ids []string) ([]wiz.Issue, []json.RawMessage, error) {
	s.mu.Lock()
	s.lists = append(s.lists, append([]string(nil), ids...))
	err := s.listErr
	s.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	s.fakeSource.mu.Lock()
	defer s.fakeSource.mu.Unlock()
	var out []wiz.Issue
	var raws []json.RawMessage
	for _, id := range ids {
		if is, ok := s.fakeSource.issues[id]; ok {
			raw, _ := json.Marshal(is)
			out = append(out, is)
			raws = append(raws, raw)
		}
	}
	return out, raws, nil
}

// pushWorld is a fixture whose issues cover every push outcome, with the ids in the order pushed.
func pushWorld(t *testing.T) (*fixture, *listSource, *Refetcher, []string, map[string]string) {
	t.Helper()
	fx := newFixture(t, 50)
	fx.feed(Created)
	f := fx.feeds[Created]
	src := &listSource{issueByID: issueByID{fx.src}}
	r := NewRefetcher(RefetcherOptions{
		Instance: "default", Fetch: fx.fetch, Sinks: []string{"file"}, Source: src, Store: fx.store,
		Classifier: f.opt.Classifier, Mapper: f.opt.Mapper, Now: func() time.Time { return fx.now },
	})
	recent := fx.now.Add(-time.Hour)
	known, changed := issue(1, recent, "OPEN"), issue(2, recent, "OPEN")
	fx.src.put(known)
	fx.src.put(changed)
	for _, is := range []wiz.Issue{known, changed} {
		if out, err := r.Process(context.Background(), is.ID); err != nil || out != PushCreated {
			t.Fatalf("seed push of %s: %q %v", is.ID, out, err)
		}
	}
	later := fx.now.Add(-time.Minute)
	changed.Status, changed.StatusChangedAt = "RESOLVED", &later
	fx.src.put(changed)
	broken := issue(3, recent, "OPEN")
	broken.Type = ""
	fx.src.put(broken)
	fx.src.put(issue(4, fx.now.Add(-30*24*time.Hour), "OPEN")) // before the lookback
	fx.src.put(issue(5, recent, "RESOLVED"))                   // outside the status filter
	want := map[string]string{
		known.ID: PushUnchanged, changed.ID: PushUpdated, broken.ID: PushRejected,
		issue(4, recent, "").ID: PushNotMatching, issue(5, recent, "").ID: PushNotMatching,
	}
	ids := []string{known.ID, changed.ID, broken.ID, issue(4, recent, "").ID, issue(5, recent, "").ID}
	for n := 10; n < 40; n++ {
		is := issue(n, recent.Add(time.Duration(n)*time.Second), "OPEN")
		fx.src.put(is)
		ids = append(ids, is.ID)
		want[is.ID] = PushCreated
		if n%10 == 0 { // unknown to Wiz, amid the others
			gone := fmt.Sprintf("00000000-0000-4000-9000-%012d", n)
			ids = append(ids, gone)
			want[gone] = PushNotFound
		}
	}
	return fx, src, r, ids, want
}

// A batch is one id-list read and one decision per issue, each what a push of that issue alone
// decides: the same outcomes and the same events as pushing the issues one by one. Ids Wiz does not
// return are not found and hold back nothing.
func TestProcessBatchDecidesAsSinglePushes(t *testing.T) {
	fxBatch, src, rb, ids, want := pushWorld(t)
	fxOne, _, r1, _, _ := pushWorld(t)
	seeded, singles := len(fxBatch.events()), src.singles

	res, err := rb.ProcessBatch(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(src.lists) != 1 || len(src.lists[0]) != len(ids) || src.singles != singles {
		t.Fatalf("%d id-list reads, %d single reads; want one id-list read of the whole batch", len(src.lists), src.singles-singles)
	}
	for i, id := range ids {
		one, err := r1.Process(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if res[i].IssueID != id || res[i].Err != nil || res[i].Outcome != want[id] || one != want[id] {
			t.Errorf("issue %s: batch %+v, alone %q; want %q", id, res[i], one, want[id])
		}
	}
	batchEvents, oneEvents := fxBatch.events(), fxOne.events()
	if len(batchEvents) != len(oneEvents) || len(batchEvents) != seeded+31 {
		t.Fatalf("%d events from the batch, %d from single pushes; want %d (30 created, 1 updated)", len(batchEvents)-seeded, len(oneEvents)-seeded, 31)
	}
	for i := range batchEvents {
		if batchEvents[i].EventID != oneEvents[i].EventID || batchEvents[i].Kind != oneEvents[i].Kind {
			t.Fatalf("event %d: batch %s %s, alone %s %s", i, batchEvents[i].Kind, batchEvents[i].EventID, oneEvents[i].Kind, oneEvents[i].EventID)
		}
	}
	if list, _ := fxBatch.store.RejectedIssues("default", 0); len(list) != 1 || list[0].Feed != "push" {
		t.Fatalf("rejected: %+v", list)
	}

	// Pushed again, nothing is new.
	res, err = rb.ProcessBatch(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range ids {
		if res[i].Outcome == PushCreated || res[i].Outcome == PushUpdated {
			t.Errorf("issue %s pushed again: %q", id, res[i].Outcome)
		}
	}
	if n := len(fxBatch.events()); n != len(batchEvents) {
		t.Fatalf("%d events after pushing the batch again, want %d", n, len(batchEvents))
	}
}

// When Wiz refuses the id-list read itself, the batch is read one issue at a time, so the outcome
// of each push is still its own.
func TestProcessBatchFallsBackToSingleReads(t *testing.T) {
	_, src, r, ids, want := pushWorld(t)
	src.listErr = fmt.Errorf("IssuesTable: %w", wiz.ErrBadRequest)
	before := src.singles
	res, err := r.ProcessBatch(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	if src.singles-before != len(ids) {
		t.Fatalf("%d single reads, want %d", src.singles-before, len(ids))
	}
	for i, id := range ids {
		if res[i].Err != nil || res[i].Outcome != want[id] {
			t.Errorf("issue %s: %+v, want %q", id, res[i], want[id])
		}
	}

	// A transient failure of the read fails the whole batch: retried later, nothing decided.
	src.listErr = fmt.Errorf("IssuesTable: %w", wiz.ErrTransient)
	if _, err := r.ProcessBatch(context.Background(), ids); err == nil {
		t.Fatal("a failed read of the batch gave no error")
	}
}

// undecodableSource answers the one-issue read of id with the node that does not decode, as
// wiz.Client.Issue does.
type undecodableSource struct {
	issueByID
	id string
}

func (s undecodableSource) Issue(ctx context.Context, id string) (*wiz.Issue, json.RawMessage, error) {
	if id == s.id {
		return nil, nil, &wiz.UndecodableError{Issue: wiz.Issue{ID: id}, Raw: json.RawMessage(`{"id":"` + id + `","createdAt":"yesterday"}`)}
	}
	return s.issueByID.Issue(ctx, id)
}

// A lone pushed issue whose node does not decode is rejected and recorded, as in a batch or a page:
// its transient error used to requeue the push for good.
func TestPushedUndecodableIssueIsRejected(t *testing.T) {
	fx := newFixture(t, 50)
	fx.feed(Created)
	f := fx.feeds[Created]
	const id = "00000000-0000-4000-8000-0000000000ee"
	r := NewRefetcher(RefetcherOptions{
		Instance: "default", Fetch: fx.fetch, Sinks: []string{"file"}, Source: undecodableSource{issueByID{fx.src}, id}, Store: fx.store,
		Classifier: f.opt.Classifier, Mapper: f.opt.Mapper, Now: func() time.Time { return fx.now },
	})
	out, err := r.Process(context.Background(), id)
	if err != nil || out != PushRejected {
		t.Fatalf("Process = %q, %v; want %q", out, err, PushRejected)
	}
	recs, err := fx.store.RejectedIssues("default", 0)
	if err != nil || len(recs) != 1 || recs[0].IssueID != id || recs[0].Feed != "push" || recs[0].Raw == "" {
		t.Fatalf("rejected records %+v, %v: want the pushed issue with its raw node", recs, err)
	}
	if len(fx.events()) != 0 {
		t.Fatalf("events %v, want none", fx.events())
	}
}
