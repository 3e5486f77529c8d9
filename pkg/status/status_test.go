package status

import (
	"errors"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/feed"
)

func TestTrackerRecordsFetchesDeliveriesAndHistory(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 30, 0, time.UTC)
	tr := New("v1", func() time.Time { return now })
	tr.AddFeed("b", "created")
	tr.AddFeed("a", "updates")
	tr.AddSink("file", "jsonl", 100)

	wm := now.Add(-90 * time.Second)
	tr.FetchDone("a", "updates", feed.Result{Fetched: 10, Created: 2, Updated: 3, Ignored: map[string]int{"duplicate": 5}, Backlog: true, Watermark: wm}, nil)
	now = now.Add(time.Minute)
	tr.FetchDone("a", "updates", feed.Result{}, errors.New("fetch page 1: HTTP 503"))
	tr.Delivery("file", 4, nil)
	tr.Delivery("file", 0, errors.New("disk full"))
	tr.SetPaused("file (120 pending > max_pending 100)")

	s := tr.Snapshot()
	if s.Version != "v1" || !s.Paused || s.PausedBy == "" {
		t.Fatalf("snapshot header: %+v", s)
	}
	if len(s.Feeds) != 2 || s.Feeds[0].Instance != "a" || s.Feeds[1].Instance != "b" {
		t.Fatalf("feeds not sorted by instance: %+v", s.Feeds)
	}
	f := s.Feeds[0]
	if f.Fetches != 2 || f.Created != 2 || f.Updated != 3 || f.Ignored != 5 || f.IssuesFetched != 10 {
		t.Fatalf("counters: %+v", f)
	}
	if f.LastError == "" || f.ConsecutiveFailures != 1 || !f.Backlog || !f.Paused {
		t.Fatalf("failure state: %+v", f)
	}
	if f.LagSeconds != 150 {
		t.Fatalf("lag = %v, want 150 s (now - watermark)", f.LagSeconds)
	}
	sk := s.Sinks[0]
	if sk.Delivered != 4 || sk.Failures != 1 || sk.LastError != "disk full" || sk.MaxPending != 100 {
		t.Fatalf("sink: %+v", sk)
	}
	if len(s.History) != 2 || s.History[0].Events != 5 || s.History[1].LagSeconds != 150 {
		t.Fatalf("history: %+v", s.History)
	}

	// History is bounded.
	for i := 0; i < 3*historyLen; i++ {
		now = now.Add(time.Minute)
		tr.FetchDone("a", "updates", feed.Result{Created: 1}, nil)
	}
	if n := len(tr.Snapshot().History); n != historyLen {
		t.Fatalf("history holds %d samples, want %d", n, historyLen)
	}
	tr.Reset()
	if s := tr.Snapshot(); len(s.Feeds) != 0 || len(s.Sinks) != 0 || s.Paused {
		t.Fatalf("reset kept state: %+v", s)
	}
}
