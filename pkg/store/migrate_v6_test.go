package store

import (
	"bytes"
	"errors"
	"path/filepath"
	"strconv"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

const (
	v6Incident = `{"name":"six","rawJSON":"{}"}`
	v6Line     = `{"event_id":"e6","incident":{"name":"six"}}`
	v7Line     = `{"event_id":"e7","incident":{"name":"seven"}}`
)

// writeSchema6 fills s with an incident, an outbox event and a dead letter, then turns it into the
// store schema 6 left: every value with its codec byte, and the schema "6".
func writeSchema6(t *testing.T, db kv.DB, s *Store) {
	t.Helper()
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "i6", Incident: []byte(v6Incident)}); err != nil {
			return err
		}
		for range 2 {
			if _, err := tx.Enqueue("file", "default", []byte(v6Line)); err != nil {
				return err
			}
		}
		return nil
	})
	if err := s.MoveToDeadLetter("file", OutboxItem{Instance: "default", Seq: 2}, "refused", 1); err != nil {
		t.Fatal(err)
	}
	err := db.Update(func(ktx kv.Tx) error {
		docs := ktx.Bucket(bucketIncidentDocs)
		outbox := ktx.Bucket(bucketOutbox).Bucket([]byte("file"))
		dead := ktx.Bucket(bucketDead).Bucket([]byte("file"))
		for _, b := range []kv.Bucket{docs, outbox, dead} {
			var keys, values [][]byte
			if err := b.ForEach(func(k, v []byte) error {
				keys, values = append(keys, bytes.Clone(k)), append(values, bytes.Clone(v))
				return nil
			}); err != nil {
				return err
			}
			for i, k := range keys {
				v := values[i]
				if b == dead {
					hdr, payload, err := unframe(v)
					if err != nil {
						return err
					}
					v = frame(hdr, raw(payload))
				} else {
					v = raw(v)
				}
				if err := b.Put(k, v); err != nil {
					return err
				}
			}
		}
		return ktx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(schemaV6)))
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkSchema6Data reads what writeSchema6 wrote.
func checkSchema6Data(t *testing.T, s *Store) {
	t.Helper()
	mustView(t, s, func(tx *Tx) error {
		rec, ok, err := tx.Incident("default", "i6")
		if err != nil || !ok || string(rec.Incident) != v6Incident {
			t.Errorf("the schema 6 incident reads %+v, %v, %v", rec, ok, err)
		}
		return nil
	})
	if items, err := s.Outbox("file", 0, 0); err != nil || len(items) != 1 || string(items[0].Data) != v6Line {
		t.Errorf("the schema 6 outbox reads %+v, %v", items, err)
	}
	if dls, err := s.DeadLetters("file", 0); err != nil || len(dls) != 1 || string(dls[0].Data) != v6Line {
		t.Errorf("the schema 6 dead letter reads %+v, %v", dls, err)
	}
}

// storedSchema returns the schema version s records.
func storedSchema(t *testing.T, db kv.DB) string {
	t.Helper()
	var v string
	if err := db.View(func(ktx kv.Tx) error { v = string(ktx.Bucket(bucketMeta).Get(keySchema)); return nil }); err != nil {
		t.Fatal(err)
	}
	return v
}

// A bbolt file of schema 6 is read as it is read-only, and becomes schema 7 when opened read-write,
// with every value it held readable and new values stored as they are.
func TestOpenBumpsSchema6(t *testing.T) {
	path := filepath.Join(t.TempDir(), "wizfetch.db")
	s := openAt(t, path)
	writeSchema6(t, s.db, s)
	checkConsistency(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	ro, err := Open(path, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only Open of a schema 6 file: %v", err)
	}
	checkSchema6Data(t, ro)
	if v := storedSchema(t, ro.db); v != "6" {
		t.Errorf("a read-only Open left schema %q, want 6", v)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	if v := storedSchema(t, s.db); v != strconv.Itoa(SchemaVersion) {
		t.Fatalf("Open left schema %q, want %d", v, SchemaVersion)
	}
	checkSchema6Data(t, s)
	mustUpdate(t, s, func(tx *Tx) error {
		_, err := tx.Enqueue("file", "default", []byte(v7Line))
		return err
	})
	// The new event is stored as it is, the old one keeps its codec byte, and both read.
	var values []string
	if err := s.bolt.View(func(btx *bolt.Tx) error {
		return btx.Bucket(bucketOutbox).Bucket([]byte("file")).ForEach(func(_, v []byte) error {
			values = append(values, string(v))
			return nil
		})
	}); err != nil {
		t.Fatal(err)
	}
	if len(values) != 2 || values[0] != "\x00"+v6Line || values[1] != v7Line {
		t.Errorf("stored outbox values = %q", values)
	}
	if items, err := s.Outbox("file", 0, 0); err != nil || len(items) != 2 || string(items[1].Data) != v7Line {
		t.Errorf("outbox = %+v, %v", items, err)
	}
}

// On a shared engine, a store of schema 6 opens on every replica, is read as it is, and becomes
// schema 7 in the first write transaction of the one that leads: not on a standby, whose writes are
// fenced, nor on a read-only one.
func TestOpenKVBumpsSchema6OnTheLeadersFirstWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	db := openPoster(t, path)
	s, err := OpenKV(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	writeSchema6(t, db, s)

	db.fenced.Store(true)
	standby, err := OpenKV(db, Options{})
	if err != nil {
		t.Fatalf("OpenKV of a schema 6 store by a standby: %v", err)
	}
	checkSchema6Data(t, standby)
	// A standby's write is refused, before its function runs or, as on etcd, at the commit: the
	// bump, made in the same transaction, is refused with it.
	for _, atCommit := range []bool{false, true} {
		db.fencedAtCommit.Store(atCommit)
		ran := false
		err := standby.Update(func(tx *Tx) error {
			ran = true
			_, err := tx.Enqueue("file", "default", []byte(v7Line))
			return err
		})
		if !errors.Is(err, kv.ErrFenced) || ran != atCommit {
			t.Fatalf("a standby's write (fenced at commit: %v): %v, ran %v; want ErrFenced", atCommit, err, ran)
		}
		if v := storedSchema(t, db); v != "6" {
			t.Fatalf("schema %q after a standby's refused write, want 6", v)
		}
	}
	db.fencedAtCommit.Store(false)
	ro, err := OpenKV(db, Options{ReadOnly: true})
	if err != nil {
		t.Fatalf("read-only OpenKV of a schema 6 store: %v", err)
	}
	checkSchema6Data(t, ro)
	if v := storedSchema(t, db); v != "6" {
		t.Fatalf("schema %q before the leader wrote, want 6", v)
	}

	db.fenced.Store(false)
	leader, err := OpenKV(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if v := storedSchema(t, db); v != "6" {
		t.Fatalf("OpenKV wrote schema %q: it must write nothing to a store that exists", v)
	}
	// A write transaction that fails leaves the schema as it was; the next one records it.
	if err := leader.Update(func(*Tx) error { return errors.New("no") }); err == nil {
		t.Fatal("a failing Update succeeded")
	}
	if v := storedSchema(t, db); v != "6" {
		t.Fatalf("schema %q after a rolled-back write, want 6", v)
	}
	mustUpdate(t, leader, func(tx *Tx) error {
		_, err := tx.Enqueue("file", "default", []byte(v7Line))
		return err
	})
	if v := storedSchema(t, db); v != strconv.Itoa(SchemaVersion) {
		t.Fatalf("schema %q after the leader's first write, want %d", v, SchemaVersion)
	}
	if leader.bump.Load() {
		t.Error("the leader still means to bump the schema after its first write")
	}
	// The standby, still believing the store may be of schema 6, finds it is not and stops
	// checking once a write of its own has committed.
	db.fenced.Store(false)
	if !standby.bump.Load() {
		t.Fatal("the standby no longer means to bump the schema, though none of its writes committed")
	}
	mustUpdate(t, standby, func(tx *Tx) error { return tx.PutCheckpoint("default", "created", Checkpoint{Cursor: "c"}) })
	if v := storedSchema(t, db); v != strconv.Itoa(SchemaVersion) {
		t.Fatalf("schema %q after the standby's write, want %d", v, SchemaVersion)
	}
	if standby.bump.Load() {
		t.Error("the standby still means to bump the schema after a committed write")
	}
	if items, err := leader.Outbox("file", 0, 0); err != nil || len(items) != 2 || string(items[0].Data) != v6Line || string(items[1].Data) != v7Line {
		t.Errorf("outbox = %+v, %v", items, err)
	}
	checkConsistency(t, leader)
	_ = leader.Close()
}

// Event lines and incident documents that are JSON objects are stored as they are; other data
// with a codec byte, and both read back as given.
func TestStoredForms(t *testing.T) {
	s := openBoltTest(t)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "i1", Incident: []byte(v6Incident)}); err != nil {
			return err
		}
		if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "i2", Incident: []byte(" [1]")}); err != nil {
			return err
		}
		for _, line := range []string{v7Line, "not json"} {
			if _, err := tx.Enqueue("file", "default", []byte(line)); err != nil {
				return err
			}
		}
		return nil
	})
	stored := map[string]bool{}
	if err := s.db.View(func(ktx kv.Tx) error {
		for _, b := range []kv.Bucket{ktx.Bucket(bucketIncidentDocs), ktx.Bucket(bucketOutbox).Bucket([]byte("file"))} {
			if err := b.ForEach(func(_, v []byte) error { stored[string(v)] = true; return nil }); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{v6Incident, "\x00 [1]", v7Line, "\x00not json"} {
		if !stored[want] {
			t.Errorf("no stored value %q among %v", want, stored)
		}
	}
	mustView(t, s, func(tx *Tx) error {
		for id, want := range map[string]string{"i1": v6Incident, "i2": " [1]"} {
			if rec, _, err := tx.Incident("default", id); err != nil || string(rec.Incident) != want {
				t.Errorf("incident %s reads %+v, %v", id, rec, err)
			}
		}
		return nil
	})
	if items, err := s.Outbox("file", 0, 0); err != nil || len(items) != 2 || string(items[0].Data) != v7Line || string(items[1].Data) != "not json" {
		t.Errorf("outbox = %+v, %v", items, err)
	}
}

// On every engine, a store of schema 6 reopens with what it holds readable, and ends at schema 7
// once written to (bbolt at Open, an engine that replicas share at the first write).
func TestSchema6ReopensAndEndsAt7(t *testing.T) {
	s := openTest(t)
	writeSchema6(t, s.db, s)
	s = reopen(t, s)
	checkSchema6Data(t, s)
	mustUpdate(t, s, func(tx *Tx) error {
		_, err := tx.Enqueue("file", "default", []byte(v7Line))
		return err
	})
	if v := storedSchema(t, s.db); v != strconv.Itoa(SchemaVersion) {
		t.Fatalf("schema %q after a write, want %d", v, SchemaVersion)
	}
	if items, err := s.Outbox("file", 0, 0); err != nil || len(items) != 2 || string(items[0].Data) != v6Line || string(items[1].Data) != v7Line {
		t.Errorf("outbox = %+v, %v", items, err)
	}
	s = reopen(t, s)
	mustView(t, s, func(tx *Tx) error {
		if rec, ok, err := tx.Incident("default", "i6"); err != nil || !ok || string(rec.Incident) != v6Incident {
			t.Errorf("the schema 6 incident reads %+v, %v, %v after a reopen", rec, ok, err)
		}
		return nil
	})
	if dls, err := s.DeadLetters("file", 0); err != nil || len(dls) != 1 || string(dls[0].Data) != v6Line {
		t.Errorf("the schema 6 dead letter reads %+v, %v after a reopen", dls, err)
	}
}
