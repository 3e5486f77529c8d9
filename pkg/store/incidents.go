package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"time"

	bolt "go.etcd.io/bbolt"
)

// IncidentRecord is wizfetch's memory of one issue's incident: what it last emitted, for dedup of
// status changes (DESIGN.md §3), and the freshest incident JSON, for replay and sinks.
//
// An incident is keyed by (Instance, CreatedAt, IssueID): Wiz's createdAt never changes, and keying by
// it makes the created feed — which walks issues in createdAt order — read and write only the tail of
// the index instead of a random leaf per issue (see the package doc).
type IncidentRecord struct {
	Instance string
	IssueID  string
	// Status is the issue_status of the LAST EVENT emitted for this incident.
	Status string
	// StatusChangedAt is the issue's statusChangedAt in the last event.
	StatusChangedAt *time.Time
	// CreatedAt is the issue's createdAt (microsecond precision, as Wiz returns it). It is part of the
	// record's key.
	CreatedAt time.Time
	// Incident is the latest incident JSON (mapped from the freshest issue seen).
	Incident []byte
	// PackedIncident, when set by a writer, is Incident as AppendPackedIncident packs it, computed
	// outside the transaction; PutIncident stores it instead of compressing Incident itself. bbolt
	// keeps a reference until the transaction ends, so the caller must not modify it before then.
	// Reads leave it nil.
	PackedIncident []byte
	// Version is bumped on every event.
	Version int
	// LastEventID is the event_id of the last event.
	LastEventID string
	// FirstSeen and UpdatedAt are local clock times.
	FirstSeen time.Time
	UpdatedAt time.Time
	// ClosedAt is when the issue was last seen RESOLVED or REJECTED (drives retention); nil if open.
	ClosedAt *time.Time
}

// incidentHead is the fixed part of a stored incident; the JSON lives in incident_docs under DocSeq.
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
	// refs are the outbox entries of the last event that hold docSeq by reference (codecDocRef)
	// instead of a copy; before the document goes, they get a copy (see detachRefs).
	refs []outboxRef
}

// headFormat is the first byte of an incident value (schema 2). Bump it whenever the layout of
// appendHead changes incompatibly. (Schema 4's refs only append an optional section, which a
// schema-3 reader would skip; the schema version keeps such readers away anyway.)
const headFormat = 3

// appendHead encodes h: format byte, 8-byte doc seq, 8-byte retention index seq, uvarint version,
// two length-prefixed strings and four times (a presence byte, then UnixNano as 8 bytes), then, only
// when there are refs (schema 4), a uvarint count and each ref's length-prefixed sink and 8-byte seq.
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
	dst = appendTime(dst, h.closedAt)
	if len(h.refs) > 0 {
		dst = binary.AppendUvarint(dst, uint64(len(h.refs)))
		for _, ref := range h.refs {
			dst = binary.AppendUvarint(dst, uint64(len(ref.sink)))
			dst = append(dst, ref.sink...)
			dst = binary.BigEndian.AppendUint64(dst, ref.seq)
		}
	}
	return dst
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

func decodeHead(v []byte) (incidentHead, error) {
	var h incidentHead
	if len(v) == 0 || v[0] != headFormat {
		return h, errors.New("unknown incident value format")
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
	if r.err == nil && len(r.b) > 0 {
		n := r.uvarint()
		if n > uint64(len(r.b)) {
			r.fail()
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			h.refs = append(h.refs, outboxRef{sink: r.str(), seq: r.u64()})
		}
	}
	return h, r.err
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
	return string(k[:i]), timeFromKey(k[i+1 : i+9]), string(k[i+9:]), nil
}

// timeFromKey inverts timeKey.
func timeFromKey(b []byte) time.Time {
	return time.UnixMicro(int64(binary.BigEndian.Uint64(b) ^ (1 << 63))).UTC()
}

// IncidentAt returns a copy of the record of the issue issueID created at createdAt; ok is false when
// there is none. This is the lookup of the hot path: O(log n), and for the created feed always near
// the index's tail.
func (tx *Tx) IncidentAt(instance, issueID string, createdAt time.Time) (*IncidentRecord, bool, error) {
	if err := checkIncident(instance, issueID); err != nil {
		return nil, false, fmt.Errorf("read incident: %w", err)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return nil, false, fmt.Errorf("read incident: %w", err)
	}
	key := incidentKey(instance, createdAt, issueID)
	v := tx.getIncident(b, key)
	if v == nil {
		tx.absentIncident = key
		return nil, false, nil
	}
	rec, err := tx.decodeIncident(key, v)
	if err != nil {
		return nil, false, err
	}
	return rec, true, nil
}

// HasIncidentAt reports whether an incident exists for the issue issueID created at createdAt,
// without decoding it.
func (tx *Tx) HasIncidentAt(instance, issueID string, createdAt time.Time) (bool, error) {
	if err := checkIncident(instance, issueID); err != nil {
		return false, fmt.Errorf("read incident: %w", err)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return false, fmt.Errorf("read incident: %w", err)
	}
	key := incidentKey(instance, createdAt, issueID)
	if tx.getIncident(b, key) != nil {
		return true, nil
	}
	tx.absentIncident = key
	return false, nil
}

// getIncident is b.Get(key) on the incidents index b, skipped for a key above the index's tail.
func (tx *Tx) getIncident(b *bolt.Bucket, key []byte) []byte {
	if !tx.incidentsTailKnown {
		if k, _ := b.Cursor().Last(); k != nil {
			tx.incidentsTail = bytes.Clone(k)
		}
		tx.incidentsTailKnown = true
	}
	if tx.incidentsTail == nil || bytes.Compare(key, tx.incidentsTail) > 0 {
		return nil
	}
	return b.Get(key)
}

// Incident returns a copy of the record of (instance, issueID) when only the issue id is known (the
// operator's `incidents show`, the API): it walks the instance's index, which holds no incident JSON
// (about 100 bytes per incident), so it costs O(incidents) but reads little. Code that has the
// issue's createdAt uses IncidentAt.
func (tx *Tx) Incident(instance, issueID string) (*IncidentRecord, bool, error) {
	if err := checkIncident(instance, issueID); err != nil {
		return nil, false, fmt.Errorf("read incident: %w", err)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return nil, false, fmt.Errorf("read incident: %w", err)
	}
	prefix := append(joinKey(1, instance), sep)
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if len(k) == len(prefix)+8+len(issueID) && string(k[len(prefix)+8:]) == issueID {
			rec, err := tx.decodeIncident(k, v)
			if err != nil {
				return nil, false, err
			}
			return rec, true, nil
		}
	}
	return nil, false, nil
}

// PutIncident inserts or replaces rec (keyed by rec.Instance, rec.CreatedAt, rec.IssueID). The store
// keeps its own copy of rec.Incident.
func (tx *Tx) PutIncident(rec *IncidentRecord) error {
	if rec == nil {
		return errors.New("write incident: nil record")
	}
	if err := checkIncident(rec.Instance, rec.IssueID); err != nil {
		return fmt.Errorf("write incident: %w", err)
	}
	if err := tx.writable(); err != nil {
		return fmt.Errorf("write incident %s/%s: %w", rec.Instance, rec.IssueID, err)
	}
	if err := tx.putIncident(rec, true, nil); err != nil {
		return fmt.Errorf("write incident %s/%s: %w", rec.Instance, rec.IssueID, err)
	}
	return nil
}

// putIncident writes rec; count says whether a new incident bumps the instance's counter. enqueue,
// when set, is called with the new document's sequence once the document is stored, and returns the
// outbox entries that hold it by reference (they are recorded in the head).
func (tx *Tx) putIncident(rec *IncidentRecord, count bool, enqueue func(docSeq uint64) ([]outboxRef, error)) error {
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return err
	}
	docs, err := tx.bucket(bucketIncidentDocs)
	if err != nil {
		return err
	}
	closed, err := tx.bucket(bucketIncidentsClosed)
	if err != nil {
		return err
	}
	key := incidentKey(rec.Instance, rec.CreatedAt, rec.IssueID)
	var old *incidentHead
	var v []byte
	if !bytes.Equal(tx.absentIncident, key) { // the feed has just looked a new incident up
		v = b.Get(key)
	}
	tx.absentIncident = nil
	if v != nil {
		h, err := decodeHead(v)
		if err != nil {
			return fmt.Errorf("previous record: %w", err)
		}
		old = &h
		if err := tx.dropDoc(docs, &h); err != nil {
			return fmt.Errorf("drop the previous incident JSON: %w", err)
		}
	} else {
		if count {
			tx.addCounter(incidentCounter(rec.Instance), 1)
		}
		tx.noteIncident(rec.Instance, rec.IssueID)
	}
	head := incidentHead{
		version: rec.Version, status: rec.Status, lastEventID: rec.LastEventID,
		statusChangedAt: rec.StatusChangedAt, firstSeen: rec.FirstSeen, updatedAt: rec.UpdatedAt,
		closedAt: rec.ClosedAt,
	}
	if doc := rec.PackedIncident; len(doc) > 0 || len(rec.Incident) > 0 {
		// Documents are appended in sequence, so a backfill writes them as full pages at the tail.
		if head.docSeq, err = docs.NextSequence(); err != nil {
			return fmt.Errorf("number the incident JSON: %w", err)
		}
		docs.FillPercent = 1
		if len(doc) == 0 {
			doc = pack(rec.Incident)
		}
		if err := docs.Put(seqKey(head.docSeq), doc); err != nil {
			return fmt.Errorf("store the incident JSON: %w", err)
		}
	}
	if enqueue != nil {
		if head.docSeq == 0 {
			return errors.New("an event by reference needs the incident's JSON")
		}
		if head.refs, err = enqueue(head.docSeq); err != nil {
			return err
		}
	}
	// Keep the retention index in step with ClosedAt.
	head.closedAt = storableTime(rec.ClosedAt)
	var oldClosed *time.Time
	if old != nil {
		oldClosed, head.closedSeq = old.closedAt, old.closedSeq
	}
	if !sameClosed(oldClosed, head.closedAt) {
		if old != nil && old.closedSeq != 0 && old.closedAt != nil {
			if err := closed.Delete(closedKey(*old.closedAt, old.closedSeq)); err != nil {
				return fmt.Errorf("retention index: %w", err)
			}
			tx.addCounter(counterClosed, -1)
		}
		head.closedSeq = 0
		if head.closedAt != nil {
			if head.closedSeq, err = closed.NextSequence(); err != nil {
				return fmt.Errorf("retention index: %w", err)
			}
			if err := closed.Put(closedKey(*head.closedAt, head.closedSeq), key); err != nil {
				return fmt.Errorf("retention index: %w", err)
			}
			tx.addCounter(counterClosed, 1)
		}
	}
	b.FillPercent = 0.9 // mostly appended at the tail (createdAt order)
	size := 72 + len(rec.Status) + len(rec.LastEventID)
	for _, ref := range head.refs {
		size += 10 + len(ref.sink) + 8
	}
	if err := b.Put(key, appendHead(make([]byte, 0, size), &head)); err != nil {
		return err
	}
	if tx.incidentsTailKnown && bytes.Compare(key, tx.incidentsTail) > 0 {
		tx.incidentsTail = key // a fresh slice (incidentKey), kept by nothing else
	}
	return nil
}

// ForEachIncident calls fn with a copy of every incident of instance ("" = every instance), ordered by
// instance, then createdAt, then issue id. An error from fn stops the walk and is returned as is.
func (tx *Tx) ForEachIncident(instance string, fn func(*IncidentRecord) error) error {
	return tx.ForEachIncidentAfter(instance, nil, fn)
}

// IncidentPos is a position in the incidents' order: instance, then createdAt (microseconds), then
// issue id.
type IncidentPos struct {
	Instance  string
	CreatedAt time.Time
	IssueID   string
}

// ForEachIncidentAfter is ForEachIncident starting strictly after pos (nil: from the start): it seeks
// there instead of walking what comes before, so a client paging through a large store with a
// cursor reads only its pages.
func (tx *Tx) ForEachIncidentAfter(instance string, pos *IncidentPos, fn func(*IncidentRecord) error) error {
	var prefix []byte
	if instance != "" {
		if err := checkName("instance", instance); err != nil {
			return fmt.Errorf("list incidents: %w", err)
		}
		prefix = append(joinKey(1, instance), sep)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return fmt.Errorf("list incidents: %w", err)
	}
	start, skip := prefix, []byte(nil)
	if pos != nil && pos.Instance != "" && pos.IssueID != "" {
		if k := incidentKey(pos.Instance, pos.CreatedAt, pos.IssueID); bytes.Compare(k, prefix) > 0 {
			start, skip = k, k
		}
	}
	c := b.Cursor()
	for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		if skip != nil && bytes.Equal(k, skip) {
			continue
		}
		rec, err := tx.decodeIncident(k, v)
		if err != nil {
			return err
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

// IncidentCount returns how many incidents instance holds ("" = all instances), in O(instances).
func (tx *Tx) IncidentCount(instance string) (int, error) {
	if instance != "" {
		n, err := tx.counter(incidentCounter(instance))
		if err != nil {
			return 0, fmt.Errorf("count incidents: %w", err)
		}
		return n, nil
	}
	st, err := tx.stats()
	if err != nil {
		return 0, fmt.Errorf("count incidents: %w", err)
	}
	total := 0
	for _, n := range st.Incidents {
		total += n
	}
	return total, nil
}

// PruneClosedIncidents deletes the incidents whose ClosedAt is before `before` (microsecond
// precision) and returns how many. It walks the retention index only up to before's day.
func (tx *Tx) PruneClosedIncidents(before time.Time) (int, error) {
	if err := tx.writable(); err != nil {
		return 0, fmt.Errorf("prune incidents: %w", err)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return 0, fmt.Errorf("prune incidents: %w", err)
	}
	docs, err := tx.bucket(bucketIncidentDocs)
	if err != nil {
		return 0, fmt.Errorf("prune incidents: %w", err)
	}
	closed, err := tx.bucket(bucketIncidentsClosed)
	if err != nil {
		return 0, fmt.Errorf("prune incidents: %w", err)
	}
	// Every entry of a day before before's day is due; entries of that day are checked one by one.
	limit := closedKey(before, ^uint64(0))
	type entry struct{ key, incident []byte }
	var seen []entry
	c := closed.Cursor()
	for k, v := c.First(); k != nil && bytes.Compare(k, limit) <= 0; k, v = c.Next() {
		seen = append(seen, entry{bytes.Clone(k), bytes.Clone(v)})
	}
	n := 0
	for _, e := range seen {
		if len(e.key) != 16 {
			return n, fmt.Errorf("prune incidents: malformed index key %q", e.key)
		}
		v := b.Get(e.incident)
		var h incidentHead
		if v != nil {
			if h, err = decodeHead(v); err != nil {
				return n, fmt.Errorf("prune incidents: %q: %w", e.incident, err)
			}
		}
		current := v != nil && h.closedAt != nil && h.closedSeq == binary.BigEndian.Uint64(e.key[8:])
		if current && !h.closedAt.Before(before) {
			continue // closed later on before's day: not due yet
		}
		if err := closed.Delete(e.key); err != nil {
			return n, fmt.Errorf("prune incidents: %w", err)
		}
		tx.addCounter(counterClosed, -1)
		if !current {
			continue // a stale entry (cannot happen while the index is kept in step; repaired anyway)
		}
		if err := tx.dropDoc(docs, &h); err != nil {
			return n, fmt.Errorf("prune incidents: %w", err)
		}
		if err := b.Delete(e.incident); err != nil {
			return n, fmt.Errorf("prune incidents: %w", err)
		}
		inst, _, _, err := splitIncidentKey(e.incident)
		if err != nil {
			return n, fmt.Errorf("prune incidents: %w", err)
		}
		tx.addCounter(incidentCounter(inst), -1)
		n++
	}
	return n, nil
}

const counterClosed = "closed"

func incidentCounter(instance string) string { return "incidents\x00" + instance }

// closedKey is the retention index key of an incident closed at t: the time key of t's UTC day, then
// the entry's sequence number. Within a day entries are appended in the order they are written, so a
// backfill — whose issues closed at any time of the lookback — inserts at a handful of day tails
// instead of one random leaf per closed issue; pruning checks each entry of the last day it reaches.
func closedKey(t time.Time, seq uint64) []byte {
	day := t.UTC().Truncate(24 * time.Hour)
	tk := timeKey(day)
	k := make([]byte, 0, 16)
	k = append(k, tk[:]...)
	return binary.BigEndian.AppendUint64(k, seq)
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

func sameClosed(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return timeKey(*a) == timeKey(*b)
}

// decodeIncident decodes the record stored under key, with its JSON.
func (tx *Tx) decodeIncident(key, v []byte) (*IncidentRecord, error) {
	instance, createdAt, issueID, err := splitIncidentKey(key)
	if err != nil {
		return nil, fmt.Errorf("decode incident: %w", err)
	}
	h, err := decodeHead(v)
	if err != nil {
		return nil, fmt.Errorf("decode incident %s/%s: %w", instance, issueID, err)
	}
	rec := &IncidentRecord{
		Instance:        instance,
		IssueID:         issueID,
		Status:          h.status,
		StatusChangedAt: h.statusChangedAt,
		CreatedAt:       createdAt,
		Version:         h.version,
		LastEventID:     h.lastEventID,
		FirstSeen:       h.firstSeen,
		UpdatedAt:       h.updatedAt,
		ClosedAt:        h.closedAt,
	}
	if h.docSeq != 0 {
		docs, err := tx.bucket(bucketIncidentDocs)
		if err != nil {
			return nil, fmt.Errorf("decode incident %s/%s: %w", instance, issueID, err)
		}
		raw := docs.Get(seqKey(h.docSeq))
		if raw == nil {
			return nil, fmt.Errorf("decode incident %s/%s: its JSON (document %d) is missing", instance, issueID, h.docSeq)
		}
		if rec.Incident, err = unpack(raw); err != nil {
			return nil, fmt.Errorf("decode incident %s/%s: %w", instance, issueID, err)
		}
	}
	return rec, nil
}

func checkIncident(instance, issueID string) error {
	if err := checkName("instance", instance); err != nil {
		return err
	}
	return checkName("issue id", issueID)
}
