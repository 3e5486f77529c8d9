package store

import (
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/wizfetch/wizfetch/pkg/kv"
)

// OpenKV opens the store kept in db, an engine other than a bbolt file of Open's (etcd, for several
// replicas): it initialises a new store (creates the buckets and records the schema version) or
// checks an existing one's schema. A store of a newer schema yields an error wrapping
// ErrSchemaTooNew. One of schema 6 is read as it is, and the first write transaction of the
// replica that leads records schema 7 (migrate_v6.go). One of an older schema is refused: only
// bbolt files hold those (Open migrates them).
//
// OpenKV writes only when the store is new or lacks a bucket: a replica can open a store that
// exists without leading (an engine that fences writes would refuse them). With opts.ReadOnly it
// never writes, and the store refuses every write. Timeout, NoSync and MaxSize are bbolt's and
// ignored. What Open does for a bbolt file is absent: no migrations, no corruption guard,
// PageWrites returns -1 and Check is unsupported (Stats reports a file size only when db is a
// boltkv.DB).
//
// When db is a kv.Poster, pushes (EnqueueRefetch) are posted to the inbox rather than written in a
// transaction, so that any replica takes them; the leader moves them into the refetch queue
// (inbox.go). On success the store owns db (Close closes it); on an error db is left open.
func OpenKV(db kv.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("open store: no engine")
	}
	s := &Store{db: db, now: opts.Now, readOnly: opts.ReadOnly, shared: true}
	if s.now == nil {
		s.now = time.Now
	}
	if name, ok := db.(fmt.Stringer); ok {
		s.path = name.String()
	}
	s.poster, _ = db.(kv.Poster)
	s.id = make([]byte, 16)
	if _, err := rand.Read(s.id); err != nil {
		return nil, fmt.Errorf("open store %s: name this replica: %w", s.path, err)
	}
	buckets := allBuckets
	if s.poster != nil {
		buckets = append(buckets[:len(buckets):len(buckets)], bucketInbox)
	}
	ready, version := false, 0
	err := db.View(func(ktx kv.Tx) error {
		var err error
		version, ready, err = checkKV(ktx, buckets)
		return err
	})
	if err == nil && !ready {
		if opts.ReadOnly {
			err = errors.New("the store is not initialised (open it read-write once)")
		} else {
			err = db.Update(func(ktx kv.Tx) error {
				var err error
				version, err = prepare(ktx, buckets)
				if err == nil && version != 0 && version < minReadable {
					err = olderSchema(version) // written in between by an older wizfetch
				}
				return err
			})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", s.path, err)
	}
	s.bump.Store(version != 0 && version < SchemaVersion && !opts.ReadOnly)
	return s, nil
}

// CheckSchema reads the store's schema version again and refuses one this code cannot handle
// (ErrSchemaTooNew for a newer one). A replica on a shared engine calls it each time it starts to
// lead: the check of OpenKV ran when it started, and a newer replica may have bumped the schema
// since (a rolling upgrade), which this replica must not write under.
func (s *Store) CheckSchema() error {
	err := s.db.View(func(ktx kv.Tx) error { return checkSchema(ktx, false) })
	if err != nil {
		return fmt.Errorf("check store %s: %w", s.path, err)
	}
	return nil
}

// checkKV checks, in a read transaction, the schema of a store OpenKV opens: it returns the
// store's schema version (0: none yet) and whether it is ready, initialised at a schema this code
// reads (minReadable on) with every bucket in buckets.
func checkKV(ktx kv.Tx, buckets [][]byte) (version int, ready bool, err error) {
	meta := ktx.Bucket(bucketMeta)
	if meta == nil {
		if foreign := firstBucket(ktx); foreign != nil {
			return 0, false, fmt.Errorf("not a wizfetch store (it has bucket %q but no schema version)", foreign)
		}
		return 0, false, nil // new
	}
	if err := checkSchema(ktx, false); err != nil {
		return 0, false, err
	}
	raw := meta.Get(keySchema)
	if raw == nil {
		return 0, false, nil
	}
	version, _ = strconv.Atoi(string(raw)) // checkSchema vetted it
	if version < minReadable {
		return version, false, olderSchema(version)
	}
	for _, name := range buckets {
		if ktx.Bucket(name) == nil {
			return version, false, nil
		}
	}
	return version, true, nil
}

// olderSchema is the error for a store on another engine than bbolt with an older schema than this
// wizfetch's: only bbolt files are migrated.
func olderSchema(v int) error {
	return fmt.Errorf("store has schema version %d, older than this wizfetch's %d; only bbolt files are migrated "+
		"(open the bbolt file with this wizfetch first, then copy it to this engine)", v, SchemaVersion)
}
