package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// Retention (DESIGN.md §2.6): incidents whose issue has been closed for longer than store.retention
// are pruned. The retention index incidents_closed holds one entry per closed incident, kept in
// step with the head's ClosedAt by putIncident.

const counterClosed = "closed"

// closedKey is the retention index key of an incident closed at t: the time key of t's UTC day, then
// the entry's sequence number. Within a day entries are appended in the order they are written, so a
// backfill — whose issues closed at any time of the lookback — inserts at a handful of day tails
// instead of one random leaf per closed issue; pruning checks each entry of the last day it reaches.
func closedKey(t time.Time, seq uint64) []byte {
	day := t.UTC().Truncate(24 * time.Hour)
	tk := timeKey(day)
	k := make([]byte, 0, 16)
	k = append(k, tk[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
}

func sameClosed(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return timeKey(*a) == timeKey(*b)
}

// indexClosed keeps the retention index in step with a head being written under key: old is the
// head it replaces (nil for a new incident), head the new one, whose closedSeq it sets.
func (tx *Tx) indexClosed(closed kv.Bucket, key []byte, old, head *incidentHead) error {
	var oldClosed *time.Time
	if old != nil {
		oldClosed, head.closedSeq = old.closedAt, old.closedSeq
	}
	if sameClosed(oldClosed, head.closedAt) {
		return nil
	}
	if old != nil && old.closedSeq != 0 && old.closedAt != nil {
		if err := closed.Delete(closedKey(*old.closedAt, old.closedSeq)); err != nil {
			return fmt.Errorf("retention index: %w", err)
		}
		tx.addCounter(counterClosed, -1)
	}
	head.closedSeq = 0
	if head.closedAt == nil {
		return nil
	}
	var err error
	if head.closedSeq, err = closed.NextSequence(); err != nil {
		return fmt.Errorf("retention index: %w", err)
	}
	if err := closed.Put(closedKey(*head.closedAt, head.closedSeq), key); err != nil {
		return fmt.Errorf("retention index: %w", err)
	}
	tx.addCounter(counterClosed, 1)
	return nil
}

// PruneClosedIncidents deletes the incidents whose ClosedAt is before `before` (microsecond
// precision) and returns how many. It walks the retention index only up to before's day.
func (tx *Tx) PruneClosedIncidents(before time.Time) (int, error) {
	if err := tx.writable(); err != nil {
		return 0, fmt.Errorf("prune incidents: %w", err)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return 0, fmt.Errorf("prune incidents: %w", err)
	}
	docs, err := tx.bucket(bucketIncidentDocs)
	if err != nil {
		return 0, fmt.Errorf("prune incidents: %w", err)
	}
	closed, err := tx.bucket(bucketIncidentsClosed)
	if err != nil {
		return 0, fmt.Errorf("prune incidents: %w", err)
	}
	// Every entry of a day before before's day is due; entries of that day are checked one by one.
	limit := closedKey(before, ^uint64(0))
	type entry struct{ key, incident []byte }
	var seen []entry
	c := closed.Cursor()
	for k, v := c.First(); k != nil && bytes.Compare(k, limit) <= 0; k, v = c.Next() {
		seen = append(seen, entry{bytes.Clone(k), bytes.Clone(v)})
	}
	n := 0
	for _, e := range seen {
		if len(e.key) != 16 {
			return n, fmt.Errorf("prune incidents: malformed index key %q", e.key)
		}
		v := b.Get(e.incident)
		var h incidentHead
		if v != nil {
			if h, err = decodeHead(v); err != nil {
				return n, fmt.Errorf("prune incidents: %q: %w", e.incident, err)
			}
		}
		current := v != nil && h.closedAt != nil && h.closedSeq == binary.BigEndian.Uint64(e.key[8:])
		if current && !h.closedAt.Before(before) {
			continue // closed later on before's day: not due yet
		}
		if err := closed.Delete(e.key); err != nil {
			return n, fmt.Errorf("prune incidents: %w", err)
		}
		tx.addCounter(counterClosed, -1)
		if !current {
			continue // a stale entry (cannot happen while the index is kept in step; repaired anyway)
		}
		if h.docSeq != 0 {
			if err := docs.Delete(seqKey(h.docSeq)); err != nil {
				return n, fmt.Errorf("prune incidents: %w", err)
			}
		}
		if err := b.Delete(e.incident); err != nil {
			return n, fmt.Errorf("prune incidents: %w", err)
		}
		inst, _, _, err := splitIncidentKey(e.incident)
		if err != nil {
			return n, fmt.Errorf("prune incidents: %w", err)
		}
		tx.addCounter(incidentCounter(inst), -1)
		n++
	}
	return n, nil
}
