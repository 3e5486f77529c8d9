package store

import (
	"bytes"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"

	"github.com/klauspost/compress/s2"
	bolt "go.etcd.io/bbolt"
)

// Schema 4 → 5 migration. Schemas 2 to 4 stored values in forms schema 5 no longer reads:
//
//   - outbox values of codec 2 (the line's prefix and suffix, then the incident as an S2 block),
//     codec 5 (the same, the block made with the incident dictionary below) and codec 3 (the
//     prefix and suffix, then the sequence of the incident document holding the incident), and
//     dead letters framing such values;
//   - incident documents of codec 4 (an S2 block made with the incident dictionary);
//   - incident heads followed by the outbox entries of the incident's last event that referred to
//     its document (codec 3 values).
//
// Schema 5 keeps one plain form of each (codec.go, head.go). The migration rewrites every value in
// the old forms, area by area (each sink's outbox, each sink's dead letters, the documents, the
// heads), at most migrateBatch entries per transaction: the bucket bucketMigrateV4 records how far
// each area got, so an interrupted migration resumes where its last transaction committed. The
// last batch drops that bucket, records schema 5 and starts the migration to schema 6
// (migrate_v5.go). Counters and sequences are untouched: every value keeps its key. Read-only opens
// refuse a store whose migration has not finished.

// bucketMigrateV4 records the migration's progress while it runs.
var bucketMigrateV4 = []byte("migrate_v4")

// schemaV5 is the schema this migration leads to.
const schemaV5 = 5

// Old codec bytes (see above); codecRaw and codecS2 are schema 5's.
const (
	codecEventV4     = 0x02
	codecDocRefV4    = 0x03
	codecS2DictV4    = 0x04
	codecEventDictV4 = 0x05
)

// incidentDictV1 is the S2 dictionary of codecs 4 and 5 (incidents the simulator generated). It is
// only read here, by the library's own dictionary decoder, and must never change.
//
//go:embed incident_dict_v1.json
var incidentDictV1 []byte

// startMigrationV4 starts the migration; it is a no-op when it has already started.
func startMigrationV4(btx *bolt.Tx) error {
	if _, err := btx.CreateBucketIfNotExists(bucketMigrateV4); err != nil {
		return fmt.Errorf("migrate to schema %d: %w", schemaV5, err)
	}
	return nil
}

// migrationArea is one bucket the migration walks, and how it rewrites a value of it (nil: kept).
type migrationArea struct {
	name    string
	bucket  *bolt.Bucket
	convert func(v []byte) ([]byte, error)
	// fill is the bucket's FillPercent while it is rewritten, as its writers set it: bbolt splits
	// every page it rewrites at that fill, and its default (half) would leave the file twice as
	// large as the data.
	fill float64
}

// migrateBatchV4 migrates up to migrateBatch entries. done reports that the migration has finished.
func migrateBatchV4(btx *bolt.Tx) (done bool, err error) {
	holder := btx.Bucket(bucketMigrateV4)
	if holder == nil {
		return true, nil
	}
	areas, err := migrationAreasV4(btx)
	if err != nil {
		return false, fmt.Errorf("migrate to schema %d: %w", schemaV5, err)
	}
	budget := migrateBatch
	for _, a := range areas {
		walked, finished, err := migrateArea(holder, a, budget)
		if err != nil {
			return false, fmt.Errorf("migrate to schema %d: %s: %w", schemaV5, a.name, err)
		}
		if budget -= walked; !finished || budget <= 0 {
			return false, nil
		}
	}
	if err := btx.DeleteBucket(bucketMigrateV4); err != nil {
		return false, fmt.Errorf("migrate to schema %d: %w", schemaV5, err)
	}
	if err := btx.Bucket(bucketMeta).Put(keySchema, []byte(strconv.Itoa(schemaV5))); err != nil {
		return false, fmt.Errorf("migrate to schema %d: %w", schemaV5, err)
	}
	return true, startMigrationV5(btx) // schema 5 → 6 (migrate_v5.go) goes on from here
}

// migrationAreasV4 lists the areas in the order they are migrated.
func migrationAreasV4(btx *bolt.Tx) ([]migrationArea, error) {
	docs, heads := btx.Bucket(bucketIncidentDocs), btx.Bucket(bucketIncidents)
	outbox, dead := btx.Bucket(bucketOutbox), btx.Bucket(bucketDead)
	if docs == nil || heads == nil || outbox == nil || dead == nil {
		return nil, errors.New("a bucket is missing")
	}
	old := &legacyValues{docs: docs}
	var areas []migrationArea
	for _, p := range []struct {
		name    string
		parent  *bolt.Bucket
		convert func([]byte) ([]byte, error)
	}{{"outbox", outbox, old.outboxValue}, {"dead", dead, old.deadLetter}} {
		err := p.parent.ForEachBucket(func(sink []byte) error {
			areas = append(areas, migrationArea{name: p.name + "/" + string(sink), bucket: p.parent.Bucket(sink),
				convert: p.convert, fill: 0.95})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return append(areas,
		migrationArea{name: "incident_docs", bucket: docs, convert: old.document, fill: 1},
		migrationArea{name: "incidents", bucket: heads, convert: plainHead, fill: 0.9}), nil
}

// migrateArea rewrites the values of a.bucket after the position recorded in holder, walking at most
// budget entries, and records the new position. finished reports that the area's end was reached.
func migrateArea(holder *bolt.Bucket, a migrationArea, budget int) (walked int, finished bool, err error) {
	posKey, doneKey := []byte("pos\x00"+a.name), []byte("done\x00"+a.name)
	if holder.Get(doneKey) != nil {
		return 0, true, nil
	}
	type change struct{ k, v []byte }
	var changes []change
	c := a.bucket.Cursor()
	k, v := c.First()
	if pos := holder.Get(posKey); pos != nil {
		if k, v = c.Seek(pos); k != nil && bytes.Equal(k, pos) {
			k, v = c.Next()
		}
	}
	var last []byte
	for ; k != nil && walked < budget; k, v = c.Next() {
		if v == nil {
			continue // a nested bucket
		}
		nv, err := a.convert(v)
		if err != nil {
			return walked, false, fmt.Errorf("key %x: %w", k, err)
		}
		if nv != nil {
			changes = append(changes, change{bytes.Clone(k), nv})
		}
		last = bytes.Clone(k)
		walked++
	}
	// A cursor does not survive writes to its bucket: the rewrites come after the walk.
	a.bucket.FillPercent = a.fill
	for _, ch := range changes {
		if err := a.bucket.Put(ch.k, ch.v); err != nil {
			return walked, false, err
		}
	}
	if k == nil {
		return walked, true, holder.Put(doneKey, []byte{1})
	}
	return walked, false, holder.Put(posKey, last)
}

// plainHead drops the outbox references that may follow a schema-4 head.
func plainHead(v []byte) ([]byte, error) {
	h, rest, err := readHead(v)
	if err != nil || len(rest) == 0 {
		return nil, err
	}
	return appendHead(nil, &h), nil
}

// legacyValues reads the value forms of schemas 2 to 4.
type legacyValues struct {
	docs *bolt.Bucket
	dict *s2.Dict // incidentDictV1, made on first use
}

// outboxValue returns the schema 5 form (codecRaw and the line) of an outbox value, nil when it
// has it already.
func (l *legacyValues) outboxValue(v []byte) ([]byte, error) {
	if len(v) > 0 && v[0] == codecRaw {
		return nil, nil
	}
	line, err := l.line(v)
	if err != nil {
		return nil, err
	}
	return raw(line), nil
}

// deadLetter returns a dead letter with its payload in the schema 5 form, nil when it has it already.
func (l *legacyValues) deadLetter(v []byte) ([]byte, error) {
	header, payload, err := unframe(v)
	if err != nil {
		return nil, err
	}
	value, err := l.outboxValue(payload)
	if value == nil || err != nil {
		return nil, err
	}
	return frame(header, value), nil
}

// document returns the schema 5 form (codecS2) of an incident document, nil when it has it already.
func (l *legacyValues) document(v []byte) ([]byte, error) {
	if len(v) > 0 && v[0] == codecS2 {
		return nil, nil
	}
	data, err := l.data(v)
	if err != nil {
		return nil, err
	}
	return pack(data), nil
}

// line returns the event line of an outbox value of any schema.
func (l *legacyValues) line(v []byte) ([]byte, error) {
	if len(v) == 0 {
		return nil, errors.New("empty outbox value")
	}
	switch v[0] {
	case codecEventV4, codecEventDictV4:
		prefix, suffix, rest, err := prefixSuffix(v[1:])
		if err != nil {
			return nil, err
		}
		codec := byte(codecS2)
		if v[0] == codecEventDictV4 {
			codec = codecS2DictV4
		}
		return l.join(prefix, append([]byte{codec}, rest...), suffix)
	case codecDocRefV4:
		prefix, suffix, rest, err := prefixSuffix(v[1:])
		if err != nil {
			return nil, err
		}
		seq, n := binary.Uvarint(rest)
		if n <= 0 || n != len(rest) || seq == 0 {
			return nil, errors.New("bad incident document reference")
		}
		doc := l.docs.Get(seqKey(seq))
		if len(doc) == 0 {
			return nil, fmt.Errorf("the incident document %d it refers to is missing", seq)
		}
		return l.join(prefix, doc, suffix)
	default:
		return l.data(v)
	}
}

// join puts a line together from its prefix, the incident stored as doc, and its suffix.
func (l *legacyValues) join(prefix, doc, suffix []byte) ([]byte, error) {
	incident, err := l.data(doc)
	if err != nil {
		return nil, fmt.Errorf("incident: %w", err)
	}
	line := make([]byte, 0, len(prefix)+len(incident)+len(suffix))
	return append(append(append(line, prefix...), incident...), suffix...), nil
}

// data returns the data of a value of codec 0, 1 or 4.
func (l *legacyValues) data(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != codecS2DictV4 {
		return unpack(v)
	}
	n, err := decodedLen(v[1:])
	if err != nil {
		return nil, err
	}
	if l.dict == nil {
		if l.dict = s2.MakeDict(incidentDictV1, nil); l.dict == nil {
			return nil, errors.New("the incident dictionary is not a valid S2 dictionary")
		}
	}
	return l.dict.Decode(make([]byte, n), v[1:])
}

// prefixSuffix splits the uvarint-length-prefixed prefix and suffix off b.
func prefixSuffix(b []byte) (prefix, suffix, rest []byte, err error) {
	if prefix, rest, err = lengthPrefixed(b); err != nil {
		return nil, nil, nil, fmt.Errorf("event prefix: %w", err)
	}
	if suffix, rest, err = lengthPrefixed(rest); err != nil {
		return nil, nil, nil, fmt.Errorf("event suffix: %w", err)
	}
	return prefix, suffix, rest, nil
}

// lengthPrefixed splits b into a uvarint-length-prefixed field and what follows it.
func lengthPrefixed(b []byte) (field, rest []byte, err error) {
	n, size := binary.Uvarint(b)
	if size <= 0 || n > uint64(len(b)-size) {
		return nil, nil, errors.New("truncated value")
	}
	return b[size : size+int(n)], b[size+int(n):], nil
}
