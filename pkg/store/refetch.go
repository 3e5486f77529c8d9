package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// The refetch queue holds issues named by Wiz pushes until the feed pipeline has re-read them. It is
// deduplicated by (instance, issue id) and ordered by NextAttempt, then by arrival.

// RefetchItem is one queued issue.
type RefetchItem struct {
	Instance    string
	IssueID     string
	ReceivedAt  time.Time
	Attempts    int
	NextAttempt time.Time // zero: due at once
	// Pushes counts the pushes of the issue since it was queued, beyond the first (as read from the
	// queue): CompleteRefetches keeps an item that was pushed again meanwhile.
	Pushes int
}

type refetchRecord struct {
	Seq         uint64    `json:"seq"`
	ReceivedAt  time.Time `json:"received_at"`
	Attempts    int       `json:"attempts"`
	NextAttempt time.Time `json:"next_attempt"`
	Pushes      int       `json:"pushes,omitempty"`
}

const counterRefetch = "refetch"

// refetchInstanceCounter is the counter of one instance's queued issues.
func refetchInstanceCounter(instance string) string { return counterRefetch + "\x00" + instance }

// ErrQueueFull is returned by EnqueueRefetchBounded when the instance already has its maximum of
// queued issues.
var ErrQueueFull = errors.New("refetch queue is full")

// EnqueueRefetch queues item. An issue already queued keeps its existing entry (the earliest); the
// push is counted on it (refetchRecord.Pushes), so that a refetch already under way does not
// complete it (CompleteRefetches).
func (s *Store) EnqueueRefetch(item RefetchItem) error { return s.EnqueueRefetchBounded(item, 0) }

// EnqueueRefetchBounded is EnqueueRefetch refusing, with an error wrapping ErrQueueFull, a new issue
// of an instance that already has max issues queued (max <= 0: no bound). An issue already queued
// is accepted whatever the depth: it takes no room. The per-instance depth counts issues queued
// since this counter existed, so a queue written by an older wizfetch is under-counted until it
// drains.
//
// On an engine replicas share (OpenKV with a kv.Poster) it opens no write transaction: it checks
// the queue in a read transaction and posts the item to the inbox, which the leader's RefetchBatch
// moves into the queue; the bound is then approximate (inbox.go).
func (s *Store) EnqueueRefetchBounded(item RefetchItem, max int) error {
	if err := checkIncident(item.Instance, item.IssueID); err != nil {
		return fmt.Errorf("queue refetch: %w", err)
	}
	var err error
	if s.poster != nil {
		err = s.postRefetch(item, max)
	} else {
		err = s.Update(func(tx *Tx) error { return tx.enqueueRefetch(item, max) })
	}
	if err != nil {
		return fmt.Errorf("queue refetch of %s/%s: %w", item.Instance, item.IssueID, err)
	}
	return nil
}

// enqueueRefetch queues item, or counts a push on its entry when it is queued already; a new item
// of an instance with max items queued (max > 0) is refused with an error wrapping ErrQueueFull.
func (tx *Tx) enqueueRefetch(item RefetchItem, max int) error {
	q, err := tx.bucket(bucketRefetch)
	if err != nil {
		return err
	}
	key := joinKey(0, item.Instance, item.IssueID)
	if rec, found, err := tx.takeRefetch(key); err != nil || found {
		if err != nil {
			return err
		}
		// Queued already, perhaps being read right now: a refetch that started before this push
		// may read the issue as it was before the change the push announces. Count the push, so
		// that completing that refetch keeps the item for one more (completeRefetch).
		rec.Pushes++
		return tx.putRefetch(key, rec)
	}
	if err := tx.refetchRoom(item.Instance, max); err != nil {
		return err
	}
	seq, err := q.NextSequence()
	if err != nil {
		return err
	}
	rec := refetchRecord{Seq: seq, ReceivedAt: item.ReceivedAt, Attempts: item.Attempts, NextAttempt: item.NextAttempt}
	if err := tx.putRefetch(key, rec); err != nil {
		return err
	}
	tx.addCounter(counterRefetch, 1)
	tx.addCounter(refetchInstanceCounter(item.Instance), 1)
	return nil
}

// refetchRoom refuses, with an error wrapping ErrQueueFull, one more issue of instance when max > 0
// of them are queued.
func (tx *Tx) refetchRoom(instance string, max int) error {
	if max <= 0 {
		return nil
	}
	n, err := tx.counter(refetchInstanceCounter(instance))
	if err != nil {
		return err
	}
	if n >= max {
		return fmt.Errorf("%w: %d issues of instance %s are waiting", ErrQueueFull, n, instance)
	}
	return nil
}

// RefetchBatch returns up to limit queued items due at now (NextAttempt <= now), earliest
// NextAttempt first and FIFO among equals. Items stay queued until CompleteRefetch or RetryRefetch.
// On an engine replicas share, it first moves posted pushes from the inbox into the queue
// (inbox.go), in a write transaction of its own: only the leader calls it.
func (s *Store) RefetchBatch(now time.Time, limit int) ([]RefetchItem, error) {
	if s.poster != nil {
		if err := s.moveInbox(); err != nil {
			return nil, fmt.Errorf("read refetch queue: %w", err)
		}
	}
	var out []RefetchItem
	err := s.View(func(tx *Tx) error {
		q, err := tx.bucket(bucketRefetch)
		if err != nil {
			return err
		}
		due, err := tx.bucket(bucketRefetchDue)
		if err != nil {
			return err
		}
		end := timeKey(now)
		c := due.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if limit > 0 && len(out) >= limit {
				break
			}
			if len(k) != 16 || bytes.Compare(k[:8], end[:]) > 0 {
				break
			}
			raw := q.Get(v)
			if raw == nil {
				return fmt.Errorf("refetch index names missing entry %q", v)
			}
			var rec refetchRecord
			if err := json.Unmarshal(raw, &rec); err != nil {
				return fmt.Errorf("decode refetch entry %q: %w", v, err)
			}
			inst, id, _ := splitKey2(v)
			out = append(out, RefetchItem{
				Instance: inst, IssueID: id, ReceivedAt: rec.ReceivedAt,
				Attempts: rec.Attempts, NextAttempt: rec.NextAttempt, Pushes: rec.Pushes,
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read refetch queue: %w", err)
	}
	return out, nil
}

// CompleteRefetch removes (instance, issueID) from the queue; a missing entry is not an error. An
// issue pushed again since it was queued stays for one more refetch (see CompleteRefetches, which
// takes the items as read and keeps only those pushed again since).
func (s *Store) CompleteRefetch(instance, issueID string) error {
	return s.CompleteRefetches([]RefetchItem{{Instance: instance, IssueID: issueID}})
}

// RetryRefetch records a failed attempt of a queued item: Attempts is incremented and NextAttempt
// becomes item.NextAttempt (the caller's backoff). An item no longer queued yields an error wrapping
// ErrNotFound.
func (s *Store) RetryRefetch(item RefetchItem) error {
	if err := checkIncident(item.Instance, item.IssueID); err != nil {
		return fmt.Errorf("retry refetch: %w", err)
	}
	err := s.Update(func(tx *Tx) error {
		if err := tx.moveInbox(); err != nil {
			return err
		}
		found, err := tx.retryRefetch(item)
		if err == nil && !found {
			err = ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("retry refetch of %s/%s: %w", item.Instance, item.IssueID, err)
	}
	return nil
}

// CompleteRefetches removes many items from the queue in one transaction (Instance, IssueID and
// Pushes are read: an item pushed again since it was read stays, due at once); missing entries are
// skipped.
func (s *Store) CompleteRefetches(items []RefetchItem) error {
	for _, it := range items {
		if err := checkIncident(it.Instance, it.IssueID); err != nil {
			return fmt.Errorf("complete refetches: %w", err)
		}
	}
	err := s.Update(func(tx *Tx) error {
		if err := tx.moveInbox(); err != nil {
			return err
		}
		for _, it := range items {
			if err := tx.completeRefetch(it); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("complete %d refetches: %w", len(items), err)
	}
	return nil
}

// RetryRefetches is RetryRefetch for many items in one transaction: each queued item has its
// Attempts incremented and its NextAttempt set from the item; items no longer queued are skipped.
func (s *Store) RetryRefetches(items []RefetchItem) error {
	for _, it := range items {
		if err := checkIncident(it.Instance, it.IssueID); err != nil {
			return fmt.Errorf("retry refetches: %w", err)
		}
	}
	err := s.Update(func(tx *Tx) error {
		if err := tx.moveInbox(); err != nil {
			return err
		}
		for _, it := range items {
			if _, err := tx.retryRefetch(it); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("retry %d refetches: %w", len(items), err)
	}
	return nil
}

// completeRefetch removes one queued item, if it is queued, unless the issue was pushed again
// after it was read from the queue (rec.Pushes beyond it.Pushes): then the item stays, due at once,
// for a refetch that reads the issue after that push.
func (tx *Tx) completeRefetch(it RefetchItem) error {
	key := joinKey(0, it.Instance, it.IssueID)
	rec, found, err := tx.takeRefetch(key)
	if err != nil || !found {
		return err
	}
	if rec.Pushes > it.Pushes {
		if err := tx.dropRefetch(key, rec); err != nil {
			return err
		}
		rec.Attempts, rec.NextAttempt, rec.Pushes = 0, time.Time{}, 0
		return tx.putRefetch(key, rec)
	}
	if err := tx.dropRefetch(key, rec); err != nil {
		return err
	}
	tx.addCounter(counterRefetch, -1)
	tx.addCounter(refetchInstanceCounter(it.Instance), -1)
	return nil
}

// retryRefetch counts a failed attempt of one queued item and sets its next attempt; found is false
// when the item is no longer queued.
func (tx *Tx) retryRefetch(it RefetchItem) (found bool, err error) {
	key := joinKey(0, it.Instance, it.IssueID)
	rec, found, err := tx.takeRefetch(key)
	if err != nil || !found {
		return false, err
	}
	if err := tx.dropRefetch(key, rec); err != nil {
		return true, err
	}
	rec.Attempts++
	rec.NextAttempt = it.NextAttempt
	return true, tx.putRefetch(key, rec)
}

// RefetchDepth returns how many issues are queued, in O(1), and how many pushes are posted to the
// inbox and not yet moved into the queue (inbox.go; none on bbolt).
func (s *Store) RefetchDepth() (int, error) {
	var n int
	err := s.View(func(tx *Tx) error {
		var err error
		if n, err = tx.counter(counterRefetch); err != nil {
			return err
		}
		n += tx.inboxLen()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("refetch depth: %w", err)
	}
	return n, nil
}

// takeRefetch reads the queued entry under key.
func (tx *Tx) takeRefetch(key []byte) (refetchRecord, bool, error) {
	var rec refetchRecord
	q, err := tx.bucket(bucketRefetch)
	if err != nil {
		return rec, false, err
	}
	raw := q.Get(key)
	if raw == nil {
		return rec, false, nil
	}
	if err := json.Unmarshal(raw, &rec); err != nil {
		return rec, false, fmt.Errorf("decode refetch entry: %w", err)
	}
	return rec, true, nil
}

// dropRefetch removes the entry under key and its due-time index entry.
func (tx *Tx) dropRefetch(key []byte, rec refetchRecord) error {
	q, err := tx.bucket(bucketRefetch)
	if err != nil {
		return err
	}
	due, err := tx.bucket(bucketRefetchDue)
	if err != nil {
		return err
	}
	if err := due.Delete(refetchDueKey(rec)); err != nil {
		return err
	}
	return q.Delete(key)
}

func (tx *Tx) putRefetch(key []byte, rec refetchRecord) error {
	q, err := tx.bucket(bucketRefetch)
	if err != nil {
		return err
	}
	due, err := tx.bucket(bucketRefetchDue)
	if err != nil {
		return err
	}
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := q.Put(key, raw); err != nil {
		return err
	}
	return due.Put(refetchDueKey(rec), bytes.Clone(key))
}

// refetchDueKey is timekey(NextAttempt) then the big-endian arrival sequence.
func refetchDueKey(rec refetchRecord) []byte {
	tk := timeKey(rec.NextAttempt)
	k := make([]byte, 16)
	copy(k, tk[:])
	binary.BigEndian.PutUint64(k[8:], rec.Seq)
	return k
}
