package store

import (
	"encoding/binary"
	"fmt"
)

// Counters (the bucket "counters", see the package doc) keep depths and counts O(1). A transaction
// collects its changes in Tx.deltas and writes each changed counter once, before the commit.

// counter returns a counter's value as this transaction sees it.
func (tx *Tx) counter(key string) (int, error) {
	b, err := tx.bucket(bucketCounters)
	if err != nil {
		return 0, err
	}
	var v int64
	if raw := b.Get([]byte(key)); len(raw) == 8 {
		v = int64(binary.BigEndian.Uint64(raw))
	}
	v += tx.deltas[key]
	if v < 0 {
		v = 0
	}
	return int(v), nil
}

// addCounter records a counter change; flushCounters writes it before the commit.
func (tx *Tx) addCounter(key string, d int64) {
	if tx.deltas == nil {
		tx.deltas = make(map[string]int64, 8)
	}
	tx.deltas[key] += d
}

// setCounter makes a counter read as v from now on in this transaction.
func (tx *Tx) setCounter(key string, v int) error {
	cur, err := tx.counter(key)
	if err != nil {
		return err
	}
	tx.addCounter(key, int64(v-cur))
	return nil
}

func (tx *Tx) flushCounters() error {
	if len(tx.deltas) == 0 {
		return nil
	}
	b, err := tx.bucket(bucketCounters)
	if err != nil {
		return err
	}
	for key, d := range tx.deltas {
		if d == 0 {
			continue
		}
		k := []byte(key) // one conversion: a key given to the engine escapes
		var v int64
		if raw := b.Get(k); len(raw) == 8 {
			v = int64(binary.BigEndian.Uint64(raw))
		}
		v += d
		if v <= 0 {
			// A negative count would be a bookkeeping bug; never let it leak into depths.
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("write counter %q: %w", key, err)
			}
			continue
		}
		if err := b.Put(k, binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v))); err != nil {
			return fmt.Errorf("write counter %q: %w", key, err)
		}
	}
	tx.deltas = nil
	return nil
}
