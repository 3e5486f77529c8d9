package store

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/s2"
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

// Schemas 2 and 3 are schema 4 without some of its value forms: a read-only open refuses them (it
// cannot read what they may hold), a read-write open migrates them, the outbox intact.
func TestOlderSchemasUpgradeInPlace(t *testing.T) {
	for _, old := range []int{2, 3} {
		t.Run(fmt.Sprintf("schema %d", old), func(t *testing.T) {
			path := t.TempDir() + "/old.db"
			s, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			mustUpdate(t, s, func(tx *Tx) error {
				if _, err := tx.Enqueue("file", "default", []byte(`{"event_id":"e1"}`)); err != nil {
					return err
				}
				// In the form schemas 2 to 4 wrote a plain event line: with a codec byte.
				b := tx.ktx.Bucket(bucketOutbox).Bucket([]byte("file"))
				if err := b.Put(outboxKey("default", 1), raw([]byte(`{"event_id":"e1"}`))); err != nil {
					return err
				}
				return tx.ktx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(old)))
			})
			s.Close()

			if _, err := Open(path, Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "read-write once") {
				t.Fatalf("read-only open of a schema-%d store: %v, want a refusal that says what to do", old, err)
			}
			rw, err := Open(path, Options{NoSync: true})
			if err != nil {
				t.Fatal(err)
			}
			rw.mustSchema(t, SchemaVersion)
			if items, err := rw.Outbox("file", 0, 0); err != nil || len(items) != 1 || string(items[0].Data) != `{"event_id":"e1"}` {
				t.Fatalf("outbox after the upgrade = %v, %v", items, err)
			}
			checkConsistency(t, rw)
			rw.Close()
		})
	}
}

// The value forms of schema 4, written here with the compression library as schema 4 wrote them.

func legacyDict(t *testing.T) *s2.Dict {
	d := s2.MakeDict(incidentDictV1, nil)
	if d == nil {
		t.Fatal("the incident dictionary does not load")
	}
	return d
}

// legacyEvent is a codec-2 (dict false) or codec-5 (dict true) outbox value.
func legacyEvent(t *testing.T, dict bool, prefix, incident, suffix string) []byte {
	codec, block := byte(codecEventV4), s2.Encode(nil, []byte(incident))
	if dict {
		codec, block = codecEventDictV4, legacyDict(t).Encode(nil, []byte(incident))
	}
	v := []byte{codec}
	v = binary.AppendUvarint(v, uint64(len(prefix)))
	v = append(v, prefix...)
	v = binary.AppendUvarint(v, uint64(len(suffix)))
	v = append(v, suffix...)
	return append(v, block...)
}

// legacyDocRef is a codec-3 outbox value referring to incident document seq.
func legacyDocRef(prefix, suffix string, seq uint64) []byte {
	v := []byte{codecDocRefV4}
	v = binary.AppendUvarint(v, uint64(len(prefix)))
	v = append(v, prefix...)
	v = binary.AppendUvarint(v, uint64(len(suffix)))
	v = append(v, suffix...)
	return binary.AppendUvarint(v, seq)
}

// legacyHead is a schema-4 head followed by its outbox references.
func legacyHead(h incidentHead, refs map[string]uint64) []byte {
	v := appendHead(nil, &h)
	v = binary.AppendUvarint(v, uint64(len(refs)))
	for sink, seq := range refs {
		v = binary.AppendUvarint(v, uint64(len(sink)))
		v = append(v, sink...)
		v = binary.BigEndian.AppendUint64(v, seq)
	}
	return v
}

// fillerV4 is how many events by reference writeV4Store puts into the outbox of "hook": enough
// for several migration batches.
const fillerV4 = 2*migrateBatch + 7

// writeV4Store writes a schema-4 store holding every value form schema 5 rewrites, and returns the
// lines the outbox of "file" and "hook" must read back as, and the incidents' JSON by issue id.
func writeV4Store(t *testing.T, path string) (file, hook []string, incidents map[string]string) {
	t.Helper()
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	created := time.Date(2026, 10, 1, 8, 0, 0, 5000, time.UTC)
	incidents = map[string]string{}
	docOf := map[string]uint64{}
	mustUpdate(t, st, func(tx *Tx) error {
		// Incidents i0 (codec-4 document, head with references), i1 (codec-1 document) and i2
		// (codec-0 document, closed).
		for i, id := range []string{"i0", "i1", "i2"} {
			doc := fmt.Sprintf(`{"name":"%s","rawJSON":"%s"}`, id, strings.Repeat(`{\"id\":\"x\"}`, 20+i))
			incidents[id] = doc
			rec := &IncidentRecord{Instance: "default", IssueID: id, CreatedAt: created.Add(time.Duration(i) * time.Second),
				Status: "OPEN", Version: 1, LastEventID: "ev-" + id, Incident: []byte(doc)}
			if id == "i2" {
				closed := created.Add(time.Hour)
				rec.Status, rec.ClosedAt = "RESOLVED", &closed
			}
			if err := tx.PutIncident(rec); err != nil {
				return err
			}
		}
		docs, heads := tx.ktx.Bucket(bucketIncidentDocs), tx.ktx.Bucket(bucketIncidents)
		c := heads.Cursor()
		var rewrite [][2][]byte
		for k, v := c.First(); k != nil; k, v = c.Next() {
			_, _, id, _ := splitIncidentKey(k)
			h, err := decodeHead(v)
			if err != nil {
				return err
			}
			docOf[id] = h.docSeq
			switch id {
			case "i0":
				if err := docs.Put(seqKey(h.docSeq), append([]byte{codecS2DictV4}, legacyDict(t).Encode(nil, []byte(incidents[id]))...)); err != nil {
					return err
				}
				rewrite = append(rewrite, [2][]byte{bytes.Clone(k), legacyHead(h, map[string]uint64{"file": 3, "hook": 1})})
			case "i2":
				if err := docs.Put(seqKey(h.docSeq), raw([]byte(incidents[id]))); err != nil {
					return err
				}
			}
		}
		for _, kv := range rewrite {
			if err := heads.Put(kv[0], kv[1]); err != nil {
				return err
			}
		}
		// Outbox "file": one value of each form.
		put := func(sink string, v []byte) error {
			_, err := putOutboxV5(tx, sink, v)
			return err
		}
		prefix := func(id string) string { return `{"event_id":"ev-` + id + `","incident":` }
		for _, ev := range []struct {
			v    []byte
			line string
		}{
			{raw([]byte(`{"event_id":"e-raw"}`)), `{"event_id":"e-raw"}`},
			{legacyEvent(t, false, prefix("i1"), incidents["i1"], "}"), prefix("i1") + incidents["i1"] + "}"},
			{legacyDocRef(prefix("i0"), "}", docOf["i0"]), prefix("i0") + incidents["i0"] + "}"},
			{legacyEvent(t, true, prefix("i0"), incidents["i0"], "}"), prefix("i0") + incidents["i0"] + "}"},
			{legacyDocRef(prefix("i2"), "}", docOf["i2"]), prefix("i2") + incidents["i2"] + "}"},
			{legacyDocRef(prefix("i1"), "}", docOf["i1"]), prefix("i1") + incidents["i1"] + "}"},
			{pack([]byte(`{"event_id":"e-s2"}`)), `{"event_id":"e-s2"}`},
		} {
			if err := put("file", ev.v); err != nil {
				return err
			}
			file = append(file, ev.line)
		}
		// Outbox "hook": many events by reference, spanning migration batches.
		for i := range fillerV4 {
			p := fmt.Sprintf(`{"event_id":"hook-%05d","incident":`, i)
			if err := put("hook", legacyDocRef(p, "}", docOf["i0"])); err != nil {
				return err
			}
			hook = append(hook, p+incidents["i0"]+"}")
		}
		return tx.ktx.Bucket(bucketMeta).Put(keySchema, []byte("4"))
	})
	// A dead letter of "file" holding a codec-5 value (dead letters keep the value as it is).
	mustUpdate(t, st, func(tx *Tx) error { return deadLetterV5(tx, "file", 4, "HTTP 400") })
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return file, hook, incidents
}

// TestMigrateFromSchema4 opens a schema-4 store whose migration was interrupted after its first
// batch: the next Open finishes it, every value reads back as it did, and every one is in its
// schema-5 form.
func TestMigrateFromSchema4(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v4.db")
	file, hook, incidents := writeV4Store(t, path)
	if _, err := Open(path, Options{ReadOnly: true}); err == nil {
		t.Fatal("read-only open of a schema-4 store succeeded")
	}

	// One bounded batch, then the "crash".
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(startMigrationV4); err != nil {
		t.Fatal(err)
	}
	var done bool
	if err := db.Update(func(btx *bolt.Tx) error { done, err = migrateBatchV4(btx); return err }); err != nil {
		t.Fatal(err)
	}
	if done {
		t.Fatalf("%d outbox values migrated in one batch of at most %d", len(file)+len(hook), migrateBatch)
	}
	batches := 1
	if err := db.Update(func(btx *bolt.Tx) error { done, err = migrateBatchV4(btx); return err }); err != nil {
		t.Fatal(err)
	}
	batches++
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if done || batches*migrateBatch >= len(file)+len(hook)+3 {
		t.Fatal("the test store is too small to interrupt its migration")
	}

	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.mustSchema(t, SchemaVersion)
	checkConsistency(t, st)
	lines := func(sink string) []string {
		items, err := st.Outbox(sink, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, it := range items {
			out = append(out, string(it.Data))
		}
		return out
	}
	wantFile := append(append([]string(nil), file[:3]...), file[4:]...) // file[3] is the dead letter
	if got := lines("file"); !slices.Equal(got, wantFile) {
		t.Errorf("outbox of file after the migration:\n got %q\nwant %q", got, wantFile)
	}
	if got := lines("hook"); !slices.Equal(got, hook) {
		t.Errorf("outbox of hook after the migration: %d lines, want %d (first %.80q)", len(got), len(hook), got[:1])
	}
	dls, err := st.DeadLetters("file", 0)
	if err != nil || len(dls) != 1 || string(dls[0].Data) != file[3] {
		t.Fatalf("dead letter after the migration = %+v, %v", dls, err)
	}
	mustView(t, st, func(tx *Tx) error {
		return tx.ForEachIncident("default", func(rec *IncidentRecord) error {
			if string(rec.Incident) != incidents[rec.IssueID] {
				t.Errorf("incident %s = %.60q, want %.60q", rec.IssueID, rec.Incident, incidents[rec.IssueID])
			}
			return nil
		})
	})
	if d, err := st.OutboxDepth("hook"); err != nil || d != fillerV4 {
		t.Errorf("OutboxDepth(hook) = %d, %v; want %d", d, err, fillerV4)
	}
	// From now on the store is written and read in schema 5's forms only.
	mustUpdate(t, st, func(tx *Tx) error {
		_, err := tx.Enqueue("file", "default", []byte(`{"event_id":"after"}`))
		return err
	})
	if got := lines("file"); got[len(got)-1] != `{"event_id":"after"}` {
		t.Errorf("last line %q", got[len(got)-1])
	}
	checkConsistency(t, st)
}

// TestMigrateSchema4Fixture migrates the store a schema-4 release left behind (the fixture of
// pkg/app's upgrade test, testdata/store/schema4): the result is consistent, every value is in its
// schema-5 form, and every outbox entry and dead letter reads back as an event line.
func TestMigrateSchema4Fixture(t *testing.T) {
	in, err := os.Open("../../testdata/store/schema4/wizfetch.db.gz")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	zr, err := gzip.NewReader(in)
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "wizfetch.db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := Open(path, Options{NoSync: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	st.mustSchema(t, SchemaVersion)
	checkConsistency(t, st)
	var sinks []string
	mustView(t, st, func(tx *Tx) error {
		var err error
		sinks, err = tx.OutboxSinks()
		return err
	})
	events := 0
	for _, sink := range sinks {
		items, err := st.Outbox(sink, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range items {
			var ev struct {
				EventID  string          `json:"event_id"`
				Incident json.RawMessage `json:"incident"`
			}
			if err := json.Unmarshal(it.Data, &ev); err != nil || ev.EventID == "" || len(ev.Incident) == 0 {
				t.Fatalf("outbox %s item %d is not an event line (%v): %.100s", sink, it.Seq, err, it.Data)
			}
			events++
		}
	}
	dls, err := st.DeadLetters("hook", 0)
	if err != nil || len(dls) != 1 || !json.Valid(dls[0].Data) {
		t.Fatalf("dead letters of hook: %d, %v", len(dls), err)
	}
	if events == 0 {
		t.Fatal("the fixture's outboxes are empty: nothing was migrated")
	}
	n := 0
	mustView(t, st, func(tx *Tx) error {
		return tx.ForEachIncident("", func(rec *IncidentRecord) error {
			if !json.Valid(rec.Incident) {
				t.Fatalf("incident %s: not JSON", rec.IssueID)
			}
			n++
			return nil
		})
	})
	t.Logf("%d outbox events and %d incidents migrated", events, n)
}

// The dictionary is part of schema 4's stored format: migrate_v4.go decodes codec-4 and codec-5
// values with it, so the file must never change.
func TestIncidentDictionaryNeverChanges(t *testing.T) {
	sum := sha256.Sum256(incidentDictV1)
	if got, want := hex.EncodeToString(sum[:]), "1639cb74b8bdabca2e93753d783da6a1df35e0635a9da98784642d5fec64695b"; got != want {
		t.Fatalf("incident_dict_v1.json changed (sha256 %s, want %s): schema-4 stores could not be migrated", got, want)
	}
}
