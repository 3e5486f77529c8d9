package store

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/wizfetch/wizfetch/pkg/kv/boltkv"
)

// Schema 1 → 2 (→ 4) migration. Schema 1 keyed incidents by (instance, issue id) with the JSON inline and
// indexed closed incidents by ClosedAt; schema 2 keys them by createdAt with the JSON apart (see the
// package doc). A large store does not fit in memory or in one transaction, so the migration runs in
// steps that each commit:
//
//  1. startMigrationV1 (inside initialize): the schema 1 incidents bucket moves under
//     bucketMigrateV1, the old retention index and its counter go, and empty schema 2 buckets take
//     their place. The schema version stays 1.
//  2. migrateBatchV1, repeated: up to migrateBatch records are rewritten in the schema 2 layout and
//     deleted from the old bucket in the same transaction. The compressed JSON is moved as is.
//  3. The last batch, finding the old bucket empty, drops it, records schema 4 (what it now is) and
//     starts schema 4's migration to 5 (migrate_v4.go), which Open runs next.
//
// A crash anywhere leaves a store the next Open resumes: step 1 is skipped once bucketMigrateV1
// exists, and every batch is atomic. Read-only opens refuse a store whose schema is still 1.

// bucketMigrateV1 holds schema 1's incidents bucket while the migration runs.
var bucketMigrateV1 = []byte("migrate_v1")

// migrateBatch is how many incidents one migration transaction rewrites.
const migrateBatch = 2000

// startMigrationV1 is step 1 above; it is a no-op when the migration has already started.
func startMigrationV1(btx *bolt.Tx) error {
	if btx.Bucket(bucketMigrateV1) != nil {
		return nil
	}
	holder, err := btx.CreateBucket(bucketMigrateV1)
	if err != nil {
		return fmt.Errorf("migrate incidents: %w", err)
	}
	if btx.Bucket(bucketIncidents) != nil {
		if err := btx.MoveBucket(bucketIncidents, nil, holder); err != nil {
			return fmt.Errorf("migrate incidents: %w", err)
		}
	}
	if btx.Bucket(bucketIncidentsClosed) != nil {
		if err := btx.DeleteBucket(bucketIncidentsClosed); err != nil {
			return fmt.Errorf("migrate incidents: %w", err)
		}
	}
	for _, name := range [][]byte{bucketIncidents, bucketIncidentsClosed, bucketIncidentDocs} {
		if _, err := btx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("migrate incidents: %w", err)
		}
	}
	// The retention index is rebuilt record by record, and its counter with it.
	if err := btx.Bucket(bucketCounters).Delete([]byte(counterClosed)); err != nil {
		return fmt.Errorf("migrate incidents: %w", err)
	}
	return nil
}

// migrateBatchV1 is steps 2 and 3 above. done reports that the migration has finished.
func migrateBatchV1(btx *bolt.Tx) (done bool, err error) {
	holder := btx.Bucket(bucketMigrateV1)
	if holder == nil {
		return true, nil
	}
	old := holder.Bucket(bucketIncidents)
	tx := newTx(nil, boltkv.WrapTx(btx))
	n := 0
	if old != nil {
		c := old.Cursor()
		for k, v := c.First(); k != nil && n < migrateBatch; k, v = c.First() {
			inst, id, ok := splitKey2(k)
			if !ok {
				return false, fmt.Errorf("migrate incidents: malformed schema 1 incident key %q", k)
			}
			rec, doc, err := decodeIncidentV1(inst, id, v)
			if err != nil {
				return false, fmt.Errorf("migrate incidents: %w", err)
			}
			if err := tx.putIncident(rec, doc, false); err != nil {
				return false, fmt.Errorf("migrate incident %s/%s: %w", inst, id, err)
			}
			if err := c.Delete(); err != nil {
				return false, fmt.Errorf("migrate incidents: %w", err)
			}
			n++
		}
	}
	if err := tx.flushCounters(); err != nil {
		return false, fmt.Errorf("migrate incidents: %w", err)
	}
	if n > 0 {
		return false, nil
	}
	if err := btx.DeleteBucket(bucketMigrateV1); err != nil {
		return false, fmt.Errorf("migrate incidents: %w", err)
	}
	if err := btx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(4))); err != nil {
		return false, fmt.Errorf("migrate incidents: %w", err)
	}
	return true, startMigrationV4(btx)
}

// incidentHeaderV1 is schema 1's JSON header of a stored incident; the packed incident JSON followed
// it in the same framed value. Only migrateIncidentsV1 reads it.
type incidentHeaderV1 struct {
	Status          string     `json:"status"`
	StatusChangedAt *time.Time `json:"status_changed_at,omitempty"`
	CreatedAt       time.Time  `json:"created_at"`
	Version         int        `json:"version"`
	LastEventID     string     `json:"last_event_id,omitempty"`
	FirstSeen       time.Time  `json:"first_seen"`
	UpdatedAt       time.Time  `json:"updated_at"`
	ClosedAt        *time.Time `json:"closed_at,omitempty"`
}

// decodeIncidentV1 decodes one schema 1 incident value: the record, and its JSON as stored.
func decodeIncidentV1(instance, issueID string, raw []byte) (*IncidentRecord, []byte, error) {
	hdr, payload, err := unframe(raw)
	if err != nil {
		return nil, nil, fmt.Errorf("decode schema 1 incident %s/%s: %w", instance, issueID, err)
	}
	var h incidentHeaderV1
	if err := json.Unmarshal(hdr, &h); err != nil {
		return nil, nil, fmt.Errorf("decode schema 1 incident %s/%s: header: %w", instance, issueID, err)
	}
	rec := &IncidentRecord{
		Instance: instance, IssueID: issueID, Status: h.Status, StatusChangedAt: h.StatusChangedAt,
		CreatedAt: h.CreatedAt, Version: h.Version, LastEventID: h.LastEventID, FirstSeen: h.FirstSeen,
		UpdatedAt: h.UpdatedAt, ClosedAt: h.ClosedAt,
	}
	// Schema 1 stored the JSON with a codec byte, as schema 2 on does: move it as is, without
	// decompressing it (migrate_v4.go rewrites any codec schema 5 does not keep). The copy
	// outlives the cursor that read it.
	var doc []byte
	if len(payload) > 0 {
		doc = append([]byte(nil), payload...)
	}
	return rec, doc, nil
}
