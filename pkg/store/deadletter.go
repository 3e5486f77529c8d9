package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// DeadLetter is an event a sink gave up on; RequeueDeadLetters puts it back into the outbox.
type DeadLetter struct {
	Seq      uint64 // its outbox sequence number when it failed
	Instance string // the instance (outbox lane) it belongs to
	Data     []byte // the event's JSON line, a copy
	Reason   string
	FailedAt time.Time
	Attempts int
}

type deadHeader struct {
	// Instance is the lane the event returns to when it is requeued (schema 6; the migration adds
	// it to older dead letters).
	Instance string    `json:"instance"`
	Reason   string    `json:"reason"`
	FailedAt time.Time `json:"failed_at"`
	Attempts int       `json:"attempts"`
}

// MaxReasonLen bounds a dead letter's reason in bytes: reasons come from receivers and networks,
// and the store keeps them for as long as the dead letter.
const MaxReasonLen = 2048

// clipReason cuts reason to MaxReasonLen bytes on a rune boundary. Callers mask secrets first.
func clipReason(reason string) string {
	if len(reason) <= MaxReasonLen {
		return reason
	}
	cut := MaxReasonLen
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut] + "…"
}

// MoveToDeadLetter atomically removes an event (named by its Instance and Seq) from sink's outbox
// and files it as a dead letter, stamped with the store's clock. reason must not contain secrets.
// An event not in the outbox yields an error wrapping ErrNotFound.
func (s *Store) MoveToDeadLetter(sink string, item OutboxItem, reason string, attempts int) error {
	seq := item.Seq
	err := s.Update(func(tx *Tx) error {
		parent, err := tx.bucket(bucketOutbox)
		if err != nil {
			return err
		}
		b := parent.Bucket([]byte(sink))
		k := outboxKey(item.Instance, seq)
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
		header, err := json.Marshal(deadHeader{Instance: item.Instance, Reason: clipReason(reason), FailedAt: s.now(), Attempts: attempts})
		if err != nil {
			return err
		}
		// frame copies the value (codec byte and line) before the Delete below invalidates it.
		if err := dead.Put(seqKey(seq), frame(header, data)); err != nil {
			return err
		}
		if err := b.Delete(k); err != nil {
			return err
		}
		tx.addCounter(outboxCounter(sink), -1)
		tx.addCounter(laneCounter(sink, item.Instance), -1)
		tx.addCounter(deadCounter(sink), 1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("dead-letter event %d of %s (instance %s): %w", seq, sink, item.Instance, err)
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

// RequeueDeadLetters moves the given dead letters back to the tail of their instance's lane in sink's
// outbox (with new sequence numbers; the event lines, and so their event_id, are unchanged) and
// returns how many it moved.
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
			hdr, data, err := unframe(v)
			if err != nil {
				return fmt.Errorf("dead letter %d: %w", seq, err)
			}
			var h deadHeader
			if err := json.Unmarshal(hdr, &h); err != nil {
				return fmt.Errorf("dead letter %d: %w", seq, err)
			}
			if h.Instance == "" {
				h.Instance = laneUnknown // never after the schema 6 migration
			}
			// The dead letter keeps the outbox value: move it as is (copied before the Delete).
			if _, err := tx.append(out, sink, h.Instance, append([]byte(nil), data...)); err != nil {
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
func (tx *Tx) deadBucket(sink string, create bool) (kv.Bucket, error) {
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
	plain, err := outboxLine(data)
	if err != nil {
		return d, fmt.Errorf("dead letter %d: %w", d.Seq, err)
	}
	d.Instance, d.Data, d.Reason, d.FailedAt, d.Attempts = h.Instance, plain, h.Reason, h.FailedAt, h.Attempts
	return d, nil
}
