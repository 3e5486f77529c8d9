package store

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// openTest opens a fresh store for a test, on the engine the tests run on (openTestStore); fsync
// is off unless a test needs durability semantics (reopen tests close the store cleanly, which is
// enough without fsync).
func openTest(t *testing.T) *Store {
	t.Helper()
	return openTestStore(t, Options{NoSync: true, Timeout: 200 * time.Millisecond})
}

// openAt opens the bbolt file at path with Open (tests of what is bbolt's: files, locks, migrations).
// openBoltTest opens a fresh bbolt store whatever engine the tests run on (tests of bbolt's files
// and locks).
func openBoltTest(t *testing.T) *Store {
	t.Helper()
	return openAt(t, filepath.Join(t.TempDir(), "state", "wizfetch.db"))
}

func openAt(t *testing.T, path string) *Store {
	t.Helper()
	return openWith(t, path, Options{NoSync: true, Timeout: 200 * time.Millisecond})
}

func openWith(t *testing.T, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		checkConsistency(t, s) // a no-op when the test closed s itself
		_ = s.Close()
	})
	return s
}

// reopen closes s and opens the same store again, on the same engine.
func reopen(t *testing.T, s *Store) *Store {
	t.Helper()
	checkConsistency(t, s)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if p, ok := s.db.(*posterDB); ok {
		return openPosterAt(t, p.path, Options{NoSync: true})
	}
	if e, ok := s.db.(etcdStore); ok {
		return openEtcdAt(t, e.client, e.prefix, Options{NoSync: true})
	}
	return openAt(t, s.Path())
}

func mustUpdate(t *testing.T, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.Update(fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func mustView(t *testing.T, s *Store, fn func(tx *Tx) error) {
	t.Helper()
	if err := s.View(fn); err != nil {
		t.Fatalf("View: %v", err)
	}
}

func TestOpenCreatesPrivateFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "wizfetch.db")
	s := openAt(t, path)
	if s.Path() != path {
		t.Errorf("Path() = %q, want %q", s.Path(), path)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got&0o077 != 0 || got&0o600 != 0o600 {
		t.Errorf("file mode = %v, want 0600", got)
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := di.Mode().Perm(); got&0o077 != 0 {
		t.Errorf("dir mode = %v, want 0700", got)
	}
	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	if st.SchemaVersion != SchemaVersion {
		t.Errorf("schema version = %d, want %d", st.SchemaVersion, SchemaVersion)
	}
}

func TestSecondOpenFailsWithErrLocked(t *testing.T) {
	s := openBoltTest(t)
	for _, ro := range []bool{false, true} {
		name := "read-write"
		if ro {
			name = "read-only"
		}
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			s2, err := Open(s.Path(), Options{Timeout: 150 * time.Millisecond, ReadOnly: ro})
			if err == nil {
				_ = s2.Close()
				t.Fatal("second Open succeeded while the store is held")
			}
			if !errors.Is(err, ErrLocked) {
				t.Fatalf("err = %v, want ErrLocked", err)
			}
			if !strings.Contains(err.Error(), s.Path()) {
				t.Errorf("error %q does not name the path", err)
			}
			// Generous bound: the point is "fails within the timeout", not "blocks forever".
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("second Open took %v", d)
			}
		})
	}
}

func TestReadOnly(t *testing.T) {
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "none.db")
		if _, err := Open(path, Options{ReadOnly: true}); err == nil {
			t.Fatal("read-only Open of a missing file succeeded")
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Errorf("read-only Open created %s", path)
		}
	})
	t.Run("views work, writes fail, readers share", func(t *testing.T) {
		s := openBoltTest(t)
		mustUpdate(t, s, func(tx *Tx) error {
			return tx.PutCheckpoint("default", "created", Checkpoint{Cursor: "c1"})
		})
		path := s.Path()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		r1, err := Open(path, Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		defer r1.Close()
		r2, err := Open(path, Options{ReadOnly: true, Timeout: 200 * time.Millisecond})
		if err != nil {
			t.Fatalf("second reader: %v", err)
		}
		defer r2.Close()
		mustView(t, r2, func(tx *Tx) error {
			cp, ok, err := tx.Checkpoint("default", "created")
			if err != nil || !ok || cp.Cursor != "c1" {
				t.Errorf("Checkpoint = %+v, %v, %v", cp, ok, err)
			}
			return nil
		})
		err = r1.Update(func(tx *Tx) error { return tx.PutCheckpoint("default", "created", Checkpoint{}) })
		if err == nil {
			t.Error("Update on a read-only store succeeded")
		}
	})
}

func TestOpenRefusesForeignAndNewerFiles(t *testing.T) {
	tests := []struct {
		name    string
		prepare func(tx *bolt.Tx) error
		wantIs  error
		wantMsg string
	}{
		{
			name: "newer schema",
			prepare: func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket(bucketMeta)
				if err != nil {
					return err
				}
				return b.Put(keySchema, []byte("99"))
			},
			wantIs:  ErrSchemaTooNew,
			wantMsg: "schema version 99",
		},
		{
			name: "foreign bolt file",
			prepare: func(tx *bolt.Tx) error {
				_, err := tx.CreateBucket([]byte("something_else"))
				return err
			},
			wantMsg: "not a wizfetch store",
		},
		{
			name: "garbage schema",
			prepare: func(tx *bolt.Tx) error {
				b, err := tx.CreateBucket(bucketMeta)
				if err != nil {
					return err
				}
				return b.Put(keySchema, []byte("one"))
			},
			wantMsg: "unreadable schema version",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "x.db")
			db, err := bolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			if err := db.Update(tt.prepare); err != nil {
				t.Fatal(err)
			}
			if err := db.Close(); err != nil {
				t.Fatal(err)
			}
			for _, ro := range []bool{false, true} {
				s, err := Open(path, Options{ReadOnly: ro, Timeout: time.Second})
				if err == nil {
					_ = s.Close()
					t.Fatalf("Open(readOnly=%v) succeeded", ro)
				}
				if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
					t.Errorf("err = %v, want %v", err, tt.wantIs)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("err = %q, want it to contain %q", err, tt.wantMsg)
				}
			}
		})
	}
}

func TestUpdateRollsBackOnError(t *testing.T) {
	s := openTest(t)
	boom := errors.New("boom")
	err := s.Update(func(tx *Tx) error {
		if _, err := tx.Enqueue("file", "default", []byte(`{"a":1}`)); err != nil {
			return err
		}
		if err := tx.PutMark("default", "created", "i1", time.Now()); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update err = %v, want boom", err)
	}
	depth, err := s.OutboxDepth("file")
	if err != nil || depth != 0 {
		t.Errorf("OutboxDepth = %d, %v; want 0 after rollback", depth, err)
	}
	mustView(t, s, func(tx *Tx) error {
		ok, err := tx.HasMark("default", "created", "i1")
		if err != nil || ok {
			t.Errorf("HasMark = %v, %v; want false after rollback", ok, err)
		}
		n, err := tx.MarkCount("default", "created")
		if err != nil || n != 0 {
			t.Errorf("MarkCount = %d, %v; want 0 after rollback", n, err)
		}
		return nil
	})
}

func TestTxUnusableAfterItEnds(t *testing.T) {
	s := openTest(t)
	var kept *Tx
	mustUpdate(t, s, func(tx *Tx) error { kept = tx; return nil })
	if _, _, err := kept.Checkpoint("default", "created"); !errors.Is(err, ErrTxClosed) {
		t.Errorf("Checkpoint after tx end: err = %v, want ErrTxClosed", err)
	}
	if err := kept.PutMark("default", "created", "k", time.Now()); !errors.Is(err, ErrTxClosed) {
		t.Errorf("PutMark after tx end: err = %v, want ErrTxClosed", err)
	}
}

func TestWritesInViewFail(t *testing.T) {
	s := openTest(t)
	err := s.View(func(tx *Tx) error {
		return tx.PutCheckpoint("default", "created", Checkpoint{})
	})
	if !errors.Is(err, kv.ErrNotWritable) {
		t.Errorf("err = %v, want kv.ErrNotWritable", err)
	}
}

func TestNamesAreValidated(t *testing.T) {
	s := openTest(t)
	tests := []struct {
		name string
		fn   func(tx *Tx) error
	}{
		{"empty instance", func(tx *Tx) error { return tx.PutCheckpoint("", "created", Checkpoint{}) }},
		{"NUL in feed", func(tx *Tx) error { return tx.PutCheckpoint("default", "a\x00b", Checkpoint{}) }},
		{"empty mark key", func(tx *Tx) error { return tx.PutMark("default", "created", "", time.Now()) }},
		{"NUL in issue id", func(tx *Tx) error {
			return tx.PutIncident(&IncidentRecord{Instance: "default", IssueID: "x\x00"})
		}},
		{"empty sink", func(tx *Tx) error { _, err := tx.Enqueue("", "default", []byte("x")); return err }},
		{"empty event", func(tx *Tx) error { _, err := tx.Enqueue("file", "default", nil); return err }},
		{"nil incident", func(tx *Tx) error { return tx.PutIncident(nil) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := s.Update(tt.fn); err == nil {
				t.Error("want an error")
			}
		})
	}
}

func TestTimeKeyOrder(t *testing.T) {
	times := []time.Time{
		{},
		time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Unix(0, 0),
		time.Date(2023, 8, 23, 7, 56, 9, 903743000, time.UTC),
		time.Date(2023, 8, 23, 7, 56, 9, 903744000, time.UTC),
		time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := timeKey(times[i-1]), timeKey(times[i])
		if string(a[:]) >= string(b[:]) {
			t.Errorf("timeKey(%v) >= timeKey(%v)", times[i-1], times[i])
		}
	}
	for _, tm := range times[1:] {
		k := timeKey(tm)
		if got := parseTimeKey(k[:]); !got.Equal(tm) {
			t.Errorf("parseTimeKey(timeKey(%v)) = %v", tm, got)
		}
	}
}

func TestIncidentLookups(t *testing.T) {
	st := openTest(t)
	created := time.Date(2026, 11, 1, 10, 0, 0, 123456000, time.UTC)
	if err := st.Update(func(tx *Tx) error {
		if err := tx.PutIncident(&IncidentRecord{Instance: "a", IssueID: "i0", CreatedAt: created.Add(-time.Hour), Status: "OPEN"}); err != nil {
			return err
		}
		return tx.PutIncident(&IncidentRecord{Instance: "a", IssueID: "i1", CreatedAt: created, Status: "OPEN", Incident: []byte(`{"x":1}`)})
	}); err != nil {
		t.Fatal(err)
	}
	st.View(func(tx *Tx) error {
		for _, tc := range []struct {
			instance, id string
			at           time.Time
			want         bool
		}{
			{"a", "i1", created, true},
			{"a", "i1", created.Add(time.Microsecond), false}, // createdAt is part of the key
			{"a", "i2", created, false},
			{"b", "i1", created, false},
		} {
			if got, err := tx.HasIncidentAt(tc.instance, tc.id, tc.at); err != nil || got != tc.want {
				t.Fatalf("HasIncidentAt(%s, %s, %s) = %v, %v; want %v", tc.instance, tc.id, tc.at, got, err, tc.want)
			}
			rec, ok, err := tx.IncidentAt(tc.instance, tc.id, tc.at)
			if err != nil || ok != tc.want || (ok && (string(rec.Incident) != `{"x":1}` || !rec.CreatedAt.Equal(created))) {
				t.Fatalf("IncidentAt(%s, %s, %s) = %+v, %v, %v", tc.instance, tc.id, tc.at, rec, ok, err)
			}
		}
		// Without createdAt, the lookup walks the instance's index.
		for _, tc := range []struct {
			instance, id string
			want         bool
		}{{"a", "i1", true}, {"a", "i0", true}, {"a", "i", false}, {"a", "i2", false}, {"b", "i1", false}} {
			rec, ok, err := tx.Incident(tc.instance, tc.id)
			if err != nil || ok != tc.want || (ok && rec.IssueID != tc.id) {
				t.Fatalf("Incident(%s, %s) = %+v, %v, %v; want %v", tc.instance, tc.id, rec, ok, err, tc.want)
			}
		}
		return nil
	})
}

// ForEachIncidentAfter starts strictly after the position it is given, in the store's (instance,
// createdAt, issue id) order, and stays within the instance asked for.
func TestForEachIncidentAfter(t *testing.T) {
	st := openTest(t)
	base := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	recs := []struct {
		inst, id string
		sec      int
	}{{"a", "z", 1}, {"a", "y", 2}, {"a", "x", 2}, {"b", "w", 0}, {"b", "v", 5}}
	if err := st.Update(func(tx *Tx) error {
		for _, r := range recs {
			if err := tx.PutIncident(&IncidentRecord{Instance: r.inst, IssueID: r.id, CreatedAt: base.Add(time.Duration(r.sec) * time.Second), Status: "OPEN"}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	at := func(inst, id string, sec int) *IncidentPos {
		return &IncidentPos{Instance: inst, IssueID: id, CreatedAt: base.Add(time.Duration(sec) * time.Second)}
	}
	for _, tc := range []struct {
		name, instance string
		pos            *IncidentPos
		want           string
	}{
		{"everything", "", nil, "a/z a/x a/y b/w b/v"},
		{"after the first", "", at("a", "z", 1), "a/x a/y b/w b/v"},
		{"ties on createdAt go by id", "", at("a", "x", 2), "a/y b/w b/v"},
		{"across instances", "", at("a", "y", 2), "b/w b/v"},
		{"one instance", "b", nil, "b/w b/v"},
		{"cursor before the instance", "b", at("a", "z", 1), "b/w b/v"},
		{"cursor past the instance", "a", at("b", "w", 0), ""},
		{"a position between records", "", at("a", "m", 2), "a/x a/y b/w b/v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			err := st.View(func(tx *Tx) error {
				return tx.ForEachIncidentAfter(tc.instance, tc.pos, func(r *IncidentRecord) error {
					got = append(got, r.Instance+"/"+r.IssueID)
					return nil
				})
			})
			if err != nil {
				t.Fatal(err)
			}
			if s := strings.Join(got, " "); s != tc.want {
				t.Fatalf("got %q, want %q", s, tc.want)
			}
		})
	}
}
