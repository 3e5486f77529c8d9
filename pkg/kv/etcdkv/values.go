package etcdkv

import (
	"errors"
	"fmt"
)

// Stored values carry one leading byte: valueRaw, then the value as it is; or valueZstd, then the
// value compressed with zstd. Values above compressAbove are compressed, so that a value up to the
// store's largest (an event line of 2 MiB, incident.MaxEventBytes) fits etcd's request limit (1.5
// MiB by default): JSON compresses several times over. Smaller values, nearly all of them, are
// stored as they are and cost one byte. The byte applies to every value under data/ — keys,
// markers, sequences, posts — and to none of the write-ahead records (they are compressed whole).
const (
	valueRaw      byte = 0
	valueZstd     byte = 1
	compressAbove      = 64 << 10
)

// maxValueBytes bounds a decompressed value, so a damaged one cannot make a read allocate without
// limit (the store's largest value is 2 MiB).
const maxValueBytes = 64 << 20

// encodeValue returns the stored form of v.
func (c *codec) encodeValue(v []byte) []byte {
	if len(v) <= compressAbove {
		out := make([]byte, 1+len(v))
		out[0] = valueRaw
		copy(out[1:], v)
		return out
	}
	return c.enc.EncodeAll(v, []byte{valueZstd})
}

// storedSize is the size of v's stored form (it compresses a large v to know).
func (c *codec) storedSize(v []byte) int {
	if len(v) <= compressAbove {
		return 1 + len(v)
	}
	return len(c.encodeValue(v))
}

// decodeValue returns the value of a stored form; a value stored raw is returned in place.
func (c *codec) decodeValue(stored []byte) ([]byte, error) {
	if len(stored) == 0 {
		return nil, errors.New("stored value has no header byte")
	}
	switch stored[0] {
	case valueRaw:
		return stored[1:], nil
	case valueZstd:
		v, err := c.dec.DecodeAll(stored[1:], nil)
		if err != nil {
			return nil, fmt.Errorf("decompress stored value: %w", err)
		}
		if len(v) > maxValueBytes {
			return nil, fmt.Errorf("stored value decompresses to %d bytes", len(v))
		}
		return nonNil(v), nil
	default:
		return nil, fmt.Errorf("stored value has unknown header byte %d", stored[0])
	}
}

// value decodes a stored value read by this transaction; a damaged one is recorded as the
// transaction's error (View and Update return it) and reads as absent.
func (t *tx) value(key string, stored []byte) []byte {
	v, err := t.db.codec.decodeValue(stored)
	if err != nil {
		if t.err == nil {
			t.err = fmt.Errorf("read %q: %w", key, err)
		}
		return nil
	}
	return v
}
