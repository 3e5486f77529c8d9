package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"
)

// incidentHead is the fixed part of a stored incident; the JSON lives in incident_docs under docSeq.
type incidentHead struct {
	docSeq          uint64 // 0: no JSON stored
	closedSeq       uint64 // the retention index entry's sequence (0: none); see closedKey
	version         int
	status          string
	lastEventID     string
	statusChangedAt *time.Time
	firstSeen       time.Time
	updatedAt       time.Time
	closedAt        *time.Time
}

// headFormat is the first byte of an incident value (schema 2 on). Bump it whenever the layout of
// appendHead changes incompatibly.
const headFormat = 3

// appendHead encodes h: format byte, 8-byte doc seq, 8-byte retention index seq, uvarint version,
// two length-prefixed strings and four times (a presence byte, then UnixNano as 8 bytes).
func appendHead(dst []byte, h *incidentHead) []byte {
	dst = append(dst, headFormat)
	dst = binary.BigEndian.AppendUint64(dst, h.docSeq)
	dst = binary.BigEndian.AppendUint64(dst, h.closedSeq)
	dst = binary.AppendUvarint(dst, uint64(h.version))
	dst = binary.AppendUvarint(dst, uint64(len(h.status)))
	dst = append(dst, h.status...)
	dst = binary.AppendUvarint(dst, uint64(len(h.lastEventID)))
	dst = append(dst, h.lastEventID...)
	dst = appendTime(dst, h.statusChangedAt)
	dst = appendTime(dst, &h.firstSeen)
	dst = appendTime(dst, &h.updatedAt)
	return appendTime(dst, h.closedAt)
}

func appendTime(dst []byte, t *time.Time) []byte {
	if t == nil || t.IsZero() {
		return append(dst, 0)
	}
	dst = append(dst, 1)
	return binary.BigEndian.AppendUint64(dst, uint64(t.UnixNano()))
}

// headReader decodes what appendHead wrote, remembering the first error.
type headReader struct {
	b   []byte
	err error
}

func (r *headReader) fail() {
	if r.err == nil {
		r.err = errors.New("truncated incident value")
	}
	r.b = nil
}

func (r *headReader) u64() uint64 {
	if len(r.b) < 8 {
		r.fail()
		return 0
	}
	v := binary.BigEndian.Uint64(r.b)
	r.b = r.b[8:]
	return v
}

func (r *headReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *headReader) str() string {
	n := r.uvarint()
	if uint64(len(r.b)) < n {
		r.fail()
		return ""
	}
	s := string(r.b[:n])
	r.b = r.b[n:]
	return s
}

func (r *headReader) time() *time.Time {
	if len(r.b) < 1 {
		r.fail()
		return nil
	}
	present := r.b[0]
	r.b = r.b[1:]
	if present == 0 {
		return nil
	}
	t := time.Unix(0, int64(r.u64())).UTC()
	return &t
}

// decodeHead decodes an incident value; anything after the head is an error.
func decodeHead(v []byte) (incidentHead, error) {
	h, rest, err := readHead(v)
	if err == nil && len(rest) > 0 {
		err = fmt.Errorf("incident value has %d bytes after its head", len(rest))
	}
	return h, err
}

// readHead decodes the head at the start of v and returns what follows it (schema 4 heads could be
// followed by outbox references, which migrate_v4.go drops).
func readHead(v []byte) (incidentHead, []byte, error) {
	var h incidentHead
	if len(v) == 0 || v[0] != headFormat {
		return h, nil, errors.New("unknown incident value format")
	}
	r := headReader{b: v[1:]}
	h.docSeq = r.u64()
	h.closedSeq = r.u64()
	h.version = int(r.uvarint())
	h.status = r.str()
	h.lastEventID = r.str()
	h.statusChangedAt = r.time()
	if t := r.time(); t != nil {
		h.firstSeen = *t
	}
	if t := r.time(); t != nil {
		h.updatedAt = *t
	}
	h.closedAt = r.time()
	return h, r.b, r.err
}

// incidentKey is instance 0 timekey(createdAt) issueID.
func incidentKey(instance string, createdAt time.Time, issueID string) []byte {
	k := joinKey(8+len(issueID), instance)
	k = append(k, sep)
	tk := timeKey(createdAt)
	k = append(k, tk[:]...)
	return append(k, issueID...)
}

// splitIncidentKey returns the parts of an incidentKey.
func splitIncidentKey(k []byte) (instance string, createdAt time.Time, issueID string, err error) {
	i := bytes.IndexByte(k, sep)
	if i <= 0 || len(k) < i+1+8+1 {
		return "", time.Time{}, "", fmt.Errorf("malformed incident key %q", k)
	}
	return string(k[:i]), parseTimeKey(k[i+1 : i+9]), string(k[i+9:]), nil
}

// storableTime is t as the head stores it: nil for nil or the zero time (the head reads a zero time
// back as absent), and clamped to the range UnixNano can represent (years 1678 to 2262), so that
// what the retention index is keyed by is exactly what the head reads back.
func storableTime(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	lo, hi := time.Unix(0, math.MinInt64+1).UTC(), time.Unix(0, math.MaxInt64).UTC()
	v := t.UTC()
	switch {
	case v.Before(lo):
		v = lo
	case v.After(hi):
		v = hi
	}
	return &v
}
