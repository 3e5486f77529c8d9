package store

import (
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// putOutboxV5 appends a value to sink's outbox as schema 5 did: keyed by the sequence number alone.
func putOutboxV5(tx *Tx, sink string, v []byte) (uint64, error) {
	b, err := tx.outboxBucket(sink)
	if err != nil {
		return 0, err
	}
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	tx.addCounter(outboxCounter(sink), 1)
	return seq, b.Put(seqKey(seq), v)
}

// deadLetterV5 moves schema-5 outbox entry seq of sink to its dead letters as schema 5 did: the
// value as it is, under a header that names no instance.
func deadLetterV5(tx *Tx, sink string, seq uint64, reason string) error {
	b, err := tx.outboxBucket(sink)
	if err != nil {
		return err
	}
	v := b.Get(seqKey(seq))
	if v == nil {
		return fmt.Errorf("no schema-5 outbox entry %d", seq)
	}
	dead, err := tx.deadBucket(sink, true)
	if err != nil {
		return err
	}
	hdr, _ := json.Marshal(map[string]any{"reason": reason, "failed_at": time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), "attempts": 1})
	if err := dead.Put(seqKey(seq), frame(hdr, append([]byte(nil), v...))); err != nil {
		return err
	}
	tx.addCounter(outboxCounter(sink), -1)
	tx.addCounter(deadCounter(sink), 1)
	return b.Delete(seqKey(seq))
}

// fillerV5 is how many events writeV5Store puts into the outbox of "file": enough for several
// migration batches.
const fillerV5 = 2*migrateBatch + 11

// writeV5Store writes a schema-5 store: fillerV5 events of instances a, b and c interleaved in
// "file" (every seventh of c, the rest alternating), a line that names no instance, and in "hook"
// two events of b, the first of them dead-lettered. It returns the lines of "file" in sequence order.
func writeV5Store(t *testing.T, path string) (file []string) {
	t.Helper()
	st := openAt(t, path)
	mustUpdate(t, st, func(tx *Tx) error {
		for i := range fillerV5 {
			inst := []string{"a", "b"}[i%2]
			if i%7 == 0 {
				inst = "c"
			}
			line := fmt.Sprintf(`{"event_id":"%s-%05d","kind":"created","instance":%q,"incident":{"name":"x"}}`, inst, i, inst)
			if _, err := putOutboxV5(tx, "file", raw([]byte(line))); err != nil {
				return err
			}
			file = append(file, line)
		}
		if _, err := putOutboxV5(tx, "file", raw([]byte(`{"event_id":"nameless"}`))); err != nil {
			return err
		}
		file = append(file, `{"event_id":"nameless"}`)
		for i := range 2 {
			line := fmt.Sprintf(`{"event_id":"hook-%d","instance":"b"}`, i)
			if _, err := putOutboxV5(tx, "hook", raw([]byte(line))); err != nil {
				return err
			}
		}
		if err := deadLetterV5(tx, "hook", 1, "HTTP 400"); err != nil {
			return err
		}
		return tx.ktx.Bucket(bucketMeta).Put(keySchema, []byte("5"))
	})
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return file
}

// TestMigrateFromSchema5ResumesAfterACrash opens a schema-5 store whose migration was interrupted
// after its first batch: the next Open finishes it, and every event is in its instance's lane, once,
// in its order, under its sequence number; the counters agree, the dead letter names its instance and
// returns to its lane.
func TestMigrateFromSchema5ResumesAfterACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v5.db")
	file := writeV5Store(t, path)
	if _, err := Open(path, Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only open of a schema-5 store succeeded")
	}

	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(startMigrationV5); err != nil {
		t.Fatal(err)
	}
	var done bool
	if err := db.Update(func(btx *bolt.Tx) error { done, err = migrateBatchV5(btx); return err }); err != nil {
		t.Fatal(err)
	}
	if done {
		t.Fatalf("%d outbox entries migrated in one batch of at most %d", len(file), migrateBatch)
	}
	// A batch that fails half-way leaves nothing behind: bbolt rolls it back.
	_ = db.Update(func(btx *bolt.Tx) error {
		if _, err := migrateBatchV5(btx); err != nil {
			return err
		}
		return fmt.Errorf("crash")
	})
	if err := db.Close(); err != nil { // the "crash": the rest never ran
		t.Fatal(err)
	}

	st := openAt(t, path)
	st.mustSchema(t, SchemaVersion)
	checkConsistency(t, st)
	items, err := st.Outbox("file", 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := lines(items); !slices.Equal(got, file) {
		t.Fatalf("outbox of file after the migration: %d lines, want %d in sequence order", len(got), len(file))
	}
	perLane := map[string]int{}
	for i, it := range items {
		if it.Seq != uint64(i+1) {
			t.Fatalf("item %d has seq %d, want %d", i, it.Seq, i+1)
		}
		if want := lineInstance(it.Data); it.Instance != want {
			t.Fatalf("item %d (%s) in lane %q, want %q", i, it.Data, it.Instance, want)
		}
		perLane[it.Instance]++
	}
	stats, err := st.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if got := stats.OutboxLanes["file"]; !maps.Equal(got, perLane) || got[laneUnknown] != 1 {
		t.Fatalf("lane depths %v, want %v", got, perLane)
	}
	if stats.Outbox["file"] != len(file) {
		t.Fatalf("OutboxDepth(file) = %d, want %d", stats.Outbox["file"], len(file))
	}
	dls, err := st.DeadLetters("hook", 0)
	if err != nil || len(dls) != 1 || dls[0].Instance != "b" || dls[0].Reason != "HTTP 400" {
		t.Fatalf("dead letters of hook = %+v, %v", dls, err)
	}
	if n, err := st.RequeueAllDeadLetters("hook"); err != nil || n != 1 {
		t.Fatalf("RequeueAllDeadLetters = %d, %v", n, err)
	}
	// New events continue the sequence, in their lanes.
	mustUpdate(t, st, func(tx *Tx) error {
		seq, err := tx.Enqueue("file", "a", []byte(`{"event_id":"after"}`))
		if err == nil && seq != uint64(len(file)+1) {
			t.Errorf("first seq after the migration = %d, want %d", seq, len(file)+1)
		}
		return err
	})
	hook, err := st.Outbox("hook", 0, 0)
	if err != nil || len(hook) != 2 || hook[0].Instance != "b" || hook[1].Instance != "b" || hook[1].Seq != 3 {
		t.Fatalf("outbox of hook after the requeue = %+v, %v", hook, err)
	}
	checkConsistency(t, st)
}

func TestLineInstance(t *testing.T) {
	for line, want := range map[string]string{
		`{"event_id":"e","kind":"created","instance":"tenant-1","incident":{"a":1}}`: "tenant-1",
		`{"incident":{"instance":"inner"},"instance":"outer"}`:                       "outer",
		`{"event_id":"e"}`:               laneUnknown,
		`{"instance":""}`:                laneUnknown,
		`{"instance":"a\u0000b"}`:        laneUnknown,
		`{"instance":7}`:                 laneUnknown,
		`not json`:                       laneUnknown,
		`{"event_id":"e","instance":"x"`: "x",
	} {
		if got := lineInstance([]byte(line)); got != want {
			t.Errorf("lineInstance(%s) = %q, want %q", line, got, want)
		}
	}
}

// After the migration from schema 5, the events the schema 5 FIFO held come out first and in
// sequence order, as schema 5 handed them out, even with newer events of one instance queued in
// between and across a restart with a batch in flight: a JSONL sink that wrote a batch and crashed
// before acknowledging it finds that batch at the head, so its restart check acknowledges exactly
// what it wrote. Fair dealing starts once they are gone.
func TestMigratedFIFOComesOutFirstInSequenceOrder(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v5.db")
	file := writeV5Store(t, path)
	st := openAt(t, path)
	mustUpdate(t, st, func(tx *Tx) error {
		for i := range 300 {
			if _, err := tx.Enqueue("file", "a", []byte(fmt.Sprintf(`{"event_id":"new-%03d"}`, i))); err != nil {
				return err
			}
		}
		return nil
	})
	var got []string
	for round := 0; len(got) < len(file); round++ {
		batch := mustNextBatch(t, st, "file", 500)
		if len(batch) == 0 {
			t.Fatalf("no batch after %d of %d migrated events", len(got), len(file))
		}
		if round == 1 {
			// A restart with this batch in flight: the same events, in the same order.
			if err := st.Close(); err != nil {
				t.Fatal(err)
			}
			st = openAt(t, path)
			again := mustNextBatch(t, st, "file", 500)
			if !slices.Equal(lines(again), lines(batch)) {
				t.Fatal("the batch in flight changed across a restart")
			}
		}
		for _, it := range batch {
			if len(got) < len(file) {
				got = append(got, string(it.Data))
			} else if !strings.HasPrefix(string(it.Data), `{"event_id":"new-`) {
				t.Fatalf("unexpected event %s after the migrated ones", it.Data)
			}
		}
		if err := st.Ack("file", batch...); err != nil {
			t.Fatal(err)
		}
	}
	if !slices.Equal(got, file) {
		t.Fatal("the migrated events did not come out first, in sequence order")
	}
	checkConsistency(t, st)
}
