package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/klauspost/compress/s2"
)

// Large values (incident JSON, event lines in the outbox and dead letter) are stored compressed with
// S2: an incident is mostly the JSON twice (rawJSON and the mapped fields), which S2 shrinks
// about 2×, and 4× with the incident dictionary (dict.go), at ~1 GB/s. Fewer bytes per page commit
// means less to write and fsync, a smaller file, and a smaller mmap (which counts in the daemon's
// RSS). A value starts with a codec byte so other encodings can follow.
//
// Outbox values are not compressed on their own: they live only until their sink acknowledges them
// (normally within the second), so compressing them would cost CPU on the hot path for no lasting
// gain. An event the feed emits refers to its incident's document (codecDocRef, docref.go); a copy
// of such an event that must stand alone (a dead letter, or an event whose document is replaced
// before delivery) is codecEvent or codecEventDict1: its line's prefix and suffix raw, and between
// them the incident as the store compressed it (see AppendPackedEvent). Other events (pushes,
// replays) are stored raw (codecRaw); a dead letter keeps, and a requeue moves back, the value as it
// was stored.
const (
	codecRaw    = 0x00
	codecS2     = 0x01
	codecEvent  = 0x02
	codecDocRef = 0x03 // an event whose incident is a document of incident_docs (docref.go)
	// codecS2Dict1 and codecEventDict1 are codecS2 and codecEvent with the incident dictionary
	// (dict.go): what AppendPackedIncident writes, and an event holding such an incident.
	codecS2Dict1    = 0x04
	codecEventDict1 = 0x05
)

// maxDecodedLen bounds the length a compressed value may declare: the declared length is read
// before decoding and sizes the output buffer, so a damaged header must not make the daemon
// allocate gigabytes (an incident is a few KiB; Wiz's largest stay far below this).
const maxDecodedLen = 64 << 20

// decodedLen returns the length an S2 block declares, refusing one above maxDecodedLen.
func decodedLen(block []byte) (int, error) {
	n, err := s2.DecodedLen(block)
	if err != nil {
		return 0, err
	}
	if n > maxDecodedLen {
		return 0, fmt.Errorf("declares %d bytes, more than the %d a stored value may hold", n, maxDecodedLen)
	}
	return n, nil
}

// appendEventValue appends, for a codecEvent or codecEventDict1 value v, the line it stands for to dst.
func appendEventValue(dst, v []byte) ([]byte, error) {
	rest := v[1:]
	prefix, rest, err := lengthPrefixed(rest)
	if err != nil {
		return dst, fmt.Errorf("event prefix: %w", err)
	}
	suffix, block, err := lengthPrefixed(rest)
	if err != nil {
		return dst, fmt.Errorf("event suffix: %w", err)
	}
	start := len(dst)
	dst = append(dst, prefix...)
	if dst, err = appendBlock(dst, v[0], block); err != nil {
		return dst[:start], fmt.Errorf("decompress event: %w", err)
	}
	return append(dst, suffix...), nil
}

// lengthPrefixed splits b into a uvarint-length-prefixed field and what follows it.
func lengthPrefixed(b []byte) (field, rest []byte, err error) {
	n, size := binary.Uvarint(b)
	if size <= 0 || n > uint64(len(b)-size) {
		return nil, nil, errors.New("truncated value")
	}
	return b[size : size+int(n)], b[size+int(n):], nil
}

// raw stores data uncompressed: a codec byte and a copy of data.
func raw(data []byte) []byte {
	out := make([]byte, 1+len(data))
	out[0] = codecRaw
	copy(out[1:], data)
	return out
}

// AppendPackedIncident appends an incident's JSON compressed the way the store keeps it to dst and
// returns the extended buffer; the packed value is its tail from len(dst). A caller may do this
// outside the write transaction (many incidents into one buffer) and hand the value over in
// IncidentRecord.PackedIncident.
func AppendPackedIncident(dst, incidentJSON []byte) []byte {
	return appendDict1(dst, codecS2Dict1, incidentJSON)
}

// packedDoc reports whether v is a compressed incident (a document an event may refer to).
func packedDoc(v []byte) bool { return len(v) > 1 && (v[0] == codecS2 || v[0] == codecS2Dict1) }

// pack compresses data for storage.
func pack(data []byte) []byte {
	out := make([]byte, 1+s2.MaxEncodedLen(len(data)))
	out[0] = codecS2
	enc := s2.Encode(out[1:], data)
	return out[: 1+len(enc) : 1+len(enc)]
}

// unpack returns the stored value's data in a new slice (never aliasing v).
func unpack(v []byte) ([]byte, error) { return unpackAppend(nil, v) }

// unpackAppend appends the stored value's data to dst (never aliasing v).
func unpackAppend(dst, v []byte) ([]byte, error) {
	if len(v) == 0 {
		return dst, errors.New("empty stored value")
	}
	switch v[0] {
	case codecRaw:
		return append(dst, v[1:]...), nil
	case codecS2:
		n, err := decodedLen(v[1:])
		if err != nil {
			return dst, fmt.Errorf("decompress stored value: %w", err)
		}
		dst = slices.Grow(dst, n)
		out, err := s2.Decode(dst[len(dst):len(dst)+n], v[1:])
		if err != nil {
			return dst, fmt.Errorf("decompress stored value: %w", err)
		}
		return dst[:len(dst)+len(out)], nil
	case codecS2Dict1:
		out, err := appendBlock(dst, v[0], v[1:])
		if err != nil {
			return dst, fmt.Errorf("decompress stored value: %w", err)
		}
		return out, nil
	case codecEvent, codecEventDict1:
		return appendEventValue(dst, v)
	case codecDocRef:
		return dst, errDocRef
	default:
		return dst, fmt.Errorf("stored value has unknown codec %#x", v[0])
	}
}
