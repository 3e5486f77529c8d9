package store

import (
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
)

// How a stored value holds its data (outbox values, the payload of dead letters, incident
// documents) is told by its first byte. Schema 7 writes one form, reads three:
//
//   - '{': the data itself, a JSON object. Every event line and incident document wizfetch writes
//     is one, so it is stored as it is: the caller's slice, kept by the engine until the commit
//     (see the package doc), with no codec byte to add and so no copy to make. An event line is
//     about 8 KB a delivered issue (its incident, and the same incident as the record's
//     document), which was a quarter of the daemon's allocation (BENCHMARKS.md, issue 18).
//   - codecRaw: a codec byte, then the data as it is. Data that is not a JSON object (tests and
//     tools store such), and everything schemas 5 and 6 wrote.
//   - codecS2: a codec byte, then the data compressed with S2 (github.com/klauspost/compress/s2,
//     its block format). Incident documents that migrate_v4.go carried over from schemas 2 to 4,
//     which compressed them; they stay so until the incident changes.
//
// Neither codec byte is '{', so the forms cannot be mistaken for one another. An older wizfetch
// (schema 6) would refuse a '{' value as an unknown codec, mid-run; the schema version (7) makes
// it refuse the whole store at its start instead.
//
// Incident documents used to be compressed as they were written: S2 halves them (an incident is
// mostly the JSON twice, rawJSON and the mapped fields), but compressing was the largest
// single cost of a page commit, 15-20 % of the CPU per issue (BENCHMARKS.md, issue 18). Stored as
// they are, documents take about twice the disk (about 3.5 KB an incident instead of 1.7 KB), which
// retention bounds; the pages of the file the daemon maps are the kernel's page cache, reclaimed
// under a memory limit like any other (BENCHMARKS.md).
const (
	codecRaw = 0x00
	codecS2  = 0x01
	// plainJSON is the first byte of a value that is its data, a JSON object.
	plainJSON = '{'
)

// maxDecodedLen bounds the length a compressed value may declare: the declared length is read
// before decoding and sizes the output buffer, so a damaged header must not make the daemon
// allocate gigabytes (an incident is at most a few MiB, incident.MaxIncidentBytes).
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

// raw stores data uncompressed: a codec byte and a copy of data.
func raw(data []byte) []byte {
	out := make([]byte, 1+len(data))
	out[0] = codecRaw
	copy(out[1:], data)
	return out
}

// stored returns the value that stores data: data itself when it is a JSON object (it becomes the
// engine's until the commit, so the caller must leave it unchanged until then), else raw(data).
func stored(data []byte) []byte {
	if len(data) > 0 && data[0] == plainJSON {
		return data
	}
	return raw(data)
}

// pack compresses data for storage (a new slice); the migrations write incident documents so.
func pack(data []byte) []byte {
	out := make([]byte, 1+s2.MaxEncodedLen(len(data)))
	out[0] = codecS2
	enc := s2.Encode(out[1:], data)
	return out[: 1+len(enc) : 1+len(enc)]
}

// unpack returns a stored value's data in a new slice (never aliasing v).
func unpack(v []byte) ([]byte, error) {
	if len(v) == 0 {
		return nil, errors.New("empty stored value")
	}
	switch v[0] {
	case plainJSON:
		return append([]byte(nil), v...), nil
	case codecRaw:
		return append([]byte(nil), v[1:]...), nil
	case codecS2:
		n, err := decodedLen(v[1:])
		if err != nil {
			return nil, fmt.Errorf("decompress stored value: %w", err)
		}
		out, err := s2.Decode(make([]byte, n), v[1:])
		if err != nil {
			return nil, fmt.Errorf("decompress stored value: %w", err)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("stored value has unknown codec %#x", v[0])
	}
}
