package store

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// laneItems names events of one lane for Ack and MoveToDeadLetter.
func laneItems(instance string, seqs ...uint64) []OutboxItem {
	out := make([]OutboxItem, len(seqs))
	for i, seq := range seqs {
		out[i] = OutboxItem{Instance: instance, Seq: seq}
	}
	return out
}

// enqueueLanes enqueues, in one transaction per call, n events of each instance in turn order
// ("a3" is a's third event), and returns nothing: tests read them back by their lines.
func enqueueLanes(t *testing.T, s *Store, sink, instance string, from, n int) {
	t.Helper()
	mustUpdate(t, s, func(tx *Tx) error {
		for i := from; i < from+n; i++ {
			if _, err := tx.Enqueue(sink, instance, []byte(fmt.Sprintf("%s%d", instance, i))); err != nil {
				return err
			}
		}
		return nil
	})
}

func lines(items []OutboxItem) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = string(it.Data)
	}
	return out
}

func mustNextBatch(t *testing.T, s *Store, sink string, limit int) []OutboxItem {
	t.Helper()
	items, err := s.NextBatch(sink, limit)
	if err != nil {
		t.Fatal(err)
	}
	return items
}

// A batch is dealt round-robin from the instances' lanes, each giving an equal share of the limit
// and the rest going to those with more; the batch in flight comes back, in the same order, until
// every event of it is acknowledged or dead-lettered; the next batch's turn starts one lane on.
func TestNextBatchDealsRoundRobinAndKeepsTheBatchInFlight(t *testing.T) {
	s := openTest(t)
	enqueueLanes(t, s, "file", "a", 1, 10)
	enqueueLanes(t, s, "file", "b", 1, 3)
	enqueueLanes(t, s, "file", "c", 1, 1)

	want := []string{"a1", "b1", "c1", "a2", "b2", "a3"}
	batch := mustNextBatch(t, s, "file", 6)
	if got := lines(batch); !slices.Equal(got, want) {
		t.Fatalf("first batch %q, want %q", got, want)
	}
	// Not acknowledged: the same batch again, even with a new instance's event committed since.
	enqueueLanes(t, s, "file", "0new", 1, 1)
	if got := lines(mustNextBatch(t, s, "file", 6)); !slices.Equal(got, want) {
		t.Fatalf("batch in flight read again: %q, want %q", got, want)
	}
	// Its first two delivered: the rest, in the same order (b2 still before a3).
	if err := s.Ack("file", batch[:2]...); err != nil {
		t.Fatal(err)
	}
	batch = mustNextBatch(t, s, "file", 6)
	if got := lines(batch); !slices.Equal(got, want[2:]) {
		t.Fatalf("after acknowledging two: %q, want %q", got, want[2:])
	}
	// The head dead-lettered, then the rest delivered.
	if err := s.MoveToDeadLetter("file", batch[0], "HTTP 400", 1); err != nil {
		t.Fatal(err)
	}
	batch = mustNextBatch(t, s, "file", 6)
	if got := lines(batch); !slices.Equal(got, want[3:]) {
		t.Fatalf("after the dead letter: %q, want %q", got, want[3:])
	}
	if err := s.Ack("file", batch...); err != nil {
		t.Fatal(err)
	}
	// The next turn starts after a (the first lane of the last one): b, then the newcomer, then a.
	want = []string{"b3", "0new1", "a4", "a5", "a6", "a7"}
	if got := lines(mustNextBatch(t, s, "file", 6)); !slices.Equal(got, want) {
		t.Fatalf("second batch %q, want %q", got, want)
	}
	dls, err := s.DeadLetters("file", 0)
	if err != nil || len(dls) != 1 || dls[0].Instance != "c" {
		t.Fatalf("dead letters %+v, %v; want c1 of instance c", dls, err)
	}
}

// Draining an outbox batch by batch delivers every event once, each instance's in commit order,
// and a newcomer's event is never behind another instance's backlog.
func TestNextBatchDrainsFairlyInLaneOrder(t *testing.T) {
	s := openTest(t)
	enqueueLanes(t, s, "file", "big", 0, 5000)
	enqueueLanes(t, s, "file", "small", 0, 1)
	seen := map[string]bool{}
	next := map[string]int{}
	for batches := 0; ; batches++ {
		batch := mustNextBatch(t, s, "file", 500)
		if len(batch) == 0 {
			break
		}
		if len(batch) > 500 {
			t.Fatalf("batch of %d events, limit 500", len(batch))
		}
		for pos, it := range batch {
			line := string(it.Data)
			if seen[line] {
				t.Fatalf("%s delivered twice", line)
			}
			seen[line] = true
			if want := fmt.Sprintf("%s%d", it.Instance, next[it.Instance]); line != want {
				t.Fatalf("batch %d: %s out of its instance's order (want %s)", batches, line, want)
			}
			next[it.Instance]++
			if it.Instance == "small" && (batches > 0 || pos > 1) {
				t.Errorf("small's event delivered at position %d of batch %d, behind big's backlog", pos, batches)
			}
		}
		if err := s.Ack("file", batch...); err != nil {
			t.Fatal(err)
		}
	}
	if len(seen) != 5001 {
		t.Fatalf("%d events delivered, want 5001", len(seen))
	}
	if d, err := s.OutboxDepth("file"); err != nil || d != 0 {
		t.Fatalf("OutboxDepth = %d, %v; want 0", d, err)
	}
}

// The batch in flight is durable: after a restart the dispatcher is handed the same events in the
// same order, though another instance committed events in between (the JSONL sink's reconciliation
// after a crash between its write and the acknowledgement depends on it).
func TestNextBatchInFlightSurvivesRestart(t *testing.T) {
	s := openTest(t)
	enqueueLanes(t, s, "file", "m", 0, 4)
	enqueueLanes(t, s, "file", "z", 0, 4)
	before := lines(mustNextBatch(t, s, "file", 5))
	enqueueLanes(t, s, "file", "a", 0, 3) // would come first in a new deal
	s = reopen(t, s)
	if after := lines(mustNextBatch(t, s, "file", 5)); !slices.Equal(after, before) {
		t.Fatalf("batch after restart %q, before %q", after, before)
	}
}

// Per-instance depths are counted in O(1) and show in Stats; dropping the outbox clears them, and
// the lane of a requeued dead letter is its instance's.
func TestOutboxLaneDepths(t *testing.T) {
	s := openTest(t)
	enqueueLanes(t, s, "file", "a", 0, 3)
	enqueueLanes(t, s, "file", "b", 0, 2)
	enqueueLanes(t, s, "hook", "b", 0, 1)
	if err := s.MoveToDeadLetter("file", OutboxItem{Instance: "a", Seq: 1}, "x", 1); err != nil {
		t.Fatal(err)
	}
	if err := s.MoveToDeadLetter("file", OutboxItem{Instance: "b", Seq: 1}, "x", 1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("dead-lettering seq 1 in the wrong lane: %v, want ErrNotFound", err)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := st.OutboxLanes; got["file"]["a"] != 2 || got["file"]["b"] != 2 || got["hook"]["b"] != 1 || len(got["hook"]) != 1 {
		t.Fatalf("OutboxLanes = %v", got)
	}
	if n, err := s.RequeueAllDeadLetters("file"); err != nil || n != 1 {
		t.Fatalf("RequeueAllDeadLetters = %d, %v", n, err)
	}
	items, err := s.Outbox("file", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := lines(items), []string{"a1", "a2", "b0", "b1", "a0"}; !slices.Equal(got, want) || items[4].Instance != "a" {
		t.Fatalf("outbox after the requeue %q (last of %q), want %q", got, items[4].Instance, want)
	}
	mustUpdate(t, s, func(tx *Tx) error {
		n, err := tx.DropOutbox("file")
		if err != nil || n != 5 {
			t.Errorf("DropOutbox = %d, %v; want 5", n, err)
		}
		return err
	})
	if st, _ = s.Stats(); len(st.OutboxLanes["file"]) != 0 {
		t.Fatalf("OutboxLanes of a dropped outbox = %v", st.OutboxLanes["file"])
	}
	if batch := mustNextBatch(t, s, "file", 10); len(batch) != 0 {
		t.Fatalf("batch of a dropped outbox: %q", lines(batch))
	}
	mustUpdate(t, s, func(tx *Tx) error {
		if _, err := tx.Enqueue("file", "", []byte("x")); err == nil || !strings.Contains(err.Error(), "instance") {
			t.Errorf("Enqueue without an instance: %v", err)
		}
		return nil
	})
}

// A batch is bounded in bytes like any outbox read, and still holds at least one event.
func TestNextBatchIsBoundedInBytes(t *testing.T) {
	s := openTest(t)
	big := strings.Repeat("x", 3<<20)
	mustUpdate(t, s, func(tx *Tx) error {
		for _, inst := range []string{"a", "b", "c", "d"} {
			if _, err := tx.Enqueue("s", inst, []byte(inst+big)); err != nil {
				return err
			}
		}
		return nil
	})
	batch := mustNextBatch(t, s, "s", 500)
	if got := lines(batch); len(got) != 3 || got[0][0] != 'a' || got[2][0] != 'c' {
		t.Fatalf("batch of %d events; want a, b and c (8 MiB reached with the third)", len(got))
	}
	if err := s.Ack("s", batch...); err != nil {
		t.Fatal(err)
	}
	if got := lines(mustNextBatch(t, s, "s", 500)); len(got) != 1 || got[0][0] != 'd' {
		t.Fatalf("second batch of %d events; want d", len(got))
	}
}

// With more than maxLanesPerBatch instances waiting, a batch draws from maxLanesPerBatch of them
// (so its acknowledgement touches a few ranges of the outbox, not one per event) and the next
// batches from the following ones: every instance is served within ⌈lanes ÷ maxLanesPerBatch⌉
// batches, each in its own order, each event once.
func TestNextBatchDrawsFromFewLanesWhenManyWait(t *testing.T) {
	s := openTest(t)
	const lanesN, per = 40, 50
	for i := 0; i < lanesN; i++ {
		enqueueLanes(t, s, "file", fmt.Sprintf("t%02d", i), 0, per)
	}
	firstServed := map[string]int{}
	next := map[string]int{}
	delivered := 0
	for batches := 0; ; batches++ {
		batch := mustNextBatch(t, s, "file", 500)
		if len(batch) == 0 {
			break
		}
		drawn := map[string]bool{}
		for _, it := range batch {
			drawn[it.Instance] = true
			if want := fmt.Sprintf("%s%d", it.Instance, next[it.Instance]); string(it.Data) != want {
				t.Fatalf("batch %d: %s out of its instance's order (want %s)", batches, it.Data, want)
			}
			next[it.Instance]++
			if _, ok := firstServed[it.Instance]; !ok {
				firstServed[it.Instance] = batches
			}
		}
		if len(drawn) > maxLanesPerBatch {
			t.Fatalf("batch %d drew from %d instances, more than %d", batches, len(drawn), maxLanesPerBatch)
		}
		delivered += len(batch)
		if err := s.Ack("file", batch...); err != nil {
			t.Fatal(err)
		}
	}
	if delivered != lanesN*per {
		t.Fatalf("%d events delivered, want %d", delivered, lanesN*per)
	}
	wantBy := (lanesN + maxLanesPerBatch - 1) / maxLanesPerBatch
	for i := 0; i < lanesN; i++ {
		name := fmt.Sprintf("t%02d", i)
		if b, ok := firstServed[name]; !ok || b >= wantBy {
			t.Errorf("%s first served in batch %d, want within the first %d", name, b, wantBy)
		}
	}
}

// turn lists the lanes with events in turn order, from the lane after the mark, wrapping around,
// and stops at n.
func TestTurn(t *testing.T) {
	s := openTest(t)
	for _, lane := range []string{"a", "b", "c", "d", "e"} {
		enqueueLanes(t, s, "file", lane, 0, 2)
	}
	tests := []struct {
		after string
		n     int
		want  []string
		more  bool
	}{
		{"", 2, []string{"a", "b"}, true},
		{"", 10, []string{"a", "b", "c", "d", "e"}, false},
		{"b", 2, []string{"c", "d"}, true},
		{"d", 10, []string{"e", "a", "b", "c", "d"}, false},
		{"e", 10, []string{"a", "b", "c", "d", "e"}, false},
		{"zz", 3, []string{"a", "b", "c"}, true},
		{"0", 10, []string{"a", "b", "c", "d", "e"}, false},
		{"bb", 10, []string{"c", "d", "e", "a", "b"}, false}, // a mark whose lane has no events left
	}
	for _, tt := range tests {
		var ring []string
		var more bool
		if err := s.View(func(tx *Tx) error {
			parent, err := tx.bucket(bucketOutbox)
			if err != nil {
				return err
			}
			ring, more = turn(parent.Bucket([]byte("file")), tt.after, tt.n)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ring, tt.want) || more != tt.more {
			t.Errorf("turn(after %q, %d) = %v, %v; want %v, %v", tt.after, tt.n, ring, more, tt.want, tt.more)
		}
	}
}
