package store

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv/boltkv"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 123456000, time.UTC)

func TestCheckpointsSurviveReopen(t *testing.T) {
	s := openTest(t)
	want := Checkpoint{
		Watermark:   t0,
		WindowAfter: t0.Add(-5 * time.Minute),
		Cursor:      "opaque==",
		FirstStart:  t0.Add(-7 * 24 * time.Hour),
		UpdatedAt:   t0.Add(time.Second),
	}
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutCheckpoint("default", "created", want); err != nil {
			return err
		}
		if err := tx.PutCheckpoint("default", "updates", Checkpoint{Watermark: t0}); err != nil {
			return err
		}
		return tx.PutCheckpoint("eu", "created", Checkpoint{Cursor: "x"})
	})
	s = reopen(t, s)
	mustView(t, s, func(tx *Tx) error {
		got, ok, err := tx.Checkpoint("default", "created")
		if err != nil || !ok {
			t.Fatalf("Checkpoint: %v, %v", ok, err)
		}
		if !got.Watermark.Equal(want.Watermark) || !got.WindowAfter.Equal(want.WindowAfter) ||
			got.Cursor != want.Cursor || !got.FirstStart.Equal(want.FirstStart) || !got.UpdatedAt.Equal(want.UpdatedAt) {
			t.Errorf("Checkpoint = %+v, want %+v", got, want)
		}
		if _, ok, _ := tx.Checkpoint("nope", "created"); ok {
			t.Error("Checkpoint of unknown instance reported ok")
		}
		all, err := tx.Checkpoints()
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, e := range all {
			keys = append(keys, e.Instance+"/"+e.Feed)
		}
		if want := []string{"default/created", "default/updates", "eu/created"}; !reflect.DeepEqual(keys, want) {
			t.Errorf("Checkpoints keys = %v, want %v", keys, want)
		}
		return nil
	})
	mustUpdate(t, s, func(tx *Tx) error { return tx.DeleteCheckpoint("default", "created") })
	mustView(t, s, func(tx *Tx) error {
		if _, ok, _ := tx.Checkpoint("default", "created"); ok {
			t.Error("checkpoint still there after DeleteCheckpoint")
		}
		return nil
	})
}

func TestMarksPruneByTime(t *testing.T) {
	s := openTest(t)
	const inst, feed = "default", "updates"
	mustUpdate(t, s, func(tx *Tx) error {
		for i := range 10 {
			if err := tx.PutMark(inst, feed, fmt.Sprintf("k%d", i), t0.Add(time.Duration(i)*time.Minute)); err != nil {
				return err
			}
		}
		// Same keys in another feed and instance must not be touched by pruning.
		if err := tx.PutMark(inst, "created", "k0", t0); err != nil {
			return err
		}
		if err := tx.PutMark("other", feed, "k0", t0); err != nil {
			return err
		}
		// Re-marking moves the mark: k1 now belongs to a late time and must survive.
		return tx.PutMark(inst, feed, "k1", t0.Add(time.Hour))
	})
	s = reopen(t, s)
	var pruned int
	mustUpdate(t, s, func(tx *Tx) error {
		n, err := tx.MarkCount(inst, feed)
		if err != nil || n != 10 {
			t.Errorf("MarkCount before prune = %d, %v; want 10", n, err)
		}
		// Prune strictly before t0+5m: k0, k2, k3, k4 (k1 moved to t0+1h).
		pruned, err = tx.PruneMarks(inst, feed, t0.Add(5*time.Minute))
		return err
	})
	if pruned != 4 {
		t.Errorf("PruneMarks = %d, want 4", pruned)
	}
	s = reopen(t, s)
	mustView(t, s, func(tx *Tx) error {
		for i := range 10 {
			ok, err := tx.HasMark(inst, feed, fmt.Sprintf("k%d", i))
			if err != nil {
				return err
			}
			want := i == 1 || i >= 5
			if ok != want {
				t.Errorf("HasMark(k%d) = %v, want %v", i, ok, want)
			}
		}
		for _, k := range [][2]string{{inst, "created"}, {"other", feed}} {
			if ok, _ := tx.HasMark(k[0], k[1], "k0"); !ok {
				t.Errorf("mark of %s/%s was pruned", k[0], k[1])
			}
		}
		if n, _ := tx.MarkCount(inst, feed); n != 6 {
			t.Errorf("MarkCount after prune = %d, want 6", n)
		}
		if n, _ := tx.MarkCount(inst, "created"); n != 1 {
			t.Errorf("MarkCount(created) = %d, want 1", n)
		}
		return nil
	})
	// Pruning again is a no-op; the index holds no stale entry for the moved k1.
	mustUpdate(t, s, func(tx *Tx) error {
		n, err := tx.PruneMarks(inst, feed, t0.Add(5*time.Minute))
		if err != nil || n != 0 {
			t.Errorf("second PruneMarks = %d, %v; want 0", n, err)
		}
		n, err = tx.PruneMarks(inst, feed, t0.Add(2*time.Hour))
		if err != nil || n != 6 {
			t.Errorf("PruneMarks(all) = %d, %v; want 6", n, err)
		}
		return nil
	})
}

func TestIncidentsRoundTripAndForEach(t *testing.T) {
	s := openTest(t)
	changed := t0.Add(time.Minute)
	in := &IncidentRecord{
		Instance: "default", IssueID: "b-issue", Status: "OPEN", StatusChangedAt: &changed,
		CreatedAt: t0, Incident: []byte(`{"name":"rule - b-issue"}`), Version: 1,
		LastEventID: "ev-1", FirstSeen: t0, UpdatedAt: t0,
	}
	mustUpdate(t, s, func(tx *Tx) error {
		for _, r := range []*IncidentRecord{
			in,
			{Instance: "default", IssueID: "a-issue", Status: "OPEN", Version: 1},
			{Instance: "eu", IssueID: "c-issue", Status: "IN_PROGRESS", Version: 2},
			{Instance: "defaultx", IssueID: "d-issue", Status: "OPEN", Version: 1},
		} {
			if err := tx.PutIncident(r); err != nil {
				return err
			}
		}
		return nil
	})
	s = reopen(t, s)
	mustView(t, s, func(tx *Tx) error {
		got, ok, err := tx.Incident("default", "b-issue")
		if err != nil || !ok {
			t.Fatalf("Incident: %v, %v", ok, err)
		}
		if got.Status != in.Status || !got.StatusChangedAt.Equal(changed) || !got.CreatedAt.Equal(t0) ||
			!bytes.Equal(got.Incident, in.Incident) || got.Version != 1 || got.LastEventID != "ev-1" ||
			got.ClosedAt != nil || got.Instance != "default" || got.IssueID != "b-issue" {
			t.Errorf("Incident = %+v", got)
		}
		if _, ok, _ := tx.Incident("default", "zzz"); ok {
			t.Error("unknown incident reported ok")
		}
		for _, tc := range []struct {
			instance string
			want     []string
		}{
			{"default", []string{"default/a-issue", "default/b-issue"}}, // not "defaultx"
			{"", []string{"default/a-issue", "default/b-issue", "defaultx/d-issue", "eu/c-issue"}},
			{"none", nil},
		} {
			var ids []string
			err := tx.ForEachIncident(tc.instance, func(r *IncidentRecord) error {
				ids = append(ids, r.Instance+"/"+r.IssueID)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ids, tc.want) {
				t.Errorf("ForEachIncident(%q) = %v, want %v", tc.instance, ids, tc.want)
			}
		}
		stop := errors.New("stop")
		calls := 0
		if err := tx.ForEachIncident("", func(*IncidentRecord) error { calls++; return stop }); !errors.Is(err, stop) || calls != 1 {
			t.Errorf("ForEachIncident stop: err=%v calls=%d", err, calls)
		}
		if n, _ := tx.IncidentCount("default"); n != 2 {
			t.Errorf("IncidentCount(default) = %d, want 2", n)
		}
		if n, _ := tx.IncidentCount(""); n != 4 {
			t.Errorf("IncidentCount(all) = %d, want 4", n)
		}
		return nil
	})
}

// A zero ClosedAt counts as open, and close times outside what the head can store are clamped, so
// the retention index always matches what the head reads back: no orphan entries, no drifting count.
func TestClosedAtEdgeValues(t *testing.T) {
	s := openTest(t)
	far := time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC)
	farther := far.Add(48 * time.Hour)
	mustUpdate(t, s, func(tx *Tx) error {
		for range 3 {
			if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "zero", Status: "RESOLVED", ClosedAt: &time.Time{}}); err != nil {
				return err
			}
		}
		for _, c := range []*time.Time{&far, &farther} {
			if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "future", Status: "RESOLVED", ClosedAt: c}); err != nil {
				return err
			}
		}
		return nil
	})
	checkConsistency(t, s)
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.ClosedIncidents != 1 {
		t.Fatalf("ClosedIncidents = %d, want 1 (the far-future one)", st.ClosedIncidents)
	}
}

// The retention index is keyed by day: pruning up to a time in the middle of a day removes that
// day's incidents closed before it, keeps the later ones (and their index entries), and gets them on
// a later run.
func TestRetentionPruneWithinADay(t *testing.T) {
	s := openTest(t)
	day := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	at := func(h int) *time.Time { v := day.Add(time.Duration(h) * time.Hour); return &v }
	mustUpdate(t, s, func(tx *Tx) error {
		// Written out of time order, as a backfill does.
		for i, h := range []int{20, 3, 11, -5, 30, 7} {
			if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: fmt.Sprintf("c%d", i), Status: "RESOLVED", ClosedAt: at(h)}); err != nil {
				return err
			}
		}
		return nil
	})
	prune := func(before time.Time) int {
		var n int
		mustUpdate(t, s, func(tx *Tx) error {
			var err error
			n, err = tx.PruneClosedIncidents(before)
			return err
		})
		checkConsistency(t, s)
		return n
	}
	if n := prune(day.Add(10 * time.Hour)); n != 3 { // closed at -5h, 3h, 7h
		t.Fatalf("first prune removed %d, want 3", n)
	}
	mustView(t, s, func(tx *Tx) error {
		for id, want := range map[string]bool{"c0": true, "c1": false, "c2": true, "c3": false, "c4": true, "c5": false} {
			if _, ok, _ := tx.Incident("default", id); ok != want {
				t.Errorf("incident %s present = %v, want %v", id, ok, want)
			}
		}
		return nil
	})
	if n := prune(day.Add(10 * time.Hour)); n != 0 {
		t.Fatalf("the same prune again removed %d, want 0", n)
	}
	if n := prune(day.Add(25 * time.Hour)); n != 2 { // 11h and 20h
		t.Fatalf("second prune removed %d, want 2", n)
	}
	if n := prune(day.Add(31 * time.Hour)); n != 1 { // 30h, the next day
		t.Fatalf("third prune removed %d, want 1", n)
	}
}

func TestRetentionPrunesClosedIncidents(t *testing.T) {
	s := openTest(t)
	at := func(d time.Duration) *time.Time { v := t0.Add(d); return &v }
	mustUpdate(t, s, func(tx *Tx) error {
		for _, r := range []*IncidentRecord{
			{Instance: "default", IssueID: "old-closed", Status: "RESOLVED", ClosedAt: at(-100 * 24 * time.Hour)},
			{Instance: "default", IssueID: "reopened", Status: "RESOLVED", ClosedAt: at(-100 * 24 * time.Hour)},
			{Instance: "default", IssueID: "recent-closed", Status: "REJECTED", ClosedAt: at(-time.Hour)},
			{Instance: "default", IssueID: "open", Status: "OPEN"},
			{Instance: "eu", IssueID: "reclosed", Status: "RESOLVED", ClosedAt: at(-200 * 24 * time.Hour)},
		} {
			if err := tx.PutIncident(r); err != nil {
				return err
			}
		}
		// The issue reopens: ClosedAt cleared; a re-closed one moves to a recent ClosedAt.
		if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "reopened", Status: "OPEN"}); err != nil {
			return err
		}
		return tx.PutIncident(&IncidentRecord{Instance: "eu", IssueID: "reclosed", Status: "RESOLVED", ClosedAt: at(-time.Minute)})
	})
	s = reopen(t, s)
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.ClosedIncidents != 3 {
		t.Errorf("ClosedIncidents = %d, want 3", st.ClosedIncidents)
	}
	var n int
	mustUpdate(t, s, func(tx *Tx) error {
		var err error
		n, err = tx.PruneClosedIncidents(t0.Add(-90 * 24 * time.Hour))
		return err
	})
	if n != 1 {
		t.Errorf("PruneClosedIncidents = %d, want 1", n)
	}
	mustView(t, s, func(tx *Tx) error {
		for id, want := range map[string]bool{"old-closed": false, "reopened": true, "recent-closed": true, "open": true} {
			if _, ok, _ := tx.Incident("default", id); ok != want {
				t.Errorf("incident %s present = %v, want %v", id, ok, want)
			}
		}
		if _, ok, _ := tx.Incident("eu", "reclosed"); !ok {
			t.Error("re-closed incident was pruned by its old ClosedAt")
		}
		return nil
	})
	st, err = s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.Incidents["default"] != 3 || st.Incidents["eu"] != 1 || st.ClosedIncidents != 2 {
		t.Errorf("Stats after prune: incidents=%v closed=%d; want default:3 eu:1 closed:2", st.Incidents, st.ClosedIncidents)
	}
}

func TestOutboxFIFOAckDepthAcrossReopen(t *testing.T) {
	s := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		for i := 1; i <= 5; i++ {
			for _, sink := range []string{"file", "xsoar"} {
				seq, err := tx.Enqueue(sink, "default", []byte(fmt.Sprintf(`{"n":%d}`, i)))
				if err != nil {
					return err
				}
				if seq != uint64(i) {
					t.Errorf("Enqueue(%s) seq = %d, want %d", sink, seq, i)
				}
			}
		}
		if d, _ := tx.OutboxDepth("file"); d != 5 {
			t.Errorf("in-tx OutboxDepth = %d, want 5", d)
		}
		return nil
	})
	s = reopen(t, s)
	items, err := s.Outbox("file", 0, 3)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(items); !reflect.DeepEqual(got, []uint64{1, 2, 3}) {
		t.Fatalf("Outbox(file, 0, 3) seqs = %v", got)
	}
	if string(items[0].Data) != `{"n":1}` {
		t.Errorf("item 1 data = %s", items[0].Data)
	}
	if err := s.Ack("file", laneItems("default", 1, 2, 99)...); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack("file", laneItems("default", 2)...); err != nil { // idempotent
		t.Fatal(err)
	}
	s = reopen(t, s)
	for _, tc := range []struct {
		sink string
		want int
	}{{"file", 3}, {"xsoar", 5}, {"never", 0}} {
		if d, err := s.OutboxDepth(tc.sink); err != nil || d != tc.want {
			t.Errorf("OutboxDepth(%s) = %d, %v; want %d", tc.sink, d, err, tc.want)
		}
	}
	items, _ = s.Outbox("file", 0, 0)
	if got := seqs(items); !reflect.DeepEqual(got, []uint64{3, 4, 5}) {
		t.Errorf("Outbox(file) after ack = %v", got)
	}
	items, _ = s.Outbox("file", 3, 10)
	if got := seqs(items); !reflect.DeepEqual(got, []uint64{4, 5}) {
		t.Errorf("Outbox(file, after 3) = %v", got)
	}
	// Sequence numbers continue after reopen.
	mustUpdate(t, s, func(tx *Tx) error {
		seq, err := tx.Enqueue("file", "default", []byte(`{"n":6}`))
		if seq != 6 {
			t.Errorf("seq after reopen = %d, want 6", seq)
		}
		return err
	})
}

func TestDropOutboxKeepsSequence(t *testing.T) {
	s := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		for range 3 {
			if _, err := tx.Enqueue("gone", "default", []byte("x")); err != nil {
				return err
			}
		}
		_, err := tx.Enqueue("kept", "default", []byte("y"))
		return err
	})
	mustUpdate(t, s, func(tx *Tx) error {
		sinks, err := tx.OutboxSinks()
		if err != nil || !reflect.DeepEqual(sinks, []string{"gone", "kept"}) {
			t.Errorf("OutboxSinks = %v, %v", sinks, err)
		}
		n, err := tx.DropOutbox("gone")
		if err != nil || n != 3 {
			t.Errorf("DropOutbox = %d, %v; want 3", n, err)
		}
		if n, err := tx.DropOutbox("unknown"); err != nil || n != 0 {
			t.Errorf("DropOutbox(unknown) = %d, %v", n, err)
		}
		sinks, _ = tx.OutboxSinks()
		if !reflect.DeepEqual(sinks, []string{"kept"}) {
			t.Errorf("OutboxSinks after drop = %v", sinks)
		}
		return nil
	})
	s = reopen(t, s)
	if d, _ := s.OutboxDepth("gone"); d != 0 {
		t.Errorf("depth of dropped outbox = %d", d)
	}
	// The sink comes back: its sequence must not restart (a sink may remember "written up to 3").
	mustUpdate(t, s, func(tx *Tx) error {
		seq, err := tx.Enqueue("gone", "default", []byte("z"))
		if seq != 4 {
			t.Errorf("seq of re-created outbox = %d, want 4", seq)
		}
		return err
	})
	if d, _ := s.OutboxDepth("gone"); d != 1 {
		t.Errorf("depth of re-created outbox = %d, want 1", d)
	}
}

func TestDeadLetterMoveAndRequeue(t *testing.T) {
	now := t0
	s := openTestStore(t, Options{NoSync: true, Now: func() time.Time { return now }})
	mustUpdate(t, s, func(tx *Tx) error {
		for i := 1; i <= 4; i++ {
			if _, err := tx.Enqueue("xsoar", "default", []byte(fmt.Sprintf(`{"event_id":"e%d"}`, i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.MoveToDeadLetter("xsoar", OutboxItem{Instance: "default", Seq: 2}, "HTTP 400: bad field", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveToDeadLetter("xsoar", OutboxItem{Instance: "default", Seq: 3}, "HTTP 401", 5); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveToDeadLetter("xsoar", OutboxItem{Instance: "default", Seq: 2}, "again", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("second move of seq 2: err = %v, want ErrNotFound", err)
	}
	if err := s.MoveToDeadLetter("nosink", OutboxItem{Instance: "default", Seq: 1}, "x", 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("move from unknown sink: err = %v, want ErrNotFound", err)
	}
	if d, _ := s.OutboxDepth("xsoar"); d != 2 {
		t.Errorf("OutboxDepth = %d, want 2", d)
	}
	if n, _ := s.DeadLetterCount("xsoar"); n != 2 {
		t.Errorf("DeadLetterCount = %d, want 2", n)
	}
	dls, err := s.DeadLetters("xsoar", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != 2 || dls[0].Seq != 2 || dls[0].Reason != "HTTP 400: bad field" || dls[0].Attempts != 1 ||
		!dls[0].FailedAt.Equal(t0) || string(dls[0].Data) != `{"event_id":"e2"}` || dls[1].Seq != 3 {
		t.Fatalf("DeadLetters = %+v", dls)
	}
	if dls, _ := s.DeadLetters("xsoar", 1); len(dls) != 1 {
		t.Errorf("DeadLetters limit 1 returned %d", len(dls))
	}

	n, err := s.RequeueDeadLetters("xsoar", 3, 42)
	if err != nil || n != 1 {
		t.Fatalf("RequeueDeadLetters(3, 42) = %d, %v; want 1", n, err)
	}
	if n, _ := s.RequeueDeadLetters("xsoar"); n != 0 {
		t.Errorf("RequeueDeadLetters() with no seqs moved %d", n)
	}
	items, _ := s.Outbox("xsoar", 0, 0)
	if got := seqs(items); !reflect.DeepEqual(got, []uint64{1, 4, 5}) {
		t.Errorf("outbox after requeue = %v, want [1 4 5] (requeued at the tail)", got)
	}
	if string(items[2].Data) != `{"event_id":"e3"}` {
		t.Errorf("requeued data = %s", items[2].Data)
	}
	n, err = s.RequeueAllDeadLetters("xsoar")
	if err != nil || n != 1 {
		t.Errorf("RequeueAllDeadLetters = %d, %v; want 1", n, err)
	}
	if c, _ := s.DeadLetterCount("xsoar"); c != 0 {
		t.Errorf("DeadLetterCount after requeue = %d", c)
	}
	if d, _ := s.OutboxDepth("xsoar"); d != 4 {
		t.Errorf("OutboxDepth after requeue = %d, want 4", d)
	}
}

func TestSinkState(t *testing.T) {
	s := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutSinkState("xsoar", "issue/abc", []byte(`{"id":"17","version":2}`)); err != nil {
			return err
		}
		return tx.PutSinkState("file", "last_seq", []byte{0, 0, 0, 0, 0, 0, 0, 9})
	})
	s = reopen(t, s)
	mustUpdate(t, s, func(tx *Tx) error {
		v, err := tx.SinkState("xsoar", "issue/abc")
		if err != nil || string(v) != `{"id":"17","version":2}` {
			t.Errorf("SinkState = %q, %v", v, err)
		}
		if v, _ := tx.SinkState("webhook", "issue/abc"); v != nil {
			t.Errorf("SinkState of other sink = %q, want nil", v)
		}
		return tx.PutSinkState("xsoar", "issue/abc", nil)
	})
	mustView(t, s, func(tx *Tx) error {
		if v, _ := tx.SinkState("xsoar", "issue/abc"); v != nil {
			t.Errorf("SinkState after delete = %q", v)
		}
		return nil
	})
}

func TestRefetchQueue(t *testing.T) {
	s := openTest(t)
	enq := func(id string, received time.Time) {
		t.Helper()
		if err := s.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: id, ReceivedAt: received}); err != nil {
			t.Fatal(err)
		}
	}
	enq("a", t0)
	enq("b", t0.Add(time.Second))
	enq("a", t0.Add(2*time.Second)) // duplicate push: no-op, keeps the earliest
	enq("c", t0.Add(3*time.Second))
	if d, _ := s.RefetchDepth(); d != 3 {
		t.Fatalf("RefetchDepth = %d, want 3", d)
	}
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
	if batch, _ := s.RefetchBatch(t0, 2); len(batch) != 2 {
		t.Errorf("limit 2 returned %d", len(batch))
	}
	// a fails: back off one minute.
	if err := s.RetryRefetch(RefetchItem{Instance: "default", IssueID: "a", NextAttempt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteRefetch("default", "b"); err != nil {
		t.Fatal(err)
	}
	if err := s.CompleteRefetch("default", "b"); err != nil { // idempotent
		t.Fatal(err)
	}
	s = reopen(t, s)
	batch, _ = s.RefetchBatch(t0.Add(30*time.Second), 10)
	if got := ids(batch); !reflect.DeepEqual(got, []string{"c"}) {
		t.Errorf("due before backoff ends = %v, want [c]", got)
	}
	batch, _ = s.RefetchBatch(t0.Add(time.Minute), 10)
	if got := ids(batch); !reflect.DeepEqual(got, []string{"c", "a"}) {
		t.Fatalf("due after backoff = %v, want [c a]", got)
	}
	if batch[1].Attempts != 1 || !batch[1].NextAttempt.Equal(t0.Add(time.Minute)) {
		t.Errorf("retried item = %+v", batch[1])
	}
	if d, _ := s.RefetchDepth(); d != 2 {
		t.Errorf("RefetchDepth = %d, want 2", d)
	}
	if err := s.RetryRefetch(RefetchItem{Instance: "default", IssueID: "b"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("RetryRefetch of completed item: err = %v, want ErrNotFound", err)
	}
	// A push for a queued item in backoff keeps the queued entry (and its backoff).
	enq("a", t0.Add(time.Hour))
	batch, _ = s.RefetchBatch(t0.Add(time.Minute), 10)
	if len(batch) != 2 || batch[1].Attempts != 1 {
		t.Errorf("after duplicate push: %+v", batch)
	}
}

func TestStats(t *testing.T) {
	s := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutCheckpoint("default", "created", Checkpoint{}); err != nil {
			return err
		}
		if err := tx.PutMark("default", "created", "i1", t0); err != nil {
			return err
		}
		if err := tx.PutMark("default", "created", "i2", t0); err != nil {
			return err
		}
		if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "i1"}); err != nil {
			return err
		}
		_, err := tx.Enqueue("file", "default", []byte("x"))
		return err
	})
	if err := s.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: "i9"}); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveToDeadLetter("file", OutboxItem{Instance: "default", Seq: 1}, "r", 1); err != nil {
		t.Fatal(err)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{
		Path: s.Path(), FileSize: st.FileSize, SchemaVersion: SchemaVersion, Checkpoints: 1,
		Incidents:   map[string]int{"default": 1},
		Marks:       []MarkStat{{"default", "created", 2}},
		Outbox:      map[string]int{},
		OutboxLanes: map[string]map[string]int{},
		DeadLetters: map[string]int{"file": 1},
		Refetch:     1,
	}
	if !reflect.DeepEqual(st, want) {
		t.Errorf("Stats =\n%+v\nwant\n%+v", st, want)
	}
	if _, bolt := s.db.(*boltkv.DB); bolt && st.FileSize <= 0 {
		t.Errorf("FileSize = %d on a bbolt file", st.FileSize) // other engines have no file
	}
}

// TestReturnedSlicesAreCopies mutates everything handed out after its transaction ended, and
// everything handed in once the store no longer holds it (a sink state after the call; an event
// line and an incident document, which the engine keeps until the commit, after Update returned),
// then checks the stored data is intact.
func TestReturnedSlicesAreCopies(t *testing.T) {
	s := openTest(t)
	// Values well above bbolt's inline-bucket size, so reads point into the mmap rather than into
	// heap copies bbolt makes of small inline buckets.
	pad := strings.Repeat("p", 3000)
	wantIncident := `{"name":"n","pad":"` + pad + `"}`
	wantE1, wantE2 := `{"event_id":"e1","pad":"`+pad+`"}`, `{"event_id":"e2","pad":"`+pad+`"}`
	wantState := "state" + pad
	incident, event, state := []byte(wantIncident), []byte(wantE1), []byte(wantState)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "i1", Incident: incident}); err != nil {
			return err
		}
		if _, err := tx.Enqueue("file", "default", event); err != nil {
			return err
		}
		if _, err := tx.Enqueue("file", "default", []byte(wantE2)); err != nil {
			return err
		}
		if err := tx.PutSinkState("file", "k", state); err != nil {
			return err
		}
		// Caller reuses the buffer of a value the store copies before the commit.
		for i := range state {
			state[i] = 'X'
		}
		return nil
	})
	// And the buffers of the values it kept, once Update returned.
	for _, b := range [][]byte{incident, event} {
		for i := range b {
			b[i] = 'X'
		}
	}
	if err := s.MoveToDeadLetter("file", OutboxItem{Instance: "default", Seq: 2}, "r", 1); err != nil {
		t.Fatal(err)
	}
	var rec *IncidentRecord
	var st []byte
	mustView(t, s, func(tx *Tx) error {
		var err error
		if rec, _, err = tx.Incident("default", "i1"); err != nil {
			return err
		}
		st, err = tx.SinkState("file", "k")
		return err
	})
	items, err := s.Outbox("file", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	dls, err := s.DeadLetters("file", 0)
	if err != nil {
		t.Fatal(err)
	}
	// Write a lot so bbolt remaps and reuses pages the old slices could have pointed into.
	mustUpdate(t, s, func(tx *Tx) error {
		for i := range 2000 {
			if err := tx.PutMark("default", "created", fmt.Sprintf("filler-%d", i), t0); err != nil {
				return err
			}
		}
		return nil
	})
	for _, b := range [][]byte{rec.Incident, items[0].Data, dls[0].Data, st} {
		for i := range b {
			b[i] = 'Y'
		}
	}
	mustView(t, s, func(tx *Tx) error {
		rec, _, err := tx.Incident("default", "i1")
		if err != nil || string(rec.Incident) != wantIncident {
			t.Errorf("stored incident = %q, %v", rec.Incident, err)
		}
		if v, _ := tx.SinkState("file", "k"); string(v) != wantState {
			t.Errorf("stored sink state = %q", v)
		}
		return nil
	})
	items, _ = s.Outbox("file", 0, 0)
	if len(items) != 1 || string(items[0].Data) != wantE1 {
		t.Errorf("stored outbox = %+v", items)
	}
	dls, _ = s.DeadLetters("file", 0)
	if len(dls) != 1 || string(dls[0].Data) != wantE2 {
		t.Errorf("stored dead letter = %+v", dls)
	}
}

func seqs(items []OutboxItem) []uint64 {
	var out []uint64
	for _, it := range items {
		out = append(out, it.Seq)
	}
	return out
}

func ids(items []RefetchItem) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.IssueID)
	}
	return out
}

// TestConcurrentWritersAndDispatcher runs feed-like writers and a dispatcher-like reader/acker at
// once (run with -race); every event must be delivered exactly once and the depth end at zero.
func TestConcurrentWritersAndDispatcher(t *testing.T) {
	s := openTest(t)
	const writers, pages, perPage = 3, 20, 10
	total := writers * pages * perPage
	errs := make(chan error, writers)
	for w := range writers {
		go func() {
			for p := range pages {
				err := s.Update(func(tx *Tx) error {
					for i := range perPage {
						id := fmt.Sprintf("w%d-p%d-i%d", w, p, i)
						if err := tx.PutMark("default", fmt.Sprintf("feed%d", w), id, t0); err != nil {
							return err
						}
						if _, err := tx.Enqueue("file", "default", []byte(id)); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	seen := map[string]bool{}
	var last uint64
	deadline := time.Now().Add(30 * time.Second)
	for len(seen) < total && time.Now().Before(deadline) {
		select {
		case err := <-errs:
			if err != nil {
				t.Fatal(err)
			}
		default:
		}
		items, err := s.Outbox("file", last, 25)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 {
			time.Sleep(time.Millisecond) // poll; the deadline above is what bounds the test
			continue
		}
		var acks []uint64
		for _, it := range items {
			if seen[string(it.Data)] {
				t.Fatalf("event %s delivered twice", it.Data)
			}
			seen[string(it.Data)] = true
			acks = append(acks, it.Seq)
			last = it.Seq
		}
		if err := s.Ack("file", laneItems("default", acks...)...); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != total {
		t.Fatalf("delivered %d of %d events", len(seen), total)
	}
	if d, _ := s.OutboxDepth("file"); d != 0 {
		t.Errorf("OutboxDepth = %d, want 0", d)
	}
}

// An event line enqueued to two sinks reads back, from each outbox and from the dead letter, as the
// line it was.
func TestEventLineRoundTrip(t *testing.T) {
	s := openTest(t)
	line := []byte(`{"event_id":"e1","kind":"created","incident":{"name":"n","rawJSON":"` + strings.Repeat(`{\"id\":\"x\"}`, 400) + `"}}`)
	want := string(line)
	mustUpdate(t, s, func(tx *Tx) error {
		for _, sink := range []string{"file", "xsoar"} {
			if _, err := tx.Enqueue(sink, "default", line); err != nil {
				return err
			}
		}
		return nil
	})
	for _, sink := range []string{"file", "xsoar"} {
		items, err := s.Outbox(sink, 0, 0)
		if err != nil || len(items) != 1 || string(items[0].Data) != want {
			t.Fatalf("outbox of %s = %d items, %v; want the line", sink, len(items), err)
		}
	}
	if err := s.MoveToDeadLetter("xsoar", OutboxItem{Instance: "default", Seq: 1}, "HTTP 400", 1); err != nil {
		t.Fatal(err)
	}
	dls, err := s.DeadLetters("xsoar", 0)
	if err != nil || len(dls) != 1 || string(dls[0].Data) != want {
		t.Fatalf("dead letter = %+v, %v", dls, err)
	}
	if n, err := s.RequeueAllDeadLetters("xsoar"); err != nil || n != 1 {
		t.Fatalf("requeue = %d, %v", n, err)
	}
	if items, err := s.Outbox("xsoar", 0, 0); err != nil || len(items) != 1 || string(items[0].Data) != want {
		t.Fatalf("requeued outbox = %+v, %v", items, err)
	}
}

// A queued event line is the line it was, whatever happens to its incident before delivery: a newer
// version replacing it, the incident pruned, the event dead-lettered and requeued.
func TestEventLinesOutliveTheirIncident(t *testing.T) {
	s := openTest(t)
	created := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	closed := created.Add(time.Hour)
	put := func(doc string, closedAt *time.Time) {
		mustUpdate(t, s, func(tx *Tx) error {
			rec := &IncidentRecord{Instance: "default", IssueID: "i1", CreatedAt: created, Status: "OPEN",
				Incident: []byte(doc), ClosedAt: closedAt}
			if err := tx.PutIncident(rec); err != nil {
				return err
			}
			_, err := tx.Enqueue("file", "default", []byte(`{"event_id":"`+doc+`"}`))
			return err
		})
	}
	put(`{"v":1}`, nil)
	put(`{"v":2}`, &closed)
	mustUpdate(t, s, func(tx *Tx) error {
		n, err := tx.PruneClosedIncidents(closed.Add(48 * time.Hour))
		if n != 1 {
			return fmt.Errorf("pruned %d incidents, want 1 (%w)", n, err)
		}
		return err
	})
	if err := s.MoveToDeadLetter("file", OutboxItem{Instance: "default", Seq: 1}, "gave up", 3); err != nil {
		t.Fatal(err)
	}
	if n, err := s.RequeueAllDeadLetters("file"); err != nil || n != 1 {
		t.Fatalf("requeue: %d, %v", n, err)
	}
	items, err := s.Outbox("file", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, it := range items {
		got = append(got, string(it.Data))
	}
	if want := []string{`{"event_id":"{"v":2}"}`, `{"event_id":"{"v":1}"}`}; !slices.Equal(got, want) {
		t.Fatalf("outbox = %q, want %q", got, want)
	}
	checkConsistency(t, s)
}

// A damaged stored value is an error, never a panic or wrong data; a damaged S2 header declaring
// 4 GiB is refused before anything is allocated for it.
func TestDamagedValues(t *testing.T) {
	good := pack([]byte(`{"a":"` + strings.Repeat("b", 300) + `"}`))
	for n := 1; n < len(good); n++ {
		if out, err := unpack(good[:n]); err == nil {
			t.Fatalf("truncated to %d bytes: decoded %q without an error", n, out)
		}
	}
	for _, v := range [][]byte{nil, {}, {0x07, 'x'}, {codecS2}} {
		if _, err := unpack(v); err == nil {
			t.Errorf("unpack(%x) succeeded", v)
		}
	}
	for _, v := range [][]byte{nil, {codecS2, 'x'}, {0x02, 1, '{', 1, '}'}} {
		if _, err := outboxLine(v); err == nil {
			t.Errorf("outboxLine(%x) succeeded", v)
		}
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, err := unpack([]byte{codecS2, 0xff, 0xff, 0xff, 0xff, 0x0f, 0}); err == nil {
		t.Error("a value declaring 4 GiB was decoded")
	}
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
		t.Errorf("refusing the damaged value allocated %d bytes", grew)
	}
}

// TestAckDeletesExactlyTheGivenEvents: acknowledgements in any order, repeated, or of events already
// gone never touch a neighbour (Ack seeks each key; a missing one lands on the next event).
func TestAckDeletesExactlyTheGivenEvents(t *testing.T) {
	s := openTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		for i := 1; i <= 6; i++ {
			if _, err := tx.Enqueue("file", "default", []byte(fmt.Sprintf(`{"n":%d}`, i))); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.Ack("file", laneItems("default", 5, 2, 2, 0, 7)...); err != nil {
		t.Fatal(err)
	}
	if err := s.Ack("file", laneItems("default", 2, 5)...); err != nil { // gone: Seek lands on 3 and 6, which stay
		t.Fatal(err)
	}
	items, err := s.Outbox("file", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := seqs(items); !reflect.DeepEqual(got, []uint64{1, 3, 4, 6}) {
		t.Fatalf("outbox after acks = %v, want [1 3 4 6]", got)
	}
	if d, err := s.OutboxDepth("file"); err != nil || d != 4 {
		t.Fatalf("OutboxDepth = %d, %v; want 4", d, err)
	}
}

// TestIncidentLookupsAgainstTheTail: a lookup sees every write of its own transaction and of the
// ones before, whether the key lies above, at or below the index's tail, and in every instance.
func TestIncidentLookupsAgainstTheTail(t *testing.T) {
	s := openTest(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	put := func(tx *Tx, inst, id string, at time.Time) error {
		return tx.PutIncident(&IncidentRecord{Instance: inst, IssueID: id, CreatedAt: at, Status: "OPEN", Incident: []byte(`{}`)})
	}
	has := func(t *testing.T, tx *Tx, inst, id string, at time.Time, want bool) {
		t.Helper()
		got, err := tx.HasIncidentAt(inst, id, at)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("HasIncidentAt(%s, %s, %s) = %v, want %v", inst, id, at.Format(time.TimeOnly), got, want)
		}
		_, ok, err := tx.IncidentAt(inst, id, at)
		if err != nil || ok != want {
			t.Errorf("IncidentAt(%s, %s) found %v (%v), want %v", inst, id, ok, err, want)
		}
	}
	mustUpdate(t, s, func(tx *Tx) error {
		has(t, tx, "default", "a", t0, false) // empty index: the tail is known and empty
		if err := put(tx, "default", "a", t0); err != nil {
			return err
		}
		has(t, tx, "default", "a", t0, true) // raised by the put in the same transaction
		if err := put(tx, "default", "c", t0.Add(2*time.Hour)); err != nil {
			return err
		}
		has(t, tx, "default", "c", t0.Add(2*time.Hour), true)
		has(t, tx, "default", "b", t0.Add(time.Hour), false) // below the tail, looked up
		return put(tx, "zeta", "z", t0)                      // another instance sorts last
	})
	mustUpdate(t, s, func(tx *Tx) error {
		if err := put(tx, "default", "d", t0.Add(3*time.Hour)); err != nil { // before any lookup
			return err
		}
		has(t, tx, "default", "d", t0.Add(3*time.Hour), true)
		has(t, tx, "default", "a", t0, true)
		has(t, tx, "zeta", "z", t0, true)
		has(t, tx, "zeta", "y", t0.Add(time.Hour), false) // above the tail
		return nil
	})
	err := s.View(func(tx *Tx) error {
		has(t, tx, "default", "c", t0.Add(2*time.Hour), true)
		has(t, tx, "default", "e", t0.Add(4*time.Hour), false)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
