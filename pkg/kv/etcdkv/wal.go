package etcdkv

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
)

// A write-ahead record is a commit too large for one etcd transaction, stored before any of it is
// applied (see the package doc). Its keys, under the DB's prefix:
//
//	wal/<seq, 20 digits>/c<chunk, 6 digits>   the compressed record, cut into chunks
//	wal/<seq, 20 digits>/head                 chunk count and compressed length, written last
//
// The record itself is a version byte and then, per operation, its kind byte and uvarint-length-
// prefixed key, then end (range deletions) or value (puts); the whole is one zstd frame, whose
// checksum catches a damaged record.
const (
	walVersion  = 1
	walSeqWidth = 20
	walHead     = "head"
	walChunk    = "c"
)

// codec compresses and decompresses records; it is safe for concurrent use.
type codec struct {
	enc *zstd.Encoder
	dec *zstd.Decoder
}

// maxRecordBytes bounds a decompressed record, so a damaged head cannot make Recover allocate
// without limit.
const maxRecordBytes = 1 << 31

func newCodec() (*codec, error) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		return nil, fmt.Errorf("zstd encoder: %w", err)
	}
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(maxRecordBytes))
	if err != nil {
		return nil, fmt.Errorf("zstd decoder: %w", err)
	}
	return &codec{enc: enc, dec: dec}, nil
}

func (c *codec) close() {
	_ = c.enc.Close()
	c.dec.Close()
}

// encode serialises and compresses ops.
func (c *codec) encode(ops []op) []byte {
	n := 1
	for _, o := range ops {
		n += 1 + 3*binary.MaxVarintLen32 + len(o.key) + len(o.end) + len(o.val)
	}
	raw := make([]byte, 0, n)
	raw = append(raw, walVersion)
	for _, o := range ops {
		raw = append(raw, o.kind)
		raw = appendBytes(raw, o.key)
		switch o.kind {
		case opPut:
			raw = appendBytes(raw, string(o.val))
		case opDeleteRange:
			raw = appendBytes(raw, o.end)
		}
	}
	return c.enc.EncodeAll(raw, nil)
}

func appendBytes(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decode reverses encode.
func (c *codec) decode(compressed []byte) ([]op, error) {
	raw, err := c.dec.DecodeAll(compressed, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress: %w", err)
	}
	if len(raw) == 0 || raw[0] != walVersion {
		return nil, errors.New("unknown record version")
	}
	var ops []op
	for rest := raw[1:]; len(rest) > 0; {
		o := op{kind: rest[0]}
		var key, second []byte
		if key, rest, err = readBytes(rest[1:]); err != nil {
			return nil, fmt.Errorf("operation %d: %w", len(ops), err)
		}
		o.key = string(key)
		switch o.kind {
		case opPut, opDeleteRange:
			if second, rest, err = readBytes(rest); err != nil {
				return nil, fmt.Errorf("operation %d: %w", len(ops), err)
			}
			if o.kind == opPut {
				o.val = second
			} else {
				o.end = string(second)
			}
		case opDelete:
		default:
			return nil, fmt.Errorf("operation %d: unknown kind %d", len(ops), o.kind)
		}
		ops = append(ops, o)
	}
	return ops, nil
}

func readBytes(b []byte) (field, rest []byte, err error) {
	n, w := binary.Uvarint(b)
	if w <= 0 || n > uint64(len(b)-w) {
		return nil, nil, errors.New("truncated")
	}
	return b[w : w+int(n)], b[w+int(n):], nil
}

// recordPrefix is the prefix of every key of record seq.
func (db *DB) recordPrefix(seq uint64) string {
	return fmt.Sprintf("%s%0*d/", db.walPrefix, walSeqWidth, seq)
}

func chunkKey(record string, i int) string { return fmt.Sprintf("%s%s%06d", record, walChunk, i) }

// encodeHead is the head of a record of n chunks holding size compressed bytes.
func encodeHead(n, size int) []byte {
	b := binary.AppendUvarint(nil, uint64(n))
	return binary.AppendUvarint(b, uint64(size))
}

func decodeHead(b []byte) (n, size int, err error) {
	un, w := binary.Uvarint(b)
	if w <= 0 {
		return 0, 0, errors.New("malformed head")
	}
	us, w2 := binary.Uvarint(b[w:])
	if w2 <= 0 || w+w2 != len(b) || un > 1<<20 || us > maxRecordBytes {
		return 0, 0, errors.New("malformed head")
	}
	return int(un), int(us), nil
}

// parseWALKey splits a key under the WAL prefix (the prefix already cut) into the record's
// sequence number and the part after it.
func parseWALKey(rest string) (seq uint64, part string, err error) {
	digits, part, ok := strings.Cut(rest, "/")
	if !ok || len(digits) != walSeqWidth {
		return 0, "", errors.New("not <seq>/<part>")
	}
	seq, err = strconv.ParseUint(digits, 10, 64)
	if err != nil {
		return 0, "", fmt.Errorf("sequence: %w", err)
	}
	return seq, part, nil
}

// assemble checks a record's keys (prefix cut: "c000000" …, "head") and values against its head
// and returns the compressed record.
func assemble(record string, parts map[string][]byte) ([]byte, error) {
	head, ok := parts[walHead]
	if !ok {
		return nil, fmt.Errorf("record %s: no head", record)
	}
	n, size, err := decodeHead(head)
	if err != nil {
		return nil, fmt.Errorf("record %s%s: %w", record, walHead, err)
	}
	if len(parts) != n+1 {
		return nil, fmt.Errorf("record %s: %d chunks, head says %d", record, len(parts)-1, n)
	}
	var out []byte
	for i := range n {
		name := chunkKey("", i)
		chunk, ok := parts[name]
		if !ok {
			return nil, fmt.Errorf("record %s: chunk %s missing", record, name)
		}
		out = append(out, chunk...)
	}
	if len(out) != size {
		return nil, fmt.Errorf("record %s: %d bytes, head says %d", record, len(out), size)
	}
	return out, nil
}
