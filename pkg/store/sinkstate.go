package store

import (
	"bytes"
	"fmt"
)

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
