package store

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// fillerV1 is how many extra open incidents writeV1Store adds: enough for several migration batches.
const fillerV1 = 2*migrateBatch + 5

// writeV1Store writes a schema 1 file by hand (incidents keyed by instance and issue id, a framed
// JSON header plus the packed JSON, the retention index keyed by ClosedAt): i1 (open), i2 (resolved
// at closedAt) and fillerV1 open "f…" incidents, all created at created.
func writeV1Store(t *testing.T, path string, created, closedAt time.Time) {
	t.Helper()
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
		for i := range fillerV1 {
			if err := put(fmt.Sprintf("f%05d", i), "OPEN", nil); err != nil {
				return err
			}
		}
		// bbolt keeps value slices until the commit: one array per value.
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], 2+fillerV1)
		if err := btx.Bucket(bucketCounters).Put([]byte(incidentCounter("default")), n[:]); err != nil {
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
}

// A crash in the middle of the migration (here: after its first step and one batch) leaves a store
// the next Open finishes, with nothing lost or doubled.
func TestMigrateFromSchema1ResumesAfterACrash(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	created := time.Date(2026, 10, 1, 8, 0, 0, 5000, time.UTC)
	writeV1Store(t, path, created, created.Add(time.Hour))
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(startMigrationV1); err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(btx *bolt.Tx) error { _, err := migrateBatchV1(btx); return err }); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil { // the "crash": the rest never ran
		t.Fatal(err)
	}
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	checkConsistency(t, st)
	st.mustSchema(t, SchemaVersion)
	err = st.View(func(tx *Tx) error {
		n := 0
		if err := tx.ForEachIncident("default", func(*IncidentRecord) error { n++; return nil }); err != nil {
			return err
		}
		if n != 2+fillerV1 {
			t.Fatalf("%d incidents after the resumed migration, want %d", n, 2+fillerV1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestMigrateFromSchema1 checks that Open rewrites a schema 1 file into schema 2, in several batches,
// with nothing lost: the records, their JSON, the retention index and the counters.
func TestMigrateFromSchema1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v1.db")
	created := time.Date(2026, 10, 1, 8, 0, 0, 5000, time.UTC)
	closedAt := time.Date(2026, 10, 2, 8, 0, 0, 0, time.UTC)
	writeV1Store(t, path, created, closedAt)

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
		if n, err := tx.IncidentCount("default"); err != nil || n != 2+fillerV1 {
			t.Fatalf("IncidentCount = %d, %v; want %d", n, err, 2+fillerV1)
		}
		if rec, ok, err := tx.IncidentAt("default", fmt.Sprintf("f%05d", fillerV1-1), created); err != nil || !ok || string(rec.Incident) != fmt.Sprintf(`{"name":"f%05d"}`, fillerV1-1) {
			t.Fatalf("last filler incident: %+v, %v, %v", rec, ok, err)
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

// A schema-2 store (no codec-2 outbox values) is read as it is by a read-only open and becomes
// schema 3 at the first read-write open, its outbox intact; from then on a schema-2 wizfetch is
// refused rather than failing on the new values.
// Schemas 2 and 3 lack only newer outbox value formats: a read-only open reads them as they are, and a
// read-write open just records the current version.
func TestOlderSchemasUpgradeInPlace(t *testing.T) {
	for _, old := range []int{2, 3} {
		t.Run(fmt.Sprintf("schema %d", old), func(t *testing.T) {
			path := t.TempDir() + "/old.db"
			s, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			mustUpdate(t, s, func(tx *Tx) error {
				if _, err := tx.Enqueue("file", []byte(`{"event_id":"e1"}`)); err != nil {
					return err
				}
				return tx.btx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(old)))
			})
			s.Close()

			ro, err := Open(path, Options{ReadOnly: true})
			if err != nil {
				t.Fatalf("read-only open of a schema-%d store: %v", old, err)
			}
			ro.mustSchema(t, old)
			ro.Close()

			rw, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			rw.mustSchema(t, SchemaVersion)
			if items, err := rw.Outbox("file", 0, 0); err != nil || len(items) != 1 || string(items[0].Data) != `{"event_id":"e1"}` {
				t.Fatalf("outbox after the upgrade = %v, %v", items, err)
			}
			rw.Close()
		})
	}
}
