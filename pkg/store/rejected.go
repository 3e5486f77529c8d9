package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// Rejected issues are the issues Wiz returned that the pipeline could not turn into an incident: a
// node with a required field null (issue 17: an incident with status "" passed every filter and
// then stood for the issue for good), or one whose incident stays too large once clipped, or that
// failed to map. The feed records such a node in the page's transaction, emits nothing for it and
// moves on; nothing else waits for it. A later good version of the issue is processed as any other
// node (no incident and no dedup mark stand in its way) and removes the record.
//
// Layout: the bucket "rejected" (created by the first record: older files lack it), keyed by
// instance NUL issue id (a node without a usable id by a hash of its bytes), holding the record as
// JSON; the counter "rejected" NUL instance counts the records. An instance keeps at most
// MaxRejectedPerInstance records: beyond it, new ones are only counted by the caller (its logs and
// metrics), so a tenant that sends nothing but broken nodes cannot grow the store without bound.

var bucketRejected = []byte("rejected")

const (
	// MaxRejectedPerInstance bounds the rejected-issue records of one instance.
	MaxRejectedPerInstance = 2000
	// MaxRejectedRawBytes bounds the node JSON a record keeps (the issue stays reachable by id,
	// `wizfetch issue get`).
	MaxRejectedRawBytes = 16 << 10
	// maxRejectedID bounds the issue id a record is keyed by (wiz.MaxIDBytes).
	maxRejectedID = 256
)

// RejectedIssue is the record of one issue the pipeline could not turn into an incident.
type RejectedIssue struct {
	Instance string `json:"instance"`
	// IssueID is the node's id as sent ("" when it had none; cut to 256 bytes).
	IssueID string `json:"issue_id"`
	// Feed is the feed that met the node last ("created", "updates") or "push".
	Feed string `json:"feed"`
	// Reason is a short, bounded word ("incomplete", "too_large", ...); Detail says more
	// ("status is null; severity is null").
	Reason string `json:"reason"`
	Detail string `json:"detail,omitempty"`
	// FirstSeen and LastSeen are local times; Count is how often the node was met (a window's
	// overlap re-reads a node).
	FirstSeen time.Time `json:"first_seen"`
	LastSeen  time.Time `json:"last_seen"`
	Count     int       `json:"count"`
	// RawBytes is the node's size; Raw its JSON as sent, cut to MaxRejectedRawBytes (then not
	// valid JSON, and RawClipped is set).
	RawBytes   int    `json:"raw_bytes"`
	Raw        string `json:"raw,omitempty"`
	RawClipped bool   `json:"raw_clipped,omitempty"`
}

func rejectedCounter(instance string) string { return "rejected\x00" + instance }

// rejectedKey is instance NUL issue id, or for a node without a usable id (empty, too long, with a
// NUL) instance NUL "#" and the hash of its bytes.
func rejectedKey(instance, issueID string, raw []byte) []byte {
	if issueID == "" || len(issueID) > maxRejectedID || strings.IndexByte(issueID, sep) >= 0 {
		sum := sha256.Sum256(raw)
		issueID = "#" + hex.EncodeToString(sum[:16])
	}
	return joinKey(0, instance, issueID)
}

// PutRejected records the rejection of one node (raw is its JSON as sent), or updates the record
// of the same issue (Count, LastSeen and what it was rejected for). recorded is false when the
// instance already holds MaxRejectedPerInstance records and this is a new one.
func (tx *Tx) PutRejected(r RejectedIssue, raw []byte) (recorded bool, err error) {
	if err := checkName("instance", r.Instance); err != nil {
		return false, fmt.Errorf("record rejected issue: %w", err)
	}
	if err := tx.writable(); err != nil {
		return false, fmt.Errorf("record rejected issue: %w", err)
	}
	b, err := tx.ktx.CreateBucketIfNotExists(bucketRejected)
	if err != nil {
		return false, fmt.Errorf("record rejected issue: %w", err)
	}
	key := rejectedKey(r.Instance, r.IssueID, raw)
	if len(r.IssueID) > maxRejectedID {
		r.IssueID = r.IssueID[:maxRejectedID]
	}
	r.RawBytes, r.Raw, r.RawClipped = len(raw), string(raw), false
	if len(raw) > MaxRejectedRawBytes {
		r.Raw, r.RawClipped = string(raw[:MaxRejectedRawBytes]), true
	}
	r.Count = 1
	r.FirstSeen = r.LastSeen
	if old := b.Get(key); old != nil {
		var prev RejectedIssue
		if err := json.Unmarshal(old, &prev); err == nil {
			r.Count, r.FirstSeen = prev.Count+1, prev.FirstSeen
		}
	} else {
		n, err := tx.counter(rejectedCounter(r.Instance))
		if err != nil {
			return false, fmt.Errorf("record rejected issue: %w", err)
		}
		if n >= MaxRejectedPerInstance {
			return false, nil
		}
		tx.addCounter(rejectedCounter(r.Instance), 1)
	}
	v, err := json.Marshal(r)
	if err != nil {
		return false, fmt.Errorf("record rejected issue %.64q: %w", r.IssueID, err)
	}
	if err := b.Put(key, v); err != nil {
		return false, fmt.Errorf("record rejected issue %.64q: %w", r.IssueID, err)
	}
	return true, nil
}

// DeleteRejected removes the record of the issue issueID of instance (a good version of it has
// been processed, or the operator dismisses it) and reports whether there was one.
func (tx *Tx) DeleteRejected(instance, issueID string) (bool, error) {
	if err := checkIncident(instance, issueID); err != nil {
		return false, fmt.Errorf("delete rejected issue: %w", err)
	}
	if err := tx.writable(); err != nil {
		return false, fmt.Errorf("delete rejected issue: %w", err)
	}
	b := tx.ktx.Bucket(bucketRejected)
	if b == nil {
		return false, nil
	}
	key := joinKey(0, instance, issueID)
	if b.Get(key) == nil {
		return false, nil
	}
	if err := b.Delete(key); err != nil {
		return false, fmt.Errorf("delete rejected issue %s/%s: %w", instance, issueID, err)
	}
	tx.addCounter(rejectedCounter(instance), -1)
	return true, nil
}

// RejectedCount returns how many rejected-issue records instance holds, in O(1).
func (tx *Tx) RejectedCount(instance string) (int, error) {
	if err := checkName("instance", instance); err != nil {
		return 0, fmt.Errorf("count rejected issues: %w", err)
	}
	n, err := tx.counter(rejectedCounter(instance))
	if err != nil {
		return 0, fmt.Errorf("count rejected issues: %w", err)
	}
	return n, nil
}

// ForEachRejected calls fn with every rejected-issue record of instance ("" = every instance),
// ordered by instance, then key. An error from fn stops the walk and is returned as is.
func (tx *Tx) ForEachRejected(instance string, fn func(RejectedIssue) error) error {
	b := tx.rejectedBucket()
	if b == nil {
		return nil
	}
	var prefix []byte
	if instance != "" {
		if err := checkName("instance", instance); err != nil {
			return fmt.Errorf("list rejected issues: %w", err)
		}
		prefix = append(joinKey(1, instance), sep)
	}
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		var r RejectedIssue
		if err := json.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("decode rejected issue %q: %w", k, err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

func (tx *Tx) rejectedBucket() kv.Bucket {
	if tx.closed {
		return nil
	}
	return tx.ktx.Bucket(bucketRejected)
}

// RejectedIssues lists the rejected-issue records of instance ("" = every instance), at most limit
// of them (limit <= 0: all).
func (s *Store) RejectedIssues(instance string, limit int) ([]RejectedIssue, error) {
	var out []RejectedIssue
	errLimit := errors.New("limit reached")
	err := s.View(func(tx *Tx) error {
		return tx.ForEachRejected(instance, func(r RejectedIssue) error {
			if limit > 0 && len(out) >= limit {
				return errLimit
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil && !errors.Is(err, errLimit) {
		return nil, fmt.Errorf("list rejected issues: %w", err)
	}
	return out, nil
}

// RejectedCounts returns how many rejected-issue records each instance holds (instances without
// any are absent), from the counters.
func (s *Store) RejectedCounts() (map[string]int, error) {
	out := map[string]int{}
	err := s.View(func(tx *Tx) error {
		b, err := tx.bucket(bucketCounters)
		if err != nil {
			return err
		}
		prefix := []byte(rejectedCounter(""))
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if len(v) == 8 {
				if n := int(int64(binary.BigEndian.Uint64(v))); n > 0 {
					out[string(k[len(prefix):])] = n
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count rejected issues: %w", err)
	}
	return out, nil
}
