package store

import (
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestMigrateFromSchema1 writes a schema 1 file by hand (incidents keyed by instance and issue id,
// a framed JSON header plus the packed JSON) and checks that Open rewrites it into schema 2 with
// nothing lost: the record, its JSON, the retention index and the counters.
func TestMigrateFromSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	created := time.Date(2026, 10, 1, 8, 0, 0, 5000, time.UTC)
	closedAt := time.Date(2026, 10, 2, 8, 0, 0, 0, time.UTC)
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(btx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketCounters, bucketIncidents, bucketIncidentsClosed} {
			if _, err := btx.CreateBucket(name); err != nil {
				return err
			}
		}
		if err := btx.Bucket(bucketMeta).Put(keySchema, []byte("1")); err != nil {
			return err
		}
		put := func(id, status string, closed *time.Time) error {
			hdr, _ := json.Marshal(incidentHeaderV1{Status: status, CreatedAt: created, Version: 3, LastEventID: "ev-" + id, ClosedAt: closed})
			key := joinKey(0, "default", id)
			if closed != nil {
				tk := timeKey(*closed) // schema 1's index key: time key of ClosedAt, then the incident key
				if err := btx.Bucket(bucketIncidentsClosed).Put(append(tk[:], key...), nil); err != nil {
					return err
				}
			}
			return btx.Bucket(bucketIncidents).Put(key, frame(hdr, pack([]byte(`{"name":"`+id+`"}`))))
		}
		if err := put("i1", "OPEN", nil); err != nil {
			return err
		}
		if err := put("i2", "RESOLVED", &closedAt); err != nil {
			return err
		}
		// bbolt keeps value slices until the commit: one array per value.
		if err := btx.Bucket(bucketCounters).Put([]byte(incidentCounter("default")), []byte{0, 0, 0, 0, 0, 0, 0, 2}); err != nil {
			return err
		}
		return btx.Bucket(bucketCounters).Put([]byte(counterClosed), []byte{0, 0, 0, 0, 0, 0, 0, 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// A read-only open refuses the old schema with a clear hint.
	if _, err := Open(path, Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only open of a schema 1 store succeeded")
	}
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkConsistency(t, st)
	err = st.View(func(tx *Tx) error {
		rec, ok, err := tx.IncidentAt("default", "i2", created)
		if err != nil || !ok {
			t.Fatalf("migrated incident i2: ok=%v err=%v", ok, err)
		}
		if rec.Status != "RESOLVED" || rec.Version != 3 || rec.LastEventID != "ev-i2" || string(rec.Incident) != `{"name":"i2"}` ||
			rec.ClosedAt == nil || !rec.ClosedAt.Equal(closedAt) {
			t.Fatalf("migrated incident i2 = %+v", rec)
		}
		if n, err := tx.IncidentCount("default"); err != nil || n != 2 {
			t.Fatalf("IncidentCount = %d, %v; want 2", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.mustSchema(t, SchemaVersion)
	// The retention index was rebuilt: pruning finds the closed incident through it.
	err = st.Update(func(tx *Tx) error {
		n, err := tx.PruneClosedIncidents(closedAt.Add(time.Hour))
		if err != nil || n != 1 {
			t.Fatalf("PruneClosedIncidents = %d, %v; want 1", n, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	checkConsistency(t, st)
}

func (s *Store) mustSchema(t *testing.T, want int) {
	t.Helper()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.SchemaVersion != want {
		t.Fatalf("schema version %d, want %d", st.SchemaVersion, want)
	}
}
