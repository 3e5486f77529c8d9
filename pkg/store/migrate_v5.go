package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	bolt "go.etcd.io/bbolt"
)

// Schema 5 → 6 migration. Schema 5 kept each sink's outbox as one FIFO keyed by the per-sink
// sequence number; schema 6 keeps one FIFO (lane) per instance in the same bucket, keyed by the
// instance, NUL and the sequence number (outbox.go), counts each lane, and names the instance in
// each dead letter's header so that a requeued event returns to its lane.
//
// The migration moves every outbox entry to its lane, the instance read from the event line
// (laneUnknown when the line names none), at most migrateBatch entries per transaction. A schema 5
// key is 8 bytes and begins with a zero byte (sequence numbers stay far below 2^56), a schema 6 key
// begins with an instance name, which never holds a zero byte: the old keys are the first of their
// bucket, and what is left of them is what is left to do, so an interrupted migration resumes where
// its last transaction committed with no record of its position. Dead letters keep their keys; their
// headers are rewritten by migrateArea (migrate_v4.go), which records its position in the bucket
// bucketMigrateV5. The last batch drops that bucket and records schema 6. Sequence numbers and
// the sinks' totals are untouched: every entry stays, under a new key.

// bucketMigrateV5 exists while the migration runs and records how far the dead letters got.
var bucketMigrateV5 = []byte("migrate_v5")

// schemaV6 is the schema this migration leads to.
const schemaV6 = 6

// startMigrationV5 starts the migration; it is a no-op when it has already started. It first
// records, for each outbox holding events, the last sequence number of its schema 5 FIFO
// (fifoThroughKey): the dispatcher hands those events out in sequence order, as schema 5 did,
// before it deals fair batches (outbox_batch.go). A JSONL sink that wrote a batch and crashed
// before acknowledging it finds that batch at the head again, whatever lanes the events now sit
// in, and its restart check (acknowledge up to its file's last line) stays right.
func startMigrationV5(btx *bolt.Tx) error {
	if btx.Bucket(bucketMigrateV5) == nil {
		if outbox, meta := btx.Bucket(bucketOutbox), btx.Bucket(bucketMeta); outbox != nil && meta != nil {
			for _, sink := range bucketNames(outbox) {
				c := outbox.Bucket(sink).Cursor()
				c.Seek([]byte{1}) // schema 5 keys begin with a zero byte: the last of them is just before
				k, _ := c.Prev()
				if len(k) != 8 || k[0] != 0 {
					continue
				}
				if err := meta.Put(fifoThroughKey(string(sink)), append([]byte(nil), k...)); err != nil {
					return fmt.Errorf("migrate to schema %d: %w", schemaV6, err)
				}
			}
		}
	}
	if _, err := btx.CreateBucketIfNotExists(bucketMigrateV5); err != nil {
		return fmt.Errorf("migrate to schema %d: %w", schemaV6, err)
	}
	return nil
}

// migrateBatchV5 migrates up to migrateBatch entries. done reports that the migration has finished.
func migrateBatchV5(btx *bolt.Tx) (done bool, err error) {
	holder := btx.Bucket(bucketMigrateV5)
	if holder == nil {
		return true, nil
	}
	finished, err := migrateBatchV5Areas(btx, holder)
	if err != nil || !finished {
		return false, wrapMigrateV5(err)
	}
	if err := btx.DeleteBucket(bucketMigrateV5); err != nil {
		return false, wrapMigrateV5(err)
	}
	if err := btx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(schemaV6))); err != nil {
		return false, wrapMigrateV5(err)
	}
	return true, nil
}

func wrapMigrateV5(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("migrate to schema %d: %w", schemaV6, err)
}

// migrateBatchV5Areas moves outbox entries to their lanes, then rewrites dead letters, within one
// batch's budget; finished reports that nothing is left.
func migrateBatchV5Areas(btx *bolt.Tx, holder *bolt.Bucket) (finished bool, err error) {
	outbox, dead, counters := btx.Bucket(bucketOutbox), btx.Bucket(bucketDead), btx.Bucket(bucketCounters)
	if outbox == nil || dead == nil || counters == nil {
		return false, errors.New("a bucket is missing")
	}
	budget := migrateBatch
	for _, sink := range bucketNames(outbox) {
		moved, finished, err := laneOutboxV5(outbox.Bucket(sink), counters, string(sink), budget)
		if err != nil {
			return false, fmt.Errorf("outbox/%s: %w", sink, err)
		}
		if budget -= moved; !finished || budget <= 0 {
			return false, nil
		}
	}
	for _, sink := range bucketNames(dead) {
		a := migrationArea{name: "dead/" + string(sink), bucket: dead.Bucket(sink), convert: deadLetterV6, fill: 0.95}
		walked, finished, err := migrateArea(holder, a, budget)
		if err != nil {
			return false, fmt.Errorf("%s: %w", a.name, err)
		}
		if budget -= walked; !finished || budget <= 0 {
			return false, nil
		}
	}
	return true, nil
}

// bucketNames lists the nested buckets of parent (copies: the caller writes to them next).
func bucketNames(parent *bolt.Bucket) [][]byte {
	var out [][]byte
	_ = parent.ForEachBucket(func(k []byte) error {
		out = append(out, bytes.Clone(k))
		return nil
	})
	return out
}

// isOutboxKeyV5 tells a schema 5 outbox key (see above).
func isOutboxKeyV5(k []byte) bool { return len(k) == 8 && k[0] == 0 }

// laneOutboxV5 moves up to budget schema 5 entries of one outbox to their lanes and adds them to
// the lanes' counters. finished reports that none is left.
func laneOutboxV5(b, counters *bolt.Bucket, sink string, budget int) (moved int, finished bool, err error) {
	type move struct {
		old, key, value []byte
	}
	var moves []move
	perLane := map[string]int64{}
	c := b.Cursor()
	k, v := c.First()
	for ; k != nil && isOutboxKeyV5(k) && len(moves) < budget; k, v = c.Next() {
		line, err := outboxLine(v)
		if err != nil {
			return 0, false, fmt.Errorf("item %d: %w", binary.BigEndian.Uint64(k), err)
		}
		lane := lineInstance(line)
		moves = append(moves, move{bytes.Clone(k), outboxKey(lane, binary.BigEndian.Uint64(k)), bytes.Clone(v)})
		perLane[lane]++
	}
	finished = k == nil || !isOutboxKeyV5(k)
	// A cursor does not survive writes to its bucket: the moves come after the walk.
	b.FillPercent = 0.95
	for _, m := range moves {
		if err := b.Put(m.key, m.value); err != nil {
			return 0, false, err
		}
		if err := b.Delete(m.old); err != nil {
			return 0, false, err
		}
	}
	for lane, n := range perLane {
		key := []byte(laneCounter(sink, lane))
		if raw := counters.Get(key); len(raw) == 8 {
			n += int64(binary.BigEndian.Uint64(raw))
		}
		if err := counters.Put(key, binary.BigEndian.AppendUint64(nil, uint64(n))); err != nil {
			return 0, false, err
		}
	}
	return len(moves), finished, nil
}

// deadLetterV6 returns a dead letter whose header names its instance, nil when it does already.
func deadLetterV6(v []byte) ([]byte, error) {
	hdr, payload, err := unframe(v)
	if err != nil {
		return nil, err
	}
	var h deadHeader
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, err
	}
	if h.Instance != "" {
		return nil, nil
	}
	line, err := outboxLine(payload)
	if err != nil {
		return nil, err
	}
	h.Instance = lineInstance(line)
	if hdr, err = json.Marshal(h); err != nil {
		return nil, err
	}
	return frame(hdr, payload), nil
}

// lineInstance reads the "instance" of an event line (DESIGN.md §6), laneUnknown when it has none
// usable. The field comes before the incident, so the decoder stops long before the line's end.
func lineInstance(line []byte) string {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return laneUnknown
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return laneUnknown
		}
		if key, _ := t.(string); key == "instance" {
			var inst string
			if err := dec.Decode(&inst); err != nil || checkName("instance", inst) != nil {
				return laneUnknown
			}
			return inst
		}
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return laneUnknown
		}
	}
	return laneUnknown
}
