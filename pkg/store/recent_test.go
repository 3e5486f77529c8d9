package store

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"
)

// keptCommit commits n events by reference to sinks, with KeepLines over buffers it returns (the
// caller's, as the feed's page buffers are), and counts releases.
func keptCommit(t *testing.T, s *Store, from, n int, released *int, sinks ...string) (jsonBuf, arena []byte) {
	t.Helper()
	jsonBuf = make([]byte, 0, 4096)
	arena = make([]byte, 0, 4096)
	mustUpdate(t, s, func(tx *Tx) error {
		for i := from; i < from+n; i++ {
			start := len(jsonBuf)
			jsonBuf = fmt.Appendf(jsonBuf, `{"n":%d,"pad":"%0100d"}`, i, i)
			doc := jsonBuf[start:len(jsonBuf):len(jsonBuf)]
			rec := &IncidentRecord{Instance: "default", IssueID: fmt.Sprintf("i%d", i), CreatedAt: refCreated.Add(time.Duration(i) * time.Second),
				Status: "OPEN", Incident: doc, PackedIncident: AppendPackedIncident(nil, doc), Version: 1}
			prefix := []byte(fmt.Sprintf(`{"event_id":"e%d","incident":`, i))
			if err := tx.PutIncidentAndEnqueue(rec, sinks, prefix, []byte("}"), &arena); err != nil {
				return err
			}
		}
		tx.KeepLines(func() { *released++ })
		return nil
	})
	return jsonBuf, arena
}

func wantLines(from, n int) []string {
	var out []string
	for i := from; i < from+n; i++ {
		out = append(out, fmt.Sprintf(`{"event_id":"e%d","incident":{"n":%d,"pad":"%0100d"}}`, i, i, i))
	}
	return out
}

func readLines(t *testing.T, s *Store, sink string) []string {
	t.Helper()
	items, err := s.Outbox(sink, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, it := range items {
		out = append(out, string(it.Data))
	}
	return out
}

// Lines kept by KeepLines are served once per sink, then released; whatever the caller does with its
// buffers afterwards, reads come from the store and are the same lines.
func TestKeptLinesServeEachSinkOnce(t *testing.T) {
	s := openTest(t)
	released := 0
	jsonBuf, arena := keptCommit(t, s, 0, 5, &released, "file", "hook")
	want := wantLines(0, 5)
	if got := readLines(t, s, "file"); !reflect.DeepEqual(got, want) {
		t.Fatalf("file lines %q, want %q", got, want)
	}
	if released != 0 {
		t.Fatal("released before every sink read its lines")
	}
	if got := readLines(t, s, "hook"); !reflect.DeepEqual(got, want) {
		t.Fatalf("hook lines %q, want %q", got, want)
	}
	if released != 1 {
		t.Fatalf("released %d times once every sink read its lines, want 1", released)
	}
	// The caller reuses its buffers: reads now come from the store.
	for i := range jsonBuf {
		jsonBuf[i] = 'X'
	}
	for i := range arena {
		arena[i] = 'X'
	}
	for _, sink := range []string{"file", "hook"} {
		if got := readLines(t, s, sink); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s lines after the buffers changed %q, want %q", sink, got, want)
		}
	}
}

// A transaction that does not commit releases at once; the cache keeps at most maxRecentCommits
// commits, releasing the oldest, and closing the store releases the rest.
func TestKeptLinesAreReleased(t *testing.T) {
	s := openTest(t)
	released := 0
	err := s.Update(func(tx *Tx) error {
		tx.KeepLines(func() { released++ })
		return errors.New("no")
	})
	if err == nil || released != 1 {
		t.Fatalf("failed transaction: err %v, released %d, want an error and 1", err, released)
	}

	released = 0
	for c := 0; c < maxRecentCommits+2; c++ {
		keptCommit(t, s, c*3, 3, &released, "file")
	}
	if released != 2 {
		t.Fatalf("released %d commits of %d, want the 2 oldest", released, maxRecentCommits+2)
	}
	if got, want := readLines(t, s, "file"), wantLines(0, 3*(maxRecentCommits+2)); !reflect.DeepEqual(got, want) {
		t.Fatalf("lines %q, want %q", got, want)
	}
	if released != maxRecentCommits+2 {
		t.Fatalf("released %d after every line was read, want %d", released, maxRecentCommits+2)
	}
	keptCommit(t, s, 100, 2, &released, "file")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if released != maxRecentCommits+3 {
		t.Fatalf("released %d after Close, want %d", released, maxRecentCommits+3)
	}
}

// Two KeepLines calls in one transaction both get their release; a commit kept past maxRecentAge is
// dropped by the next settle; a transaction that ends after Close began hands its lines back at once.
func TestKeptLinesEdgeCases(t *testing.T) {
	clock := refCreated
	s := openWith(t, t.TempDir()+"/s.db", Options{NoSync: true, Now: func() time.Time { return clock }})
	first, second := 0, 0
	mustUpdate(t, s, func(tx *Tx) error {
		tx.KeepLines(func() { first++ })
		tx.KeepLines(func() { second++ })
		return nil
	})
	if first != 1 || second != 1 {
		t.Fatalf("releases %d and %d, want 1 each (nothing kept without lines)", first, second)
	}

	old := 0
	keptCommit(t, s, 0, 2, &old, "file")
	clock = clock.Add(maxRecentAge + time.Second)
	mustUpdate(t, s, func(tx *Tx) error { tx.KeepLines(func() {}); return nil })
	if old != 1 {
		t.Fatalf("a commit kept past maxRecentAge was released %d times by the next settle, want 1", old)
	}

	s.recent.dropAll()
	late := 0
	keptCommit(t, s, 10, 2, &late, "file")
	if late != 1 {
		t.Fatalf("a commit after Close began was released %d times, want 1 (at once)", late)
	}
}
