package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"
)

// Dedup marks record that a feed already handled something (an issue id for the created feed, issue
// id + statusChangedAt for the updates feed) together with the Wiz timestamp it belongs to. A second
// index ordered by that timestamp lets PruneMarks visit only the marks it deletes.

// HasMark reports whether (instance, feed, key) is marked.
func (tx *Tx) HasMark(instance, feed, key string) (bool, error) {
	if err := checkMark(instance, feed, key); err != nil {
		return false, fmt.Errorf("read mark: %w", err)
	}
	b, err := tx.bucket(bucketMarks)
	if err != nil {
		return false, fmt.Errorf("read mark: %w", err)
	}
	return b.Get(joinKey(0, instance, feed, key)) != nil, nil
}

// PutMark marks (instance, feed, key) with the timestamp ts (kept at microsecond precision). Marking
// an existing key again moves it to the new timestamp.
func (tx *Tx) PutMark(instance, feed, key string, ts time.Time) error {
	if err := checkMark(instance, feed, key); err != nil {
		return fmt.Errorf("write mark: %w", err)
	}
	if err := tx.writable(); err != nil {
		return fmt.Errorf("write mark: %w", err)
	}
	marks, err := tx.bucket(bucketMarks)
	if err != nil {
		return fmt.Errorf("write mark: %w", err)
	}
	byTime, err := tx.bucket(bucketMarksByTime)
	if err != nil {
		return fmt.Errorf("write mark: %w", err)
	}
	mk := joinKey(0, instance, feed, key)
	tk := timeKey(ts)
	if old := marks.Get(mk); old != nil {
		if bytes.Equal(old, tk[:]) {
			return nil
		}
		if len(old) == 8 {
			if err := byTime.Delete(markTimeKey(instance, feed, key, old)); err != nil {
				return fmt.Errorf("write mark %s/%s: %w", instance, feed, err)
			}
		}
	} else {
		tx.addCounter(markCounter(instance, feed), 1)
	}
	if err := marks.Put(mk, append([]byte(nil), tk[:]...)); err != nil {
		return fmt.Errorf("write mark %s/%s: %w", instance, feed, err)
	}
	if err := byTime.Put(markTimeKey(instance, feed, key, tk[:]), nil); err != nil {
		return fmt.Errorf("write mark %s/%s: %w", instance, feed, err)
	}
	return nil
}

// PruneMarks deletes the marks of (instance, feed) whose timestamp is before `before` (compared at
// microsecond precision) and returns how many it deleted. It visits only the deleted marks.
func (tx *Tx) PruneMarks(instance, feed string, before time.Time) (int, error) {
	if err := checkFeed(instance, feed); err != nil {
		return 0, fmt.Errorf("prune marks: %w", err)
	}
	if err := tx.writable(); err != nil {
		return 0, fmt.Errorf("prune marks: %w", err)
	}
	marks, err := tx.bucket(bucketMarks)
	if err != nil {
		return 0, fmt.Errorf("prune marks: %w", err)
	}
	byTime, err := tx.bucket(bucketMarksByTime)
	if err != nil {
		return 0, fmt.Errorf("prune marks: %w", err)
	}
	prefix := joinKey(1, instance, feed)
	prefix = append(prefix, sep)
	limit := timeKey(before)

	// Collect first: deleting under a bbolt cursor may skip the next key (etcd-io/bbolt#146).
	var doomed [][]byte
	c := byTime.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if len(k) < len(prefix)+8 {
			return 0, fmt.Errorf("prune marks %s/%s: malformed index key %q", instance, feed, k)
		}
		if bytes.Compare(k[len(prefix):len(prefix)+8], limit[:]) >= 0 {
			break
		}
		doomed = append(doomed, bytes.Clone(k))
	}
	n := 0
	for _, k := range doomed {
		if err := byTime.Delete(k); err != nil {
			return n, fmt.Errorf("prune marks %s/%s: %w", instance, feed, err)
		}
		ts := k[len(prefix) : len(prefix)+8]
		mk := append(prefix[:len(prefix):len(prefix)], k[len(prefix)+8:]...)
		// The index entry is authoritative only if the mark still points at it.
		if v := marks.Get(mk); v != nil && bytes.Equal(v, ts) {
			if err := marks.Delete(mk); err != nil {
				return n, fmt.Errorf("prune marks %s/%s: %w", instance, feed, err)
			}
			n++
		}
	}
	tx.addCounter(markCounter(instance, feed), -int64(n))
	return n, nil
}

// MarkCount returns how many marks (instance, feed) holds, in O(1).
func (tx *Tx) MarkCount(instance, feed string) (int, error) {
	if err := checkFeed(instance, feed); err != nil {
		return 0, fmt.Errorf("count marks: %w", err)
	}
	n, err := tx.counter(markCounter(instance, feed))
	if err != nil {
		return 0, fmt.Errorf("count marks: %w", err)
	}
	return n, nil
}

func markCounter(instance, feed string) string {
	return "marks\x00" + instance + "\x00" + feed
}

// markTimeKey is instance NUL feed NUL timekey key.
func markTimeKey(instance, feed, key string, tk []byte) []byte {
	k := joinKey(1+8+len(key), instance, feed)
	k = append(k, sep)
	k = append(k, tk...)
	return append(k, key...)
}

func checkMark(instance, feed, key string) error {
	if err := checkFeed(instance, feed); err != nil {
		return err
	}
	if key == "" {
		return errors.New("empty mark key")
	}
	return nil
}
