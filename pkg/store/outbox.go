package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// Each sink has its own outbox, made of one FIFO per instance (a "lane"): the key is the instance,
// NUL and a per-sink sequence number that never repeats (not even after DropOutbox), so a lane's
// events lie together in the order they were committed. Every event of an issue belongs to one
// instance, so a lane keeps each issue's events in order, while the dispatcher takes turns across
// the lanes (NextBatch, outbox_batch.go): one tenant's backfill does not hold back another tenant's fresh
// events. Each value is the event line itself (codec.go; one written by schema 5 or 6, or one that
// is not a JSON object, is a codecRaw byte and the line).

// OutboxItem is one undelivered event.
type OutboxItem struct {
	Seq      uint64
	Instance string // the lane the event waits in: the instance it belongs to
	Data     []byte // the event's JSON line, a copy
}

// laneUnknown is the lane of events whose line names no instance: only lines written by hand or
// damaged can lack one, and the schema 5 → 6 migration must put them somewhere. It is no valid
// instance name (those start with a letter or digit).
const laneUnknown = "-"

// Enqueue appends an event line of instance to the tail of instance's lane in sink's
// outbox and returns its sequence number. The store keeps data itself when it is a JSON object (an
// event line is): the caller must leave it unchanged until the transaction ends. One line may be
// enqueued to several sinks.
func (tx *Tx) Enqueue(sink, instance string, data []byte) (uint64, error) {
	if err := checkName("sink", sink); err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
	}
	if err := checkName("instance", instance); err != nil {
		return 0, fmt.Errorf("enqueue to %s: %w", sink, err)
	}
	if len(data) == 0 {
		return 0, fmt.Errorf("enqueue to %s: empty event", sink)
	}
	if err := tx.writable(); err != nil {
		return 0, fmt.Errorf("enqueue to %s: %w", sink, err)
	}
	b, err := tx.outboxBucket(sink)
	if err != nil {
		return 0, fmt.Errorf("enqueue to %s: %w", sink, err)
	}
	seq, err := tx.append(b, sink, instance, stored(data))
	if err != nil {
		return 0, fmt.Errorf("enqueue to %s: %w", sink, err)
	}
	return seq, nil
}

// append stores a value (the store's own from now on: bbolt keeps the slice until the commit) at
// the tail of instance's lane.
func (tx *Tx) append(b kv.Bucket, sink, instance string, value []byte) (uint64, error) {
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := b.Put(outboxKey(instance, seq), value); err != nil {
		return 0, err
	}
	tx.addCounter(outboxCounter(sink), 1)
	tx.addCounter(laneCounter(sink, instance), 1)
	return seq, nil
}

// outboxBucket opens (creating if needed) the outbox of sink for writing. A re-created outbox resumes
// the sequence of the dropped one. The transaction keeps the buckets it opened, so that a page
// commit's thousands of events look their outbox up once (a name given to the engine escapes to the
// heap: a lookup per event would cost an allocation per event).
func (tx *Tx) outboxBucket(sink string) (kv.Bucket, error) {
	if b, ok := tx.outboxes[sink]; ok {
		return b, nil
	}
	parent, err := tx.bucket(bucketOutbox)
	if err != nil {
		return nil, err
	}
	b := parent.Bucket([]byte(sink))
	if b == nil {
		if b, err = parent.CreateBucket([]byte(sink)); err != nil {
			return nil, err
		}
		meta, err := tx.bucket(bucketMeta)
		if err != nil {
			return nil, err
		}
		if raw := meta.Get(outboxSeqKey(sink)); len(raw) == 8 {
			if err := b.SetSequence(binary.BigEndian.Uint64(raw)); err != nil {
				return nil, err
			}
		}
	}
	// Keys only ever grow at the tail of a lane, and one lane (a backfill) takes most of them:
	// pack pages full instead of half.
	setFill(b, 0.95)
	if tx.outboxes == nil {
		tx.outboxes = make(map[string]kv.Bucket, 2)
	}
	tx.outboxes[sink] = b
	return b, nil
}

// OutboxDepth returns how many events wait in sink's outbox, in O(1).
func (tx *Tx) OutboxDepth(sink string) (int, error) {
	n, err := tx.counter(outboxCounter(sink))
	if err != nil {
		return 0, fmt.Errorf("outbox depth of %s: %w", sink, err)
	}
	return n, nil
}

// DropOutbox deletes sink's outbox (the sink left the config) and returns how many events it held.
// The sink's dead letters and state are kept; its sequence resumes if the sink comes back.
func (tx *Tx) DropOutbox(sink string) (int, error) {
	if err := checkName("sink", sink); err != nil {
		return 0, fmt.Errorf("drop outbox: %w", err)
	}
	if err := tx.writable(); err != nil {
		return 0, fmt.Errorf("drop outbox of %s: %w", sink, err)
	}
	n, err := tx.dropOutbox(sink)
	if err != nil {
		return 0, fmt.Errorf("drop outbox of %s: %w", sink, err)
	}
	return n, nil
}

func (tx *Tx) dropOutbox(sink string) (int, error) {
	parent, err := tx.bucket(bucketOutbox)
	if err != nil {
		return 0, err
	}
	b := parent.Bucket([]byte(sink))
	if b == nil {
		return 0, nil
	}
	n, err := tx.counter(outboxCounter(sink))
	if err != nil {
		return 0, err
	}
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return 0, err
	}
	if err := meta.Put(outboxSeqKey(sink), seqKey(b.Sequence())); err != nil {
		return 0, err
	}
	if err := meta.Delete(batchPlanKey(sink)); err != nil {
		return 0, err
	}
	if err := meta.Delete(fifoThroughKey(sink)); err != nil {
		return 0, err
	}
	for _, lane := range lanes(b) {
		if err := tx.setCounter(laneCounter(sink, lane), 0); err != nil {
			return 0, err
		}
	}
	delete(tx.outboxes, sink)
	if err := parent.DeleteBucket([]byte(sink)); err != nil {
		return 0, err
	}
	return n, tx.setCounter(outboxCounter(sink), 0)
}

// OutboxSinks lists the sinks that have an outbox, in name order.
func (tx *Tx) OutboxSinks() ([]string, error) {
	parent, err := tx.bucket(bucketOutbox)
	if err != nil {
		return nil, fmt.Errorf("list outboxes: %w", err)
	}
	var out []string
	err = parent.ForEachBucket(func(k []byte) error {
		out = append(out, string(k))
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list outboxes: %w", err)
	}
	return out, nil
}

// MaxBatchBytes bounds the event data one outbox read returns (beyond its first event): a batch of
// large events must not cost a sink hundreds of megabytes.
const MaxBatchBytes = 8 << 20

// Outbox returns up to limit events of sink with a sequence number above afterSeq, in sequence
// (commit) order across all lanes (limit <= 0: all of them), stopping early once MaxBatchBytes of
// data are read. Each item's Data is a copy. It is the outbox as operators and tests look at it;
// the dispatcher delivers in NextBatch's order instead.
func (s *Store) Outbox(sink string, afterSeq uint64, limit int) ([]OutboxItem, error) {
	var out []OutboxItem
	err := s.View(func(tx *Tx) error {
		parent, err := tx.bucket(bucketOutbox)
		if err != nil {
			return err
		}
		b := parent.Bucket([]byte(sink))
		if b == nil || afterSeq == ^uint64(0) {
			return nil
		}
		// Merge the lanes: one cursor per lane at its first event after afterSeq.
		type head struct {
			c    kv.Cursor
			lane string
			k, v []byte
		}
		var heads []*head
		for _, lane := range lanes(b) {
			h := &head{c: b.Cursor(), lane: lane}
			h.k, h.v = h.c.Seek(outboxKey(lane, afterSeq+1))
			heads = append(heads, h)
		}
		size := 0
		for limit <= 0 || len(out) < limit {
			if len(out) > 0 && size >= MaxBatchBytes {
				break
			}
			var next *head
			var nextSeq uint64
			for _, h := range heads {
				if lane, seq, ok := splitOutboxKey(h.k); ok && lane == h.lane && (next == nil || seq < nextSeq) {
					next, nextSeq = h, seq
				}
			}
			if next == nil {
				break
			}
			line, err := outboxLine(next.v)
			if err != nil {
				return fmt.Errorf("outbox %s item %d: %w", sink, nextSeq, err)
			}
			size += len(line)
			out = append(out, OutboxItem{Seq: nextSeq, Instance: next.lane, Data: line})
			next.k, next.v = next.c.Next()
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox of %s: %w", sink, err)
	}
	return out, nil
}

// outboxLine returns (a copy of) the event line an outbox value holds.
func outboxLine(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != plainJSON && v[0] != codecRaw {
		return nil, errors.New("not an event line (an outbox value of an older schema?)")
	}
	return unpack(v)
}

// Ack deletes delivered events (named by their Instance and Seq) from sink's outbox; events no
// longer there are ignored.
func (s *Store) Ack(sink string, items ...OutboxItem) error {
	if len(items) == 0 {
		return nil
	}
	err := s.Update(func(tx *Tx) error {
		parent, err := tx.bucket(bucketOutbox)
		if err != nil {
			return err
		}
		b := parent.Bucket([]byte(sink))
		if b == nil {
			return nil
		}
		removed := 0
		// One cursor descent per event (Get and then Delete would make two, each with a cursor of
		// its own); Seek starts from the root every time, so deleting under the cursor is safe.
		c := b.Cursor()
		var key []byte
		for _, it := range items {
			key = appendOutboxKey(key[:0], it.Instance, it.Seq)
			k, v := c.Seek(key)
			if k == nil || !bytes.Equal(k, key) || v == nil {
				continue
			}
			if err := c.Delete(); err != nil {
				return err
			}
			tx.addCounter(laneCounter(sink, it.Instance), -1)
			removed++
		}
		tx.addCounter(outboxCounter(sink), -int64(removed))
		return nil
	})
	if err != nil {
		return fmt.Errorf("ack %d events of %s: %w", len(items), sink, err)
	}
	return nil
}

// OutboxDepth returns how many events wait in sink's outbox, in O(1).
func (s *Store) OutboxDepth(sink string) (int, error) {
	var n int
	err := s.View(func(tx *Tx) error {
		var err error
		n, err = tx.OutboxDepth(sink)
		return err
	})
	return n, err
}

// OutboxLoads returns how many events wait in sink's outbox in all and, for every instance with
// any, how many of them are its own (its lane): one read of the sink's counters.
func (s *Store) OutboxLoads(sink string) (total int, lanes map[string]int, err error) {
	lanes = map[string]int{}
	err = s.View(func(tx *Tx) error {
		var err error
		if total, err = tx.OutboxDepth(sink); err != nil {
			return err
		}
		b, err := tx.bucket(bucketCounters)
		if err != nil {
			return err
		}
		prefix := []byte(laneCounter(sink, ""))
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(v) != 8 {
				continue
			}
			if n := int64(binary.BigEndian.Uint64(v)); n > 0 {
				lanes[string(k[len(prefix):])] = int(n)
			}
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("outbox load of %s: %w", sink, err)
	}
	return total, lanes, nil
}

// outboxKey is the key of event seq in lane instance: instance, NUL, big-endian seq.
func outboxKey(instance string, seq uint64) []byte {
	return appendOutboxKey(make([]byte, 0, len(instance)+9), instance, seq)
}

func appendOutboxKey(dst []byte, instance string, seq uint64) []byte {
	dst = append(append(dst, instance...), sep)
	return binary.BigEndian.AppendUint64(dst, seq)
}

// splitOutboxKey splits an outbox key into its lane and sequence number.
func splitOutboxKey(k []byte) (lane string, seq uint64, ok bool) {
	n := len(k) - 9
	if n < 1 || k[n] != sep {
		return "", 0, false
	}
	return string(k[:n]), binary.BigEndian.Uint64(k[n+1:]), true
}

// lanes lists the lanes of an outbox that hold events, in name order: one cursor descent per lane
// (each Seek skips the rest of the lane), whatever their lengths.
func lanes(b kv.Bucket) []string {
	var out []string
	c := b.Cursor()
	for k, _ := c.First(); k != nil; {
		lane, _, ok := splitOutboxKey(k)
		if !ok {
			k, _ = c.Next() // not an outbox key of this schema: never written, but never a loop
			continue
		}
		out = append(out, lane)
		k, _ = c.Seek(append([]byte(lane), sep+1)) // the first key past the lane
	}
	return out
}

func outboxCounter(sink string) string         { return "outbox\x00" + sink }
func laneCounter(sink, instance string) string { return "outbox\x00" + sink + "\x00" + instance }
func deadCounter(sink string) string           { return "dead\x00" + sink }
func outboxSeqKey(sink string) []byte          { return append([]byte("outbox_seq\x00"), sink...) }
func batchPlanKey(sink string) []byte          { return append([]byte("outbox_batch\x00"), sink...) }
func fifoThroughKey(sink string) []byte        { return append([]byte("outbox_fifo\x00"), sink...) }

// nonNil turns nil into an empty slice so that a stored empty value reads back as non-nil.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
