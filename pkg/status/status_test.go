package status

import (
	"errors"
	"strings"
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
	tr.SetPaused("a", "file (120 pending > max_pending 100)")

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
	if s.Feeds[1].Paused || !strings.Contains(s.PausedBy, "instance a: file") {
		t.Fatalf("only instance a is paused: feed b paused=%v, paused_by %q", s.Feeds[1].Paused, s.PausedBy)
	}
	if f.LagSeconds != 150 {
		t.Fatalf("lag = %v, want 150 s (now - watermark)", f.LagSeconds)
	}
	sk := s.Sinks[0]
	if sk.Delivered != 4 || sk.Failures != 1 || sk.LastError != "disk full" || sk.MaxPending != 100 {
		t.Fatalf("sink: %+v", sk)
	}
	// The first minute (10:00) ended with the watermark at 09:59:00: 120 s behind at 10:01:00.
	if len(s.History) != 2 || s.History[0].Events != 5 || s.History[0].LagSeconds != 120 || s.History[1].LagSeconds != 150 {
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

// WizRetrying shows an instance's retry cause at once, keeps when the retries began while the
// cause changes, and forgets it when the retries end (cause "") or the tracker is reset.
func TestWizRetrying(t *testing.T) {
	now := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	tr := New("v1", func() time.Time { return now })
	if s := tr.Snapshot(); len(s.Retrying) != 0 {
		t.Fatalf("retrying before any retry: %+v", s.Retrying)
	}
	began := now
	tr.WizRetrying("eu", "token request: proxyconnect tcp: connection refused")
	tr.WizRetrying("default", "graphql request: HTTP 503 Service Unavailable")
	now = now.Add(time.Minute)
	tr.WizRetrying("eu", "token request: i/o timeout")

	s := tr.Snapshot()
	want := []Retrying{
		{Instance: "default", Cause: "graphql request: HTTP 503 Service Unavailable", Since: began},
		{Instance: "eu", Cause: "token request: i/o timeout", Since: began},
	}
	if len(s.Retrying) != len(want) || s.Retrying[0] != want[0] || s.Retrying[1] != want[1] {
		t.Fatalf("retrying = %+v, want %+v", s.Retrying, want)
	}

	tr.WizRetrying("default", "")
	if s := tr.Snapshot(); len(s.Retrying) != 1 || s.Retrying[0].Instance != "eu" {
		t.Fatalf("after default recovered: %+v", s.Retrying)
	}
	tr.Reset()
	if s := tr.Snapshot(); len(s.Retrying) != 0 {
		t.Fatalf("after Reset: %+v", s.Retrying)
	}
}

// FetchDone adds up, per feed, the issues rejected (every reason), the future timestamps and the
// clipped incidents, failed fetches included (their committed pages counted).
func TestTrackerCountsRejectionsAndAnomalies(t *testing.T) {
	tests := []struct {
		name                      string
		results                   []feed.Result
		errs                      []error
		rejected, future, clipped int64
	}{
		{name: "none", results: []feed.Result{{Fetched: 5}}, errs: []error{nil}},
		{
			name: "every reason",
			results: []feed.Result{{Rejected: map[string]int{
				feed.RejectIncomplete: 2, feed.RejectTooLarge: 1, feed.RejectMapping: 1,
			}, FutureTimestamps: 3, Clipped: 2}},
			errs:     []error{nil},
			rejected: 4, future: 3, clipped: 2,
		},
		{
			name: "summed over fetches, failed ones included",
			results: []feed.Result{
				{Rejected: map[string]int{feed.RejectIncomplete: 1}, Clipped: 1},
				{Rejected: map[string]int{feed.RejectIncomplete: 2}, FutureTimestamps: 1},
			},
			errs:     []error{nil, errors.New("fetch page 2: HTTP 503")},
			rejected: 3, future: 1, clipped: 1,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := New("v1", nil)
			for i, res := range tc.results {
				tr.FetchDone("default", feed.Created, res, tc.errs[i])
			}
			s := tr.Snapshot()
			if len(s.Feeds) != 1 {
				t.Fatalf("feeds: %+v", s.Feeds)
			}
			f := s.Feeds[0]
			if f.Rejected != tc.rejected || f.FutureTimestamps != tc.future || f.Clipped != tc.clipped {
				t.Fatalf("rejected %d, future %d, clipped %d; want %d, %d, %d",
					f.Rejected, f.FutureTimestamps, f.Clipped, tc.rejected, tc.future, tc.clipped)
			}
		})
	}
}
