package store

import (
	"bytes"
	"errors"
	"fmt"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// IncidentRecord is wizfetch's memory of one issue's incident: what it last emitted, for dedup of
// status changes (DESIGN.md §3), and the freshest incident JSON, for replay and sinks.
//
// An incident is keyed by (Instance, CreatedAt, IssueID), CreatedAt being the createdAt the issue was
// first seen with: keying by it makes the created feed — which walks issues in createdAt order — read
// and write only the tail of the index instead of a random leaf per issue (see the package doc). The
// issue's identity is its id: FindIncident finds the record whatever createdAt a later node carries.
type IncidentRecord struct {
	Instance string
	IssueID  string
	// Status is the issue_status of the LAST EVENT emitted for this incident.
	Status string
	// StatusChangedAt is the issue's statusChangedAt in the last event.
	StatusChangedAt *time.Time
	// CreatedAt is the createdAt the incident was first stored with (microsecond precision, as Wiz
	// returns it). It is part of the record's key, and a writer keeps the one it read.
	CreatedAt time.Time
	// Incident is the latest incident JSON (mapped from the freshest issue seen).
	Incident []byte
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

// IncidentAt returns a copy of the record of the issue issueID created at createdAt; ok is false when
// there is none. This is the lookup of the hot path: O(log n), and for the created feed always near
// the index's tail.
func (tx *Tx) IncidentAt(instance, issueID string, createdAt time.Time) (*IncidentRecord, bool, error) {
	key, v, err := tx.incidentHead(instance, issueID, createdAt)
	if err != nil || v == nil {
		return nil, false, err
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
	_, v, err := tx.incidentHead(instance, issueID, createdAt)
	return v != nil, err
}

// incidentHead returns the key and the stored head of an incident (nil when there is none).
func (tx *Tx) incidentHead(instance, issueID string, createdAt time.Time) (key, v []byte, err error) {
	if err := checkIncident(instance, issueID); err != nil {
		return nil, nil, fmt.Errorf("read incident: %w", err)
	}
	b, err := tx.bucket(bucketIncidents)
	if err != nil {
		return nil, nil, fmt.Errorf("read incident: %w", err)
	}
	key = incidentKey(instance, createdAt, issueID)
	return key, b.Get(key), nil
}

// Incident returns a copy of the record of (instance, issueID) when only the issue id is known (the
// operator's `incidents show`, the API): it walks the instance's index, which holds no incident JSON
// (about 100 bytes per incident), so it costs O(incidents) but reads little. Code that has the
// issue's createdAt uses IncidentAt or FindIncident.
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

// IncidentsByID returns a copy of the record of issueID in each of instances that has one, in the
// order of instances: the lookup of an operator or a tool that has only the issue id (Tx.Incident
// in each instance, in one read transaction).
func (s *Store) IncidentsByID(instances []string, issueID string) ([]*IncidentRecord, error) {
	var found []*IncidentRecord
	err := s.View(func(tx *Tx) error {
		for _, inst := range instances {
			rec, ok, err := tx.Incident(inst, issueID)
			if err != nil {
				return err
			}
			if ok {
				found = append(found, rec)
			}
		}
		return nil
	})
	return found, err
}

// PutIncident inserts or replaces rec (keyed by rec.Instance, rec.CreatedAt, rec.IssueID). The store
// keeps rec.Incident itself when it is a JSON object (codec.go): the caller must leave it unchanged
// until the transaction ends.
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
	var doc []byte
	if len(rec.Incident) > 0 {
		doc = stored(rec.Incident)
	}
	if err := tx.putIncident(rec, doc, true); err != nil {
		return fmt.Errorf("write incident %s/%s: %w", rec.Instance, rec.IssueID, err)
	}
	return nil
}

// putIncident writes rec with doc, its JSON as stored (nil: none), which becomes the store's;
// count says whether a new incident bumps the instance's counter.
func (tx *Tx) putIncident(rec *IncidentRecord, doc []byte, count bool) error {
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
	if v := b.Get(key); v != nil {
		h, err := decodeHead(v)
		if err != nil {
			return fmt.Errorf("previous record: %w", err)
		}
		old = &h
		if h.docSeq != 0 {
			if err := docs.Delete(seqKey(h.docSeq)); err != nil {
				return fmt.Errorf("drop the previous incident JSON: %w", err)
			}
		}
	} else {
		if count {
			tx.addCounter(incidentCounter(rec.Instance), 1)
		}
		if err := tx.noteIncident(rec.Instance, rec.IssueID); err != nil {
			return err
		}
	}
	head := incidentHead{
		version: rec.Version, status: rec.Status, lastEventID: rec.LastEventID,
		statusChangedAt: rec.StatusChangedAt, firstSeen: rec.FirstSeen, updatedAt: rec.UpdatedAt,
		closedAt: storableTime(rec.ClosedAt),
	}
	if len(doc) > 0 {
		// Documents are appended in sequence, so a backfill writes them as full pages at the tail.
		if head.docSeq, err = docs.NextSequence(); err != nil {
			return fmt.Errorf("number the incident JSON: %w", err)
		}
		setFill(docs, 1)
		if err := docs.Put(seqKey(head.docSeq), doc); err != nil {
			return fmt.Errorf("store the incident JSON: %w", err)
		}
	}
	if err := tx.indexClosed(closed, key, old, &head); err != nil {
		return err
	}
	setFill(b, 0.9) // mostly appended at the tail (createdAt order)
	return b.Put(key, appendHead(make([]byte, 0, 72+len(rec.Status)+len(rec.LastEventID)), &head))
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

func incidentCounter(instance string) string { return "incidents\x00" + instance }

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
		if rec.Incident, err = readDoc(docs, h.docSeq); err != nil {
			return nil, fmt.Errorf("decode incident %s/%s: %w", instance, issueID, err)
		}
	}
	return rec, nil
}

// readDoc returns the JSON of incident document seq.
func readDoc(docs kv.Bucket, seq uint64) ([]byte, error) {
	v := docs.Get(seqKey(seq))
	if len(v) == 0 {
		return nil, fmt.Errorf("its JSON (document %d) is missing", seq)
	}
	return unpack(v)
}

func checkIncident(instance, issueID string) error {
	if err := checkName("instance", instance); err != nil {
		return err
	}
	return checkName("issue id", issueID)
}
