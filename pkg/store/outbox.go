package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Each sink has its own outbox: a FIFO of event JSON lines keyed by a per-sink sequence number that
// never repeats (not even after DropOutbox), so a sink may remember "delivered up to seq N".

// OutboxItem is one undelivered event.
type OutboxItem struct {
	Seq  uint64
	Data []byte // the event's JSON line, a copy
}

// DeadLetter is an event a sink gave up on; RequeueDeadLetters puts it back into the outbox.
type DeadLetter struct {
	Seq      uint64 // its outbox sequence number when it failed
	Data     []byte // the event's JSON line, a copy
	Reason   string
	FailedAt time.Time
	Attempts int
}

type deadHeader struct {
	Reason   string    `json:"reason"`
	FailedAt time.Time `json:"failed_at"`
	Attempts int       `json:"attempts"`
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
	seq, err := tx.append(b, sink, data)
	if err != nil {
		return 0, fmt.Errorf("enqueue to %s: %w", sink, err)
	}
	return seq, nil
}

func (tx *Tx) append(b *bolt.Bucket, sink string, data []byte) (uint64, error) {
	seq, err := b.NextSequence()
	if err != nil {
		return 0, err
	}
	// bbolt keeps the value slice until commit: store our own copy.
	if err := b.Put(seqKey(seq), bytes.Clone(nonNil(data))); err != nil {
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
// (limit <= 0: all of them).
func (s *Store) Outbox(sink string, afterSeq uint64, limit int) ([]OutboxItem, error) {
	var out []OutboxItem
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
		for k, v = c.Seek(seqKey(afterSeq + 1)); k != nil; k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			out = append(out, OutboxItem{Seq: binary.BigEndian.Uint64(k), Data: bytes.Clone(nonNil(v))})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read outbox of %s: %w", sink, err)
	}
	return out, nil
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
		for _, seq := range seqs {
			k := seqKey(seq)
			if b.Get(k) == nil {
				continue
			}
			if err := b.Delete(k); err != nil {
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

// MoveToDeadLetter atomically removes event seq from sink's outbox and files it as a dead letter,
// stamped with the store's clock. reason must not contain secrets. A seq not in the outbox yields an
// error wrapping ErrNotFound.
func (s *Store) MoveToDeadLetter(sink string, seq uint64, reason string, attempts int) error {
	err := s.Update(func(tx *Tx) error {
		parent, err := tx.bucket(bucketOutbox)
		if err != nil {
			return err
		}
		b := parent.Bucket([]byte(sink))
		k := seqKey(seq)
		var data []byte
		if b != nil {
			data = b.Get(k)
		}
		if data == nil {
			return ErrNotFound
		}
		dead, err := tx.deadBucket(sink, true)
		if err != nil {
			return err
		}
		header, err := json.Marshal(deadHeader{Reason: reason, FailedAt: s.now(), Attempts: attempts})
		if err != nil {
			return err
		}
		// frame copies data before the Delete below invalidates it.
		if err := dead.Put(seqKey(seq), frame(header, data)); err != nil {
			return err
		}
		if err := b.Delete(k); err != nil {
			return err
		}
		tx.addCounter(outboxCounter(sink), -1)
		tx.addCounter(deadCounter(sink), 1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("dead-letter event %d of %s: %w", seq, sink, err)
	}
	return nil
}

// DeadLetters returns up to limit dead letters of sink, oldest sequence first (limit <= 0: all).
func (s *Store) DeadLetters(sink string, limit int) ([]DeadLetter, error) {
	var out []DeadLetter
	err := s.View(func(tx *Tx) error {
		b, err := tx.deadBucket(sink, false)
		if err != nil || b == nil {
			return err
		}
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			d, err := decodeDead(k, v)
			if err != nil {
				return err
			}
			out = append(out, d)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read dead letters of %s: %w", sink, err)
	}
	return out, nil
}

// DeadLetterCount returns how many dead letters sink has, in O(1).
func (s *Store) DeadLetterCount(sink string) (int, error) {
	var n int
	err := s.View(func(tx *Tx) error {
		var err error
		n, err = tx.counter(deadCounter(sink))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("count dead letters of %s: %w", sink, err)
	}
	return n, nil
}

// RequeueDeadLetters moves the given dead letters back to the tail of sink's outbox (with new sequence
// numbers; the event lines, and so their event_id, are unchanged) and returns how many it moved.
// Unknown sequence numbers are skipped; no seqs moves nothing (see RequeueAllDeadLetters).
func (s *Store) RequeueDeadLetters(sink string, seqs ...uint64) (int, error) {
	if len(seqs) == 0 {
		return 0, nil
	}
	return s.requeue(sink, seqs)
}

// RequeueAllDeadLetters moves every dead letter of sink back to its outbox, oldest first.
func (s *Store) RequeueAllDeadLetters(sink string) (int, error) {
	return s.requeue(sink, nil)
}

func (s *Store) requeue(sink string, seqs []uint64) (int, error) {
	if err := checkName("sink", sink); err != nil {
		return 0, fmt.Errorf("requeue dead letters: %w", err)
	}
	moved := 0
	err := s.Update(func(tx *Tx) error {
		moved = 0
		dead, err := tx.deadBucket(sink, false)
		if err != nil || dead == nil {
			return err
		}
		if seqs == nil {
			c := dead.Cursor()
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				seqs = append(seqs, binary.BigEndian.Uint64(k))
			}
		}
		out, err := tx.outboxBucket(sink)
		if err != nil {
			return err
		}
		for _, seq := range seqs {
			k := seqKey(seq)
			v := dead.Get(k)
			if v == nil {
				continue
			}
			_, data, err := unframe(v)
			if err != nil {
				return fmt.Errorf("dead letter %d: %w", seq, err)
			}
			if _, err := tx.append(out, sink, data); err != nil {
				return err
			}
			if err := dead.Delete(k); err != nil {
				return err
			}
			tx.addCounter(deadCounter(sink), -1)
			moved++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("requeue dead letters of %s: %w", sink, err)
	}
	return moved, nil
}

// deadBucket returns sink's dead-letter bucket, creating it when create is set (else nil if absent).
func (tx *Tx) deadBucket(sink string, create bool) (*bolt.Bucket, error) {
	parent, err := tx.bucket(bucketDead)
	if err != nil {
		return nil, err
	}
	if b := parent.Bucket([]byte(sink)); b != nil || !create {
		return b, nil
	}
	return parent.CreateBucket([]byte(sink))
}

func decodeDead(k, v []byte) (DeadLetter, error) {
	d := DeadLetter{Seq: binary.BigEndian.Uint64(k)}
	hdr, data, err := unframe(v)
	if err != nil {
		return d, fmt.Errorf("dead letter %d: %w", d.Seq, err)
	}
	var h deadHeader
	if err := json.Unmarshal(hdr, &h); err != nil {
		return d, fmt.Errorf("dead letter %d: %w", d.Seq, err)
	}
	d.Data, d.Reason, d.FailedAt, d.Attempts = bytes.Clone(nonNil(data)), h.Reason, h.FailedAt, h.Attempts
	return d, nil
}

// SinkState returns a copy of sink's value for key, nil when missing.
func (tx *Tx) SinkState(sink, key string) ([]byte, error) {
	if err := checkName("sink", sink); err != nil {
		return nil, fmt.Errorf("read sink state: %w", err)
	}
	b, err := tx.bucket(bucketSinkState)
	if err != nil {
		return nil, fmt.Errorf("read sink state of %s: %w", sink, err)
	}
	v := b.Get(joinKey(0, sink, key))
	if v == nil {
		return nil, nil
	}
	return bytes.Clone(nonNil(v)), nil
}

// PutSinkState stores a copy of val as sink's value for key; a nil val deletes it.
func (tx *Tx) PutSinkState(sink, key string, val []byte) error {
	if err := checkName("sink", sink); err != nil {
		return fmt.Errorf("write sink state: %w", err)
	}
	if err := tx.writable(); err != nil {
		return fmt.Errorf("write sink state of %s: %w", sink, err)
	}
	b, err := tx.bucket(bucketSinkState)
	if err != nil {
		return fmt.Errorf("write sink state of %s: %w", sink, err)
	}
	k := joinKey(0, sink, key)
	if val == nil {
		err = b.Delete(k)
	} else {
		err = b.Put(k, bytes.Clone(val))
	}
	if err != nil {
		return fmt.Errorf("write sink state of %s: %w", sink, err)
	}
	return nil
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
