package store

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout version this code reads and writes (see the package doc). Schema 5
// keeps one plain form per value (an outbox value holds its event line, an incident document its
// S2-compressed JSON); schema 6 splits each outbox into one FIFO per instance. Open migrates older
// files (migrate_v1.go, migrate_v4.go, migrate_v5.go), and an older wizfetch refuses a schema-6
// file rather than misread it.
const SchemaVersion = schemaV6

// pageSize is the bbolt page size of a new store file (an existing file keeps the one it was created
// with). An event line is about 4 KiB, so with bbolt's default 4 KiB pages nearly every outbox entry
// took a page (or an overflow run) of its own, half empty; 16 KiB pages hold several, so the file is
// smaller and so is the part of it the daemon maps and touches (its resident memory as operators
// see it). It also bounds a bbolt bookkeeping cost that grows with the file: bbolt remembers, for
// every page it handed out from its freelist, the transaction that took it, until that page is freed
// again, a map that grows with the number of pages. BENCHMARKS.md has the measurements.
const pageSize = 16 << 10

// DefaultTimeout is how long Open waits for the file lock when Options.Timeout is zero.
const DefaultTimeout = 2 * time.Second

var (
	// ErrLocked means another process (normally a running wizfetch daemon) holds the store's lock.
	ErrLocked = errors.New("store is in use by another wizfetch process")
	// ErrSchemaTooNew means the file was written by a newer wizfetch whose layout this one does not know.
	ErrSchemaTooNew = errors.New("store was written by a newer wizfetch")
	// ErrNotFound is returned by operations on an item (outbox event, refetch entry) that does not exist.
	ErrNotFound = errors.New("not found")
	// ErrTxClosed is returned when a Tx is used after the function it was passed to has returned.
	ErrTxClosed = errors.New("store transaction used after it ended")
)

// Options tune Open.
type Options struct {
	// Timeout bounds the wait for the file lock; zero means DefaultTimeout.
	Timeout time.Duration
	// ReadOnly opens the file with a shared lock for operator views; writes fail.
	ReadOnly bool
	// NoSync skips fsync on commit. For tests only: a crash may lose or corrupt committed data.
	NoSync bool
	// Now is the clock used for times the store stamps itself (dead-letter FailedAt); nil means
	// time.Now.
	Now func() time.Time
	// MaxSize, when positive, caps the file's size in bytes: a write that would grow it further
	// fails as on a full disk. For tests of that case.
	MaxSize int
}

// Store is an open wizfetch state file. It is safe for concurrent use; bbolt serialises writers.
type Store struct {
	db   *bolt.DB
	path string
	now  func() time.Time
	// writes remembers whether the last commit failed (writehealth.go).
	writes writeHealth
	// ids finds incidents by issue id whatever their createdAt (identity.go).
	ids issueIndex
}

// Bucket names (see the package doc for their contents).
var (
	bucketMeta            = []byte("meta")
	bucketCounters        = []byte("counters")
	bucketCheckpoints     = []byte("checkpoints")
	bucketMarks           = []byte("marks")
	bucketMarksByTime     = []byte("marks_by_time")
	bucketIncidents       = []byte("incidents")
	bucketIncidentsClosed = []byte("incidents_closed")
	bucketIncidentDocs    = []byte("incident_docs")
	bucketOutbox          = []byte("outbox")
	bucketDead            = []byte("dead")
	bucketSinkState       = []byte("sinkstate")
	bucketRefetch         = []byte("refetch")
	bucketRefetchDue      = []byte("refetch_due")

	allBuckets = [][]byte{
		bucketMeta, bucketCounters, bucketCheckpoints, bucketMarks, bucketMarksByTime,
		bucketIncidents, bucketIncidentsClosed, bucketIncidentDocs, bucketOutbox, bucketDead, bucketSinkState,
		bucketRefetch, bucketRefetchDue,
	}

	keySchema = []byte("schema")
)

// Open opens (creating if needed, unless opts.ReadOnly) the store at path. A lock held by another
// process for longer than opts.Timeout yields an error wrapping ErrLocked; a file of a newer schema
// yields one wrapping ErrSchemaTooNew.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty path")
	}
	timeout := opts.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if opts.ReadOnly {
		// bbolt would fail with a bare ENOENT; say what is missing.
		if _, err := os.Stat(path); err != nil {
			return nil, fmt.Errorf("open store %s read-only: %w", path, err)
		}
	} else if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory for %s: %w", path, err)
	}
	var db *bolt.DB
	err := guard(path, func() error {
		var err error
		db, err = bolt.Open(path, 0o600, &bolt.Options{
			Timeout:        timeout,
			ReadOnly:       opts.ReadOnly,
			NoSync:         opts.NoSync,
			FreelistType:   bolt.FreelistMapType,
			PageSize:       pageSize,
			NoFreelistSync: false,
			MaxSize:        opts.MaxSize,
		})
		return err
	})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("open store %s: no lock after %s: %w", path, timeout, ErrLocked)
		}
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		if damaged(err) {
			return nil, &corruptError{path: path, cause: err.Error()}
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, now: opts.Now}
	if s.now == nil {
		s.now = time.Now
	}
	if err := checkTruncated(path, db); err != nil {
		_ = db.Close()
		return nil, err
	}
	err = s.guarded(func() error { return s.openTx(opts.ReadOnly) })
	if err != nil {
		_ = db.Close()
		if errors.Is(err, ErrCorrupt) {
			return nil, err
		}
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// openTx checks the schema (read-only) or initialises and migrates the file (read-write). Each
// migration step is a transaction of its own, so a large store is migrated in bounded steps and an
// interrupted migration resumes at the next Open.
func (s *Store) openTx(readOnly bool) error {
	db := s.db
	if readOnly {
		return db.View(func(btx *bolt.Tx) error { return checkSchema(btx, true) })
	}
	if err := db.Update(initialize); err != nil {
		return err
	}
	for _, m := range []struct {
		holder []byte // the bucket that exists while the migration runs
		batch  func(*bolt.Tx) (done bool, err error)
	}{{bucketMigrateV1, migrateBatchV1}, {bucketMigrateV4, migrateBatchV4}, {bucketMigrateV5, migrateBatchV5}} {
		running := false
		if err := db.View(func(btx *bolt.Tx) error { running = btx.Bucket(m.holder) != nil; return nil }); err != nil {
			return err
		}
		for done := !running; !done; {
			err := db.Update(func(btx *bolt.Tx) error {
				var err error
				done, err = m.batch(btx)
				return err
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// initialize creates the buckets of a new file, records the schema version and refuses files it
// cannot read.
func initialize(btx *bolt.Tx) error {
	if btx.Bucket(bucketMeta) == nil {
		// A file without our meta bucket must be new (empty); anything else is not a wizfetch store.
		var foreign []byte
		_ = btx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			if foreign == nil {
				foreign = bytes.Clone(name)
			}
			return nil
		})
		if foreign != nil {
			return fmt.Errorf("not a wizfetch store (it has bucket %q but no schema version)", foreign)
		}
	} else if err := checkSchema(btx, false); err != nil {
		return err
	}
	meta := btx.Bucket(bucketMeta)
	version := 0
	if meta != nil && meta.Get(keySchema) != nil {
		version, _ = strconv.Atoi(string(meta.Get(keySchema))) // checkSchema vetted it
	}
	for _, name := range allBuckets {
		if _, err := btx.CreateBucketIfNotExists(name); err != nil {
			return fmt.Errorf("create bucket %s: %w", name, err)
		}
	}
	meta = btx.Bucket(bucketMeta)
	switch {
	case version == 1:
		// Schema 2 keys incidents by createdAt and keeps their JSON apart; Open finishes the
		// migration in batches (migrate_v1.go), then goes on with schema 4's.
		return startMigrationV1(btx)
	case version >= 2 && version <= 4:
		// Schemas 2 to 4 hold values in forms schema 5 no longer reads (migrate_v4.go), which then
		// goes on to schema 6.
		return startMigrationV4(btx)
	case version == 5:
		// Schema 6 keeps one outbox FIFO per instance (migrate_v5.go).
		return startMigrationV5(btx)
	case version == 0:
		if err := meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
	}
	return nil
}

// checkSchema reads the schema version and refuses one this code cannot handle.
func checkSchema(btx *bolt.Tx, readOnly bool) error {
	meta := btx.Bucket(bucketMeta)
	if meta == nil {
		return errors.New("not a wizfetch store (no meta bucket)")
	}
	raw := meta.Get(keySchema)
	if raw == nil {
		if readOnly {
			return errors.New("not a wizfetch store (no schema version)")
		}
		return nil // created by initialize
	}
	v, err := strconv.Atoi(string(raw))
	if err != nil || v < 1 {
		return fmt.Errorf("unreadable schema version %q", raw)
	}
	if v > SchemaVersion {
		return fmt.Errorf("schema version %d, this wizfetch knows up to %d (upgrade wizfetch): %w",
			v, SchemaVersion, ErrSchemaTooNew)
	}
	if v < SchemaVersion && readOnly {
		return fmt.Errorf("store has schema version %d; open it read-write once (start the daemon) to migrate it to %d", v, SchemaVersion)
	}
	if readOnly {
		for _, name := range allBuckets {
			if btx.Bucket(name) == nil {
				return fmt.Errorf("store is missing bucket %s (open it read-write once to repair)", name)
			}
		}
	}
	return nil
}

// Close releases the file lock and closes the file. Pending transactions finish first.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close store %s: %w", s.path, err)
	}
	return nil
}

// Path is the file the store was opened from.
func (s *Store) Path() string { return s.path }

// Update runs fn in one write transaction and commits (with fsync) when fn returns nil; any error
// (or panic) rolls everything back. Damage found in the file while reading it is an error wrapping
// ErrCorrupt, not a crash (corrupt.go). fn must not do network I/O, must not call other Store methods
// (they open their own transaction and would deadlock) and must not keep tx after it returns.
func (s *Store) Update(fn func(tx *Tx) error) error {
	var fnErr error
	err := s.guarded(func() error {
		return s.db.Update(func(btx *bolt.Tx) error {
			tx := newTx(s, btx)
			fnErr = fn(tx)
			err := fnErr
			if err == nil {
				err = tx.flushCounters()
			}
			tx.closed = true
			return err
		})
	})
	if fnErr == nil {
		// err is bbolt's own: the flush, the commit or the fsync failed (a full disk, an I/O error).
		s.writes.record(err, s.now())
	}
	return err
}

// PageWrites is the number of pages bbolt has written since Open (its TxStats.Write): every commit
// of a write transaction adds to it (at least its meta page), a rolled-back one does not. Tests use
// it to tell whether a transaction committed.
func (s *Store) PageWrites() int64 {
	st := s.db.Stats()
	return st.TxStats.GetWrite()
}

// View runs fn in a read-only transaction that sees one consistent snapshot. Like Update, fn must
// not call other Store methods.
func (s *Store) View(fn func(tx *Tx) error) error {
	return s.guarded(func() error {
		return s.db.View(func(btx *bolt.Tx) error {
			tx := newTx(s, btx)
			err := fn(tx)
			tx.closed = true
			return err
		})
	})
}

// Tx is a typed view of one bbolt transaction. It is only valid inside the function given to
// Store.Update or Store.View, and is not safe for concurrent use.
type Tx struct {
	store  *Store
	btx    *bolt.Tx
	closed bool
	deltas map[string]int64 // counter changes, written once before commit
}

func newTx(s *Store, btx *bolt.Tx) *Tx {
	return &Tx{store: s, btx: btx}
}

// Wrote reports whether this transaction has changed anything so far: a key put or deleted, a
// bucket created or dropped, or a counter change waiting for the commit. It asks bbolt, which
// materialises a node of its B+tree only to change it (a read, even in a write transaction, never
// does), so no write method can forget to say it wrote. A write that puts a value back unchanged
// still counts. A write transaction that has not written can end in a rollback rather than a
// commit, which would write bbolt's meta page and freelist and fsync for nothing.
func (tx *Tx) Wrote() bool {
	if tx.btx.Writable() {
		if st := tx.btx.Stats(); st.GetNodeCount() > 0 {
			return true
		}
	}
	for _, d := range tx.deltas {
		if d != 0 {
			return true
		}
	}
	return false
}

// bucket returns a top-level bucket.
func (tx *Tx) bucket(name []byte) (*bolt.Bucket, error) {
	if tx.closed {
		return nil, ErrTxClosed
	}
	b := tx.btx.Bucket(name)
	if b == nil {
		return nil, fmt.Errorf("store is missing bucket %s", name)
	}
	return b, nil
}

// writable reports an error for writes in a read transaction, before bbolt would.
func (tx *Tx) writable() error {
	if tx.closed {
		return ErrTxClosed
	}
	if !tx.btx.Writable() {
		return berrors.ErrTxNotWritable
	}
	return nil
}

// counter returns a counter's value as this transaction sees it.
func (tx *Tx) counter(key string) (int, error) {
	b, err := tx.bucket(bucketCounters)
	if err != nil {
		return 0, err
	}
	var v int64
	if raw := b.Get([]byte(key)); len(raw) == 8 {
		v = int64(binary.BigEndian.Uint64(raw))
	}
	v += tx.deltas[key]
	if v < 0 {
		v = 0
	}
	return int(v), nil
}

// addCounter records a counter change; flushCounters writes it before the commit.
func (tx *Tx) addCounter(key string, d int64) {
	if tx.deltas == nil {
		tx.deltas = make(map[string]int64, 8)
	}
	tx.deltas[key] += d
}

// setCounter makes a counter read as v from now on in this transaction.
func (tx *Tx) setCounter(key string, v int) error {
	cur, err := tx.counter(key)
	if err != nil {
		return err
	}
	tx.addCounter(key, int64(v-cur))
	return nil
}

func (tx *Tx) flushCounters() error {
	if len(tx.deltas) == 0 {
		return nil
	}
	b, err := tx.bucket(bucketCounters)
	if err != nil {
		return err
	}
	for key, d := range tx.deltas {
		if d == 0 {
			continue
		}
		var v int64
		if raw := b.Get([]byte(key)); len(raw) == 8 {
			v = int64(binary.BigEndian.Uint64(raw))
		}
		v += d
		if v <= 0 {
			// A negative count would be a bookkeeping bug; never let it leak into depths.
			if err := b.Delete([]byte(key)); err != nil {
				return fmt.Errorf("write counter %q: %w", key, err)
			}
			continue
		}
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], uint64(v))
		if err := b.Put([]byte(key), buf[:]); err != nil {
			return fmt.Errorf("write counter %q: %w", key, err)
		}
	}
	tx.deltas = nil
	return nil
}
