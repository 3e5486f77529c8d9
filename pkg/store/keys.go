package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// sep separates the parts of a composite key; names never contain it.
const sep = 0

// checkName refuses names that would make composite keys ambiguous.
func checkName(kind, v string) error {
	if v == "" {
		return fmt.Errorf("empty %s", kind)
	}
	if strings.IndexByte(v, sep) >= 0 {
		return fmt.Errorf("%s %q contains a NUL byte", kind, v)
	}
	return nil
}

// joinKey builds part0 NUL part1 NUL ... as a fresh slice with room for extra trailing bytes.
func joinKey(extra int, parts ...string) []byte {
	n := extra
	for _, p := range parts {
		n += len(p) + 1
	}
	k := make([]byte, 0, n)
	for i, p := range parts {
		if i > 0 {
			k = append(k, sep)
		}
		k = append(k, p...)
	}
	return k
}

// splitKey2 splits a two-part composite key.
func splitKey2(k []byte) (string, string, bool) {
	a, b, ok := strings.Cut(string(k), "\x00")
	return a, b, ok
}

// timeKey encodes t as 8 bytes whose byte order is time order at microsecond precision.
func timeKey(t time.Time) [8]byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(t.UnixMicro())^(1<<63))
	return b
}

// parseTimeKey decodes timeKey.
func parseTimeKey(b []byte) time.Time {
	return time.UnixMicro(int64(binary.BigEndian.Uint64(b) ^ (1 << 63))).UTC()
}

// seqKey encodes a sequence number as a big-endian key.
func seqKey(seq uint64) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint64(b, seq)
	return b
}

const frameFormat = 1

// frame builds format byte, uvarint(len(header)), header, payload.
func frame(header, payload []byte) []byte {
	out := make([]byte, 0, 1+binary.MaxVarintLen64+len(header)+len(payload))
	out = append(out, frameFormat)
	out = binary.AppendUvarint(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, payload...)
}

// unframe splits a framed value; the returned slices alias v.
func unframe(v []byte) (header, payload []byte, err error) {
	if len(v) == 0 || v[0] != frameFormat {
		return nil, nil, errors.New("unknown value format")
	}
	n, w := binary.Uvarint(v[1:])
	if w <= 0 || uint64(len(v)-1-w) < n {
		return nil, nil, errors.New("truncated value")
	}
	start := 1 + w
	return v[start : start+int(n)], v[start+int(n):], nil
}
