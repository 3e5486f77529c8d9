package store

import (
	"errors"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
	"github.com/wizfetch/wizfetch/pkg/kv/boltkv"
)

// openBoltKV opens a bbolt file as a plain kv.DB (no kv.Poster): the store sees only the interface.
func openBoltKV(t *testing.T, path string) *boltkv.DB {
	t.Helper()
	db, err := boltkv.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// OpenKV initialises a new store on an engine, which then works as a store opened by Open does, and
// opens it again with what it holds; what is bbolt's says it is absent.
func TestOpenKVInitialisesAndReopens(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	s, err := OpenKV(openBoltKV(t, path), Options{})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	mustUpdate(t, s, func(tx *Tx) error {
		if err := tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "i1", CreatedAt: at, Status: "OPEN", Incident: []byte(`{"x":1}`)}); err != nil {
			return err
		}
		if err := tx.PutMark("default", "created", "i1", at); err != nil {
			return err
		}
		_, err := tx.Enqueue("file", "default", []byte(`{"event_id":"e1"}`))
		return err
	})
	if err := s.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: "i2", ReceivedAt: at}); err != nil {
		t.Fatal(err)
	}
	if got := s.PageWrites(); got != -1 {
		t.Errorf("PageWrites = %d on an engine without pages, want -1", got)
	}
	if _, err := s.Check(0); !errors.Is(err, errors.ErrUnsupported) {
		t.Errorf("Check: %v, want ErrUnsupported", err)
	}
	if s.Path() != path {
		t.Errorf("Path = %q, want the engine's name %q", s.Path(), path)
	}
	checkConsistency(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = OpenKV(openBoltKV(t, path), Options{})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.SchemaVersion != SchemaVersion || st.Incidents["default"] != 1 || st.Outbox["file"] != 1 || st.Refetch != 1 {
		t.Errorf("stats after reopen = %+v", st)
	}
	mustView(t, s, func(tx *Tx) error {
		rec, ok, err := tx.IncidentAt("default", "i1", at)
		if err != nil || !ok || string(rec.Incident) != `{"x":1}` {
			t.Errorf("IncidentAt = %+v, %v, %v", rec, ok, err)
		}
		if ok, err := tx.HasMark("default", "created", "i1"); err != nil || !ok {
			t.Errorf("HasMark = %v, %v", ok, err)
		}
		return nil
	})
	if items, err := s.NextBatch("file", 10); err != nil || len(items) != 1 || string(items[0].Data) != `{"event_id":"e1"}` {
		t.Errorf("NextBatch = %+v, %v", items, err)
	}
	checkConsistency(t, s)
}

// OpenKV refuses what it cannot read: a foreign store, a newer schema, and an older one (only bbolt
// files are migrated).
func TestOpenKVRefuses(t *testing.T) {
	for _, tc := range []struct {
		name    string
		prepare func(kv.Tx) error
		wantIs  error
		wantMsg string
	}{
		{"newer schema", schemaPrep("99"), ErrSchemaTooNew, "schema version 99"},
		{"older schema", schemaPrep("5"), nil, "only bbolt files are migrated"},
		{"garbage schema", schemaPrep("one"), nil, "unreadable schema version"},
		{"foreign", func(tx kv.Tx) error {
			_, err := tx.CreateBucketIfNotExists([]byte("something_else"))
			return err
		}, nil, "not a wizfetch store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "kv.db")
			db := openBoltKV(t, path)
			defer db.Close()
			if err := db.Update(tc.prepare); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{false, true} {
				s, err := OpenKV(db, Options{ReadOnly: ro})
				if err == nil {
					_ = s.Close()
					t.Fatalf("OpenKV(readOnly=%v) succeeded", ro)
				}
				if tc.wantIs != nil && !errors.Is(err, tc.wantIs) {
					t.Errorf("err = %v, want %v", err, tc.wantIs)
				}
				if !strings.Contains(err.Error(), tc.wantMsg) {
					t.Errorf("err = %q, want it to contain %q", err, tc.wantMsg)
				}
			}
		})
	}
}

func schemaPrep(v string) func(kv.Tx) error {
	return func(tx kv.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketMeta)
		if err != nil {
			return err
		}
		return b.Put(keySchema, []byte(v))
	}
}

// A read-only OpenKV never writes: a new store is refused, an existing one is read and refuses
// writes, pushes included.
func TestOpenKVReadOnly(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	db := openPoster(t, path)
	if _, err := OpenKV(db, Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "not initialised") {
		t.Fatalf("read-only OpenKV of a new store: %v", err)
	}
	rw, err := OpenKV(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustUpdate(t, rw, func(tx *Tx) error { return tx.PutCheckpoint("default", "created", Checkpoint{Cursor: "c1"}) })
	ro, err := OpenKV(db, Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	mustView(t, ro, func(tx *Tx) error {
		if cp, ok, err := tx.Checkpoint("default", "created"); err != nil || !ok || cp.Cursor != "c1" {
			t.Errorf("Checkpoint = %+v, %v, %v", cp, ok, err)
		}
		return nil
	})
	if err := ro.Update(func(tx *Tx) error { return tx.PutCheckpoint("default", "created", Checkpoint{}) }); !errors.Is(err, kv.ErrNotWritable) {
		t.Errorf("Update on a read-only store: %v", err)
	}
	posts := db.posts.Load()
	if err := ro.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: "i1"}); !errors.Is(err, kv.ErrNotWritable) {
		t.Errorf("EnqueueRefetch on a read-only store: %v", err)
	}
	if db.posts.Load() != posts {
		t.Error("a read-only store posted")
	}
}

// A replica that does not lead opens a store that exists (OpenKV reads only), but cannot initialise
// a new one: its write is fenced, and says so.
func TestOpenKVWritesOnlyANewStore(t *testing.T) {
	dir := t.TempDir()
	db := openPoster(t, filepath.Join(dir, "new.db"))
	db.fenced.Store(true)
	if _, err := OpenKV(db, Options{}); !errors.Is(err, kv.ErrFenced) {
		t.Errorf("OpenKV of a new store by a replica that does not lead: %v, want ErrFenced", err)
	}
	db.fenced.Store(false)
	s, err := OpenKV(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	db.fenced.Store(true)
	standby, err := OpenKV(db, Options{})
	if err != nil {
		t.Fatalf("OpenKV of an existing store by a replica that does not lead: %v", err)
	}
	if d, err := standby.RefetchDepth(); err != nil || d != 0 {
		t.Errorf("RefetchDepth on the standby = %d, %v", d, err)
	}
	_ = s.Close()
}

// Stores on a plain kv.DB (no kv.Poster) queue pushes in a write transaction and keep no inbox.
func TestOpenKVWithoutPosterHasNoInbox(t *testing.T) {
	db := openBoltKV(t, filepath.Join(t.TempDir(), "kv.db"))
	s, err := OpenKV(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.EnqueueRefetch(RefetchItem{Instance: "default", IssueID: "i1"}); err != nil {
		t.Fatal(err)
	}
	mustView(t, s, func(tx *Tx) error {
		if tx.ktx.Bucket(bucketInbox) != nil {
			t.Error("an inbox on an engine that takes no posts")
		}
		if n, err := tx.counter(counterRefetch); err != nil || n != 1 {
			t.Errorf("refetch counter = %d, %v; want the push queued at once", n, err)
		}
		return nil
	})
}

// CheckSchema, which a replica runs each time it starts to lead, sees a schema a newer replica
// bumped after this one opened the store.
func TestCheckSchemaSeesANewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "kv.db")
	db := openBoltKV(t, path)
	s, err := OpenKV(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSchema(); err != nil {
		t.Fatalf("CheckSchema of the store as opened: %v", err)
	}
	err = db.Update(func(ktx kv.Tx) error {
		return ktx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(SchemaVersion+1)))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckSchema(); !errors.Is(err, ErrSchemaTooNew) {
		t.Fatalf("CheckSchema after a newer replica's bump: %v, want ErrSchemaTooNew", err)
	}
}
