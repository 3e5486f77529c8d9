package store

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Each sink has its own outbox: a FIFO of event JSON lines keyed by a per-sink sequence number that
// never repeats (not even after DropOutbox), so a sink may remember "delivered up to seq N".

// OutboxItem is one undelivered event.
type OutboxItem struct {
	Seq  uint64
	Data []byte // the event's JSON line, a copy
}

// Enqueue appends an event line (copied) to sink's outbox and returns its sequence number.
func (tx *Tx) Enqueue(sink string, data []byte) (uint64, error) {
	if err := checkName("sink", sink); err != nil {
		return 0, fmt.Errorf("enqueue: %w", err)
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
	seq, err := tx.append(b, sink, raw(data))
	if err != nil {
		return 0, fmt.Errorf("enqueue to %s: %w", sink, err)
	}
	return seq, nil
}

// AppendEventBuffer starts an event value at the end of dst (many events can share one buffer):
// it returns dst extended by the value's header; append the line to the result r, then hand
// r[len(dst):] to EnqueueOwned.
func AppendEventBuffer(dst []byte) []byte { return append(dst, codecRaw) }

// AppendPackedEvent appends to dst the outbox value of the event line prefix + incident + suffix,
// where packedIncident is the incident as AppendPackedIncident packed it, and returns the extended
// buffer: hand its tail from len(dst) to EnqueueOwned. The value reuses the compressed incident
// (codecEvent) instead of holding the line raw; sinks read the line back whole.
func AppendPackedEvent(dst, prefix, packedIncident, suffix []byte) []byte {
	if !packedDoc(packedIncident) {
		// Not compressed (or empty): store the line raw.
		dst = append(dst, codecRaw)
		dst = append(dst, prefix...)
		if len(packedIncident) > 0 {
			dst = append(dst, packedIncident[1:]...)
		}
		return append(dst, suffix...)
	}
	codec := byte(codecEvent)
	if packedIncident[0] == codecS2Dict1 {
		codec = codecEventDict1
	}
	dst = append(dst, codec)
	dst = binary.AppendUvarint(dst, uint64(len(prefix)))
	dst = append(dst, prefix...)
	dst = binary.AppendUvarint(dst, uint64(len(suffix)))
	dst = append(dst, suffix...)
	return append(dst, packedIncident[1:]...)
}

// EnqueueOwned appends the event built in buf (with AppendEventBuffer and the line, or with
// AppendPackedEvent) to the outbox of every sink in sinks. bbolt keeps a reference to buf until the
// transaction ends: the caller must not modify it before then.
func (tx *Tx) EnqueueOwned(sinks []string, buf []byte) error {
	if len(buf) < 2 || (buf[0] != codecRaw && buf[0] != codecEvent && buf[0] != codecEventDict1) {
		return fmt.Errorf("enqueue: the event was not built with AppendEventBuffer or AppendPackedEvent")
	}
	if err := tx.writable(); err != nil {
		return fmt.Errorf("enqueue: %w", err)
	}
	for _, sink := range sinks {
		if err := checkName("sink", sink); err != nil {
			return fmt.Errorf("enqueue: %w", err)
		}
		b, err := tx.outboxBucket(sink)
		if err != nil {
			return fmt.Errorf("enqueue to %s: %w", sink, err)
		}
		// bbolt only reads the value: one slice can back every sink's copy.
		if _, err := tx.append(b, sink, buf); err != nil {
			return fmt.Errorf("enqueue to %s: %w", sink, err)
		}
	}
	return nil
}

// append stores an already packed value (owned by the store from now on) at the outbox's tail.
func (tx *Tx) append(b *bolt.Bucket, sink string, packed []byte) (uint64, error) {
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	// bbolt keeps the value slice until commit: packed must be the caller's own copy.
	if err := b.Put(seqKey(seq), packed); err != nil {
		return 0, err
	}
	tx.addCounter(outboxCounter(sink), 1)
	return seq, nil
}

// outboxBucket opens (creating if needed) the outbox of sink for writing. A re-created outbox resumes
// the sequence of the dropped one.
func (tx *Tx) outboxBucket(sink string) (*bolt.Bucket, error) {
	if b, ok := tx.outbox[sink]; ok {
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
	// Keys only ever grow at the tail: pack pages full instead of half.
	b.FillPercent = 0.95
	if tx.outbox == nil {
		tx.outbox = make(map[string]*bolt.Bucket, 2)
	}
	tx.outbox[sink] = b
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
	parent, err := tx.bucket(bucketOutbox)
	if err != nil {
		return 0, fmt.Errorf("drop outbox of %s: %w", sink, err)
	}
	b := parent.Bucket([]byte(sink))
	if b == nil {
		return 0, nil
	}
	n, err := tx.counter(outboxCounter(sink))
	if err != nil {
		return 0, fmt.Errorf("drop outbox of %s: %w", sink, err)
	}
	meta, err := tx.bucket(bucketMeta)
	if err != nil {
		return 0, fmt.Errorf("drop outbox of %s: %w", sink, err)
	}
	if err := meta.Put(outboxSeqKey(sink), seqKey(b.Sequence())); err != nil {
		return 0, fmt.Errorf("drop outbox of %s: %w", sink, err)
	}
	if err := parent.DeleteBucket([]byte(sink)); err != nil {
		return 0, fmt.Errorf("drop outbox of %s: %w", sink, err)
	}
	delete(tx.outbox, sink)
	if err := tx.setCounter(outboxCounter(sink), 0); err != nil {
		return 0, fmt.Errorf("drop outbox of %s: %w", sink, err)
	}
	return n, nil
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

// Outbox returns up to limit events of sink with a sequence number above afterSeq, oldest first
// (limit <= 0: all of them), stopping early once MaxBatchBytes of data are read. Writers are serialised and take sequence numbers in commit order, so
// a dispatcher may keep afterSeq as a cursor without missing events committed later.
func (s *Store) Outbox(sink string, afterSeq uint64, limit int) ([]OutboxItem, error) {
	items, _, err := s.OutboxInto(sink, afterSeq, limit, nil)
	return items, err
}

// MaxBatchBytes bounds the event data one outbox read returns (beyond its first event): a batch of
// large events must not cost a sink hundreds of megabytes.
const MaxBatchBytes = 8 << 20

// OutboxInto is Outbox with the events' data appended to buf (which it returns, grown) instead of
// each getting its own allocation: a dispatcher passes the same buffer, truncated, for every batch.
// The items' Data alias buf, so they are valid until buf is reused.
func (s *Store) OutboxInto(sink string, afterSeq uint64, limit int, buf []byte) ([]OutboxItem, []byte, error) {
	var out []OutboxItem
	recent := s.recent.reader()
	defer recent.release() // after the read transaction: a release never runs inside one
	err := s.View(func(tx *Tx) error {
		parent, err := tx.bucket(bucketOutbox)
		if err != nil {
			return err
		}
		b := parent.Bucket([]byte(sink))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		if afterSeq == ^uint64(0) {
			return nil
		}
		var span, docSpan mappedSpan
		base := len(buf)
		for k, v = c.Seek(seqKey(afterSeq + 1)); k != nil; k, v = c.Next() {
			if limit > 0 && len(out) >= limit || len(out) > 0 && len(buf)-base >= MaxBatchBytes {
				break
			}
			start := len(buf)
			seq := binary.BigEndian.Uint64(k)
			var cached bool
			if buf, cached = recent.appendLine(buf, sink, seq); cached {
				span.add(v)
			} else if buf, err = tx.appendOutboxValue(buf, v, &span, &docSpan); err != nil {
				return fmt.Errorf("outbox %s item %d: %w", sink, seq, err)
			}
			out = append(out, OutboxItem{Seq: seq, Data: buf[start:len(buf):len(buf)]})
		}
		// The events were copied out and will be acknowledged and freed soon: drop the mapped pages
		// they were read from, so that reading every event of a backfill through the mapping does
		// not grow the daemon's RSS (see ReleaseMemory). Best effort. The same goes for the incident
		// documents events refer to.
		span.release(tx)
		docSpan.release(tx)
		return nil
	})
	if err != nil {
		return nil, buf, fmt.Errorf("read outbox of %s: %w", sink, err)
	}
	return out, buf, nil
}

// Ack deletes delivered events from sink's outbox; sequence numbers no longer there are ignored.
func (s *Store) Ack(sink string, seqs ...uint64) error {
	if len(seqs) == 0 {
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
		var span mappedSpan
		// One cursor descent per event (Get and then Delete would make two, each with a cursor of
		// its own); Seek starts from the root every time, so deleting under the cursor is safe.
		c := b.Cursor()
		var key [8]byte
		for _, seq := range seqs {
			binary.BigEndian.PutUint64(key[:], seq)
			k, v := c.Seek(key[:])
			if k == nil || !bytes.Equal(k, key[:]) || v == nil {
				continue
			}
			span.add(v)
			if err := c.Delete(); err != nil {
				return err
			}
			removed++
		}
		tx.addCounter(outboxCounter(sink), -int64(removed))
		// Finding the events touched their pages again; drop them as Outbox did (the file is mapped
		// shared and read-only, so this never loses data, even for pages this transaction reads
		// again before it commits).
		span.release(tx)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ack %d events of %s: %w", len(seqs), sink, err)
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

func outboxCounter(sink string) string { return "outbox\x00" + sink }
func deadCounter(sink string) string   { return "dead\x00" + sink }
func outboxSeqKey(sink string) []byte  { return append([]byte("outbox_seq\x00"), sink...) }

// nonNil turns nil into an empty slice so that a stored empty value reads back as non-nil.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
