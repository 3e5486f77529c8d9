package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// Each sink has its own outbox: a FIFO of event lines (each value a codecRaw byte and the line)
// keyed by a per-sink sequence number that never repeats (not even after DropOutbox), so a sink may
// remember "delivered up to seq N".

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

// append stores a value (the store's own from now on: bbolt keeps the slice until the commit) at
// the outbox's tail.
func (tx *Tx) append(b *bolt.Bucket, sink string, value []byte) (uint64, error) {
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	if err := b.Put(seqKey(seq), value); err != nil {
		return 0, err
	}
	tx.addCounter(outboxCounter(sink), 1)
	return seq, nil
}

// outboxBucket opens (creating if needed) the outbox of sink for writing. A re-created outbox resumes
// the sequence of the dropped one.
func (tx *Tx) outboxBucket(sink string) (*bolt.Bucket, error) {
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

// MaxBatchBytes bounds the event data one outbox read returns (beyond its first event): a batch of
// large events must not cost a sink hundreds of megabytes.
const MaxBatchBytes = 8 << 20

// Outbox returns up to limit events of sink with a sequence number above afterSeq, oldest first
// (limit <= 0: all of them), stopping early once MaxBatchBytes of data are read. Each item's Data
// is a copy. Writers are serialised and take sequence numbers in commit order, so a dispatcher may
// keep afterSeq as a cursor without missing events committed later.
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
		size := 0
		c := b.Cursor()
		for k, v := c.Seek(seqKey(afterSeq + 1)); k != nil; k, v = c.Next() {
			if limit > 0 && len(out) >= limit || len(out) > 0 && size >= MaxBatchBytes {
				break
			}
			seq := binary.BigEndian.Uint64(k)
			line, err := outboxLine(v)
			if err != nil {
				return fmt.Errorf("outbox %s item %d: %w", sink, seq, err)
			}
			size += len(line)
			out = append(out, OutboxItem{Seq: seq, Data: line})
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
	if len(v) == 0 || v[0] != codecRaw {
		return nil, errors.New("not an event line (an outbox value of an older schema?)")
	}
	return unpack(v)
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
			if err := c.Delete(); err != nil {
				return err
			}
			removed++
		}
		tx.addCounter(outboxCounter(sink), -int64(removed))
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
