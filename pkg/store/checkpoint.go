package store

import (
	"encoding/json"
	"fmt"
	"time"
)

// Checkpoint is where a feed of one instance stands (DESIGN.md §2.3, §2.5).
type Checkpoint struct {
	// Watermark is the largest timestamp Wiz returned for this feed; zero means none yet.
	Watermark time.Time `json:"watermark"`
	// WindowAfter is the pinned `after` of the open window; zero means no window is open.
	WindowAfter time.Time `json:"window_after"`
	// Cursor is the endCursor that continues the open window; "" means its first page.
	Cursor string `json:"cursor,omitempty"`
	// FirstStart is the first-run pin (now - lookback), persisted on the first attempt.
	FirstStart time.Time `json:"first_start"`
	// UpdatedAt is the local time of the last write.
	UpdatedAt time.Time `json:"updated_at"`
}

// CheckpointEntry is one checkpoint with its key.
type CheckpointEntry struct {
	Instance   string     `json:"instance"`
	Feed       string     `json:"feed"`
	Checkpoint Checkpoint `json:"checkpoint"`
}

// Checkpoint returns the checkpoint of (instance, feed); ok is false when there is none.
func (tx *Tx) Checkpoint(instance, feed string) (Checkpoint, bool, error) {
	var cp Checkpoint
	if err := checkFeed(instance, feed); err != nil {
		return cp, false, fmt.Errorf("read checkpoint: %w", err)
	}
	b, err := tx.bucket(bucketCheckpoints)
	if err != nil {
		return cp, false, fmt.Errorf("read checkpoint: %w", err)
	}
	raw := b.Get(joinKey(0, instance, feed))
	if raw == nil {
		return cp, false, nil
	}
	if err := json.Unmarshal(raw, &cp); err != nil {
		return cp, false, fmt.Errorf("decode checkpoint %s/%s: %w", instance, feed, err)
	}
	return cp, true, nil
}

// PutCheckpoint replaces the checkpoint of (instance, feed).
func (tx *Tx) PutCheckpoint(instance, feed string, cp Checkpoint) error {
	if err := checkFeed(instance, feed); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	if err := tx.writable(); err != nil {
		return fmt.Errorf("write checkpoint %s/%s: %w", instance, feed, err)
	}
	b, err := tx.bucket(bucketCheckpoints)
	if err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	raw, err := json.Marshal(cp)
	if err != nil {
		return fmt.Errorf("encode checkpoint %s/%s: %w", instance, feed, err)
	}
	if err := b.Put(joinKey(0, instance, feed), raw); err != nil {
		return fmt.Errorf("write checkpoint %s/%s: %w", instance, feed, err)
	}
	return nil
}

// DeleteCheckpoint removes the checkpoint of (instance, feed); a missing one is not an error.
func (tx *Tx) DeleteCheckpoint(instance, feed string) error {
	if err := checkFeed(instance, feed); err != nil {
		return fmt.Errorf("delete checkpoint: %w", err)
	}
	if err := tx.writable(); err != nil {
		return fmt.Errorf("delete checkpoint %s/%s: %w", instance, feed, err)
	}
	b, err := tx.bucket(bucketCheckpoints)
	if err != nil {
		return fmt.Errorf("delete checkpoint: %w", err)
	}
	if err := b.Delete(joinKey(0, instance, feed)); err != nil {
		return fmt.Errorf("delete checkpoint %s/%s: %w", instance, feed, err)
	}
	return nil
}

// Checkpoints lists every checkpoint, ordered by instance then feed.
func (tx *Tx) Checkpoints() ([]CheckpointEntry, error) {
	b, err := tx.bucket(bucketCheckpoints)
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	var out []CheckpointEntry
	err = b.ForEach(func(k, v []byte) error {
		instance, feed, ok := splitKey2(k)
		if !ok {
			return fmt.Errorf("malformed checkpoint key %q", k)
		}
		e := CheckpointEntry{Instance: instance, Feed: feed}
		if err := json.Unmarshal(v, &e.Checkpoint); err != nil {
			return fmt.Errorf("decode checkpoint %s/%s: %w", instance, feed, err)
		}
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list checkpoints: %w", err)
	}
	return out, nil
}

func checkFeed(instance, feed string) error {
	if err := checkName("instance", instance); err != nil {
		return err
	}
	return checkName("feed", feed)
}
