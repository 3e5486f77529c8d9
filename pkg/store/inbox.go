package store

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// The inbox takes Wiz pushes on an engine that replicas share (OpenKV with a kv.Poster, etcd). Every
// replica receives pushes, but only the leader can commit a write transaction; so a push is not
// queued by the replica that received it but posted (kv.Poster.Post: a single write outside any
// transaction, not fenced) to the top-level bucket "inbox", under a key the engine chooses, as JSON
// inboxRecord. The leader's RefetchBatch first moves posted pushes, oldest first, into the refetch
// queue in a write transaction of its own (CompleteRefetches and RetryRefetches move them first in
// theirs), deleting them from the inbox: each is queued exactly as a direct EnqueueRefetchBounded
// would queue it (an issue already queued keeps its entry, the push counted on it; a new one of an
// instance at its bound is refused), so a crash before that commit leaves the push in the inbox and
// after it in the queue. On bbolt nothing uses the inbox.
//
// The bound of EnqueueRefetchBounded is approximate for posted pushes: the replica checks it in a
// read transaction before it posts, and the leader checks it again as it moves the push; a push
// accepted by the first check is dropped by the second when the instance's queue filled meanwhile
// (the updates feed still finds the issue's change), and the inbox itself holds whatever was
// posted until the leader's next RefetchBatch (at most maxInboxMove pushes move per call).

// bucketInbox holds posted pushes (only on an engine that implements kv.Poster).
var bucketInbox = []byte(InboxBucket)

// InboxBucket names the top-level bucket of posted pushes (engines replicas share), which a copy
// to bbolt leaves out once FlushInbox has queued them.
const InboxBucket = "inbox"

// maxInboxMove bounds how many posted pushes one transaction moves into the queue, so that the
// transaction stays small however many were posted; RefetchBatch moves the next ones on its next
// call.
const maxInboxMove = 1000

// inboxRecord is a posted push: the RefetchItem and the bound it was posted with.
type inboxRecord struct {
	Instance    string    `json:"instance"`
	IssueID     string    `json:"issue_id"`
	ReceivedAt  time.Time `json:"received_at"`
	Attempts    int       `json:"attempts,omitempty"`
	NextAttempt time.Time `json:"next_attempt"`
	Max         int       `json:"max,omitempty"`
}

// postRefetch is EnqueueRefetchBounded on a shared engine: it checks the queue in a read
// transaction (a full instance is refused; an issue queued already takes no room) and posts item
// to the inbox.
func (s *Store) postRefetch(item RefetchItem, max int) error {
	if s.readOnly {
		return fmt.Errorf("post to a store opened read-only: %w", kv.ErrNotWritable)
	}
	err := s.View(func(tx *Tx) error {
		_, found, err := tx.takeRefetch(joinKey(0, item.Instance, item.IssueID))
		if err != nil || found {
			// Queued already: posted all the same, and moved it counts as a push again
			// (enqueueRefetch), which keeps the item for a refetch after it (completeRefetch). It
			// is posted every time: whether a refetch read the item since the last counted push
			// is not known here, and skipping one could lose it.
			return err
		}
		return tx.refetchRoom(item.Instance, max)
	})
	if err != nil {
		return err
	}
	raw, err := json.Marshal(inboxRecord{
		Instance: item.Instance, IssueID: item.IssueID, ReceivedAt: item.ReceivedAt,
		Attempts: item.Attempts, NextAttempt: item.NextAttempt, Max: max,
	})
	if err != nil {
		return fmt.Errorf("encode the push: %w", err)
	}
	err = s.poster.Post(bucketInbox, raw)
	// A post is this replica's write: its outcome is the store's write health too.
	s.writes.record(err, s.now())
	if err != nil {
		return fmt.Errorf("post to the inbox: %w", err)
	}
	return nil
}

// moveInbox moves up to maxInboxMove posted pushes, oldest first, into the refetch queue and deletes
// them from the inbox, in one write transaction; an empty inbox costs a read transaction.
func (s *Store) moveInbox() error {
	if s.readOnly {
		return nil // nothing can move; RefetchBatch reads the queue as it is
	}
	pending := false
	err := s.View(func(tx *Tx) error {
		b, err := tx.bucket(bucketInbox)
		if err != nil {
			return err
		}
		k, _ := b.Cursor().First()
		pending = k != nil
		return nil
	})
	if err != nil || !pending {
		return err
	}
	return s.Update(func(tx *Tx) error { return tx.moveInbox() })
}

// moveInbox, in a write transaction on a shared engine, moves up to maxInboxMove posted pushes,
// oldest first, into the refetch queue and deletes them from the inbox. The leader's other writes
// of the queue (CompleteRefetches, RetryRefetches) move them first too, so that they act on the
// queue a direct enqueue would have made.
func (tx *Tx) moveInbox() error {
	if tx.store == nil || tx.store.poster == nil {
		return nil
	}
	b, err := tx.bucket(bucketInbox)
	if err != nil {
		return err
	}
	var moved [][]byte
	c := b.Cursor()
	for k, v := c.First(); k != nil && len(moved) < maxInboxMove; k, v = c.Next() {
		moved = append(moved, bytes.Clone(k))
		rec, ok := decodePosted(v)
		if !ok {
			continue // not a push this code posted: dropped, or it would block the inbox for good
		}
		item := RefetchItem{
			Instance: rec.Instance, IssueID: rec.IssueID, ReceivedAt: rec.ReceivedAt,
			Attempts: rec.Attempts, NextAttempt: rec.NextAttempt,
		}
		if err := tx.enqueueRefetch(item, rec.Max); err != nil && !errors.Is(err, ErrQueueFull) {
			return fmt.Errorf("move posted push %s/%s into the queue: %w", rec.Instance, rec.IssueID, err)
		}
	}
	for _, k := range moved {
		if err := b.Delete(k); err != nil {
			return fmt.Errorf("move posted pushes into the queue: %w", err)
		}
	}
	return nil
}

// decodePosted decodes a posted push; ok is false for a value that is not one.
func decodePosted(v []byte) (inboxRecord, bool) {
	var rec inboxRecord
	if json.Unmarshal(v, &rec) != nil || checkIncident(rec.Instance, rec.IssueID) != nil {
		return rec, false
	}
	return rec, true
}

// inboxLen counts the issues that moving the inbox would queue (0 without an inbox): one per issue
// posted and not queued yet, as if every posted push had been queued directly (bar the bound). It
// reads every posted push, normally a handful, since the leader moves them at every RefetchBatch.
func (tx *Tx) inboxLen() int {
	if tx.closed {
		return 0
	}
	b := tx.ktx.Bucket(bucketInbox)
	if b == nil {
		return 0
	}
	q := tx.ktx.Bucket(bucketRefetch)
	n := 0
	var seen map[string]bool
	_ = b.ForEach(func(_, v []byte) error {
		rec, ok := decodePosted(v)
		if !ok {
			return nil
		}
		key := joinKey(0, rec.Instance, rec.IssueID)
		if seen[string(key)] || q != nil && q.Get(key) != nil {
			return nil
		}
		if seen == nil {
			seen = map[string]bool{}
		}
		seen[string(key)] = true
		n++
		return nil
	})
	return n
}

// FlushInbox moves every posted push into the refetch queue (in steps of maxInboxMove), so that
// nothing waits in the inbox: before the store is copied to an engine that has none (bbolt).
// With an engine that cannot post, there is nothing to move.
func (s *Store) FlushInbox() error {
	if s.poster == nil {
		return nil
	}
	for {
		pending := false
		if err := s.View(func(tx *Tx) error {
			if b := tx.ktx.Bucket(bucketInbox); b != nil {
				k, _ := b.Cursor().First()
				pending = k != nil
			}
			return nil
		}); err != nil {
			return fmt.Errorf("flush the inbox: %w", err)
		}
		if !pending {
			return nil
		}
		if err := s.Update(func(tx *Tx) error { return tx.moveInbox() }); err != nil {
			return fmt.Errorf("flush the inbox: %w", err)
		}
	}
}
